#include "lane/lane_metrics.h"

#include <algorithm>

namespace evr::lane {
namespace {

metrics::Counter& outcome(const std::string& flow, const std::string& lane, const char* kind) {
  return metrics::Registry::global().counter("evrouter_deliveries_total",
                                             "Deliveries finished, by outcome (retry: an attempt failed and "
                                             "another is scheduled).",
                                             {{"flow", flow}, {"lane", lane}, {"outcome", kind}});
}

}  // namespace

LaneMetrics::LaneMetrics(const std::string& flow, const std::string& lane)
    : stats(metrics::FlowStats::of(flow)),
      delivered(outcome(flow, lane, "delivered"), stats,
                stats.key(metrics::FlowStats::Count::delivered, lane)),
      retried(outcome(flow, lane, "retry"), stats, stats.key(metrics::FlowStats::Count::retrying, lane)),
      dead(outcome(flow, lane, "dead"), stats, stats.key(metrics::FlowStats::Count::dead, lane)),
      ready(metrics::Registry::global().gauge("evrouter_lane_ready",
                                              "Deliveries of the lane held in memory, ready to send.",
                                              {{"flow", flow}, {"lane", lane}})),
      in_flight(metrics::Registry::global().gauge(
          "evrouter_lane_in_flight", "Requests of the lane in flight.", {{"flow", flow}, {"lane", lane}})),
      latency_(metrics::Registry::global().histogram("evrouter_delivery_attempt_seconds",
                                                     "Duration of delivery attempts (HTTP exchange).",
                                                     {{"flow", flow}, {"lane", lane}})),
      lane_key_(stats.lane_key(lane)),
      flow_(flow),
      lane_(lane) {}

metrics::Counter& LaneMetrics::by_class(int cls) {
  auto& slot = by_class_[static_cast<std::size_t>(cls)];
  if (metrics::Counter* c = slot.load(std::memory_order_acquire)) return *c;
  static const char* const kClasses[6] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
  // The registry hands back the same series for the same labels, so a race here makes it once.
  metrics::Counter& c = metrics::Registry::global().counter(
      "evrouter_delivery_attempts_total", "Delivery attempts by response status class (error: no response).",
      {{"flow", flow_}, {"lane", lane_}, {"class", kClasses[cls]}});
  slot.store(&c, std::memory_order_release);
  return c;
}

void LaneMetrics::first_attempt(const store::Delivery& d, int64_t now_ms) {
  if (d.attempts != 0 || d.replayed_ms != 0 || d.replay || d.created_ms <= 0) return;
  static metrics::Histogram& lag = metrics::Registry::global().histogram(
      "evrouter_delivery_lag_seconds",
      "Time from an event's receipt to the first attempt of one of its deliveries (to the millisecond): how "
      "far behind delivery runs, queueing, rate limits and backlog included. Retries and replays are not "
      "counted.",
      {}, {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600});
  lag.observe(static_cast<double>(std::max<int64_t>(0, now_ms - d.created_ms)) / 1000.0);
}

void LaneMetrics::attempt(int status, double seconds) {
  const int cls = status >= 100 && status < 600 ? status / 100 : 0;
  by_class(cls).inc();
  latency_.observe(seconds);
  stats.latency(lane_key_, seconds);
}

}  // namespace evr::lane
