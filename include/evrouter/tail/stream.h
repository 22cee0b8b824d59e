#pragma once
// The live tail as a server-sent-events stream (GET /v1/tail): the hub's records, filtered for one
// watcher, as SSE frames. Frames: `event: event` (an event accepted, with its lanes), `event: delivery`
// (one attempt's outcome), `event: dropped` (the watcher fell behind and is being disconnected).
// The data line of each is one JSON object (docs/admin-api.md#live-tail).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/admin/router.h"
#include "evrouter/pattern/pattern.h"
#include "evrouter/tail/hub.h"

namespace evr::tail {

struct Filter {
  std::vector<std::string> flows;           // empty = every flow
  bool events = true, deliveries = true;    // which kinds
  std::optional<pattern::Pattern> pattern;  // matched against the event document (envelope + detail)
  bool payload = true;                      // event frames carry the whole event document
};

// Records queued per watcher before it is considered too slow and dropped.
inline constexpr std::size_t kWatcherQueue = 4096;

// nullptr when the hub has as many watchers as it allows.
std::shared_ptr<admin::EventStream> make_stream(Hub& hub, Filter filter);

// The JSON of a record, as its frame's data line carries it.
std::string to_json(const Record& r, bool payload);

}  // namespace evr::tail
