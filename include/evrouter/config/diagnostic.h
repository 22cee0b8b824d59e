#pragma once
// A problem found in a configuration or flow file, reported as file:line:column, key path and message.

#include <stdexcept>
#include <string>
#include <vector>

namespace evr::config {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown

  bool operator==(const SourceLocation&) const = default;
};

struct Diagnostic {
  enum class Severity { error, warning };
  Severity severity = Severity::error;
  SourceLocation where;
  std::string path;     // key path inside the file, e.g. "branches[1].destinations[0].connection"
  std::string message;  // what was expected or what is wrong

  // "flows/orders.yaml:12:7: error: branches[0].match: expected a sequence"
  std::string str() const;
};

// Thrown by loaders when at least one error was found; carries every diagnostic.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace evr::config
