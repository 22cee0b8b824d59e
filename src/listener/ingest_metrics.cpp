#include "listener/ingest_metrics.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "evrouter/event/event.h"
#include "evrouter/metrics/flow_stats.h"
#include "evrouter/metrics/metrics.h"

namespace evr::listener {
namespace {

using metrics::FlowStats;

FlowStats::Count result_kind(std::string_view result) {
  if (result == "accepted") return FlowStats::Count::accepted;
  if (result == "duplicate") return FlowStats::Count::duplicate;
  if (result == "ignored") return FlowStats::Count::ignored;
  return FlowStats::Count::rejected;
}

// evrouter_webhooks_total{flow, result}; `flow` empty: "-" (no flow was reached).
metrics::Counter& webhooks_counter(std::string_view flow, std::string_view result) {
  return metrics::Registry::global().counter(
      "evrouter_webhooks_total",
      "Ingest answers by flow and result (accepted, duplicate, ignored, or the error code).",
      {{"flow", flow.empty() ? "-" : std::string(flow)}, {"result", std::string(result)}});
}

struct Answer {
  metrics::Counter* counter = nullptr;
  FlowStats* stats = nullptr;  // null when no flow was reached
  FlowStats::Key received = -1;
  FlowStats::Key result = -1;
};

}  // namespace

void count_answer(std::string_view flow, std::string_view result) {
  // Flows and results are few, so the per-thread cache stays small; the registry hands back the same
  // series for the same labels, so caches on different threads agree.
  thread_local std::unordered_map<std::string, Answer> cache;
  thread_local std::string key;
  key.assign(flow).push_back('\0');
  key.append(result);
  auto it = cache.find(key);
  if (it == cache.end()) {
    Answer a;
    a.counter = &webhooks_counter(flow, result);
    if (!flow.empty()) {
      a.stats = &FlowStats::of(flow);
      a.received = a.stats->key(FlowStats::Count::received);
      const auto kind = result_kind(result);
      a.result = a.stats->key(kind, kind == FlowStats::Count::rejected ? result : std::string_view());
    }
    it = cache.emplace(key, a).first;
  }
  const Answer& a = it->second;
  a.counter->inc();
  if (a.stats != nullptr) {
    a.stats->add({a.received, a.result});
  }
}

namespace {

// Finer than the registry's latency buckets at the low end, where a durable answer usually falls.
const std::vector<double>& ingest_buckets() {
  static const std::vector<double> b{0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
                                     0.025,   0.05,   0.1,   0.25,  0.5,   1,     2.5,    5};
  return b;
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

void observe_answer(unsigned status, std::chrono::steady_clock::duration took) {
  static constexpr const char* kHelp =
      "Time from an ingest request's headers read to its answer written (webhooks and published batches), "
      "by status class.";
  static metrics::Histogram* by_class[] = {
      &metrics::Registry::global().histogram("evrouter_ingest_seconds", kHelp, {{"code", "2xx"}},
                                             ingest_buckets()),
      &metrics::Registry::global().histogram("evrouter_ingest_seconds", kHelp, {{"code", "4xx"}},
                                             ingest_buckets()),
      &metrics::Registry::global().histogram("evrouter_ingest_seconds", kHelp, {{"code", "5xx"}},
                                             ingest_buckets())};
  const std::size_t k = status >= 500 ? 2 : status >= 400 ? 1 : 0;
  by_class[k]->observe(seconds(took));
}

void observe_store(std::chrono::steady_clock::duration took) {
  static metrics::Histogram& h = metrics::Registry::global().histogram(
      "evrouter_ingest_store_seconds",
      "Part of evrouter_ingest_seconds spent making the events durable: from handing them to the store "
      "(queued for the writer, group commit, fsync) until its answer is back on the listener's loop.",
      {}, ingest_buckets());
  h.observe(seconds(took));
}

void matched_branches(const flow::Flow& flow, const std::vector<std::string>& lanes,
                      std::vector<uint8_t>& out) {
  out.assign(flow.branches.size(), 0);
  for (std::size_t i = 0; i < flow.branches.size(); ++i) {
    const auto& mine = flow.branches[i].lanes;
    out[i] = std::any_of(lanes.begin(), lanes.end(), [&mine](const std::string& lane) {
      return std::find(mine.begin(), mine.end(), lane) != mine.end();
    });
  }
}

void count_matched(const flow::Flow& flow, const std::vector<uint8_t>& branches) {
  struct Branches {
    FlowStats* stats = nullptr;
    FlowStats::Key unmatched = -1;
    std::vector<std::string> names;       // the flow's branches when the keys were made
    std::vector<FlowStats::Key> matched;  // per branch
  };
  // Keyed by flow name; a reload that changes the flow's branches makes the entry again.
  thread_local std::unordered_map<std::string, Branches> cache;
  auto it = cache.find(flow.name);
  const auto same_branches = [&flow](const Branches& b) {
    if (b.names.size() != flow.branches.size()) return false;
    for (std::size_t i = 0; i < b.names.size(); ++i) {
      if (b.names[i] != flow.branches[i].name) return false;
    }
    return true;
  };
  if (it == cache.end() || !same_branches(it->second)) {
    Branches b;
    b.stats = &FlowStats::of(flow.name);
    b.unmatched = b.stats->key(FlowStats::Count::unmatched);
    for (const auto& br : flow.branches) {
      b.names.push_back(br.name);
      b.matched.push_back(b.stats->key(FlowStats::Count::matched, br.name));
    }
    it = cache.insert_or_assign(flow.name, std::move(b)).first;
  }
  const Branches& b = it->second;
  bool any = false;
  for (std::size_t i = 0; i < b.matched.size() && i < branches.size(); ++i) {
    if (!branches[i]) continue;
    b.stats->add(b.matched[i]);
    any = true;
  }
  if (!any) b.stats->add(b.unmatched);
}

namespace {

// One bus flow's ingest counters, looked up once per thread and routes.
struct PublishedCounts {
  bool made = false;
  metrics::Counter* accepted = nullptr;   // evrouter_webhooks_total{flow, result="accepted"}
  metrics::Counter* duplicate = nullptr;  // ... result="duplicate"
  FlowStats* stats = nullptr;
  FlowStats::Key received = -1, accepted_key = -1, duplicate_key = -1, unmatched = -1;
  std::vector<FlowStats::Key> matched;  // per branch
};

PublishedCounts make_counts(const flow::Flow& f) {
  PublishedCounts c;
  c.made = true;
  c.accepted = &webhooks_counter(f.name, "accepted");
  c.duplicate = &webhooks_counter(f.name, "duplicate");
  c.stats = &FlowStats::of(f.name);
  c.received = c.stats->key(FlowStats::Count::received);
  c.accepted_key = c.stats->key(FlowStats::Count::accepted);
  c.duplicate_key = c.stats->key(FlowStats::Count::duplicate);
  c.unmatched = c.stats->key(FlowStats::Count::unmatched);
  for (const auto& b : f.branches) c.matched.push_back(c.stats->key(FlowStats::Count::matched, b.name));
  return c;
}

// A flow's published-event counts not yet recorded (see count_published).
struct PendingCounts {
  uint64_t received = 0, accepted = 0, duplicate = 0, unmatched = 0;
  std::vector<uint64_t> matched;  // per branch
  bool dirty = false;
};

// A listener worker's published-event counting: the counters of its routes' flows (by position in
// routes->flows(), made on first use; the routes are kept alive so that a new routes object never reuses
// the address while cached) and the counts waiting to be recorded.
struct PublishedTally {
  std::shared_ptr<const flow::Routes> routes;
  std::vector<PublishedCounts> counts;
  std::vector<PendingCounts> pending;
  std::vector<std::size_t> dirty;  // flows with pending counts
  int64_t since_ms = 0;            // when the oldest pending count was taken
};

PublishedTally& tally() {
  thread_local PublishedTally t;
  return t;
}

void record(PublishedTally& t) {
  for (const std::size_t fi : t.dirty) {
    const PublishedCounts& c = t.counts[fi];
    PendingCounts& p = t.pending[fi];
    if (p.accepted > 0) c.accepted->inc(p.accepted);
    if (p.duplicate > 0) c.duplicate->inc(p.duplicate);
    const std::pair<FlowStats::Key, uint64_t> keyed[] = {{c.received, p.received},
                                                         {c.accepted_key, p.accepted},
                                                         {c.duplicate_key, p.duplicate},
                                                         {c.unmatched, p.unmatched}};
    for (const auto& [key, n] : keyed) {
      if (n > 0) c.stats->add_at(key, t.since_ms, n);
    }
    for (std::size_t b = 0; b < p.matched.size(); ++b) {
      if (p.matched[b] > 0) c.stats->add_at(c.matched[b], t.since_ms, p.matched[b]);
      p.matched[b] = 0;
    }
    p.received = p.accepted = p.duplicate = p.unmatched = 0;
    p.dirty = false;
  }
  t.dirty.clear();
}

}  // namespace

bool count_published(const std::shared_ptr<const flow::Routes>& routes,
                     const std::vector<store::Ingest>& published,
                     const std::vector<store::CommitResult>& results) {
  PublishedTally& t = tally();
  const int64_t now_ms = event::now_ms();  // the wall clock the stats windows use
  // What waits is recorded before it could fall into another second's bucket or grow stale.
  if (!t.dirty.empty() && (t.routes != routes || now_ms / 1000 != t.since_ms / 1000 ||
                           now_ms - t.since_ms >= kPublishedCountsDelayMs))
    record(t);
  if (t.routes != routes) {
    t.routes = routes;
    t.counts.assign(routes->flows().size(), PublishedCounts{});
    t.pending.assign(routes->flows().size(), PendingCounts{});
  }
  const auto& flows = routes->flows();
  std::size_t fanout = 0;  // the most flows one event counted for
  for (std::size_t i = 0; i < published.size() && i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& event = published[i].event;
    if (!event || r.status == store::CommitResult::Status::failed) continue;
    const bool duplicate = r.status == store::CommitResult::Status::duplicate;
    std::size_t counted = 0;
    for (std::size_t fi = 0; fi < flows.size(); ++fi) {
      const auto& f = flows[fi];
      if (!f.is_bus() || !f.enabled || !f.bus_sources.allows(event->source)) continue;
      PublishedCounts& c = t.counts[fi];
      PendingCounts& p = t.pending[fi];
      if (!c.made) {
        c = make_counts(f);
        p.matched.assign(f.branches.size(), 0);
      }
      if (!p.dirty) {
        if (t.dirty.empty()) t.since_ms = now_ms;
        p.dirty = true;
        t.dirty.push_back(fi);
      }
      ++counted;
      ++p.received;
      if (duplicate) {
        ++p.duplicate;
        continue;
      }
      ++p.accepted;
      // The branches that got at least one of the lanes routed to (the commit's deliveries have been handed
      // to the dispatcher by now), or unmatched.
      bool any = false;
      for (std::size_t b = 0; b < f.branches.size(); ++b) {
        const auto& lanes = f.branches[b].lanes;
        const auto& routed = published[i].lanes;
        if (std::any_of(routed.begin(), routed.end(), [&lanes](const std::string& lane) {
              return std::find(lanes.begin(), lanes.end(), lane) != lanes.end();
            })) {
          ++p.matched[b];
          any = true;
        }
      }
      if (!any) ++p.unmatched;
    }
    fanout = std::max(fanout, counted);
  }
  if (fanout <= kPublishedCountsNow) {
    record(t);
    return false;
  }
  return !t.dirty.empty();
}

void record_published_counts() {
  PublishedTally& t = tally();
  if (!t.dirty.empty()) record(t);
}

}  // namespace evr::listener
