// GET /v1/flows/{name}/stats over real HTTP after real webhooks (accepted, duplicate, refused, ignored) and
// deliveries (delivered, retried, dead); the store's commit metrics on /metrics.
#include <gtest/gtest.h>

#include <atomic>

#include "e2e/pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_F(PipelineTest, FlowStatsCountWebhooksBranchesOutcomesAndLatency) {
  auto cfg = make_config();
  cfg.flows[0].name = "stats-orders";  // its own entries in the process-wide stats
  cfg.admin.enabled = true;            // no token: loopback only, no auth
  cfg.admin.port = 0;
  start(cfg);
  const uint16_t admin = daemon_->admin_port();
  ASSERT_NE(admin, 0);

  // priority lane: 200 after 20 ms. standard lane: order 1001 refused (dead); order 1002 answered 503 once,
  // then 200 (one retry, then delivered).
  std::atomic<int> retried{0};
  sink_.set_handler([&retried](const Recorded& r) {
    Reply reply;
    if (r.target.find("/api/orders/priority") != std::string::npos) {
      reply.delay = 20ms;
    } else if (r.body.find("\"id\":1001") != std::string::npos) {
      reply.status = 400;
    } else if (r.body.find("\"id\":1002") != std::string::npos && retried++ == 0) {
      reply.status = 503;
    }
    return reply;
  });

  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_EQ(post(order("250.00", 2)).status, 200);
  ASSERT_EQ(post(order("5.00", 1001)).status, 200);
  ASSERT_EQ(post(order("5.00", 1002)).status, 200);
  ASSERT_EQ(post(order("150.00", 1), {{"X-Shopify-Webhook-Id", "wh-1"}}).status, 200);  // duplicate
  ASSERT_EQ(post(order("150.00", 3), {}, "orders/create", "wrong-secret").status, 401);
  ASSERT_EQ(post(order("150.00", 4), {}, "orders/create", "wrong-secret").status, 401);
  ASSERT_EQ(post(order("150.00", 5), {}, "products/create").status, 200);  // topic not subscribed: ignored

  auto get = [admin](const std::string& target) { return http_request(admin, "GET", target, {}, ""); };
  json s;
  for (int i = 0; i < 500; ++i) {
    auto r = get("/v1/flows/stats-orders/stats?window=1m");
    ASSERT_EQ(r.status, 200) << r.body;
    s = json::parse(r.body);
    if (s["delivered"] == 3 && s["dead"] == 1) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(s["flow"], "stats-orders");
  EXPECT_EQ(s["window"], "1m");
  EXPECT_EQ(s["received"], 8) << s.dump(2);
  EXPECT_EQ(s["accepted"], 4);
  EXPECT_EQ(s["duplicates"], 1);
  EXPECT_EQ(s["ignored"], 1);
  EXPECT_EQ(s["rejected"], 2);
  EXPECT_EQ(s["rejected_by_reason"], json({{"invalid_signature", 2}}));
  EXPECT_EQ(s["matched_by_branch"], json({{"priority", 2}, {"standard", 2}})) << s.dump(2);
  EXPECT_EQ(s["unmatched"], 0);
  EXPECT_EQ(s["delivered"], 3);
  EXPECT_EQ(s["retrying"], 1);
  EXPECT_EQ(s["dead"], 1);

  const auto& priority = s["lanes"]["stats-orders/priority/sink"];
  EXPECT_EQ(priority["delivered"], 2);
  EXPECT_EQ(priority["dead"], 0);
  EXPECT_EQ(priority["latency_ms"]["attempts"], 2);
  // The sink waits 20 ms: the median falls in the 10-25 ms bin or above (a loaded machine is slower).
  EXPECT_GE(priority["latency_ms"]["p50"].get<double>(), 10.0) << priority.dump();
  EXPECT_LE(priority["latency_ms"]["p50"].get<double>(), priority["latency_ms"]["p90"].get<double>());
  EXPECT_LE(priority["latency_ms"]["p90"].get<double>(), priority["latency_ms"]["p99"].get<double>());
  const auto& standard = s["lanes"]["stats-orders/standard/sink"];
  EXPECT_EQ(standard["delivered"], 1);
  EXPECT_EQ(standard["retrying"], 1);
  EXPECT_EQ(standard["dead"], 1);
  EXPECT_EQ(standard["latency_ms"]["attempts"], 3);

  // The longer windows hold the same traffic.
  for (const char* w : {"1h", "24h"}) {
    auto r = json::parse(get(std::string("/v1/flows/stats-orders/stats?window=") + w).body);
    EXPECT_EQ(r["window"], w);
    EXPECT_EQ(r["received"], 8) << w;
    EXPECT_EQ(r["delivered"], 3) << w;
  }
  EXPECT_EQ(json::parse(get("/v1/flows/stats-orders/stats").body)["window"], "1h");  // the default
  auto bad = get("/v1/flows/stats-orders/stats?window=5m");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"], "bad_request");
  EXPECT_EQ(get("/v1/flows/stats-orders/stats?windw=1m").status, 400);
  auto unknown = get("/v1/flows/nope/stats");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["error"], "unknown_flow");

  // The store's group commits are measured: latency and ingests per transaction.
  const auto metrics = get("/metrics").body;
  EXPECT_GT(metric_sample(metrics, "evrouter_store_commit_seconds_count"), 0) << metrics;
  EXPECT_GT(metric_sample(metrics, "evrouter_store_commit_seconds_sum"), 0);
  EXPECT_GT(metric_sample(metrics, "evrouter_store_commit_batch_size_count"), 0);
  EXPECT_GE(metric_sample(metrics, "evrouter_store_commit_batch_size_sum"),
            4);  // at least this test's 4 ingests
  EXPECT_NE(metrics.find("# TYPE evrouter_store_commit_seconds histogram"), std::string::npos);
  EXPECT_NE(metrics.find("evrouter_store_commit_batch_size_bucket{le=\"1\"}"), std::string::npos);
}

// Ingest latency on /metrics: every webhook answer is timed by status class (2xx, 4xx, 5xx); of those, the
// ones that reached the store also count the store's share. Probes and unknown paths are not timed.
TEST_F(PipelineTest, IngestLatencyIsMeasuredByAnswerClassAndTheStoresShare) {
  auto cfg = make_config();
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  start(cfg);
  auto metrics = [this] { return http_request(daemon_->admin_port(), "GET", "/metrics", {}, "").body; };
  const auto series = [](const std::string& code, const char* part) {
    return std::string("evrouter_ingest_seconds_") + part + "{code=\"" + code + "\"}";
  };
  const std::string before = metrics();
  auto delta = [&before](const std::string& after, const std::string& s) {
    return std::max(metric_sample(after, s), 0.0) - std::max(metric_sample(before, s), 0.0);
  };

  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_EQ(post(order("5.00", 2)).status, 200);
  ASSERT_EQ(post(order("5.00", 3)).status, 200);
  ASSERT_EQ(post(order("5.00", 3), {{"X-Shopify-Webhook-Id", "wh-3"}}).status, 200);  // duplicate
  ASSERT_EQ(post(order("5.00", 4), {}, "products/create").status, 200);               // ignored: not stored
  ASSERT_EQ(post(order("5.00", 5), {}, "orders/create", "wrong-secret").status, 401);
  ASSERT_EQ(post(order("5.00", 6), {}, "orders/create", "wrong-secret").status, 401);
  ASSERT_EQ(http_request(daemon_->port(), "GET", "/healthz", {}, "").status, 200);
  ASSERT_EQ(http_request(daemon_->port(), "POST", "/hooks/nobody-listens-here", {}, "{}").status, 404);

  const std::string after = metrics();
  EXPECT_EQ(delta(after, series("2xx", "count")), 5) << after;
  EXPECT_EQ(delta(after, series("4xx", "count")), 2);
  EXPECT_EQ(delta(after, series("5xx", "count")), 0);
  EXPECT_EQ(delta(after, "evrouter_ingest_store_seconds_count"), 4);  // accepted and duplicate
  const double answered = delta(after, series("2xx", "sum"));
  const double stored = delta(after, "evrouter_ingest_store_seconds_sum");
  EXPECT_GT(stored, 0);
  EXPECT_LE(stored, answered) << "the store's share is part of the answer's time";
  EXPECT_NE(after.find("# TYPE evrouter_ingest_seconds histogram"), std::string::npos);
  EXPECT_NE(after.find("evrouter_ingest_seconds_bucket{code=\"2xx\",le=\"0.00025\"}"), std::string::npos)
      << after;
  EXPECT_EQ(metric_sample(after, "evrouter_ingest_store_seconds_bucket{le=\"+Inf\"}"),
            metric_sample(after, "evrouter_ingest_store_seconds_count"));
}
