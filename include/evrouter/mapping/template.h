#pragma once
// A body template: a JSON value whose strings may hold <name> placeholders (docs/mappings.md).
//   - a string that is exactly "<name>" becomes the variable's value with its JSON type (null when its
//     path selected nothing);
//   - <name> inside a longer string is replaced by the value as text (strings as they are, null as "",
//     numbers, booleans, objects and arrays as compact JSON);
//   - object keys and every other value are literal.
// Compiled once at load into pre-serialized JSON text with holes, so rendering only appends.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "evrouter/mapping/error.h"
#include "evrouter/mapping/inputs.h"

namespace evr::mapping {

class Template {
 public:
  // Throws MappingError (with the JSON pointer of the string at fault and the unknown name) when a
  // placeholder names no variable of `inputs`; marks the variables it uses.
  static Template compile(const nlohmann::ordered_json& tmpl, Inputs& inputs);

  // Appends the JSON text of the template filled with `values`.
  void render(const Values& values, std::string& out) const;

 private:
  struct Part {  // of an interpolated string
    std::string text;
    std::size_t slot = 0;
    bool is_slot = false;
  };
  struct Piece {
    enum class Kind { literal, value, text };
    Kind kind = Kind::literal;
    std::string literal;      // literal: JSON text
    std::size_t slot = 0;     // value
    std::vector<Part> parts;  // text
  };
  void literal(std::string_view json_text);
  void compile(const nlohmann::ordered_json& node, const std::string& pointer, Inputs& inputs);

  std::vector<Piece> pieces_;
};

}  // namespace evr::mapping
