#include "evrouter/schema/inference.h"

#include <stdexcept>

namespace evr::schema {
namespace {

using json = nlohmann::json;

unsigned type_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return kNull;
    case json::value_t::boolean:
      return kBoolean;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return kInteger;
    case json::value_t::number_float:
      return kNumber;
    case json::value_t::string:
      return kString;
    case json::value_t::object:
      return kObject;
    case json::value_t::array:
      return kArray;
    default:
      return kString;  // binary/discarded never come out of the parser
  }
}

// The first `max` bytes of `s` without cutting a UTF-8 sequence.
std::string cut(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

std::string sample_of(const json& v, bool redacted, const Limits& limits) {
  if (redacted) return json(kRedacted).dump();
  if (v.is_string()) {
    return json(cut(v.get_ref<const std::string&>(), limits.max_sample_bytes))
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return v.dump();
}

// The path of `key` under `path`: "path.key", or `key` alone at the top.
std::string child_path(const std::string& path, const std::string& key) {
  if (path.empty()) return key;
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

struct Walk {
  Schema& schema;
  const Limits& limits;
  const Redaction& redaction;

  // Room for one more path?
  bool admit(std::size_t depth) {
    if (schema.fields >= limits.max_fields || depth >= limits.max_depth) {
      schema.truncated = true;
      return false;
    }
    ++schema.fields;
    return true;
  }

  void visit(Node& node, const json& v, const std::string& path, std::string_view key, std::size_t depth,
             bool redacted) {
    // Decided once per node: matching every key against every pattern on each event would cost more
    // than the rest of the inference.
    if (node.redacted < 0) node.redacted = redacted || (depth > 0 && redaction.matches(path, key)) ? 1 : 0;
    redacted = node.redacted == 1;
    const unsigned t = type_of(v);
    node.types |= t;
    ++node.present;
    if (t != kObject && t != kArray && (!node.sample || (t != kNull && *node.sample == "null"))) {
      node.sample = sample_of(v, redacted, limits);
    }
    if (t == kObject) {
      ++node.objects;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& k = it.key();
        auto child = node.properties.find(k);
        if (child == node.properties.end()) {
          if (!admit(depth)) continue;
          child = node.properties.emplace(k, Node{}).first;
        }
        visit(child->second, it.value(), child_path(path, k), k, depth + 1, redacted);
      }
    } else if (t == kArray && !v.empty()) {
      if (node.items.empty()) {
        if (!admit(depth)) return;
        node.items.emplace_back();
      }
      const std::string item_path = path + "[]";
      std::size_t n = 0;
      for (const auto& e : v) {
        if (n++ == limits.max_array_items) break;
        visit(node.items.front(), e, item_path, {}, depth + 1, redacted);
      }
    }
  }
};

void list(const Node& node, const std::string& path, std::vector<Field>& out) {
  for (const auto& [k, child] : node.properties) {
    const std::string p = child_path(path, k);
    out.push_back({p, type_names(child.types), child.present == node.objects, child.present, child.sample});
    list(child, p, out);
  }
  if (!node.items.empty()) {
    const auto& items = node.items.front();
    const std::string p = path + "[]";
    out.push_back({p, type_names(items.types), false, items.present, items.sample});
    list(items, p, out);
  }
}

json node_schema(const Node& node) {
  json out = json::object();
  const auto names = type_names(node.types);
  if (names.size() == 1) {
    out["type"] = names.front();
  } else if (!names.empty()) {
    out["type"] = names;
  }
  if (node.types & kObject) {
    json props = json::object();
    json required = json::array();
    for (const auto& [k, child] : node.properties) {
      props[k] = node_schema(child);
      if (child.present == node.objects) required.push_back(k);
    }
    out["properties"] = std::move(props);
    out["required"] = std::move(required);
  }
  if ((node.types & kArray) && !node.items.empty()) out["items"] = node_schema(node.items.front());
  if (node.sample) {
    auto v = json::parse(*node.sample, nullptr, false);
    if (!v.is_discarded()) out["examples"] = json::array({std::move(v)});
  }
  return out;
}

json node_doc(const Node& n) {
  json j{{"t", n.types}, {"p", n.present}, {"o", n.objects}};
  if (n.sample) j["s"] = *n.sample;
  if (!n.properties.empty()) {
    json props = json::object();
    for (const auto& [k, c] : n.properties) props[k] = node_doc(c);
    j["props"] = std::move(props);
  }
  if (!n.items.empty()) j["items"] = node_doc(n.items.front());
  return j;
}

Node node_from(const json& j, std::size_t& fields, std::size_t depth) {
  if (!j.is_object() || depth > 256) throw std::runtime_error("malformed schema node");
  Node n;
  n.types = j.at("t").get<unsigned>();
  n.present = j.at("p").get<int64_t>();
  n.objects = j.at("o").get<int64_t>();
  if (auto s = j.find("s"); s != j.end()) n.sample = s->get<std::string>();
  if (auto p = j.find("props"); p != j.end()) {
    for (auto it = p->begin(); it != p->end(); ++it) {
      ++fields;
      n.properties.emplace(it.key(), node_from(it.value(), fields, depth + 1));
    }
  }
  if (auto i = j.find("items"); i != j.end()) {
    ++fields;
    n.items.push_back(node_from(*i, fields, depth + 1));
  }
  return n;
}

}  // namespace

std::vector<std::string> type_names(unsigned types) {
  std::vector<std::string> out;
  if (types & kNull) out.emplace_back("null");
  if (types & kBoolean) out.emplace_back("boolean");
  if ((types & kInteger) && !(types & kNumber)) out.emplace_back("integer");
  if (types & kNumber) out.emplace_back("number");
  if (types & kString) out.emplace_back("string");
  if (types & kObject) out.emplace_back("object");
  if (types & kArray) out.emplace_back("array");
  return out;
}

void observe(Schema& schema, const json& payload, int64_t at_ms, const Limits& limits,
             const Redaction& redaction) {
  ++schema.events;
  if (schema.first_seen_ms == 0 || at_ms < schema.first_seen_ms) schema.first_seen_ms = at_ms;
  if (at_ms > schema.last_seen_ms) schema.last_seen_ms = at_ms;
  Walk{schema, limits, redaction}.visit(schema.root, payload, "", {}, 0, false);
}

std::vector<Field> fields(const Schema& schema) {
  std::vector<Field> out;
  out.reserve(schema.fields);
  list(schema.root, "", out);
  return out;
}

json json_schema(const Schema& schema) {
  json out{{"$schema", "https://json-schema.org/draft/2020-12/schema"},
           {"title", schema.source + " " + schema.type},
           {"description", "Inferred by evrouter from " + std::to_string(schema.events) + " event(s)" +
                               (schema.truncated ? " (truncated: some fields were left out)" : "")}};
  out.update(node_schema(schema.root));
  return out;
}

std::string serialize(const Schema& schema) {
  return json{{"version", 1},
              {"events", schema.events},
              {"first_seen_ms", schema.first_seen_ms},
              {"last_seen_ms", schema.last_seen_ms},
              {"truncated", schema.truncated},
              {"root", node_doc(schema.root)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Schema deserialize(const std::string& source, const std::string& type, const std::string& document) {
  const auto j = json::parse(document, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) {
    throw std::runtime_error("schema " + source + " " + type + ": not a version 1 schema document");
  }
  try {
    Schema s;
    s.source = source;
    s.type = type;
    s.events = j.at("events").get<int64_t>();
    s.first_seen_ms = j.at("first_seen_ms").get<int64_t>();
    s.last_seen_ms = j.at("last_seen_ms").get<int64_t>();
    s.truncated = j.at("truncated").get<bool>();
    s.root = node_from(j.at("root"), s.fields, 0);
    return s;
  } catch (const json::exception& e) {
    throw std::runtime_error("schema " + source + " " + type + ": " + e.what());
  }
}

}  // namespace evr::schema
