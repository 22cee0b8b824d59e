#pragma once
// The parts of a JSON document that something reads (the fields a compiled pattern names), and a parser
// that materialises only those parts. The listener uses it to avoid building a DOM of a whole webhook
// payload when the flow's patterns read a few fields of it: the body is still fully validated as JSON, and
// every selected field is kept with its whole value, so matching sees exactly what it would see in the full
// document.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace evr::pattern {

struct Selection {
  bool all = false;  // keep this value whole (a leaf a pattern tests, or nothing finer is known)
  std::map<std::string, Selection, std::less<>> fields;  // else: keep only these members (objects)

  // Marks `key` to be kept whole.
  void keep(const std::string& key) { fields[key].all = true; }
  // Adds everything `other` keeps.
  void merge(const Selection& other);
};

// Parses `text` as JSON into `out`, keeping only what `selection` names: members of objects along the
// selected paths (an array on a path keeps its elements, each selected the same way; a member whose key
// spells a selected path with dots, "a.b" for a, is kept whole), dropping everything else. The root value
// is always kept (an object with only the selected members). False when `text` is not valid JSON (`out` is
// then unspecified).
// Documents nested deeper than kMaxNesting arrays/objects are refused too (no producer needs that; it protects
// everything downstream that walks a payload).
inline constexpr std::size_t kMaxNesting = 512;
bool parse_selected(std::string_view text, const Selection& selection, nlohmann::json& out);

}  // namespace evr::pattern
