#include "evrouter/source/shopify.h"

#include "evrouter/common/crypto.h"
#include "evrouter/source/verifiers.h"
#include "source/envelope.h"

namespace evr::source {

bool verify_shopify_hmac(std::string_view body, std::string_view signature_b64,
                         const std::vector<std::string>& secrets) {
  if (signature_b64.empty()) return false;
  bool ok = false;
  for (const auto& secret : secrets) {
    const std::string expected = crypto::base64_encode(crypto::hmac_sha256(secret, body));
    // No early exit: every secret is tried, so timing does not tell which one matched.
    ok = crypto::constant_time_equal(expected, signature_b64) || ok;
  }
  return ok;
}

void fill_shopify_event(event::Event& e, const HeaderLookup& header) {
  e.source = "shopify";
  e.type = std::string(header("X-Shopify-Topic"));
  e.shop_domain = std::string(header("X-Shopify-Shop-Domain"));
  e.webhook_id = std::string(header("X-Shopify-Webhook-Id"));
  // Shopify documents X-Shopify-Event-Id as the same for every delivery of one event; the webhook id
  // identifies one delivery attempt series. Prefer the event id for deduplication.
  const std::string_view event_id = header("X-Shopify-Event-Id");
  e.dedup_key = std::string(!event_id.empty() ? event_id : e.webhook_id);
  take_correlation_id(e, header);
  for (const char* name : {"X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
                           "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "X-Shopify-API-Version"}) {
    const std::string_view v = header(name);
    if (!v.empty()) e.headers.emplace_back(name, std::string(v));
  }
}

namespace {

class ShopifySource final : public Source {
 public:
  explicit ShopifySource(std::vector<std::string> secrets)
      : verifier_(make_hmac_verifier(
            HmacOptions{"X-Shopify-Hmac-Sha256", crypto::Digest::sha256, HmacOptions::Encoding::base64, ""},
            std::move(secrets))) {}

  std::optional<Refusal> verify(const Request& request) const override { return verifier_->verify(request); }

  std::optional<Refusal> describe(event::Event& e, const Request& request,
                                  const nlohmann::json&) const override {
    fill_shopify_event(e, request.header);
    if (e.type.empty()) return Refusal{400, "missing_topic", "X-Shopify-Topic header is required", {}};
    return std::nullopt;
  }

 private:
  std::unique_ptr<Verifier> verifier_;
};

}  // namespace

std::shared_ptr<const Source> make_shopify_source(std::vector<std::string> secrets) {
  return std::make_shared<ShopifySource>(std::move(secrets));
}

}  // namespace evr::source
