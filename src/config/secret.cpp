#include "evrouter/config/secret.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace evr::config {

std::optional<std::string> SecretRef::resolve() const {
  std::string value;
  if (kind == Kind::env) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    value = v;
  } else {
    std::ifstream f(name, std::ios::binary);
    if (!f) return std::nullopt;
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) return std::nullopt;
    value = ss.str();
    // Files written by editors and `echo` end with a newline that is not part of the secret.
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  }
  if (value.empty()) return std::nullopt;
  return value;
}

std::string SecretRef::describe() const {
  return (kind == Kind::env ? "env " : "file ") + name;
}

}  // namespace evr::config
