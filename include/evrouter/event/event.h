#pragma once
// An event: the envelope evrouter adds around a producer's JSON payload.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evr::event {

struct Event {
  std::string id;    // evrouter's id: 26-char ULID, time-ordered
  std::string flow;  // flow that accepted it
  std::string listener_id;
  std::string source;       // "shopify", a webhook source's name, or a published entry's source
  std::string type;         // e.g. the Shopify topic "orders/create", a published entry's detail-type
  int64_t time_ms = 0;      // when evrouter received it (Unix ms)
  int64_t occurred_ms = 0;  // when it happened, as the producer says (published `time`); 0 = time_ms
  std::string shop_domain;  // X-Shopify-Shop-Domain
  std::string webhook_id;   // X-Shopify-Webhook-Id
  std::string dedup_key;    // X-Shopify-Event-Id, else the webhook id; "" = no deduplication
  std::string correlation_id;
  std::vector<std::pair<std::string, std::string>> headers;  // selected producer headers (no secrets)
  std::vector<std::string> resources;                        // published entries' resources
  std::string payload;                                       // the body exactly as received
};

using EventPtr = std::shared_ptr<const Event>;

// A new ULID (48-bit millisecond time, 80 random bits; Crockford base32).
std::string new_event_id(int64_t now_ms);

// The members of an envelope besides "detail", as bits: envelope() can build only those its reader
// needs (a flow's patterns and ordering keys name them: flow::Flow::envelope_members).
inline constexpr uint32_t kAllEnvelopeMembers = (1U << 11) - 1;
// The bit of the envelope member `name` ("version", "id", ..., "headers"); 0 for "detail" (always built)
// and for names an envelope does not have.
uint32_t envelope_member(std::string_view name);

// The document patterns match against: EventBridge-like fields around the parsed payload in "detail".
//   {"version":"0","id","source","detail-type","time","resources","flow","shop","webhook-id",
//    "correlation-id","headers","detail"}; "time" is occurred_ms when set, else time_ms. Only the members
// in `members` are built, and "detail".
nlohmann::json envelope(const Event& e, nlohmann::json detail, uint32_t members = kAllEnvelopeMembers);

// RFC 3339 UTC with milliseconds.
std::string format_time(int64_t unix_ms);

// Unix ms of an RFC 3339 date-time ("2026-11-22T10:00:00Z", "...T10:00:00.250+01:00"; fractions beyond
// milliseconds are truncated); nullopt when malformed or out of range.
std::optional<int64_t> parse_time(std::string_view text);

int64_t now_ms();

}  // namespace evr::event
