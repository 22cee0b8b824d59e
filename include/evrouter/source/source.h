#pragma once
// A source: how one kind of producer's webhook is authenticated and turned into an event envelope.
// Flows choose their source when they are compiled (config/routes), so the listener session treats every
// producer alike: verify, parse, describe, route, commit. Implementations: shopify, webhook (generic).

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/event/event.h"

namespace evr::source {

// Looks up a request header by name (case-insensitive); "" when absent.
using HeaderLookup = std::function<std::string_view(std::string_view)>;

// What a source looks at: the request's headers and its body exactly as received.
struct Request {
  const HeaderLookup& header;
  std::string_view body;
  int64_t now_ms = 0;  // when the request arrived (Unix ms): timestamps are checked against it
};

// Why a request is refused: an HTTP status, a stable error code and a message for the producer.
struct Refusal {
  unsigned status = 401;
  std::string code;
  std::string message;
  std::string www_authenticate;  // set as WWW-Authenticate on 401s of basic/bearer checks
};

// Checks that a request comes from the producer: a signature over the body, or credentials.
class Verifier {
 public:
  virtual ~Verifier() = default;
  // nullopt when the request is authentic. Secrets are compared in constant time.
  virtual std::optional<Refusal> verify(const Request& request) const = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  // nullopt when the request is authentic.
  virtual std::optional<Refusal> verify(const Request& request) const = 0;
  // Fills the envelope fields the request carries (source, type, dedup key, webhook id, correlation id,
  // kept headers) once the body parsed as `body`. A refusal (400) when a required field is missing.
  virtual std::optional<Refusal> describe(event::Event& e, const Request& request,
                                          const nlohmann::json& body) const = 0;
  // The top-level members of the body describe() reads (the listener may parse only what is needed).
  virtual std::vector<std::string> body_fields() const { return {}; }
};

// A refusal when text the envelope took from the request is unfit to store or send: 400 invalid_header when
// a header's text (type, ids, shop domain, correlation id, kept headers) is not well-formed UTF-8 (it is
// stored, shown and sent as JSON; a signature covers the body only), 400 invalid_type when the event type
// holds a control character (it is sent as the X-Evrouter-Event-Type header; a type read from the body may
// hold any), and when a value is longer than kept for any source: 400 invalid_type past 256 characters of
// event type, invalid_id past 128 of webhook or deduplication id, invalid_header past 255 of shop domain.
// The listener checks every event once its source described it.
std::optional<Refusal> check_envelope_text(const event::Event& e);

// The source of a flow, with its secrets resolved. Throws config::ConfigError when a secret is not set or
// not usable (a Standard Webhooks secret that is not base64). Not for `type: bus` flows.
std::shared_ptr<const Source> make_source(const config::Source& source);

// The signing key of a Standard Webhooks secret: base64 after an optional "whsec_" prefix; nullopt when
// the text is not that.
std::optional<std::string> standard_webhooks_key(std::string_view secret);

}  // namespace evr::source
