#include "evrouter/config/secret.h"

#include <cstdlib>
#include <fstream>

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
    // Bounded: a secret is short, and a path like /dev/zero must not fill the memory.
    value.resize(kMaxSecretFileBytes + 1);
    f.read(value.data(), static_cast<std::streamsize>(value.size()));
    if (f.bad() || static_cast<std::size_t>(f.gcount()) > kMaxSecretFileBytes) return std::nullopt;
    value.resize(static_cast<std::size_t>(f.gcount()));
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
