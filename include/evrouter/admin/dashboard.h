#pragma once
// The dashboard: one self-contained page (HTML, CSS and JavaScript, nothing fetched from elsewhere) served
// by the admin API at /dashboard. It reads everything through the admin API with the admin token.
// Source: src/admin/dashboard/index.html, embedded at build time.

#include <string_view>

namespace evr::admin {

std::string_view dashboard_html();

}  // namespace evr::admin
