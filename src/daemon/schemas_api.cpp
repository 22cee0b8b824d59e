// Admin routes for schema discovery: the payload schemas inferred per source and event type.
//   GET /v1/schemas                                  list with counts
//   GET /v1/schemas/{source}/{type...}[?format=]     one schema; the type's '/' may be written as is
//                                                    (orders/create) or encoded (orders%2Fcreate)
//   GET /v1/schemas/{source}?type=T[&format=]        the same, the type as a query parameter
// format=fields (default): every field path with types, required and a sample; format=json-schema: a
// JSON Schema (draft 2020-12) document.
#include <nlohmann/json.hpp>

#include "daemon/admin_api.h"
#include "evrouter/daemon/daemon.h"

namespace evr::daemon {
namespace {

using admin::Request;
using admin::Response;
using json = nlohmann::json;

// Event types have at most this many '/'-separated segments in the path form.
constexpr int kMaxTypeSegments = 6;

json seen_time_or_null(int64_t ms) {
  return ms == 0 ? json(nullptr) : json(event::format_time(ms));
}

Response disabled() {
  return Response::error(404, "schemas_disabled", "schema discovery is off (schemas.enabled: false)");
}

json sample_json(const std::optional<std::string>& sample) {
  if (!sample) return nullptr;
  auto j = json::parse(*sample, nullptr, false);
  return j.is_discarded() ? json(*sample) : j;
}

Response one(Daemon& daemon, const Request& q, const std::string& source, const std::string& type) {
  for (const auto& [k, _] : q.query) {
    if (k != "format" && k != "type")
      return Response::error(400, "bad_request", "unknown query parameter \"" + k + "\"");
  }
  const std::string format = q.q("format", "fields");
  if (format != "fields" && format != "json-schema") {
    return Response::error(400, "bad_request",
                           "format must be fields or json-schema; got \"" + format + "\"");
  }
  auto* registry = daemon.schemas();
  if (registry == nullptr) return disabled();
  if (type.empty())
    return Response::error(400, "bad_request", "give the event type: /v1/schemas/{source}/{type}");
  const auto s = registry->get(source, type);
  if (!s) {
    return Response::error(404, "unknown_schema",
                           "no schema inferred yet for source " + source + ", type " + type);
  }
  if (format == "json-schema") {
    auto r =
        Response::json(200, schema::json_schema(*s).dump(-1, ' ', false, json::error_handler_t::replace));
    r.content_type = "application/schema+json";
    return r;
  }
  json fields = json::array();
  for (const auto& f : schema::fields(*s)) {
    fields.push_back({{"path", f.path},
                      {"types", f.types},
                      {"required", f.required},
                      {"seen", f.seen},
                      {"sample", sample_json(f.sample)}});
  }
  return Response::json(200, json{{"source", s->source},
                                  {"type", s->type},
                                  {"events", s->events},
                                  {"first_seen", seen_time_or_null(s->first_seen_ms)},
                                  {"last_seen", seen_time_or_null(s->last_seen_ms)},
                                  {"truncated", s->truncated},
                                  {"fields", std::move(fields)}}
                                 .dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

void add_schema_routes(admin::Router& r, Daemon& daemon) {
  r.add("GET", "/v1/schemas", [&daemon](const Request&) {
    auto* registry = daemon.schemas();
    if (registry == nullptr) return disabled();
    json items = json::array();
    for (const auto& s : registry->list()) {
      items.push_back({{"source", s.source},
                       {"type", s.type},
                       {"events", s.events},
                       {"fields", s.fields},
                       {"truncated", s.truncated},
                       {"first_seen", seen_time_or_null(s.first_seen_ms)},
                       {"last_seen", seen_time_or_null(s.last_seen_ms)}});
    }
    const auto st = registry->stats();
    return Response::json(200, json{{"schemas", std::move(items)},
                                    {"stats",
                                     {{"observed", st.observed},
                                      {"sampled_out", st.sampled_out},
                                      {"dropped", st.dropped},
                                      {"unparsable", st.unparsable},
                                      {"over_limit", st.over_limit},
                                      {"queued", st.queued}}}}
                                   .dump());
  });
  r.add("GET", "/v1/schemas/{source}",
        [&daemon](const Request& q) { return one(daemon, q, q.params.at("source"), q.q("type")); });
  std::string path = "/v1/schemas/{source}";
  for (int i = 1; i <= kMaxTypeSegments; ++i) {
    path += "/{t" + std::to_string(i) + "}";
    r.add("GET", path, [&daemon, i](const Request& q) {
      std::string type;
      for (int k = 1; k <= i; ++k) {
        if (k > 1) type += '/';
        std::string key(1, 't');  // not "t" + to_string(k): GCC 12 warns of a false overlap (-Wrestrict)
        key += std::to_string(k);
        type += q.params.at(key);
      }
      if (q.query.count("type")) {
        return Response::error(400, "bad_request", "give the type in the path or as ?type=, not both");
      }
      return one(daemon, q, q.params.at("source"), type);
    });
  }
}

}  // namespace evr::daemon
