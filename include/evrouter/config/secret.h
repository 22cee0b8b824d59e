#pragma once
// A reference to a secret: an environment variable or a file. Values are never written inline in YAML.

#include <cstddef>
#include <optional>
#include <string>

#include "evrouter/config/diagnostic.h"

namespace evr::config {

// A secret file longer than this is refused (as unreadable).
inline constexpr std::size_t kMaxSecretFileBytes = std::size_t{64} * 1024;

struct SecretRef {
  enum class Kind { env, file };
  Kind kind = Kind::env;
  std::string name;  // variable name or file path
  SourceLocation where;

  // The secret's value (a file's trailing newline is stripped), or nullopt when unset, missing or empty.
  std::optional<std::string> resolve() const;
  // "env SHOPIFY_WEBHOOK_SECRET" / "file /run/secrets/x": safe to log, never the value.
  std::string describe() const;

  bool operator==(const SecretRef&) const = default;
};

}  // namespace evr::config
