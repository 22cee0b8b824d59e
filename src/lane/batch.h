#pragma once
// Batching (docs/architecture.md#batching): several deliveries of a lane in one request whose body is a JSON
// array of their bodies (each one as the destination would send it alone: the payload, or the mapped body).

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/http/client.h"
#include "evrouter/store/store.h"

namespace evr::lane {

// Headers that describe one event; a batch request drops them (its events differ) and says instead
// X-Evrouter-Batch-Size and X-Evrouter-Delivery-Ids (comma-separated, in body order).
bool per_event_header(const std::string& name);

// The request of a batch: `first` (the first member's request: method, target, connection and destination
// headers) with the per-event headers replaced and `bodies` joined into a JSON array.
http::Request compose_batch(http::Request first, const std::vector<std::string>& bodies,
                            const std::vector<store::Delivery>& members);

// Whether a lane holding `ready` (in order; `open(d)` tells which may be sent now) should send a batch at
// `now_ms`: max_events ready, or max_bytes reached (estimated from the stored payload sizes), or the oldest
// waited max_wait since it was due. `deadline_ms` is set to when the oldest one's max_wait ends.
template <typename Open>
bool batch_due(const config::Batch& b, const std::deque<store::Delivery>& ready, int64_t now_ms, Open&& open,
               int64_t& deadline_ms) {
  std::size_t count = 0;
  uint64_t bytes = 1;
  int64_t oldest = INT64_MAX;
  for (const auto& d : ready) {
    if (!open(d)) continue;
    ++count;
    bytes += d.event->payload.size() + 1;
    oldest = std::min(oldest, d.next_attempt_ms);
  }
  if (count == 0) return false;
  deadline_ms = oldest + b.max_wait.count();
  return count >= static_cast<std::size_t>(b.max_events) || bytes >= b.max_bytes || now_ms >= deadline_ms;
}

}  // namespace evr::lane
