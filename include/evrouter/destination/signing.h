#pragma once
// Outbound signing of deliveries (docs/outbound.md): Standard Webhooks (https://www.standardwebhooks.com).
// The signed content is "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 under each key, sent as
// space-separated "v1,<base64>" entries in webhook-signature: one per key, so a receiver that knows any
// one of the secrets verifies the request during a rotation.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/event/event.h"
#include "evrouter/http/client.h"

namespace evr::destination {

class Signer {
 public:
  // Decoded keys (the bytes after whsec_ and base64), at least one.
  explicit Signer(std::vector<std::string> keys) : keys_(std::move(keys)) {}

  // The signer `signing` describes, or null for Signing::Type::none. Resolves the secrets (blocking file
  // reads: call off the event loop). Throws std::runtime_error, naming `owner` and the secret reference
  // (never its value), when a secret is not set or is not a whsec_ secret.
  static std::shared_ptr<const Signer> make(const config::Signing& signing, const std::string& owner);

  // "v1,<base64> v1,<base64> ...": one signature per key.
  std::string signature(std::string_view id, int64_t timestamp_s, std::string_view body) const;
  // Appends webhook-id, webhook-timestamp and webhook-signature to `headers`.
  void sign(http::Headers& headers, std::string id, int64_t timestamp_s, std::string_view body) const;

 private:
  std::vector<std::string> keys_;
};

// The webhook-id of a delivery: "<event id>-<delivery id>". The same for every attempt of the delivery
// (receivers deduplicate on it), distinct for each destination the event goes to.
std::string message_id(const event::Event& event, int64_t delivery_id);

}  // namespace evr::destination
