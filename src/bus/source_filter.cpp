#include "evrouter/bus/source_filter.h"

namespace evr::bus {

bool glob_match(std::string_view pattern, std::string_view value) {
  // Greedy matching with backtracking to the last star: linear in practice, O(n*m) at worst.
  std::size_t p = 0, v = 0, star = std::string_view::npos, mark = 0;
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = v;
    } else if (p < pattern.size() && pattern[p] == value[v]) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool SourceFilter::allows(std::string_view source) const {
  if (patterns_.empty()) return true;
  for (const auto& p : patterns_) {
    if (glob_match(p, source)) return true;
  }
  return false;
}

}  // namespace evr::bus
