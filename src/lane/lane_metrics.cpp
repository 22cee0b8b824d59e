#include "lane/lane_metrics.h"

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
      lane_key_(stats.lane_key(lane)) {
  static const char* const kClasses[6] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 6; ++i) {
    by_class_[i] = &metrics::Registry::global().counter(
        "evrouter_delivery_attempts_total",
        "Delivery attempts by response status class (error: no response).",
        {{"flow", flow}, {"lane", lane}, {"class", kClasses[i]}});
  }
}

void LaneMetrics::attempt(int status, double seconds) {
  const int cls = status >= 100 && status < 600 ? status / 100 : 0;
  by_class_[cls]->inc();
  latency_.observe(seconds);
  stats.latency(lane_key_, seconds);
}

}  // namespace evr::lane
