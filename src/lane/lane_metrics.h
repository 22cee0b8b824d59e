#pragma once
// The metrics one lane updates: attempts by status class, outcomes, attempt latency, queue gauges.
// Series are looked up once when the lane is made; updates are lock-free.

#include <string>

#include "evrouter/metrics/metrics.h"

namespace evr::lane {

struct LaneMetrics {
  LaneMetrics(const std::string& flow, const std::string& lane);

  // An HTTP attempt finished: `status` is 0 for a network error or timeout.
  void attempt(int status, double seconds);

  metrics::Counter& delivered;
  metrics::Counter& retried;
  metrics::Counter& dead;
  metrics::Gauge& ready;
  metrics::Gauge& in_flight;

 private:
  metrics::Counter* by_class_[6];  // network, 1xx..5xx
  metrics::Histogram& latency_;
};

}  // namespace evr::lane
