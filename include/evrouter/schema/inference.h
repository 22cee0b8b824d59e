#pragma once
// Schema inference: the shape of the JSON payloads seen for one source and event type. Every field path
// keeps its JSON types, how often it was present (to tell required from optional) and one sample value.
// Bounded: at most `max_fields` paths per schema, `max_array_items` elements examined per array,
// `max_depth` levels of nesting.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/schema/redaction.h"

namespace evr::schema {

// JSON types as a bit set.
enum Type : unsigned {
  kNull = 1u << 0,
  kBoolean = 1u << 1,
  kInteger = 1u << 2,
  kNumber = 1u << 3,  // a non-integer number
  kString = 1u << 4,
  kObject = 1u << 5,
  kArray = 1u << 6,
};

// The JSON Schema type names of a bit set, in a fixed order. "integer" is folded into "number" when both
// were seen.
std::vector<std::string> type_names(unsigned types);

struct Limits {
  std::size_t max_fields = 2000;
  std::size_t max_array_items = 20;
  std::size_t max_depth = 32;
  std::size_t max_sample_bytes = 200;  // longer samples are cut (strings) or replaced by their type
};

// One field (or the payload itself, or an array's elements).
struct Node {
  unsigned types = 0;
  int64_t present = 0;  // times seen where its parent object was (array items: elements examined)
  int64_t objects = 0;  // times it was an object: what its properties' `present` is compared with
  std::optional<std::string> sample;  // JSON text of one value (never null when another type was seen)
  std::map<std::string, Node> properties;
  std::vector<Node> items;    // empty, or one node: every element examined of every array seen here
  signed char redacted = -1;  // whether its samples are hidden: -1 not decided yet (not persisted)
};

struct Schema {
  std::string source;
  std::string type;
  int64_t events = 0;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  std::size_t fields = 0;  // paths kept (the root excluded)
  bool truncated = false;  // a path was left out: max_fields reached or nesting deeper than max_depth
  Node root;
};

// Adds one payload to `schema`. `redaction` decides which samples are hidden.
void observe(Schema& schema, const nlohmann::json& payload, int64_t at_ms, const Limits& limits,
             const Redaction& redaction);

// A field as listed: dotted path ("customer.email", "line_items[].price"; the payload's own elements when
// it is an array: "[]"), types, required (present whenever its parent object was), sample.
struct Field {
  std::string path;
  std::vector<std::string> types;
  bool required = false;
  int64_t seen = 0;
  std::optional<std::string> sample;  // JSON text
};
std::vector<Field> fields(const Schema& schema);

// JSON Schema (draft 2020-12) of the payloads seen: "type", "properties", "required" per object,
// "items" per array, and "examples" with the (possibly redacted) sample of each leaf.
nlohmann::json json_schema(const Schema& schema);

// Persistence (the store keeps the text): every count, type and sample.
std::string serialize(const Schema& schema);
// Throws std::runtime_error when `document` is not a serialized schema.
Schema deserialize(const std::string& source, const std::string& type, const std::string& document);

}  // namespace evr::schema
