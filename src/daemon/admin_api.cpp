#include "daemon/admin_api.h"

#include <nlohmann/json.hpp>

#include "evrouter/daemon/daemon.h"
#include "evrouter/metrics/metrics.h"

namespace evr::daemon {
namespace {

using admin::Request;
using admin::Response;
using json = nlohmann::json;

json flow_json(const flow::Routes& routes, const flow::Flow& f) {
  json branches = json::array();
  for (const auto& b : f.branches) {
    branches.push_back({{"name", b.name}, {"match", b.match.has_value()}, {"lanes", b.lanes}});
  }
  return {{"name", f.name},
          {"enabled", f.enabled},
          {"source", f.source_type},
          {"listener_url", routes.listener_url(f)},
          {"topics", f.topics},
          {"mode", f.mode == config::Flow::Mode::first ? "first" : "all"},
          {"branches", std::move(branches)}};
}

}  // namespace

admin::Router make_admin_router(Daemon& daemon) {
  admin::Router r;
  r.add("GET", "/healthz", [](const Request&) { return Response::json(200, R"({"status":"ok"})"); });
  r.add("GET", "/readyz", [&daemon](const Request&) {
    return daemon.ready() ? Response::json(200, R"({"status":"ok"})")
                          : Response::json(503, R"({"status":"not_ready"})");
  });
  r.add("GET", "/metrics", [&daemon](const Request&) {
    // Store totals are read when scraped rather than kept as counters on the hot path.
    const auto counts = daemon.store().counts();
    auto& reg = metrics::Registry::global();
    reg.gauge("evrouter_store_events", "Events kept in the store.").set(counts.events);
    reg.gauge("evrouter_store_deliveries", "Deliveries in the store by state.", {{"state", "pending"}})
        .set(counts.pending);
    reg.gauge("evrouter_store_deliveries", "Deliveries in the store by state.", {{"state", "delivered"}})
        .set(counts.delivered);
    reg.gauge("evrouter_store_deliveries", "Deliveries in the store by state.", {{"state", "dead"}})
        .set(counts.dead);
    Response resp;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = reg.render();
    return resp;
  });
  r.add("GET", "/v1/flows", [&daemon](const Request&) {
    const auto routes = daemon.routes();
    json flows = json::array();
    for (const auto& f : routes->flows()) flows.push_back(flow_json(*routes, f));
    return Response::json(200, json{{"flows", std::move(flows)}}.dump());
  });
  r.add("GET", "/v1/flows/{name}", [&daemon](const Request& q) {
    const auto routes = daemon.routes();
    for (const auto& f : routes->flows()) {
      if (f.name == q.params.at("name")) return Response::json(200, flow_json(*routes, f).dump());
    }
    return Response::error(404, "unknown_flow", "no flow named " + q.params.at("name"));
  });
  r.add("GET", "/v1/connections", [&daemon](const Request&) {
    json out = json::array();
    for (const auto& c : daemon.connections()) {
      out.push_back({{"name", c.name},
                     {"breaker",
                      {{"state", connection::to_string(c.breaker)},
                       {"consecutive_failures", c.consecutive_failures},
                       {"opened_at_ms", c.opened_at_ms},
                       {"next_probe_ms", c.next_probe_ms}}},
                     {"in_flight", c.in_flight},
                     {"concurrency",
                      {{"limit", c.concurrency_limit}, {"max", c.concurrency_max}, {"adaptive", c.adaptive}}},
                     {"rate_limit", {{"per_second", c.rate_per_second}, {"burst", c.rate_burst}}},
                     {"waiting_lanes", c.waiting_lanes}});
    }
    return Response::json(200, json{{"connections", std::move(out)}}.dump());
  });
  r.add("GET", "/v1/stats", [&daemon](const Request&) {
    const auto c = daemon.store().counts();
    return Response::json(
        200, json{{"events", c.events},
                  {"deliveries", {{"pending", c.pending}, {"delivered", c.delivered}, {"dead", c.dead}}}}
                 .dump());
  });
  return r;
}

}  // namespace evr::daemon
