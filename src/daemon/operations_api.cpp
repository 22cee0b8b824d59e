// Admin routes for operators: event lookup, dead letters (list, replay, discard), runtime flow state.
#include <charconv>
#include <nlohmann/json.hpp>

#include "daemon/admin_api.h"
#include "evrouter/config/duration.h"
#include "evrouter/daemon/daemon.h"

namespace evr::daemon {
namespace {

using admin::Request;
using admin::Response;
using json = nlohmann::json;

// A filter the client got wrong: answered 400 bad_request with this message.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

json time_or_null(int64_t ms) {
  return ms == 0 ? json(nullptr) : json(event::format_time(ms));
}

// "2026-11-22T10:00:00Z", unix milliseconds, or a duration ago ("15m", "24h").
int64_t parse_when(const std::string& name, const std::string& text) {
  if (auto t = event::parse_time(text)) return *t;
  int64_t ms = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) return ms;
  if (auto d = config::parse_duration(text)) return event::now_ms() - d->count();
  throw BadRequest(name + " must be an RFC 3339 time (2026-11-22T10:00:00Z), unix milliseconds or a " +
                   "duration ago (15m, 24h); got \"" + text + "\"");
}

std::optional<std::string> opt(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

void only(const Request& q, std::initializer_list<const char*> allowed) {
  for (const auto& [k, _] : q.query) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) throw BadRequest("unknown query parameter \"" + k + "\"");
  }
}

store::TimeRange time_range(const std::map<std::string, std::string>& m) {
  store::TimeRange t;
  if (auto s = opt(m, "since")) t.since_ms = parse_when("since", *s);
  if (auto u = opt(m, "until")) t.until_ms = parse_when("until", *u);
  return t;
}

std::size_t parse_limit(const Request& q) {
  const auto text = q.q("limit");
  if (text.empty()) return 50;
  std::size_t n = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p != text.data() + text.size() || n == 0 || n > 1000) {
    throw BadRequest("limit must be an integer from 1 to 1000; got \"" + text + "\"");
  }
  return n;
}

int64_t parse_id(const std::string& text) {
  int64_t id = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || p != text.data() + text.size() || id <= 0) return 0;
  return id;
}

json attempt_json(const store::Attempt& a) {
  return {{"number", a.number}, {"at", event::format_time(a.at_ms)},
          {"status", a.status}, {"latency_ms", a.latency_ms},
          {"error", a.error},   {"response", a.response}};
}

json delivery_json(const store::DeliveryInfo& d, bool with_history) {
  json j{{"id", d.id},
         {"lane", d.lane},
         {"state", store::to_string(d.state)},
         {"attempts", d.attempts},
         {"created_at", time_or_null(d.created_ms)},
         {"updated_at", time_or_null(d.updated_ms)},
         {"next_attempt_at", time_or_null(d.next_attempt_ms)},
         {"last_error", d.last_error.empty() ? json(nullptr) : json(d.last_error)},
         {"replays", d.replays},
         {"replayed_at", time_or_null(d.replayed_ms)},
         {"replay", d.replay_ms != 0},
         {"replay_at", time_or_null(d.replay_ms)}};
  if (with_history) {
    json h = json::array();
    for (const auto& a : d.history) h.push_back(attempt_json(a));
    j["history"] = std::move(h);
  }
  return j;
}

// The payload as JSON when it parses, else as a string.
json payload_json(const std::string& payload) {
  auto j = json::parse(payload, nullptr, false);
  return j.is_discarded() ? json(payload) : j;
}

json event_json(const event::Event& e, bool full) {
  json j{{"id", e.id},
         {"flow", e.flow},
         {"type", e.type},
         {"source", e.source},
         {"time", event::format_time(e.time_ms)},
         {"webhook_id", e.webhook_id},
         {"shop", e.shop_domain},
         {"correlation_id", e.correlation_id}};
  if (full) {
    json headers = json::object();
    for (const auto& [k, v] : e.headers) headers[k] = v;
    j["occurred_at"] = time_or_null(e.occurred_ms);
    j["resources"] = e.resources;
    j["headers"] = std::move(headers);
    j["payload"] = payload_json(e.payload);
  }
  return j;
}

json record_json(const store::EventRecord& r, bool full) {
  json j = event_json(*r.event, full);
  json ds = json::array();
  for (const auto& d : r.deliveries) ds.push_back(delivery_json(d, full));
  j["deliveries"] = std::move(ds);
  return j;
}

json dead_letter_json(const store::DeadLetter& dl, bool full) {
  json j = delivery_json(dl.delivery, full);
  j["event"] = event_json(*dl.event, full);
  return j;
}

// Stored events and attempts as JSON text: text kept before it was checked at ingest or scrubbed
// (databases of earlier versions) is shown with U+FFFD rather than failing the answer.
std::string stored_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A list page: {"<key>": [...], "next_cursor": "..." or null}.
Response page_json(const char* key, json items, const std::optional<std::string>& next_cursor) {
  return Response::json(200,
                        stored_json(json{{key, std::move(items)},
                                         {"next_cursor", next_cursor ? json(*next_cursor) : json(nullptr)}}));
}

// The body of a bulk replay/discard: {"lane"?, "flow"?, "since"?, "until"?}.
store::DeadLetterFilter bulk_filter(const std::string& body) {
  auto j = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw BadRequest("the body must be a JSON object");
  std::map<std::string, std::string> m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    if (k != "lane" && k != "flow" && k != "since" && k != "until") {
      throw BadRequest("unknown field \"" + k + "\" (expected lane, flow, since, until)");
    }
    if (it.value().is_string()) {
      m[k] = it.value().get<std::string>();
    } else if (it.value().is_number_integer() && (k == "since" || k == "until")) {
      m[k] = std::to_string(it.value().get<int64_t>());
    } else if (!it.value().is_null()) {
      throw BadRequest("\"" + k + "\" must be a string");
    }
  }
  store::DeadLetterFilter f;
  f.lane = opt(m, "lane");
  f.flow = opt(m, "flow");
  f.time = time_range(m);
  return f;
}

// Runs a handler, turning BadRequest and malformed cursors into 400s.
template <typename F>
admin::Handler guarded(F f) {
  return [f = std::move(f)](const Request& q) -> Response {
    try {
      return f(q);
    } catch (const BadRequest& e) {
      return Response::error(400, "bad_request", e.what());
    } catch (const std::invalid_argument& e) {
      return Response::error(400, "bad_request", e.what());
    }
  };
}

// The handler's answer computed on the admin server's worker thread (Response::defer), with guarded()'s
// 400s: for store reads whose cost grows with what they search (a filter that matches little walks many
// events), so the admin loop keeps answering /healthz and /metrics meanwhile.
template <typename F>
Response deferred(F f) {
  return Response::defer([f = std::move(f)]() -> Response { return guarded(f)(Request{}); });
}

json bulk_json(const store::Bulk& b) {
  return {{"count", b.count}, {"lanes", b.lanes}};
}

}  // namespace

void add_operations_routes(admin::Router& r, Daemon& daemon) {
  r.add("GET", "/v1/events", guarded([&daemon](const Request& q) {
          only(q, {"flow", "type", "status", "since", "until", "limit", "cursor"});
          store::EventQuery query;
          query.flow = opt(q.query, "flow");
          query.type = opt(q.query, "type");
          if (auto s = opt(q.query, "status")) {
            query.status = store::parse_delivery_state(*s);
            if (!query.status) {
              throw BadRequest("status must be pending, delivered, dead or discarded; got \"" + *s + "\"");
            }
          }
          query.time = time_range(q.query);
          query.limit = parse_limit(q);
          query.cursor = opt(q.query, "cursor");
          return deferred([&daemon, query](const Request&) {
            const auto page = daemon.store().events(query);
            json events = json::array();
            for (const auto& e : page.events) events.push_back(record_json(e, false));
            return page_json("events", std::move(events), page.next_cursor);
          });
        }));
  r.add("GET", "/v1/events/{id}", guarded([&daemon](const Request& q) {
          const auto& id = q.params.at("id");
          const auto rec = daemon.store().event(id);
          if (!rec) return Response::error(404, "unknown_event", "no event with id or webhook id " + id);
          return Response::json(200, stored_json(record_json(*rec, true)));
        }));
  r.add("GET", "/v1/dlq", guarded([&daemon](const Request& q) {
          only(q, {"lane", "flow", "since", "until", "limit", "cursor"});
          store::DeadLetterQuery query;
          query.filter.lane = opt(q.query, "lane");
          query.filter.flow = opt(q.query, "flow");
          query.filter.time = time_range(q.query);
          query.limit = parse_limit(q);
          query.cursor = opt(q.query, "cursor");
          return deferred([&daemon, query](const Request&) {
            const auto page = daemon.store().dead_letters(query);
            json items = json::array();
            for (const auto& dl : page.dead_letters) items.push_back(dead_letter_json(dl, false));
            return page_json("dead_letters", std::move(items), page.next_cursor);
          });
        }));
  auto find = [&daemon](const Request& q, std::optional<store::DeadLetter>& out) -> std::optional<Response> {
    const auto& text = q.params.at("delivery_id");
    const int64_t id = parse_id(text);
    if (id != 0) out = daemon.store().dead_letter(id);
    if (!out) return Response::error(404, "unknown_delivery", "no delivery with id " + text);
    return std::nullopt;
  };
  r.add("GET", "/v1/dlq/{delivery_id}", guarded([find](const Request& q) {
          std::optional<store::DeadLetter> dl;
          if (auto err = find(q, dl)) return *err;
          return Response::json(200, stored_json(dead_letter_json(*dl, true)));
        }));
  auto one = [&daemon, find](bool replay) {
    return guarded([&daemon, find, replay](const Request& q) {
      std::optional<store::DeadLetter> dl;
      if (auto err = find(q, dl)) return *err;
      if (dl->delivery.state != store::DeliveryState::dead) {
        return Response::error(409, "not_dead",
                               "delivery " + std::to_string(dl->delivery.id) + " is " +
                                   store::to_string(dl->delivery.state) + ", not dead");
      }
      auto b = replay ? daemon.store().replay(dl->delivery.id) : daemon.store().discard(dl->delivery.id);
      daemon.wake_lanes(b.lanes);
      return Response::json(200, bulk_json(b).dump());
    });
  };
  r.add("POST", "/v1/dlq/{delivery_id}/replay", one(true));
  r.add("POST", "/v1/dlq/{delivery_id}/discard", one(false));
  // Bulk operations can touch many rows: off the admin loop (the filter is checked first, on it).
  r.add("POST", "/v1/dlq/replay", guarded([&daemon](const Request& q) {
          return Response::defer([&daemon, filter = bulk_filter(q.body)] {
            auto b = daemon.store().replay(filter);
            daemon.wake_lanes(b.lanes);
            return Response::json(200, bulk_json(b).dump());
          });
        }));
  r.add("POST", "/v1/dlq/discard", guarded([&daemon](const Request& q) {
          return Response::defer([&daemon, filter = bulk_filter(q.body)] {
            return Response::json(200, bulk_json(daemon.store().discard(filter)).dump());
          });
        }));

  auto flow_change = [&daemon](const Request& q, FlowChange c) {
    const auto& name = q.params.at("name");
    if (c == FlowChange::unknown_flow) return Response::error(404, "unknown_flow", "no flow named " + name);
    if (c == FlowChange::not_rotatable) {
      return Response::error(
          409, "listener_id_pinned",
          "flow " + name + " has no rotatable listener id (pinned in the files, or a bus flow)");
    }
    const auto routes = daemon.routes();
    for (const auto& f : routes->flows()) {
      if (f.name == name)
        return Response::json(200, flow_summary(*routes, f, daemon.store().flow_states()).dump());
    }
    return Response::error(404, "unknown_flow", "no flow named " + name);
  };
  r.add("POST", "/v1/flows/{name}/enable", [&daemon, flow_change](const Request& q) {
    return flow_change(q, daemon.set_flow_enabled(q.params.at("name"), true));
  });
  r.add("POST", "/v1/flows/{name}/disable", [&daemon, flow_change](const Request& q) {
    return flow_change(q, daemon.set_flow_enabled(q.params.at("name"), false));
  });
  r.add("POST", "/v1/flows/{name}/reset", [&daemon, flow_change](const Request& q) {
    return flow_change(q, daemon.set_flow_enabled(q.params.at("name"), std::nullopt));
  });
  r.add("POST", "/v1/flows/{name}/rotate-listener", [&daemon, flow_change](const Request& q) {
    return flow_change(q, daemon.rotate_listener_id(q.params.at("name")));
  });
}

}  // namespace evr::daemon
