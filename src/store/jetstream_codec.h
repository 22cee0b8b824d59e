#pragma once
// How the JetStream store writes names and events into messages (docs/scaling.md): subject tokens, the
// JSON envelope carried in the Evr-Envelope header, attempts as JSON. Private to the store.

#include <nats/nats.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evrouter/event/event.h"
#include "evrouter/store/store.h"

namespace evr::store::jetstream {

// A name (flow, lane, type, webhook id) as one subject token: [A-Za-z0-9-] as is, any other byte as _XX.
std::string token(std::string_view name);
std::string untoken(std::string_view token);

// A NATS status (and JetStream error code) as text, with the client's last error.
std::string status_text(natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));

nlohmann::json envelope_json(const event::Event& e);
// envelope_json(e).dump(), the same bytes, written without building the JSON object (the writer's thread
// makes one per committed event). Text that is not valid UTF-8 is written as dump() with U+FFFD in place
// of the bad bytes (the listeners refuse such headers before they get here).
std::string envelope_text(const event::Event& e);
// Strings (lanes, resources) as a JSON array; invalid UTF-8 as in envelope_text.
std::string string_array_text(const std::vector<std::string>& items);
// The event from its envelope and (when given) its payload.
event::EventPtr event_from(const nlohmann::json& envelope, const char* data, int len);

nlohmann::json attempt_json(const Attempt& a);
Attempt attempt_from(const nlohmann::json& j);

// A header of `m`, empty when absent.
std::string header(natsMsg* m, const char* name);

// Publishes one message and waits for JetStream's acknowledgement (at most timeout_ms). Headers with an
// empty value are left out (a reader takes an absent header as empty); a non-empty `msg_id` lets the
// stream drop a repeat within its duplicate window. Sets *seq and *duplicate, when given, from the
// acknowledgement. Empty on success, else the error.
std::string publish(jsCtx* js, int64_t timeout_ms, const std::string& subject, const std::string& msg_id,
                    std::span<const std::pair<const char*, const std::string*>> headers, const char* data,
                    int len, uint64_t* seq, bool* duplicate);

}  // namespace evr::store::jetstream
