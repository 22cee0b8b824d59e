// The whole daemon in process with store.type jetstream against a real nats-server (docs/scaling.md).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/store/jetstream_store.h"
#include "support/nats_server.h"

using namespace evr;
using namespace evr::test;
using json = nlohmann::json;

namespace {

class JetStreamPipeline : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (!NatsServer::available()) GTEST_SKIP() << "nats-server is not installed";
    nats_ = std::make_unique<NatsServer>(dir_ / "nats");
  }
  config::Config js_config() {
    auto cfg = make_config();
    cfg.store.type = "jetstream";
    cfg.store.servers = {nats_->url()};
    cfg.store.stream = "evre2e";
    cfg.store.timeout = std::chrono::seconds(3);
    cfg.store.dedup_window = std::chrono::minutes(10);
    ::setenv("EVR_TEST_JS_TOKEN", "js-admin-token-for-tests", 1);
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    cfg.admin.token = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_JS_TOKEN", {}};
    return cfg;
  }

  PostResult admin(const std::string& method, const std::string& target, const std::string& body = "") {
    return http_request(
        daemon_->admin_port(), method, target,
        {{"Authorization", "Bearer js-admin-token-for-tests"}, {"Content-Type", "application/json"}}, body);
  }

  // Waits until GET `target` answers 200 with a body satisfying `ok`.
  template <typename F>
  json wait_json(const std::string& target, F ok) {
    json j;
    for (int i = 0; i < 500; ++i) {
      auto r = admin("GET", target);
      j = json::parse(r.body, nullptr, false);
      if (r.status == 200 && ok(j)) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting on " << target << ": " << j.dump();
    return j;
  }

};

}  // namespace

TEST_F(JetStreamPipeline, WebhookIsDeliveredOnceAndDuplicatesAreDropped) {
  start(js_config());
  auto r = post(order_, {{"X-Shopify-Webhook-Id", "wh-js-1"}});
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["status"], "accepted");
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(10)));
  auto req = sink_.requests().at(0);
  EXPECT_EQ(req.target, "/api/orders/priority");
  EXPECT_EQ(req.body, order_);
  EXPECT_EQ(req.header("x-evrouter-event-id"), j["event_id"].get<std::string>());

  auto dup = post(order_, {{"X-Shopify-Webhook-Id", "wh-js-1"}});
  ASSERT_EQ(dup.status, 200) << dup.body;
  auto dj = nlohmann::json::parse(dup.body);
  EXPECT_EQ(dj["status"], "duplicate");
  EXPECT_EQ(dj["event_id"], j["event_id"]);
  // Routed once: nothing more arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(sink_.count(), 1u);

  // Looked up through the admin API, from JetStream.
  auto evj = wait_json("/v1/events/" + j["event_id"].get<std::string>(), [](const json& e) {
    return e["deliveries"].size() == 1 && e["deliveries"][0]["state"] == "delivered";
  });
  EXPECT_EQ(evj["webhook_id"], "wh-js-1");
  EXPECT_EQ(admin("GET", "/v1/events/wh-js-1").status, 200);
  auto list = json::parse(admin("GET", "/v1/events?flow=orders").body);
  EXPECT_EQ(list["events"].size(), 1u);
}

TEST_F(JetStreamPipeline, FailedAttemptsAreRetried) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply reply;
    reply.status = ++calls < 3 ? 503 : 200;
    return reply;
  });
  start(js_config());
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, std::chrono::seconds(15)));
  auto reqs = sink_.requests();
  EXPECT_EQ(reqs.at(0).header("x-evrouter-attempt"), "1");
  EXPECT_EQ(reqs.at(2).header("x-evrouter-attempt"), "3");
  EXPECT_EQ(reqs.at(0).header("x-evrouter-delivery-id"), reqs.at(2).header("x-evrouter-delivery-id"));
}

TEST_F(JetStreamPipeline, NatsDownAnswers503) {
  start(js_config());
  ASSERT_EQ(post(order_).status, 200);
  nats_->stop();
  int status = 0;
  std::string body;
  for (int i = 0; i < 100 && status != 503; ++i) {
    auto r = post(order_);
    status = r.status;
    body = r.body;
    if (status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(nlohmann::json::parse(body, nullptr, false).value("error", ""), "store_unavailable");
}

TEST_F(JetStreamPipeline, DeadLetterIsListedAndReplayedThroughTheAdminApi) {
  std::atomic<bool> accept{false};
  sink_.set_handler([&accept](const Recorded&) {
    Reply reply;
    reply.status = accept ? 200 : 422;  // 422: no retry, dead at once
    return reply;
  });
  start(js_config());
  auto r = post(order_, {{"X-Shopify-Webhook-Id", "wh-js-dead"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string event_id = json::parse(r.body)["event_id"];
  auto page = wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 1; });
  const auto& item = page["dead_letters"][0];
  EXPECT_EQ(item["event"]["id"], event_id);
  EXPECT_EQ(item["state"], "dead");
  EXPECT_EQ(item["attempts"], 1);
  const std::string id = std::to_string(item["id"].get<int64_t>());
  auto one = wait_json("/v1/dlq/" + id, [](const json& j) { return j["history"].size() == 1; });
  EXPECT_EQ(one["history"][0]["status"], 422);
  EXPECT_EQ(one["event"]["payload"], json::parse(order_));
  auto ev = wait_json("/v1/events/" + event_id, [](const json& j) { return j["deliveries"].size() == 1; });
  EXPECT_EQ(ev["deliveries"][0]["state"], "dead");
  EXPECT_EQ(json::parse(admin("GET", "/v1/events?status=dead").body)["events"].size(), 1u);

  accept = true;
  auto replay = admin("POST", "/v1/dlq/" + id + "/replay");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(json::parse(replay.body)["count"], 1);
  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(10)));
  EXPECT_EQ(sink_.requests().at(1).header("x-evrouter-attempt"), "2");
  EXPECT_EQ(sink_.requests().at(1).header("x-evrouter-delivery-id"), id);
  auto after = wait_json("/v1/dlq/" + id, [](const json& j) { return j["state"] == "delivered"; });
  EXPECT_EQ(after["replays"], 1);
  EXPECT_EQ(after["history"].size(), 2u);
  EXPECT_EQ(json::parse(admin("GET", "/v1/dlq").body)["dead_letters"].size(), 0u);
  EXPECT_EQ(admin("POST", "/v1/dlq/" + id + "/replay").status, 409);
}

TEST_F(JetStreamPipeline, AnotherInstanceSeesAndReplaysTheDeadLettersAndChangesFlowState) {
  std::atomic<bool> accept{false};
  sink_.set_handler([&accept](const Recorded&) {
    Reply reply;
    reply.status = accept ? 200 : 422;
    return reply;
  });
  auto cfg = js_config();
  const auto store_options = cfg.store;
  start(cfg);
  ASSERT_EQ(post(order_).status, 200);
  wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 1; });

  // A second instance (its store) on the same NATS: the same dead letter; its replay reaches this daemon's
  // lane (which polls its consumer), no wake-up needed.
  auto other = store::make_jetstream_store(store_options);
  other->open();
  auto page = other->dead_letters({});
  ASSERT_EQ(page.dead_letters.size(), 1u);
  accept = true;
  EXPECT_EQ(other->replay(page.dead_letters[0].delivery.id).count, 1);
  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(10)));
  wait_json("/v1/dlq/" + std::to_string(page.dead_letters[0].delivery.id),
            [](const json& j) { return j["state"] == "delivered"; });

  // A flow disabled there is disabled here (KV watch), without a reload.
  other->set_flow_enabled("orders", false);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (daemon_->routes()->flows().at(0).enabled && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(daemon_->routes()->flows().at(0).enabled);
  EXPECT_EQ(post(order_).status, 503);
  other->close();
}
