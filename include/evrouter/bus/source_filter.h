#pragma once
// Which published sources something takes: a list of names where `*` matches any run of characters
// ("app.orders", "app.*", "*"). Used by publish keys (what a key may publish) and bus flows (what a flow
// receives).

#include <string>
#include <string_view>
#include <vector>

namespace evr::bus {

// True when `value` matches `pattern`, `*` standing for any run of characters (none included).
bool glob_match(std::string_view pattern, std::string_view value);

class SourceFilter {
 public:
  SourceFilter() = default;
  explicit SourceFilter(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}
  // An empty filter takes every source.
  bool allows(std::string_view source) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

}  // namespace evr::bus
