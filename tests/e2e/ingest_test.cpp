// Ingest: signatures, HTTP errors, duplicates, topics.
#include <atomic>
#include <thread>
#include <vector>

#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;

namespace {
class IngestOnStores : public StorePipelineTest {};
}  // namespace
INSTANTIATE_TEST_SUITE_P(Stores, IngestOnStores, kStores, store_name);

TEST_P(IngestOnStores, ValidSignatureIsAcceptedAndDelivered) {
  start(make_config());
  auto r = post(order_);
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["status"], "accepted");
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  auto req = sink_.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/api/orders/priority");  // fixture total_price is above 100
  EXPECT_EQ(req.body, order_);
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_EQ(req.header("authorization"), "Bearer sink-token");
  EXPECT_EQ(req.header("x-route"), "priority");
  EXPECT_EQ(req.header("x-evrouter-event-id"), j["event_id"].get<std::string>());
  EXPECT_EQ(req.header("x-evrouter-event-type"), "orders/create");
  EXPECT_EQ(req.header("x-evrouter-attempt"), "1");
}

TEST_P(IngestOnStores, InvalidOrMissingSignatureIs401) {
  start(make_config());
  auto bad = post(order_, {}, "orders/create", "wrong-secret");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(nlohmann::json::parse(bad.body)["error"], "invalid_signature");
  auto missing = post(order_, {{"X-Shopify-Hmac-Sha256", ""}});
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"], "missing_signature");
  // A signature over a different body.
  auto tampered = post(order_, {{"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, order_ + " ")}});
  EXPECT_EQ(tampered.status, 401);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 0u);
  EXPECT_EQ(daemon_->store().counts().events, 0);
}

TEST_P(IngestOnStores, RotatedSecretsBothVerify) {
  ::setenv("EVR_TEST_OLD_SECRET", "old-secret", 1);
  auto cfg = make_config();
  cfg.flows[0].source.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_OLD_SECRET", {}});
  start(cfg);
  EXPECT_EQ(post(order("1.00", 1)).status, 200);
  EXPECT_EQ(post(order("1.00", 2), {}, "orders/create", "old-secret").status, 200);
  EXPECT_EQ(post(order("1.00", 3), {}, "orders/create", "older-secret").status, 401);
  EXPECT_TRUE(sink_.wait_for(2, std::chrono::seconds(5)));
}

TEST_P(IngestOnStores, HttpErrorsAreClearJson) {
  auto cfg = make_config();
  start(cfg);
  const uint16_t port = daemon_->port();
  auto unknown = http_request(port, "POST", "/hooks/nope", {}, "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(nlohmann::json::parse(unknown.body)["error"], "unknown_listener");
  auto other = http_request(port, "GET", "/elsewhere", {}, "");
  EXPECT_EQ(other.status, 404);
  auto get = http_request(port, "GET", std::string("/hooks/") + kListener, {}, "");
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(get.headers["allow"], "POST");
  EXPECT_EQ(nlohmann::json::parse(get.body)["error"], "method_not_allowed");
  const std::string big(70 * 1024, 'x');
  auto too_big = post(big);
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(nlohmann::json::parse(too_big.body)["error"], "payload_too_large");
  auto malformed = post("{\"id\": 1,");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(nlohmann::json::parse(malformed.body)["error"], "malformed_json");
  auto not_object = post("[1,2]");
  EXPECT_EQ(not_object.status, 400);
  auto health = http_request(port, "GET", "/healthz", {}, "");
  EXPECT_EQ(health.status, 200);
  auto ready = http_request(port, "GET", "/readyz", {}, "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(daemon_->store().counts().events, 0);
}

TEST_P(IngestOnStores, UnsubscribedTopicIsIgnoredWith200) {
  start(make_config());
  auto r = post(order_, {}, "products/update");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["status"], "ignored");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 0u);
  EXPECT_EQ(daemon_->store().counts().events, 0);
}

TEST_P(IngestOnStores, DuplicateWebhookIsRoutedOnce) {
  start(make_config());
  auto first = post(order_, {{"X-Shopify-Webhook-Id", "dup-1"}});
  ASSERT_EQ(first.status, 200);
  auto second = post(order_, {{"X-Shopify-Webhook-Id", "dup-1"}});
  ASSERT_EQ(second.status, 200);
  auto j1 = nlohmann::json::parse(first.body), j2 = nlohmann::json::parse(second.body);
  EXPECT_EQ(j2["status"], "duplicate");
  EXPECT_EQ(j2["event_id"], j1["event_id"]);
  // Same Shopify event id with a new webhook id is the same event, too.
  auto third = post(order_, {{"X-Shopify-Webhook-Id", "dup-2"}, {"X-Shopify-Event-Id", "ev-9"}});
  auto fourth = post(order_, {{"X-Shopify-Webhook-Id", "dup-3"}, {"X-Shopify-Event-Id", "ev-9"}});
  EXPECT_EQ(nlohmann::json::parse(third.body)["status"], "accepted");
  EXPECT_EQ(nlohmann::json::parse(fourth.body)["status"], "duplicate");
  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sink_.count(), 2u);
}

// A daemon with nothing to do costs next to no CPU, on either store: no thread of it polls in a tight loop
// (the JetStream store's writer once spun a core, from a second after the start).
TEST_P(IngestOnStores, IdleDaemonLeavesTheCpuAlone) {
  start(make_config());
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past every worker's first period
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used, 0.5) << "CPU seconds the idle daemon (and this test's idle sink) used in 2 s";
}

TEST_P(IngestOnStores, DisabledFlowAnswers503AndKeepsNothing) {
  auto cfg = make_config();
  cfg.flows[0].enabled = false;
  start(cfg);
  auto r = post(order_);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "flow_disabled");
}

// A signature covers the body only, so a header can hold anything. Text the event keeps from headers must be
// UTF-8 (it is stored and sent as JSON): otherwise 400 invalid_header, before the store, so a bad request
// can never fail the group commit it would share with others (it did: 503 for the whole batch).
TEST_P(IngestOnStores, HeaderTextThatIsNotUtf8IsRefusedWithoutFailingOthers) {
  start(make_config());
  const auto bad_version = post(order_, {{"X-Shopify-API-Version", "2025-\xff\xfe"}});
  ASSERT_EQ(bad_version.status, 400) << bad_version.body;
  const auto j = nlohmann::json::parse(bad_version.body);
  EXPECT_EQ(j["error"], "invalid_header");
  EXPECT_EQ(j["message"], "header X-Shopify-API-Version is not valid UTF-8");
  const auto bad_correlation = post(order_, {{"X-Correlation-Id", "abc\xc0\xaf"}});  // overlong '/'
  ASSERT_EQ(bad_correlation.status, 400) << bad_correlation.body;
  EXPECT_EQ(nlohmann::json::parse(bad_correlation.body)["message"], "the correlation id is not valid UTF-8");
  const auto accented = post(order_, {{"X-Shopify-Shop-Domain", "caf\xc3\xa9.myshopify.com"}});
  EXPECT_EQ(accented.status, 200) << accented.body;

  // Good and bad webhooks at once: every good one is stored, every bad one refused.
  std::atomic<int> good_ok{0}, bad_refused{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (post(order_).status == 200) ++good_ok;
        if (post(order_, {{"X-Shopify-Triggered-At", "\x80"}}).status == 400) ++bad_refused;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(good_ok.load(), 40);
  EXPECT_EQ(bad_refused.load(), 40);
  ASSERT_TRUE(sink_.wait_for(41, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 41u);
}
