#include "evrouter/destination/signing.h"

#include <stdexcept>

#include "evrouter/common/crypto.h"
#include "evrouter/source/source.h"

namespace evr::destination {

std::shared_ptr<const Signer> Signer::make(const config::Signing& signing, const std::string& owner) {
  if (signing.type == config::Signing::Type::none) return nullptr;
  if (signing.secrets.empty()) throw std::runtime_error(owner + ": signing has no secret");
  std::vector<std::string> keys;
  keys.reserve(signing.secrets.size());
  for (const auto& ref : signing.secrets) {
    auto value = ref.resolve();
    if (!value) throw std::runtime_error(owner + ": signing secret " + ref.describe() + " is not set");
    // The inbound verifier's decoding: whsec_ (optional) followed by base64.
    auto key = source::standard_webhooks_key(*value);
    if (!key) {
      throw std::runtime_error(owner + ": signing secret " + ref.describe() +
                               " is not a Standard Webhooks secret (whsec_ followed by base64)");
    }
    keys.push_back(std::move(*key));
  }
  return std::make_shared<const Signer>(std::move(keys));
}

std::string Signer::signature(std::string_view id, int64_t timestamp_s, std::string_view body) const {
  const std::string ts = std::to_string(timestamp_s);
  std::string content;
  content.reserve(id.size() + ts.size() + body.size() + 2);
  content.append(id).append(".").append(ts).append(".").append(body);
  std::string out;
  out.reserve(keys_.size() * 48);
  for (const auto& key : keys_) {
    if (!out.empty()) out += ' ';
    out += "v1,";
    out += crypto::base64_encode(crypto::hmac_sha256(key, content));
  }
  return out;
}

void Signer::sign(http::Headers& headers, std::string id, int64_t timestamp_s, std::string_view body) const {
  std::string sig = signature(id, timestamp_s, body);
  headers.emplace_back("webhook-id", std::move(id));
  headers.emplace_back("webhook-timestamp", std::to_string(timestamp_s));
  headers.emplace_back("webhook-signature", std::move(sig));
}

std::string message_id(const event::Event& event, int64_t delivery_id) {
  return event.id + "-" + std::to_string(delivery_id);
}

}  // namespace evr::destination
