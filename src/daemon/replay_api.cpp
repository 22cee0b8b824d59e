// POST /v1/flows/{name}/replay: a flow's archived events of a time window through its current definition.
#include <nlohmann/json.hpp>

#include "daemon/admin_api.h"
#include "evrouter/daemon/daemon.h"
#include "evrouter/metrics/flow_stats.h"
#include "evrouter/metrics/metrics.h"
#include "evrouter/tail/hub.h"

namespace evr::daemon {
namespace {

using admin::Request;
using admin::Response;
using json = nlohmann::json;

// At most this many events are read per page (and their deliveries written per transaction).
constexpr std::size_t kReplayPage = 200;

// A JSON time field: RFC 3339 required (no shorthand: a replay should say exactly what it means).
std::optional<int64_t> time_field(const json& body, const char* name, std::string& error) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    error = std::string("\"") + name + "\" is required (an RFC 3339 time such as 2026-11-22T10:00:00Z)";
    return std::nullopt;
  }
  if (!it->is_string()) {
    error = std::string("\"") + name + "\" must be a string holding an RFC 3339 time";
    return std::nullopt;
  }
  auto ms = event::parse_time(it->get_ref<const std::string&>());
  if (!ms) {
    error = std::string("\"") + name + "\" must be an RFC 3339 time such as 2026-11-22T10:00:00Z; got \"" +
            it->get<std::string>() + "\"";
  }
  return ms;
}

}  // namespace

flow::ReplayResult Daemon::replay_window(const flow::Flow& flow, const flow::ReplayRequest& request) {
  auto& reg = metrics::Registry::global();
  metrics::Counter& events = reg.counter(
      "evrouter_replayed_events_total",
      "Archived events a window replay routed to at least one lane, by flow.", {{"flow", flow.name}});
  metrics::FlowStats& stats = metrics::FlowStats::of(flow.name);
  return flow::replay_window(flow, *store_, request, [&](const flow::ReplayedPage& page) {
    wake_lanes(page.lanes);
    events.inc(page.events.size());
    const bool tailing = tail::Hub::global().active();
    for (const auto& [event, lanes] : page.events) {
      for (const auto& lane : lanes) {
        reg.counter("evrouter_replayed_deliveries_total",
                    "Deliveries made by window replays, by flow and lane.",
                    {{"flow", flow.name}, {"lane", lane}})
            .inc();
        stats.add(stats.key(metrics::FlowStats::Count::replayed, lane));
      }
      if (tailing) {
        auto r = std::make_shared<tail::Record>();
        r->kind = tail::Record::Kind::event;
        r->event = event;
        r->at_ms = event::now_ms();
        r->lanes = lanes;
        r->replay = true;
        tail::Hub::global().publish(std::move(r));
      }
    }
  });
}

void add_replay_routes(admin::Router& r, Daemon& daemon) {
  r.add("POST", "/v1/flows/{name}/replay", [&daemon](const Request& q) {
    const auto& name = q.params.at("name");
    const auto routes = daemon.routes();
    const flow::Flow* flow = nullptr;
    for (const auto& f : routes->flows()) {
      if (f.name == name) flow = &f;
    }
    if (flow == nullptr) return Response::error(404, "unknown_flow", "no flow named " + name);
    auto body = q.body.empty() ? json::object() : json::parse(q.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return Response::error(400, "bad_request",
                             "the body must be a JSON object {from, to, dry_run?, destination?}");
    }
    for (auto it = body.begin(); it != body.end(); ++it) {
      const auto& k = it.key();
      if (k != "from" && k != "to" && k != "dry_run" && k != "destination") {
        return Response::error(400, "bad_request",
                               "unknown field \"" + k + "\" (expected from, to, dry_run, destination)");
      }
    }
    flow::ReplayRequest request;
    request.page = kReplayPage;
    std::string error;
    const auto from = time_field(body, "from", error);
    if (!from) return Response::error(400, "bad_request", error);
    const auto to = time_field(body, "to", error);
    if (!to) return Response::error(400, "bad_request", error);
    if (*to <= *from)
      return Response::error(400, "bad_request", "\"to\" must be later than \"from\" (to is exclusive)");
    request.from_ms = *from;
    request.to_ms = *to;
    if (auto it = body.find("dry_run"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return Response::error(400, "bad_request", "\"dry_run\" must be true or false");
      request.dry_run = it->get<bool>();
    }
    if (auto it = body.find("destination"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) return Response::error(400, "bad_request", "\"destination\" must be a string");
      request.destination = it->get<std::string>();
      bool known = false;
      for (const auto& b : flow->branches) {
        for (const auto& lane : b.lanes)
          known = known || flow::lane_destination(lane) == *request.destination;
      }
      if (!known) {
        return Response::error(
            400, "unknown_destination",
            "flow " + name + " does not deliver to a destination named " + *request.destination);
      }
    }
    if (!flow->enabled) {
      return Response::error(
          409, "flow_disabled",
          "flow " + name + " is disabled; enable it (POST /v1/flows/" + name + "/enable) before replaying");
    }
    // Off the admin loop: a window can hold many events (read and routed a page at a time). `routes`
    // keeps the flow alive until then.
    return Response::defer([&daemon, routes, flow, request, name] {
      const auto result = daemon.replay_window(*flow, request);
      json j{{"flow", name},
             {"from", event::format_time(request.from_ms)},
             {"to", event::format_time(request.to_ms)},
             {"dry_run", request.dry_run},
             {"destination", request.destination ? json(*request.destination) : json(nullptr)},
             {"events_scanned", result.scanned},
             {"events_matched", result.matched},
             {"deliveries_created", request.dry_run ? 0 : result.deliveries},
             {"lanes", result.lanes}};
      if (request.dry_run) j["deliveries_would_create"] = result.deliveries;
      return Response::json(200, j.dump());
    });
  });
}

}  // namespace evr::daemon
