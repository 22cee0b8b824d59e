// GET /v1/flows/{name}/stats: a flow's dashboard numbers over the last minute, hour or day.
#include <nlohmann/json.hpp>

#include "daemon/admin_api.h"
#include "evrouter/daemon/daemon.h"
#include "evrouter/event/event.h"
#include "evrouter/metrics/flow_stats.h"

namespace evr::daemon {
namespace {

using admin::Request;
using admin::Response;
using json = nlohmann::json;
using metrics::FlowStats;

json lane_json() {
  return {{"delivered", 0},
          {"retrying", 0},
          {"dead", 0},
          {"replayed", 0},
          {"latency_ms", {{"attempts", 0}, {"p50", 0.0}, {"p90", 0.0}, {"p99", 0.0}}}};
}

json stats_json(const flow::Flow& f, FlowStats::Window w, const FlowStats::Report& r) {
  json by_reason = json::object();
  json by_branch = json::object();
  json lanes = json::object();
  for (const auto& b : f.branches) {
    by_branch[b.name] = 0;
    for (const auto& l : b.lanes) lanes[l] = lane_json();
  }
  json j{{"flow", f.name},
         {"window", FlowStats::to_string(w)},
         {"from", event::format_time(r.from_ms)},
         {"to", event::format_time(r.to_ms)},
         {"received", 0},
         {"accepted", 0},
         {"duplicates", 0},
         {"ignored", 0},
         {"rejected", 0},
         {"matched", 0},
         {"unmatched", 0},
         {"delivered", 0},
         {"retrying", 0},
         {"dead", 0},
         {"replayed", 0}};
  auto add = [&j](const char* field, uint64_t n) { j[field] = j[field].get<uint64_t>() + n; };
  auto lane = [&lanes](const std::string& name) -> json& {
    if (!lanes.contains(name)) lanes[name] = lane_json();  // a lane the flow had before a reload
    return lanes[name];
  };
  for (const auto& e : r.counts) {
    switch (e.kind) {
      case FlowStats::Count::received:
        add("received", e.value);
        break;
      case FlowStats::Count::accepted:
        add("accepted", e.value);
        break;
      case FlowStats::Count::duplicate:
        add("duplicates", e.value);
        break;
      case FlowStats::Count::ignored:
        add("ignored", e.value);
        break;
      case FlowStats::Count::rejected:
        add("rejected", e.value);
        by_reason[e.label] = e.value;
        break;
      case FlowStats::Count::matched:
        add("matched", e.value);
        by_branch[e.label] = e.value;
        break;
      case FlowStats::Count::unmatched:
        add("unmatched", e.value);
        break;
      case FlowStats::Count::delivered:
        add("delivered", e.value);
        lane(e.label)["delivered"] = e.value;
        break;
      case FlowStats::Count::retrying:
        add("retrying", e.value);
        lane(e.label)["retrying"] = e.value;
        break;
      case FlowStats::Count::dead:
        add("dead", e.value);
        lane(e.label)["dead"] = e.value;
        break;
      case FlowStats::Count::replayed:
        add("replayed", e.value);
        lane(e.label)["replayed"] = e.value;
        break;
    }
  }
  for (const auto& l : r.latency) {
    lane(l.lane)["latency_ms"] = {
        {"attempts", l.attempts}, {"p50", l.p50_ms}, {"p90", l.p90_ms}, {"p99", l.p99_ms}};
  }
  j["rejected_by_reason"] = std::move(by_reason);
  j["matched_by_branch"] = std::move(by_branch);
  j["lanes"] = std::move(lanes);
  return j;
}

}  // namespace

void add_flow_stats_routes(admin::Router& r, Daemon& daemon) {
  r.add("GET", "/v1/flows/{name}/stats", [&daemon](const Request& q) {
    for (const auto& [k, _] : q.query) {
      if (k != "window") return Response::error(400, "bad_request", "unknown query parameter \"" + k + "\"");
    }
    const auto text = q.q("window", "1h");
    const auto window = FlowStats::parse_window(text);
    if (!window)
      return Response::error(400, "bad_request", "window must be 1m, 1h or 24h; got \"" + text + "\"");
    const auto routes = daemon.routes();
    const auto& name = q.params.at("name");
    for (const auto& f : routes->flows()) {
      if (f.name != name) continue;
      return Response::json(200, stats_json(f, *window, FlowStats::of(name).report(*window)).dump());
    }
    return Response::error(404, "unknown_flow", "no flow named " + name);
  });
}

}  // namespace evr::daemon
