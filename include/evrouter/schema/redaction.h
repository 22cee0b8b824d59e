#pragma once
// Which sample values schema discovery hides. A pattern is either a key name, matched against the last
// segment of a field's path case-insensitively with `*` standing for any run of characters ("*email*",
// "first_name"), or a field path when it contains a '.' or "[]" ("customer.note", "line_items[].sku").
// A redacted object or array hides every sample beneath it.

#include <string>
#include <string_view>
#include <vector>

namespace evr::schema {

// The built-in patterns (documented in docs/admin-api.md#schema-discovery): contact details, names,
// address lines, credentials and network identities.
const std::vector<std::string>& default_redactions();

// What a redacted sample shows instead of the value.
inline constexpr std::string_view kRedacted = "[redacted]";

class Redaction {
 public:
  Redaction() = default;
  explicit Redaction(const std::vector<std::string>& patterns);

  // Whether the field at `path` whose own key is `key` (the path's last segment; "" for array items)
  // is redacted.
  bool matches(std::string_view path, std::string_view key) const;

 private:
  std::vector<std::string> keys_;   // lowercase key globs
  std::vector<std::string> paths_;  // exact paths
};

// `text` matches the glob `pattern` (`*` = any run of characters); `text` is lowercased first.
bool glob_matches(std::string_view pattern, std::string_view text);

}  // namespace evr::schema
