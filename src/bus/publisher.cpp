#include "evrouter/bus/publisher.h"

#include "evrouter/common/crypto.h"

namespace evr::bus {
namespace {

// Keys are compared through a hash so the comparison neither stops early nor depends on their lengths.
std::string digest(std::string_view value) {
  static constexpr std::string_view kSalt = "evrouter publish key";
  return crypto::hmac_sha256(kSalt, value);
}

}  // namespace

std::shared_ptr<const Publisher> Publisher::build(const config::Publish& publish) {
  if (publish.keys.empty()) return nullptr;
  auto p = std::make_shared<Publisher>();
  p->max_entries_ = publish.max_entries;
  std::vector<config::Diagnostic> problems;
  for (const auto& k : publish.keys) {
    auto value = k.key.resolve();
    if (!value) {
      problems.push_back({config::Diagnostic::Severity::error, k.key.where, "publish.keys.key",
                          k.key.describe() + " is not set"});
      continue;
    }
    std::string d = digest(*value);
    for (const auto& other : p->keys_) {
      if (other.digest == d) {
        problems.push_back({config::Diagnostic::Severity::error, k.key.where, "publish.keys.key",
                            "keys '" + other.name + "' and '" + k.name +
                                "' have the same value; each key needs its own secret"});
      }
    }
    p->keys_.push_back(Key{k.name, std::move(d), SourceFilter(k.sources)});
  }
  if (!problems.empty()) throw config::ConfigError(std::move(problems));
  return p;
}

const Key* Publisher::authenticate(std::string_view presented) const {
  if (presented.empty()) return nullptr;
  const std::string given = digest(presented);
  const Key* found = nullptr;
  for (const auto& k : keys_) {
    if (crypto::constant_time_equal(k.digest, given)) found = &k;  // no early exit
  }
  return found;
}

}  // namespace evr::bus
