#pragma once
// The admin API's OpenAPI 3.0 document (docs/openapi.json), built into the binary for GET /v1/openapi.

#include <string_view>

namespace evr::admin {

std::string_view openapi_json();

}  // namespace evr::admin
