#include "evrouter/config/env.h"

#include <cctype>
#include <cstdlib>

namespace evr::config {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> expand_env(std::string_view text, std::string& error) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$') {
      out += c;
      ++i;
      continue;
    }
    if (text.substr(i, 3) == "$${") {
      out += "${";
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out += c;
      ++i;
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated '${' (expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)";
      return std::nullopt;
    }
    const std::string_view inner = text.substr(i + 2, close - i - 2);
    const std::size_t sep = inner.find(":-");
    const std::string_view name = sep == std::string_view::npos ? inner : inner.substr(0, sep);
    if (!valid_name(name)) {
      error = "invalid environment variable reference '${" + std::string(inner) +
              "}' (expected ${NAME} or ${NAME:-default}, NAME made of letters, digits and _)";
      return std::nullopt;
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (sep == std::string_view::npos) {
      if (value == nullptr) {
        error = "environment variable " + std::string(name) + " is not set";
        return std::nullopt;
      }
      out += value;
    } else if (value == nullptr || *value == '\0') {
      out += inner.substr(sep + 2);
    } else {
      out += value;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace evr::config
