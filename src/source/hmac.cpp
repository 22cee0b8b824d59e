// HMAC signature of the raw body in a header: GitHub (X-Hub-Signature-256: sha256=<hex>), Shopify
// (X-Shopify-Hmac-Sha256: <base64>) and the many producers built the same way.
#include <cctype>

#include "evrouter/source/verifiers.h"

namespace evr::source {
namespace {

class HmacVerifier final : public Verifier {
 public:
  HmacVerifier(HmacOptions options, const std::vector<std::string>& secrets) : options_(std::move(options)) {
    keys_.reserve(secrets.size());
    for (const auto& secret : secrets) keys_.emplace_back(options_.digest, secret);
  }

  std::optional<Refusal> verify(const Request& request) const override {
    std::string_view presented = request.header(options_.header);
    if (presented.empty()) {
      return Refusal{401, "missing_signature", options_.header + " header is required", {}};
    }
    const bool prefixed = presented.substr(0, options_.prefix.size()) == options_.prefix;
    if (prefixed) presented.remove_prefix(options_.prefix.size());
    std::string normalized(presented);
    if (options_.encoding == HmacOptions::Encoding::hex) {
      for (char& c : normalized) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    bool ok = false;
    for (const auto& key : keys_) {
      const std::string mac = key.mac(request.body);
      const std::string expected = options_.encoding == HmacOptions::Encoding::hex
                                       ? crypto::hex_encode(mac)
                                       : crypto::base64_encode(mac);
      // No early exit: every secret is tried, so timing does not tell which one matched.
      ok = crypto::constant_time_equal(expected, normalized) || ok;
    }
    if (ok && prefixed && !normalized.empty()) return std::nullopt;
    return Refusal{401, "invalid_signature", options_.header + " does not match the body", {}};
  }

 private:
  HmacOptions options_;
  std::vector<crypto::HmacKey> keys_;  // one per secret (rotation), their pads hashed once
};

}  // namespace

std::unique_ptr<Verifier> make_hmac_verifier(HmacOptions options, const std::vector<std::string>& secrets) {
  return std::make_unique<HmacVerifier>(std::move(options), secrets);
}

}  // namespace evr::source
