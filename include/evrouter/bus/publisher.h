#pragma once
// The publish API's keys, compiled from `publish:` in the main config: each key's secret value and the
// sources it may publish (its publish policy).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/bus/source_filter.h"
#include "evrouter/config/config.h"

namespace evr::bus {

struct Key {
  std::string name;
  std::string digest;  // HMAC-SHA256 of the key's value under a fixed salt; the value is not kept
  SourceFilter sources;
};

class Publisher {
 public:
  // nullptr when no key is configured (the publish API is off). Throws config::ConfigError when a key's
  // secret is not set, or two keys have the same value (which would make the policy ambiguous).
  static std::shared_ptr<const Publisher> build(const config::Publish& publish);

  // The key whose secret equals `presented`, compared in constant time with every key; nullptr if none.
  const Key* authenticate(std::string_view presented) const;
  int max_entries() const { return max_entries_; }

 private:
  std::vector<Key> keys_;
  int max_entries_ = 100;
};

}  // namespace evr::bus
