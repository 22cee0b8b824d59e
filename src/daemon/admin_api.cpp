#include "daemon/admin_api.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "evrouter/admin/dashboard.h"
#include "evrouter/connection/check.h"
#include "evrouter/daemon/daemon.h"
#include "evrouter/metrics/metrics.h"
#include "evrouter/tail/stream.h"

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

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const auto end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// GET /v1/tail?flow=a,b&kinds=event,delivery&pattern={...}&payload=false
Response tail_response(const Request& q) {
  tail::Filter filter;
  filter.flows = split_list(q.q("flow"));
  if (const auto kinds = q.q("kinds"); !kinds.empty()) {
    filter.events = filter.deliveries = false;
    for (const auto& k : split_list(kinds)) {
      if (k == "event") {
        filter.events = true;
      } else if (k == "delivery") {
        filter.deliveries = true;
      } else {
        return Response::error(400, "bad_request", "kinds: '" + k + "' is not event or delivery");
      }
    }
  }
  if (const auto p = q.q("payload", "true"); p == "false" || p == "0") {
    filter.payload = false;
  } else if (p != "true" && p != "1") {
    return Response::error(400, "bad_request", "payload: true or false");
  }
  if (const auto text = q.q("pattern"); !text.empty()) {
    try {
      filter.pattern = pattern::Pattern::compile(json::parse(text));
    } catch (const json::exception& e) {
      return Response::error(400, "bad_pattern", std::string("pattern: not JSON: ") + e.what());
    } catch (const pattern::PatternError& e) {
      return Response::error(400, "bad_pattern", std::string("pattern: ") + e.what());
    }
  }
  auto stream = tail::make_stream(tail::Hub::global(), std::move(filter));
  if (!stream) return Response::error(429, "too_many_watchers", "too many live-tail watchers; try later");
  Response resp;
  resp.stream = std::move(stream);
  return resp;
}

// evrouter_lane_queue_age_seconds: how long each lane's oldest pending delivery has waited (0: none
// pending), for every lane of the running flows and any other lane with deliveries pending (a removed
// lane draining). Read from the store when scraped.
void set_queue_ages(Daemon& daemon) {
  std::map<std::string, int64_t> oldest;
  try {
    oldest = daemon.store().oldest_pending();
  } catch (const store::NotSupported&) {
    return;  // the store does not keep them (JetStream)
  }
  const auto routes = daemon.routes();
  for (const auto& f : routes->flows()) {
    for (const auto& b : f.branches) {
      for (const auto& lane : b.lanes) oldest.emplace(lane, 0);
    }
  }
  const int64_t now = event::now_ms();
  auto& reg = metrics::Registry::global();
  for (const auto& [lane, since] : oldest) {
    const std::string flow = lane.substr(0, lane.find('/'));
    reg.gauge("evrouter_lane_queue_age_seconds",
              "Seconds the lane's oldest pending delivery has waited since it was made (or put back from the "
              "dead letters); 0 when nothing is pending.",
              {{"flow", flow}, {"lane", lane}})
        .set(since == 0 ? 0 : std::max<int64_t>(0, (now - since) / 1000));
  }
}

}  // namespace

json flow_summary(const flow::Routes& routes, const flow::Flow& f,
                  const std::map<std::string, store::FlowState>& states) {
  json j = flow_json(routes, f);
  const auto it = states.find(f.name);
  j["enabled_override"] =
      it != states.end() && it->second.enabled ? json(*it->second.enabled) : json(nullptr);
  return j;
}

admin::Router make_admin_router(Daemon& daemon) {
  admin::Router r;
  // Once the store failed for good both probes answer 503 with the reason (Daemon::failure).
  auto failed = [](const std::string& reason) {
    return Response::json(503, json{{"status", "failed"}, {"error", reason}}.dump());
  };
  r.add("GET", "/healthz", [&daemon, failed](const Request&) {
    if (!daemon.healthy()) return failed(daemon.failure());
    return Response::json(200, R"({"status":"ok"})");
  });
  r.add("GET", "/readyz", [&daemon, failed](const Request&) {
    if (!daemon.healthy()) return failed(daemon.failure());
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
    reg.gauge("evrouter_store_deliveries", "Deliveries in the store by state.", {{"state", "discarded"}})
        .set(counts.discarded);
    set_queue_ages(daemon);
    Response resp;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = reg.render();
    return resp;
  });
  r.add("GET", "/v1/flows", [&daemon](const Request&) {
    const auto routes = daemon.routes();
    const auto states = daemon.store().flow_states();
    json flows = json::array();
    for (const auto& f : routes->flows()) flows.push_back(flow_summary(*routes, f, states));
    return Response::json(200, json{{"flows", std::move(flows)}}.dump());
  });
  r.add("GET", "/v1/flows/{name}", [&daemon](const Request& q) {
    const auto routes = daemon.routes();
    for (const auto& f : routes->flows()) {
      if (f.name == q.params.at("name")) {
        return Response::json(200, flow_summary(*routes, f, daemon.store().flow_states()).dump());
      }
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
  // Test connection (as `evrouter test-connection`): DNS, TCP, TLS and an optional probe, timed. Runs on
  // the admin server's worker thread, for at most the connection's connect + request timeouts.
  r.add("POST", "/v1/connections/{name}/test", [&daemon](const Request& q) {
    const auto config = daemon.connection_config(q.params.at("name"));
    if (!config)
      return Response::error(404, "unknown_connection", "no connection named " + q.params.at("name"));
    connection::CheckOptions options;
    if (!q.body.empty()) {
      const json body = json::parse(q.body, nullptr, false);
      if (!body.is_object()) return Response::error(400, "bad_request", "the body must be a JSON object");
      if (body.contains("probe")) {
        if (!body["probe"].is_string())
          return Response::error(400, "bad_request", "probe: a path, e.g. /health");
        std::string path = body["probe"].get<std::string>();
        if (path.empty() || path[0] != '/') path = std::string(1, '/') + path;
        options.probe_path = path;
      }
      if (body.contains("method")) {
        if (!body["method"].is_string())
          return Response::error(400, "bad_request", "method: e.g. GET or HEAD");
        options.probe_method = body["method"].get<std::string>();
      }
    }
    // Off the admin loop: DNS, connect, TLS and the probe take up to the connection's timeouts.
    return Response::defer([config = *config, options] {
      try {
        return Response::json(200, connection::to_json(connection::check(config, options)).dump());
      } catch (const std::exception& e) {
        return Response::error(409, "connection_unusable", e.what());
      }
    });
  });
  r.add("GET", "/v1/stats", [&daemon](const Request&) {
    const auto c = daemon.store().counts();
    return Response::json(200, json{{"events", c.events},
                                    {"deliveries",
                                     {{"pending", c.pending},
                                      {"delivered", c.delivered},
                                      {"dead", c.dead},
                                      {"discarded", c.discarded}}}}
                                   .dump());
  });
  r.add("GET", "/", [](const Request&) {
    Response resp;
    resp.status = 302;
    resp.headers.emplace_back("Location", "/dashboard");
    resp.body = R"({"location":"/dashboard"})";
    return resp;
  });
  r.add("GET", "/dashboard", [](const Request&) {
    Response resp;
    resp.content_type = "text/html; charset=utf-8";
    resp.body = std::string(admin::dashboard_html());
    resp.headers.emplace_back("Content-Security-Policy",
                              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                              "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
                              "frame-ancestors 'none'");
    resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return resp;
  });
  r.add("GET", "/v1/tail", [](const Request& q) { return tail_response(q); });
  add_operations_routes(r, daemon);
  add_flow_stats_routes(r, daemon);
  add_openapi_route(r);
  add_schema_routes(r, daemon);
  add_replay_routes(r, daemon);
  // What this process alone saw or holds (docs/scaling.md#what-each-admin-route-covers); the rest is the
  // store's and the configuration's, the same on every instance sharing the store.
  r.set_instance(daemon.instance_id());
  for (const char* prefix : {"/healthz", "/readyz", "/", "/dashboard", "/metrics", "/v1/stats",
                             "/v1/connections", "/v1/tail", "/v1/schemas"}) {
    r.per_instance(prefix);
  }
  r.per_instance("/v1/flows/{name}/stats");
  return r;
}

}  // namespace evr::daemon
