#pragma once
// The metrics one lane updates: attempts by status class, outcomes, attempt latency, queue gauges.
// Series are looked up once when the lane is made (a status class's attempt counter with its first attempt:
// a start with 1,000 lanes registers half the series); updates are lock-free (the flow's windowed stats
// take their own short lock).

#include <array>
#include <atomic>
#include <string>

#include "evrouter/metrics/flow_stats.h"
#include "evrouter/metrics/metrics.h"
#include "evrouter/store/store.h"

namespace evr::lane {

// A delivery outcome: the Prometheus counter and the flow's windowed stats (GET /v1/flows/{name}/stats).
class OutcomeCounter {
 public:
  OutcomeCounter(metrics::Counter& counter, metrics::FlowStats& stats, metrics::FlowStats::Key key)
      : counter_(counter), stats_(stats), key_(key) {}
  void inc() {
    counter_.inc();
    stats_.add(key_);
  }

 private:
  metrics::Counter& counter_;
  metrics::FlowStats& stats_;
  metrics::FlowStats::Key key_;
};

struct LaneMetrics {
  LaneMetrics(const std::string& flow, const std::string& lane);

  // An HTTP attempt finished: `status` is 0 for a network error or timeout.
  void attempt(int status, double seconds);
  // A delivery is about to be sent for the first time: how long after its event was received
  // (evrouter_delivery_lag_seconds; retries and replays are not counted).
  static void first_attempt(const store::Delivery& d, int64_t now_ms);

  metrics::FlowStats& stats;  // declared first: the outcome counters use it
  OutcomeCounter delivered;
  OutcomeCounter retried;
  OutcomeCounter dead;
  metrics::Gauge& ready;
  metrics::Gauge& in_flight;

 private:
  metrics::Counter& by_class(int cls);

  metrics::Histogram& latency_;
  metrics::FlowStats::LaneKey lane_key_;
  std::string flow_, lane_;
  std::array<std::atomic<metrics::Counter*>, 6>
      by_class_{};  // error (no response), 1xx..5xx; null until used
};

}  // namespace evr::lane
