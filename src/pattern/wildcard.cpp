#include "pattern/wildcard.h"

#include <stdexcept>

namespace evr::pattern {

Wildcard::Wildcard(std::string_view pattern) {
  parts_.emplace_back();
  bool last_was_star = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 >= pattern.size() || (pattern[i + 1] != '*' && pattern[i + 1] != '\\')) {
        throw std::invalid_argument("invalid escape at position " + std::to_string(i) +
                                    " (only \\* and \\\\ are allowed)");
      }
      parts_.back().push_back(pattern[++i]);
      last_was_star = false;
    } else if (c == '*') {
      if (last_was_star) {
        throw std::invalid_argument("consecutive wildcard characters at position " + std::to_string(i));
      }
      parts_.emplace_back();
      last_was_star = true;
    } else {
      parts_.back().push_back(c);
      last_was_star = false;
    }
  }
}

bool Wildcard::matches(std::string_view value) const {
  if (parts_.size() == 1) return value == parts_.front();
  const std::string& first = parts_.front();
  const std::string& last = parts_.back();
  if (value.size() < first.size() + last.size()) return false;
  if (!value.starts_with(first) || !value.ends_with(last)) return false;
  // The middle parts must appear in order within the stretch between the first and the last part;
  // taking the leftmost occurrence of each is optimal for star-only patterns.
  std::size_t pos = first.size();
  const std::size_t end = value.size() - last.size();
  for (std::size_t i = 1; i + 1 < parts_.size(); ++i) {
    const std::string& p = parts_[i];
    if (p.empty()) continue;
    const auto found = value.substr(0, end).find(p, pos);
    if (found == std::string_view::npos) return false;
    pos = found + p.size();
  }
  return true;
}

}  // namespace evr::pattern
