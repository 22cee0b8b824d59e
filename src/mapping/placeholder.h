#pragma once
// Finding placeholders in template strings: <name> in body templates, {name} in paths and header values.
// A name is letters, digits, _, . and -; an opening character not followed by a name and the closing
// character is literal text.

#include <cctype>
#include <string>
#include <string_view>

#include "evrouter/common/json_text.h"

namespace evr::mapping::detail {

inline bool placeholder_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

// Calls on_literal(std::string_view) for text runs and on_name(std::string_view) for each placeholder, in
// order. Consecutive literal runs may be reported separately.
template <typename OnLiteral, typename OnName>
void scan(std::string_view text, char open, char close, OnLiteral&& on_literal, OnName&& on_name) {
  std::size_t start = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != open) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < text.size() && placeholder_char(text[j])) ++j;
    if (j == i + 1 || j >= text.size() || text[j] != close) {
      ++i;
      continue;
    }
    if (i > start) on_literal(text.substr(start, i - start));
    on_name(text.substr(i + 1, j - i - 1));
    i = start = j + 1;
  }
  if (start < text.size()) on_literal(text.substr(start));
}

// Appends `s` as a JSON string literal (quotes included). `s` must be valid UTF-8.
using evr::json_text::append_json_string;

}  // namespace evr::mapping::detail
