// The whole daemon in process with store.type jetstream against a real nats-server (docs/scaling.md).
#include <gtest/gtest.h>

#include <thread>

#include "e2e/pipeline_fixture.h"
#include "support/nats_server.h"

using namespace evr;
using namespace evr::test;

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

  // The operations the store cannot serve yet answer 501 with a JSON body, not a crash.
  auto ops = http_request(daemon_->admin_port(), "GET", "/v1/dlq",
                          {{"Authorization", "Bearer js-admin-token-for-tests"}}, "");
  EXPECT_EQ(ops.status, 501) << ops.body;
  EXPECT_EQ(nlohmann::json::parse(ops.body, nullptr, false).value("error", ""), "not_supported");
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
