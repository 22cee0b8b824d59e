#pragma once
// Replay of a time window: a flow's archived events received in [from, to) go through the flow's current
// definition (pattern, branches, destinations; mappings apply when sent) and get new deliveries, marked as
// replays. The window is read a page at a time (bounded memory); each page's deliveries are one store
// transaction. Blocking: call it from the admin thread, never from an event loop.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/event/event.h"
#include "evrouter/flow/routes.h"
#include "evrouter/store/store.h"

namespace evr::flow {

// Routes a stored event through `flow` exactly as ingest does (the same envelope and Flow::route): appends
// the lanes and their ordering keys. False when the flow would not take the event at all now (topic not
// subscribed, published source not taken, payload no longer a JSON object).
bool route_archived(const Flow& flow, const event::Event& event, std::vector<std::string>& lanes,
                    std::vector<std::optional<std::string>>& keys);

struct ReplayRequest {
  int64_t from_ms = 0;
  int64_t to_ms = 0;  // exclusive
  bool dry_run = false;
  std::optional<std::string> destination;  // only the lanes of this destination
  std::size_t page = 200;                  // events read per page
};

struct ReplayResult {
  int64_t scanned = 0;             // archived events of the flow in the window
  int64_t matched = 0;             // of those, routed to at least one lane now
  int64_t deliveries = 0;          // deliveries made (dry run: that would be made)
  std::vector<std::string> lanes;  // lanes that got deliveries (sorted)
};

// What a replayed page made, for the caller's wake-ups, live tail and metrics.
struct ReplayedPage {
  std::vector<std::string> lanes;                                            // lanes to wake
  std::vector<std::pair<event::EventPtr, std::vector<std::string>>> events;  // event, its lanes
};

ReplayResult replay_window(const Flow& flow, store::Store& store, const ReplayRequest& request,
                           const std::function<void(const ReplayedPage&)>& on_page);

// The destination of a lane id ("<flow>/<branch>/<destination>").
std::string lane_destination(const std::string& lane);

}  // namespace evr::flow
