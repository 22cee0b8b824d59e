#pragma once
// EventBridge `wildcard` operand: `*` matches any run of characters (including none); `\*` is a literal
// star and `\\` a literal backslash. Two unescaped stars in a row are invalid.

#include <string>
#include <string_view>
#include <vector>

namespace evr::pattern {

class Wildcard {
 public:
  // Throws std::invalid_argument (with the position) for a bad escape or consecutive stars.
  explicit Wildcard(std::string_view pattern);

  bool matches(std::string_view value) const;

 private:
  // pattern == parts_[0] * parts_[1] * ... * parts_[n-1]; one part means no star at all.
  std::vector<std::string> parts_;
};

}  // namespace evr::pattern
