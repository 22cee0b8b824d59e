// The admin HTTP server and router: bearer auth in front of everything but health checks, JSON errors,
// path parameters and query decoding.
#include "evrouter/admin/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <vector>

#include "evrouter/metrics/metrics.h"
#include "support/harness.h"
#include "support/sink.h"

using namespace evr::admin;
using evr::test::http_request;

namespace {

Router make_router() {
  Router r;
  r.add("GET", "/healthz", [](const Request&) { return Response::json(200, R"({"status":"ok"})"); });
  r.add("GET", "/v1/flows/{name}", [](const Request& q) {
    return Response::json(
        200, nlohmann::json{{"name", q.params.at("name")}, {"view", q.q("view", "summary")}}.dump());
  });
  r.add("POST", "/v1/flows/{name}/disable", [](const Request& q) {
    return Response::json(200, nlohmann::json{{"disabled", q.params.at("name")}, {"body", q.body}}.dump());
  });
  r.add("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("kaput"); });
  return r;
}

}  // namespace

TEST(AdminRouter, MatchesTemplatesAndDecodes) {
  const Router r = make_router();
  Request q;
  q.method = "GET";
  ASSERT_TRUE(parse_target("/v1/flows/shopify%2Dorders?view=full+detail&x=%41", q.path, q.query));
  EXPECT_EQ(q.path, "/v1/flows/shopify-orders");
  EXPECT_EQ(q.q("x"), "A");
  const auto resp = r.route(q);
  EXPECT_EQ(resp.status, 200U);
  EXPECT_EQ(nlohmann::json::parse(resp.body)["view"], "full detail");

  Request bad;
  EXPECT_FALSE(parse_target("/a%zz", bad.path, bad.query));
  EXPECT_FALSE(parse_target("/a%4", bad.path, bad.query));

  Request wrong_method;
  wrong_method.method = "DELETE";
  wrong_method.path = "/v1/flows/x/disable";
  const auto r405 = r.route(wrong_method);
  EXPECT_EQ(r405.status, 405U);
  ASSERT_EQ(r405.headers.size(), 1U);
  EXPECT_EQ(r405.headers[0].second, "POST");

  Request missing;
  missing.method = "GET";
  missing.path = "/v1/nothing";
  EXPECT_EQ(r.route(missing).status, 404U);
  EXPECT_EQ(nlohmann::json::parse(r.route(missing).body)["error"], "not_found");

  Request boom;
  boom.method = "GET";
  boom.path = "/boom";
  EXPECT_EQ(r.route(boom).status, 500U);
  EXPECT_EQ(r.routes().size(), 4U);
}

TEST(AdminServer, TokenGuardsEverythingButHealth) {
  const Router router = make_router();
  Options o;
  o.port = 0;
  o.token = "admin-secret-token";
  auto server = make_server(o, router);
  server->start();
  const auto port = server->port();

  auto health = http_request(port, "GET", "/healthz", {}, "");
  EXPECT_EQ(health.status, 200);

  auto none = http_request(port, "GET", "/v1/flows/a", {}, "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(nlohmann::json::parse(none.body)["error"], "unauthorized");
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"evrouter-admin\"");

  auto wrong = http_request(port, "GET", "/v1/flows/a", {{"Authorization", "Bearer admin-secret-tokeN"}}, "");
  EXPECT_EQ(wrong.status, 401);
  auto basic = http_request(port, "GET", "/v1/flows/a", {{"Authorization", "Basic YWRtaW46eA=="}}, "");
  EXPECT_EQ(basic.status, 401);

  auto ok = http_request(port, "GET", "/v1/flows/a", {{"Authorization", "Bearer admin-secret-token"}}, "");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body)["name"], "a");
  EXPECT_EQ(ok.headers["content-type"], "application/json");

  auto post = http_request(port, "POST", "/v1/flows/a/disable",
                           {{"Authorization", "Bearer admin-secret-token"}}, R"({"reason":"maintenance"})");
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(nlohmann::json::parse(post.body)["body"], R"({"reason":"maintenance"})");

  auto big = http_request(port, "POST", "/v1/flows/a/disable",
                          {{"Authorization", "Bearer admin-secret-token"}}, std::string(2 << 20, 'x'));
  EXPECT_EQ(big.status, 413) << big.error;
  server->stop();
}

TEST(AdminServer, WithoutTokenOnlyLoopback) {
  const Router router = make_router();
  Options o;
  o.port = 0;
  o.listen = "0.0.0.0";
  auto exposed = make_server(o, router);
  EXPECT_THROW(exposed->start(), std::runtime_error);

  o.listen = "127.0.0.1";
  auto local = make_server(o, router);
  local->start();
  EXPECT_EQ(http_request(local->port(), "GET", "/v1/flows/x", {}, "").status, 200);
  local->stop();
}

// admin.max_connections: at the limit the server stops accepting (new connections wait in the kernel's
// backlog, not refused) and serves the next one as soon as one closes; the stop is counted.
TEST(AdminServer, ConnectionsPastTheLimitWaitUntilOneCloses) {
  const Router router = make_router();
  Options o;
  o.port = 0;
  o.max_connections = 2;
  auto server = make_server(o, router);
  server->start();
  const auto port = server->port();
  const double reached_before = evr::test::metric_sample(evr::metrics::Registry::global().render(),
                                                         "evrouter_admin_connection_limit_reached_total");

  std::vector<int> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(evr::test::connect_loopback(port));
    ASSERT_GE(idle.back(), 0);
  }
  auto third =
      std::async(std::launch::async, [port] { return http_request(port, "GET", "/healthz", {}, ""); });
  EXPECT_EQ(third.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "served past admin.max_connections";
  ::close(idle.back());
  idle.pop_back();
  ASSERT_EQ(third.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "not served after one closed";
  EXPECT_EQ(third.get().status, 200);
  EXPECT_GE(evr::test::metric_sample(evr::metrics::Registry::global().render(),
                                     "evrouter_admin_connection_limit_reached_total"),
            std::max(reached_before, 0.0) + 1);
  for (int fd : idle) ::close(fd);
  server->stop();
}
