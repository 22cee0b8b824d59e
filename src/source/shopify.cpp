#include "evrouter/source/shopify.h"

#include "evrouter/common/crypto.h"

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
  for (const char* name : {"X-Correlation-Id", "X-Request-Id"}) {
    const std::string_view v = header(name);
    if (!v.empty() && v.size() <= 128) {
      e.correlation_id = std::string(v);
      break;
    }
  }
  for (const char* name : {"X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
                           "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "X-Shopify-API-Version"}) {
    const std::string_view v = header(name);
    if (!v.empty()) e.headers.emplace_back(name, std::string(v));
  }
}

}  // namespace evr::source
