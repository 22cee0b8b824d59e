// Response classification, the circuit breaker and adaptive concurrency, end to end: a daemon in-process
// delivering to a real HTTP sink on 127.0.0.1.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "e2e/pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

// Waits until `pred` holds (polling); false after `timeout`.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

int64_t ms_between(const Recorded& a, const Recorded& b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b.arrived - a.arrived).count();
}

}  // namespace

class DeliveryGuardsTest : public PipelineTest {
 protected:
  connection::ConnectionState sink_state() {
    for (auto& c : daemon_->connections()) {
      if (c.name == "sink") return c;
    }
    ADD_FAILURE() << "no connection sink";
    return {};
  }
};

TEST_F(DeliveryGuardsTest, ConfiguredSuccessStatusIsDelivered) {
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 409;
    return r;
  });
  auto cfg = make_config();
  for (auto& b : cfg.flows[0].branches) b.destinations[0].responses = config::Responses{{"409"}, {}, {}};
  start(cfg);
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 5s));
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 1; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(sink_.count(), 1u);
  EXPECT_EQ(daemon_->store().counts().dead, 0);
}

TEST_F(DeliveryGuardsTest, ConfiguredRetryStatusIsRetried) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    r.status = ++calls <= 2 ? 404 : 200;
    return r;
  });
  auto cfg = make_config();
  cfg.connections["sink"].responses.retry = {"404"};
  start(cfg);
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 1; }));
  const auto reqs = sink_.requests();
  EXPECT_EQ(reqs[2].header("x-evrouter-attempt"), "3");
  EXPECT_EQ(daemon_->store().counts().dead, 0);
}

TEST_F(DeliveryGuardsTest, UnconfiguredClientErrorStillFails) {
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 404;
    return r;
  });
  start(make_config());
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().dead == 1; }));
  EXPECT_EQ(sink_.count(), 1u);
}

TEST_F(DeliveryGuardsTest, BreakerOpensProbesAndCloses) {
  std::atomic<bool> failing{true};
  sink_.set_handler([&failing](const Recorded&) {
    Reply r;
    r.status = failing ? 500 : 200;
    return r;
  });
  auto cfg = make_config();
  auto& c = cfg.connections["sink"];
  c.concurrency = 1;
  c.breaker = {3, 1000ms};
  c.retry.max_attempts = 50;
  c.retry.backoff_base = 10ms;
  c.retry.backoff_cap = 20ms;
  start(cfg);
  EXPECT_EQ(sink_state().breaker, connection::BreakerState::closed);

  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  ASSERT_TRUE(eventually([&] { return sink_state().breaker == connection::BreakerState::open; }));
  auto st = sink_state();
  EXPECT_EQ(st.consecutive_failures, 3);
  EXPECT_GT(st.opened_at_ms, 0);
  EXPECT_GE(st.next_probe_ms, st.opened_at_ms);
  // While open, new deliveries wait: nothing reaches the sink and no attempt is spent.
  ASSERT_EQ(post(order("10.00", 2)).status, 200);
  ASSERT_EQ(post(order("10.00", 3)).status, 200);
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(sink_.count(), 3u);

  // One probe after the cooldown; it fails: open again, with the cooldown doubled.
  ASSERT_TRUE(sink_.wait_for(4, 5s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sink_.count(), 4u);  // exactly one probe
  auto reqs = sink_.requests();
  EXPECT_GE(ms_between(reqs[2], reqs[3]), 950);
  EXPECT_EQ(sink_state().breaker, connection::BreakerState::open);

  // The next probe succeeds: closed, and everything waiting goes.
  failing = false;
  ASSERT_TRUE(sink_.wait_for(7, 8s));
  reqs = sink_.requests();
  EXPECT_GE(ms_between(reqs[3], reqs[4]), 1950);
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 3; }));
  EXPECT_EQ(sink_state().breaker, connection::BreakerState::closed);
  EXPECT_EQ(sink_state().consecutive_failures, 0);
  EXPECT_EQ(sink_.count(), 7u);  // 3 failures, 1 failed probe, the successful probe and the two waiting
}

TEST_F(DeliveryGuardsTest, BreakerOffWhenFailuresIsZero) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    r.status = ++calls <= 4 ? 503 : 200;
    return r;
  });
  auto cfg = make_config();
  cfg.connections["sink"].breaker = {0, 10s};
  cfg.connections["sink"].breaker.failures = 0;
  cfg.connections["sink"].concurrency = 1;
  cfg.connections["sink"].retry.max_attempts = 10;
  start(cfg);
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 1; }, 8s));
  EXPECT_EQ(sink_.count(), 5u);
  EXPECT_EQ(sink_state().breaker, connection::BreakerState::closed);
}

TEST_F(DeliveryGuardsTest, FixedCapHoldsAcrossLanes) {
  sink_.set_handler([](const Recorded& r) {
    Reply out;
    out.delay = r.target.find("priority") != std::string::npos ? 60ms : 20ms;
    return out;
  });
  auto cfg = make_config();
  cfg.connections["sink"].concurrency = 2;
  start(cfg);
  constexpr int kN = 30;
  for (int i = 0; i < kN; ++i) ASSERT_EQ(post(order(i % 2 ? "150.00" : "10.00", i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(kN, 10s));
  EXPECT_LE(sink_.max_in_flight(), 2);
  const auto st = sink_state();
  EXPECT_EQ(st.concurrency_limit, 2);
  EXPECT_FALSE(st.adaptive);
  EXPECT_LE(st.in_flight, 2);
}

// The sink answers fast while at most kKnee requests are in flight and slowly above that: the adaptive
// limit must settle near kKnee, well below its max.
TEST_F(DeliveryGuardsTest, AdaptiveConcurrencySettlesNearTheKnee) {
  constexpr int kKnee = 6;
  constexpr int kMax = 40;
  sink_.set_handler([](const Recorded& r) {
    Reply out;
    out.delay = r.in_flight > kKnee ? 200ms : 20ms;
    return out;
  });
  auto cfg = make_config();
  cfg.store.durability = config::Store::Durability::none;
  auto& c = cfg.connections["sink"];
  c.concurrency = kMax;
  c.adaptive = {true, 2};
  start(cfg);
  EXPECT_EQ(sink_state().concurrency_limit, 2);

  std::atomic<bool> done{false};
  std::vector<int> samples;
  std::thread sampler([&] {
    const auto t0 = std::chrono::steady_clock::now();
    while (!done) {
      std::this_thread::sleep_for(50ms);
      if (std::chrono::steady_clock::now() - t0 > 1500ms) samples.push_back(sink_state().concurrency_limit);
    }
  });
  // Two producers: the destination, not ingest, must be the bottleneck.
  constexpr int kN = 800;
  std::atomic<int> posted{0}, refused{0};
  auto produce = [&](int first) {
    for (int i = first; i < kN; i += 2) {
      ++posted;
      const std::string body = order("10.00", i);
      const auto r = http_request(daemon_->port(), "POST", std::string("/hooks/") + kListener,
                                  {{"Content-Type", "application/json"},
                                   {"X-Shopify-Topic", "orders/create"},
                                   {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                                   {"X-Shopify-Shop-Domain", "evrouter-test.myshopify.com"},
                                   {"X-Shopify-Webhook-Id", "adaptive-" + std::to_string(i)}},
                                  body);
      if (r.status != 200) ++refused;
    }
  };
  std::thread producer1(produce, 0);
  std::thread producer2(produce, 1);
  producer1.join();
  producer2.join();
  EXPECT_EQ(refused, 0);
  const bool all = sink_.wait_for(kN, 20s);
  done = true;
  sampler.join();
  ASSERT_TRUE(all);
  EXPECT_LE(sink_.max_in_flight(), kMax);
  ASSERT_GE(samples.size(), 5u);
  std::sort(samples.begin(), samples.end());
  const int median = samples[samples.size() / 2];
  std::string all_samples;
  for (int s : samples) all_samples += std::to_string(s) + " ";
  std::printf("concurrency limit samples (sorted): %s; max in flight at the sink: %d\n", all_samples.c_str(),
              sink_.max_in_flight());
  EXPECT_GE(median, 3) << all_samples;
  EXPECT_LE(median, 2 * kKnee) << all_samples;
  EXPECT_LT(samples.back(), kMax) << all_samples;
}

TEST_F(DeliveryGuardsTest, AdminApiAndMetricsShowConnectionState) {
  ::setenv("EVR_TEST_ADMIN_TOKEN", "admin-token-for-tests", 1);
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 503;
    return r;
  });
  auto cfg = make_config();
  cfg.connections.erase("sink");
  auto c = make_config().connections.at("sink");
  c.name = "guarded";  // series of its own in the process-wide metrics registry
  c.breaker = {2, 10s};
  c.concurrency = 1;
  c.rate_limit = {50, 5};
  cfg.connections["guarded"] = c;
  for (auto& b : cfg.flows[0].branches) b.destinations[0].connection = "guarded";
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  cfg.admin.token = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_ADMIN_TOKEN", {}};
  start(cfg);
  const std::vector<std::pair<std::string, std::string>> auth{
      {"Authorization", "Bearer admin-token-for-tests"}};
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 5s));

  nlohmann::json j;
  ASSERT_TRUE(eventually([&] {
    const auto r = http_request(daemon_->admin_port(), "GET", "/v1/connections", auth, "");
    if (r.status != 200) return false;
    j = nlohmann::json::parse(r.body);
    return j["connections"].size() == 1 && j["connections"][0]["breaker"]["state"] == "open";
  })) << j.dump();
  const auto& g = j["connections"][0];
  EXPECT_EQ(g["name"], "guarded");
  EXPECT_EQ(g["breaker"]["consecutive_failures"], 2);
  EXPECT_GT(g["breaker"]["next_probe_ms"].get<int64_t>(), 0);
  EXPECT_EQ(g["in_flight"], 0);
  EXPECT_EQ(g["concurrency"]["limit"], 1);
  EXPECT_EQ(g["concurrency"]["adaptive"], false);
  EXPECT_EQ(g["rate_limit"]["per_second"], 50.0);
  EXPECT_EQ(g["rate_limit"]["burst"], 5.0);
  EXPECT_EQ(http_request(daemon_->admin_port(), "GET", "/v1/connections", {}, "").status, 401);

  const auto m = http_request(daemon_->admin_port(), "GET", "/metrics", auth, "");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("evrouter_connection_breaker_state{connection=\"guarded\"} 2"), std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("evrouter_connection_concurrency_limit{connection=\"guarded\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("evrouter_connection_in_flight{connection=\"guarded\"} 0"), std::string::npos);
}
