// Delivery: branching, limits, retries, dead letters.
#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {
int64_t ms_between(const Recorded& a, const Recorded& b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b.arrived - a.arrived).count();
}
class DeliveryOnStores : public StorePipelineTest {};
}  // namespace
INSTANTIATE_TEST_SUITE_P(Stores, DeliveryOnStores, kStores, store_name);

TEST_P(DeliveryOnStores, BranchesByTotalPrice) {
  start(make_config());
  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_EQ(post(order("99.99", 2)).status, 200);
  ASSERT_EQ(post(order("100.00", 3)).status, 200);
  // orders/updated never matches the priority branch, whatever the price.
  ASSERT_EQ(post(order("500.00", 4), {}, "orders/updated").status, 200);
  ASSERT_TRUE(sink_.wait_for(4, 5s));
  std::map<int64_t, std::string> target_by_order;
  for (const auto& r : sink_.requests())
    target_by_order[nlohmann::json::parse(r.body)["id"].get<int64_t>()] = r.target;
  EXPECT_EQ(target_by_order[1], "/api/orders/priority");
  EXPECT_EQ(target_by_order[2], "/api/orders");
  EXPECT_EQ(target_by_order[3], "/api/orders");
  EXPECT_EQ(target_by_order[4], "/api/orders");
}

TEST_P(DeliveryOnStores, ConcurrencyCapHoldsAtTheSink) {
  auto cfg = make_config();
  cfg.connections["sink"].concurrency = 3;
  // Slow enough that a backlog builds up while the webhooks are posted.
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.delay = 300ms;
    return r;
  });
  start(cfg);
  // Both lanes of the connection (priority and standard) have work: with JetStream the cap is split over
  // them as 2 + 1 (docs/scaling.md#what-is-cluster-wide), with SQLite they share it; both reach 3.
  for (int i = 0; i < 16; ++i) ASSERT_EQ(post(order(i % 2 == 0 ? "150.00" : "10.00", i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(16, 10s));
  EXPECT_LE(sink_.max_in_flight(), 3);
  // And the cap is used, not undershot. With JetStream each lane reads its share when woken or polled
  // (docs/scaling.md#what-does-not-work-yet): measured 2 of 3 here.
  EXPECT_GE(sink_.max_in_flight(), jetstream() ? 2 : 3);
}

TEST_P(DeliveryOnStores, RateLimitHoldsAtTheSink) {
  auto cfg = make_config();
  cfg.connections["sink"].rate_limit = {20, 2};  // 20/s, burst 2
  start(cfg);
  constexpr int kN = 30;
  for (int i = 0; i < kN; ++i) ASSERT_EQ(post(order("10.00", i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(kN, 10s));
  auto reqs = sink_.requests();
  // 30 requests at 20/s with a burst of 2 need at least (30 - 2) / 20 = 1.4 s.
  EXPECT_GE(ms_between(reqs.front(), reqs.back()), 1300);
  // No one-second window holds more than rate + burst. Arrival times carry scheduling jitter (a loaded CI
  // machine, sanitizer builds) that can pull two sends a few ms closer, so windows are 980 ms long.
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < reqs.size() && ms_between(reqs[i], reqs[j]) < 980; ++j) ++in_window;
    EXPECT_LE(in_window, 22u);
  }
}

TEST_P(DeliveryOnStores, ServerErrorIsRetriedUntilSuccess) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    r.status = ++calls <= 2 ? 500 : 200;
    return r;
  });
  start(make_config());
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  auto reqs = sink_.requests();
  EXPECT_EQ(reqs[0].header("x-evrouter-event-id"), reqs[2].header("x-evrouter-event-id"));
  EXPECT_EQ(reqs[0].header("x-evrouter-attempt"), "1");
  EXPECT_EQ(reqs[2].header("x-evrouter-attempt"), "3");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sink_.count(), 3u);
  auto c = daemon_->store().counts();
  EXPECT_EQ(c.delivered, 1);
  EXPECT_EQ(c.pending, 0);
}

TEST_P(DeliveryOnStores, TooManyRequestsHonoursRetryAfter) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    if (++calls == 1) {
      r.status = 429;
      r.headers = {{"Retry-After", "1"}};
    }
    return r;
  });
  start(make_config());
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 5s));
  auto reqs = sink_.requests();
  EXPECT_GE(ms_between(reqs[0], reqs[1]), 950);  // backoff alone would be ~20 ms
}

TEST_P(DeliveryOnStores, DeadAfterMaxAttemptsWithHistory) {
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 503;
    r.body = "upstream down";
    return r;
  });
  auto cfg = make_config();
  cfg.connections["sink"].retry.max_attempts = 3;
  start(cfg);
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(sink_.count(), 3u);
  auto c = daemon_->store().counts();
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(c.pending, 0);
}

TEST_P(DeliveryOnStores, ClientErrorIsDeadAtOnce) {
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 422;
    r.body = R"({"error":"bad order"})";
    return r;
  });
  start(make_config());
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sink_.count(), 1u);
  EXPECT_EQ(daemon_->store().counts().dead, 1);
}

TEST_P(DeliveryOnStores, UnreachableDestinationRetriesThenDelivers) {
  // Point the connection at a port nobody listens on: deliveries wait and retry, ingest still answers fast.
  auto cfg = make_config();
  const uint16_t dead_port = free_port();
  cfg.connections["sink"].base_uri = "http://127.0.0.1:" + std::to_string(dead_port) + "/api";
  cfg.connections["sink"].retry.max_attempts = 100;
  start(cfg);
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(post(order("10.00", i)).status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(daemon_->store().counts().pending, 5);
}
