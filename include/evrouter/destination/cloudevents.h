#pragma once
// The CloudEvents 1.0 HTTP protocol binding for deliveries (docs/outbound.md). Context attributes come from
// the event envelope:
//   id      <- the event id (ULID; the same for every destination and attempt)
//   source  <- the event source ("shopify", a webhook source's name, a published entry's source)
//   type    <- the event type (Shopify topic, detail-type)
//   time    <- when it happened (published `time`), else when evrouter received it; RFC 3339 UTC
//   subject <- the first of the event's resources, when it has any
//   datacontenttype <- the connection's media_type

#include <string>

#include "evrouter/config/config.h"
#include "evrouter/event/event.h"
#include "evrouter/http/client.h"

namespace evr::destination {

// Rewrites `request` (body and Content-Type already final) for `mode`:
//   binary:     ce-specversion, ce-id, ce-source, ce-type, ce-time (and ce-subject) headers; the body and
//               its Content-Type unchanged.
//   structured: Content-Type application/cloudevents+json; the body a JSON CloudEvent whose `data` is the
//               body (JSON as is when it parses, else a string).
//   none:       nothing.
void apply_cloudevents(config::Destination::CloudEvents mode, const event::Event& event,
                       const std::string& media_type, http::Request& request);

// A CloudEvents header value: printable ASCII as is, except space, '"' and '%', which are percent-encoded
// (as is every other byte).
std::string cloudevents_header_value(std::string_view value);

}  // namespace evr::destination
