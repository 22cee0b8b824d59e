// The admin API of a running daemon: health without a token, everything else behind it, Prometheus text,
// flows with their listener URLs, store totals after a webhook.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "e2e/pipeline_fixture.h"
#include "support/slowdown.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

TEST_F(PipelineTest, AdminApiServesHealthMetricsAndFlows) {
  ::setenv("EVR_TEST_ADMIN_TOKEN", "admin-token-for-tests", 1);
  auto cfg = make_config();
  cfg.flows[0].name = "admin-orders";  // series of its own in the process-wide metrics registry
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  cfg.admin.token = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_ADMIN_TOKEN", {}};
  start(cfg);
  const uint16_t admin = daemon_->admin_port();
  ASSERT_NE(admin, 0);
  ASSERT_NE(admin, daemon_->port());
  const std::vector<std::pair<std::string, std::string>> auth{
      {"Authorization", "Bearer admin-token-for-tests"}};

  EXPECT_EQ(http_request(admin, "GET", "/healthz", {}, "").status, 200);
  EXPECT_EQ(http_request(admin, "GET", "/readyz", {}, "").status, 200);
  EXPECT_EQ(http_request(admin, "GET", "/metrics", {}, "").status, 401);
  EXPECT_EQ(http_request(admin, "GET", "/v1/flows", {{"Authorization", "Bearer nope"}}, "").status, 401);

  ASSERT_EQ(post(order("150.00")).status, 200);
  ASSERT_EQ(post(order("150.00"), {}, "orders/create", "wrong-secret").status, 401);
  ASSERT_TRUE(sink_.wait_for(1, 10s));

  auto flows = http_request(admin, "GET", "/v1/flows", auth, "");
  ASSERT_EQ(flows.status, 200) << flows.body;
  const auto j = nlohmann::json::parse(flows.body);
  ASSERT_EQ(j["flows"].size(), 1U);
  EXPECT_EQ(j["flows"][0]["name"], "admin-orders");
  EXPECT_EQ(j["flows"][0]["listener_url"],
            "http://127.0.0.1:" + std::to_string(daemon_->port()) + "/hooks/" + kListener);
  EXPECT_EQ(j["flows"][0]["branches"][0]["lanes"][0], "admin-orders/priority/sink");
  EXPECT_EQ(http_request(admin, "GET", "/v1/flows/nope", auth, "").status, 404);
  // Every answer names the instance and whether it is cluster-wide (the store's) or this instance's own.
  EXPECT_EQ(flows.headers["x-evrouter-scope"], "cluster");
  EXPECT_EQ(flows.headers["x-evrouter-instance"], daemon_->instance_id());
  EXPECT_EQ(daemon_->instance_id().substr(daemon_->instance_id().rfind('/') + 1), std::to_string(::getpid()));
  for (const char* path : {"/v1/connections", "/v1/flows/admin-orders/stats", "/v1/schemas", "/v1/stats"}) {
    EXPECT_EQ(http_request(admin, "GET", path, auth, "").headers["x-evrouter-scope"], "instance") << path;
  }
  EXPECT_EQ(http_request(admin, "GET", "/v1/events", auth, "").headers["x-evrouter-scope"], "cluster");

  // The delivery's outcome is recorded asynchronously after the sink answers.
  nlohmann::json stats;
  for (int i = 0; i < 100; ++i) {
    stats = nlohmann::json::parse(http_request(admin, "GET", "/v1/stats", auth, "").body);
    if (stats["deliveries"]["delivered"] == 1) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(stats["events"], 1);
  EXPECT_EQ(stats["deliveries"]["delivered"], 1);

  auto metrics = http_request(admin, "GET", "/metrics", auth, "");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("# TYPE evrouter_store_events gauge\nevrouter_store_events 1\n"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("evrouter_store_deliveries{state=\"delivered\"} 1\n"), std::string::npos);
  // Ingest answers per flow and result.
  EXPECT_NE(metrics.body.find("evrouter_webhooks_total{flow=\"admin-orders\",result=\"accepted\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      metrics.body.find("evrouter_webhooks_total{flow=\"admin-orders\",result=\"invalid_signature\"} 1\n"),
      std::string::npos);
  // Delivery metrics per lane.
  EXPECT_NE(
      metrics.body.find("evrouter_deliveries_total{flow=\"admin-orders\",lane=\"admin-orders/priority/sink\","
                        "outcome=\"delivered\"} 1\n"),
      std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(
                "evrouter_delivery_attempts_total{flow=\"admin-orders\",lane=\"admin-orders/priority/sink\","
                "class=\"2xx\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      metrics.body.find("evrouter_delivery_attempt_seconds_count{flow=\"admin-orders\",lane=\"admin-orders/"
                        "priority/sink\"} 1\n"),
      std::string::npos);
  // A status class's series appears with its first attempt (a start with many lanes makes fewer series).
  EXPECT_EQ(metrics.body.find("class=\"5xx\""), std::string::npos);
  // How long after receipt the first attempt went out.
  EXPECT_GE(metric_sample(metrics.body, "evrouter_delivery_lag_seconds_count"), 1) << metrics.body;
  EXPECT_GE(metric_sample(metrics.body, "evrouter_delivery_lag_seconds_bucket{le=\"+Inf\"}"), 1);
}

namespace evr::test {

TEST_F(PipelineTest, AdminTestsAConnectionPhaseByPhase) {
  auto cfg = make_config();
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  start(std::move(cfg));
  const uint16_t admin = daemon_->admin_port();
  auto r = http_request(admin, "POST", "/v1/connections/sink/test", {}, R"({"probe":"/health"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_TRUE(j["ok"].get<bool>()) << r.body;
  EXPECT_EQ(j["phases"].size(), 3u) << r.body;  // dns, connect, probe
  EXPECT_EQ(j["probe_status"], 200);
  ASSERT_GE(sink_.count(), 1u);
  EXPECT_EQ(sink_.requests().back().target, "/api/health");
  EXPECT_EQ(sink_.requests().back().header("authorization"), "Bearer sink-token");  // the connection's auth
  EXPECT_EQ(http_request(admin, "POST", "/v1/connections/nope/test", {}, "").status, 404);
  EXPECT_EQ(http_request(admin, "POST", "/v1/connections/sink/test", {}, "[1]").status, 400);
}

// Slow admin work runs off the admin loop (Response::deferred): while a connection test waits for a slow
// probe, the loop still answers /metrics at once; the deferred answer keeps the router's headers.
TEST_F(PipelineTest, AdminLoopAnswersWhileAConnectionTestWaits) {
  auto cfg = make_config();
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  start(std::move(cfg));
  const auto probe_delay = std::chrono::milliseconds(1500);
  sink_.set_handler([probe_delay](const Recorded& req) {
    Reply r;
    if (req.target == "/api/slow") r.delay = probe_delay;
    return r;
  });
  const uint16_t admin = daemon_->admin_port();
  PostResult tested;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread slow(
      [&] { tested = http_request(admin, "POST", "/v1/connections/sink/test", {}, R"({"probe":"/slow"})"); });
  ASSERT_TRUE(sink_.wait_for(1, scaled(std::chrono::milliseconds(5000))));  // the probe has arrived
  const auto m0 = std::chrono::steady_clock::now();
  const auto metrics = http_request(admin, "GET", "/metrics", {}, "");
  const auto metrics_took = std::chrono::steady_clock::now() - m0;
  slow.join();
  const auto test_took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(metrics.status, 200);
  EXPECT_LT(metrics_took, scaled(std::chrono::milliseconds(500)));
  ASSERT_EQ(tested.status, 200) << tested.body;
  EXPECT_EQ(nlohmann::json::parse(tested.body)["probe_status"], 200) << tested.body;
  EXPECT_GE(test_took, probe_delay);
  EXPECT_EQ(tested.headers["x-evrouter-scope"], "instance");  // connections are per instance
}

}  // namespace evr::test
