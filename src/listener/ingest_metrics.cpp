#include "listener/ingest_metrics.h"

#include <string>
#include <unordered_map>

#include "evrouter/metrics/metrics.h"

namespace evr::listener {

void count_answer(std::string_view flow, std::string_view result) {
  // Flows and results are few, so the per-thread cache stays small; the registry hands back the same
  // series for the same labels, so caches on different threads agree.
  thread_local std::unordered_map<std::string, metrics::Counter*> cache;
  thread_local std::string key;
  key.assign(flow).push_back('\0');
  key.append(result);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto& c = metrics::Registry::global().counter(
        "evrouter_webhooks_total",
        "Ingest answers by flow and result (accepted, duplicate, ignored, or the error code).",
        {{"flow", flow.empty() ? "-" : std::string(flow)}, {"result", std::string(result)}});
    it = cache.emplace(key, &c).first;
  }
  it->second->inc();
}

}  // namespace evr::listener
