#pragma once
// Ingest counters: every answer the listener gives, by flow and result (accepted, duplicate, ignored, or the
// error code of a refusal), for /metrics and the flow's windowed stats (GET /v1/flows/{name}/stats). Looked
// up through a per-thread cache, so the hot path takes no registry lock.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/flow/routes.h"
#include "evrouter/store/store.h"

namespace evr::listener {

// `flow` is empty when the request reached no flow (unknown path, malformed HTTP).
void count_answer(std::string_view flow, std::string_view result);

// Which branches of `flow` got at least one of `lanes` (the lanes an event was routed to), one flag per
// branch, taken before the commit (the store may not hand the deliveries back: JetStream's lanes pull them).
void matched_branches(const flow::Flow& flow, const std::vector<std::string>& lanes,
                      std::vector<uint8_t>& out);
// An accepted event of `flow`: counted as matched for every branch flagged in `branches`
// (matched_branches), or as unmatched when none is.
void count_matched(const flow::Flow& flow, const std::vector<uint8_t>& branches);

// Published events (the publish API: each event with the lanes it was routed to), committed with `results`
// (same order): counted for every enabled bus flow that takes the event's source, as a webhook's answer is
// for its flow (received, accepted or duplicate, matched per branch).
// Each flow's counters and stats keys are looked up once per thread and routes. When an event counts for
// more than kPublishedCountsNow flows (a source that 1,000 bus flows take), touching each flow's counters
// for every event would cost more than routing it: the counts are summed on this thread and recorded at
// most kPublishedCountsDelayMs later (and within the same second of the windowed stats), by the next call
// or by record_published_counts. Returns true when counts wait: the caller then has
// record_published_counts run on this thread within that delay.
inline constexpr std::size_t kPublishedCountsNow = 16;
inline constexpr int64_t kPublishedCountsDelayMs = 100;
bool count_published(const std::shared_ptr<const flow::Routes>& routes,
                     const std::vector<store::Ingest>& published,
                     const std::vector<store::CommitResult>& results);
// Records this thread's waiting published-event counts (see count_published).
void record_published_counts();

// Ingest latency, for /metrics: a webhook's or published batch's time from its request headers read to its
// answer written, by the answer's status class; and, of that, the time the store took to make it durable
// (queued for the writer, group commit, fsync, and back on the listener's loop).
void observe_answer(unsigned status, std::chrono::steady_clock::duration took);
void observe_store(std::chrono::steady_clock::duration took);

}  // namespace evr::listener
