#pragma once
// The admin API's routes over a running daemon: health, Prometheus metrics, flows and store totals.
// Handlers run on the admin server's own thread; the store calls they make are the blocking read-side ones
// (SQLite WAL readers do not wait for the writer), so ingest and delivery never wait for an operator.

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "evrouter/admin/router.h"
#include "evrouter/flow/routes.h"
#include "evrouter/store/store.h"

namespace evr::daemon {

class Daemon;

admin::Router make_admin_router(Daemon& daemon);

// Operators' routes (operations_api.cpp): events, dead letters, runtime flow state.
void add_operations_routes(admin::Router& router, Daemon& daemon);
// Schema discovery (schemas_api.cpp): GET /v1/schemas, GET /v1/schemas/{source}/{type...}.
void add_schema_routes(admin::Router& router, Daemon& daemon);

// GET /v1/flows/{name}/stats (flow_stats_api.cpp): windowed per-flow counters and lane latencies.
void add_flow_stats_routes(admin::Router& router, Daemon& daemon);

// POST /v1/flows/{name}/replay (replay_api.cpp): a time window through the flow's current definition.
void add_replay_routes(admin::Router& router, Daemon& daemon);

// GET /v1/openapi (openapi_api.cpp): the OpenAPI document of this API, as JSON.
void add_openapi_route(admin::Router& router);

// A flow as GET /v1/flows shows it; "enabled_override" is the runtime override (null: the files decide).
nlohmann::json flow_summary(const flow::Routes& routes, const flow::Flow& f,
                            const std::map<std::string, store::FlowState>& states);

}  // namespace evr::daemon
