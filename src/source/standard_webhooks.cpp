// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"): the producer signs
// "<webhook-id>.<webhook-timestamp>.<body>" with HMAC-SHA256 under the base64-decoded secret ("whsec_..."),
// and sends space-separated "v1,<base64 signature>" entries in webhook-signature (several during a secret
// rotation; other versions such as v1a are asymmetric and ignored here).
#include <charconv>
#include <cstdlib>

#include "evrouter/source/verifiers.h"

namespace evr::source {
namespace {

constexpr std::string_view kId = "webhook-id";
constexpr std::string_view kTimestamp = "webhook-timestamp";
constexpr std::string_view kSignature = "webhook-signature";

class StandardWebhooksVerifier final : public Verifier {
 public:
  StandardWebhooksVerifier(const std::vector<std::string>& keys, std::chrono::milliseconds tolerance)
      : tolerance_(tolerance) {
    keys_.reserve(keys.size());
    for (const auto& key : keys) keys_.emplace_back(crypto::Digest::sha256, key);
  }

  std::optional<Refusal> verify(const Request& request) const override {
    const std::string_view id = request.header(kId);
    const std::string_view timestamp = request.header(kTimestamp);
    const std::string_view signatures = request.header(kSignature);
    if (id.empty() || timestamp.empty() || signatures.empty()) {
      std::string missing;
      for (auto [name, value] : {std::pair{kId, id}, {kTimestamp, timestamp}, {kSignature, signatures}}) {
        if (!value.empty()) continue;
        if (!missing.empty()) missing += ", ";
        missing += name;
      }
      return Refusal{401,
                     "missing_signature",
                     "Standard Webhooks headers webhook-id, webhook-timestamp and webhook-signature are "
                     "required (missing: " +
                         missing + ")",
                     {}};
    }
    int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), seconds);
    if (ec != std::errc() || end != timestamp.data() + timestamp.size() || seconds < 0) {
      return Refusal{401, "invalid_timestamp", "webhook-timestamp must be Unix time in seconds", {}};
    }
    const int64_t tolerance_s = tolerance_.count() / 1000;
    const int64_t skew = request.now_ms / 1000 - seconds;
    if (std::llabs(skew) > tolerance_s) {
      return Refusal{401,
                     "timestamp_out_of_tolerance",
                     "webhook-timestamp is " + std::to_string(std::llabs(skew)) + " s " +
                         (skew > 0 ? "in the past" : "in the future") + "; the tolerance is " +
                         std::to_string(tolerance_s) +
                         " s (a replayed or delayed message, or a clock out of sync)",
                     {}};
    }
    std::string content;
    content.reserve(id.size() + timestamp.size() + request.body.size() + 2);
    content.append(id).append(".").append(timestamp).append(".").append(request.body);
    std::vector<std::string> expected;
    expected.reserve(keys_.size());
    for (const auto& key : keys_) expected.push_back(crypto::base64_encode(key.mac(content)));
    bool ok = false;
    std::string_view rest = signatures;
    while (!rest.empty()) {
      const auto space = rest.find(' ');
      const std::string_view entry = rest.substr(0, space);
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      if (entry.substr(0, 3) != "v1,") continue;
      const std::string_view sig = entry.substr(3);
      for (const auto& e : expected) ok = crypto::constant_time_equal(e, sig) || ok;
    }
    if (ok) return std::nullopt;
    return Refusal{401, "invalid_signature", "no v1 signature in webhook-signature matches the message", {}};
  }

 private:
  std::vector<crypto::HmacKey> keys_;
  std::chrono::milliseconds tolerance_;
};

}  // namespace

std::optional<std::string> standard_webhooks_key(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (secret.substr(0, prefix.size()) == prefix) secret.remove_prefix(prefix.size());
  if (secret.empty()) return std::nullopt;
  auto key = crypto::base64_decode(secret);
  if (!key || key->empty()) return std::nullopt;
  return key;
}

std::unique_ptr<Verifier> make_standard_webhooks_verifier(std::vector<std::string> keys,
                                                          std::chrono::milliseconds tolerance) {
  return std::make_unique<StandardWebhooksVerifier>(std::move(keys), tolerance);
}

}  // namespace evr::source
