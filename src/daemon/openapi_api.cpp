// GET /v1/openapi: the OpenAPI document of the admin API (docs/openapi.json).
#include "daemon/admin_api.h"
#include "evrouter/admin/openapi.h"

namespace evr::daemon {

void add_openapi_route(admin::Router& r) {
  r.add("GET", "/v1/openapi",
        [](const admin::Request&) { return admin::Response::json(200, std::string(admin::openapi_json())); });
}

}  // namespace evr::daemon
