#pragma once
// The Shopify source: webhook signature verification and the envelope fields Shopify's headers carry.
// https://shopify.dev/docs/apps/build/webhooks/subscribe/https (X-Shopify-* headers, HMAC-SHA256 base64).

#include <string>
#include <string_view>
#include <vector>

#include "evrouter/event/event.h"
#include "evrouter/source/source.h"

namespace evr::source {

// True when `signature_b64` equals base64(HMAC-SHA256(secret, body)) for any of `secrets`.
// Compared in constant time; an empty signature never verifies.
bool verify_shopify_hmac(std::string_view body, std::string_view signature_b64,
                         const std::vector<std::string>& secrets);

// Fills type, shop, webhook id, dedup key, correlation id and selected headers from Shopify's headers.
void fill_shopify_event(event::Event& e, const HeaderLookup& header);

// The Shopify source: X-Shopify-Hmac-Sha256 against any of `secrets`, envelope from X-Shopify-* headers.
std::shared_ptr<const Source> make_shopify_source(std::vector<std::string> secrets);

}  // namespace evr::source
