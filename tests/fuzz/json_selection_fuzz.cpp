// libFuzzer target: the listener's selective JSON parser (src/pattern/selection.cpp) against nlohmann's
// full parser. For any input they must agree on validity (but for raw NUL bytes, see below), and every selected field must come out exactly
// as the full parse has it. Any disagreement aborts (a finding).
//   scripts/fuzz.sh json_selection [seconds]
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "evrouter/pattern/selection.h"

namespace {

using nlohmann::json;
using evr::pattern::Selection;

const Selection& selection() {
  static const Selection s = [] {
    Selection sel;
    sel.keep("total_price");
    sel.keep("a");
    sel.fields["customer"].keep("email");
    sel.fields["line_items"].keep("sku");
    sel.fields["x"].fields["y"].keep("z");
    return sel;
  }();
  return s;
}

// The selected view of a fully parsed document, built independently of the selective parser.
json project(const json& full, const Selection& sel) {
  if (sel.all) return full;
  if (full.is_array()) {
    json out = json::array();
    for (const auto& e : full) out.push_back(project(e, sel));
    return out;
  }
  if (!full.is_object()) return full;
  json out = json::object();
  for (const auto& [k, v] : full.items()) {
    if (const auto it = sel.fields.find(k); it != sel.fields.end()) {
      out[k] = project(v, it->second);
    } else if (const auto dot = k.find('.'); dot != std::string::npos && sel.fields.count(k.substr(0, dot))) {
      out[k] = v;
    }
  }
  return out;
}

// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count).
std::size_t nesting(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json selected;
  const bool ok = evr::pattern::parse_selected(text, selection(), selected);
  const json full = json::parse(text, nullptr, false);
  // nlohmann's lexer takes a NUL byte for the end of input and accepts "1\0garbage"; JSON (RFC 8259) has no
  // place for a raw NUL, and the selective parser rightly refuses it.
  // Documents nested deeper than kMaxNesting are refused on purpose.
  const bool valid = !full.is_discarded() && text.find('\0') == std::string_view::npos &&
                     nesting(text) <= evr::pattern::kMaxNesting;
  if (ok != valid) std::abort();  // validity must agree
  if (ok && project(full, selection()) != selected) std::abort();
  return 0;
}
