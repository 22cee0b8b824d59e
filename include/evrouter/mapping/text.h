#pragma once
// A text with {name} placeholders: a destination's relative URI or a header value (docs/mappings.md).
// In a URI, values are percent-encoded (every byte but A-Z a-z 0-9 - . _ ~); in a header, control
// characters in values become spaces (no header injection). Values are written as text (see append_text).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/mapping/error.h"
#include "evrouter/mapping/inputs.h"

namespace evr::mapping {

class Text {
 public:
  enum class Encoding { uri, header };

  // Throws MappingError (with the unknown name) when a placeholder names no variable of `inputs`.
  static Text compile(std::string_view text, Inputs& inputs, Encoding encoding);

  bool constant() const { return slots_ == 0; }
  // Appends the text filled with `values`. Returns the name of the first placeholder whose value is null
  // or "" (it was written as nothing), or nullptr when every one had a value.
  const std::string* render(const Values& values, std::string& out) const;

 private:
  struct Part {
    std::string text;  // literal text, or the variable name of a placeholder
    std::size_t slot = 0;
    bool is_slot = false;
  };
  Encoding encoding_ = Encoding::uri;
  std::vector<Part> parts_;
  std::size_t slots_ = 0;
};

// Percent-encodes every byte of `value` but the unreserved characters (RFC 3986).
void append_uri_encoded(std::string_view value, std::string& out);

}  // namespace evr::mapping
