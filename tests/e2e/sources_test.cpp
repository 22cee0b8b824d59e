// Generic webhook sources end to end: GitHub-style HMAC, Standard Webhooks, basic and bearer credentials.
#include <thread>

#include "evrouter/common/crypto.h"
#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;

namespace {

constexpr const char* kWebhookListener = "test-listener-webhook-0000001";
using Headers = std::vector<std::pair<std::string, std::string>>;

class SourcesTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    ::setenv("EVR_TEST_GITHUB_SECRET", "gh-secret", 1);
    ::setenv("EVR_TEST_SW_SECRET", ("whsec_" + crypto::base64_encode("standard-key-0001")).c_str(), 1);
    ::setenv("EVR_TEST_SW_SECRET_OLD", ("whsec_" + crypto::base64_encode("standard-key-0000")).c_str(), 1);
    ::setenv("EVR_TEST_HOOK_PASSWORD", "hook-password", 1);
    ::setenv("EVR_TEST_HOOK_TOKEN", "hook-token", 1);
  }

  // The fixture's config plus a webhook flow "hooks" delivering everything to /api/hooks.
  config::Config with_webhook(const std::function<void(config::Source&)>& configure) {
    auto cfg = make_config();
    config::Flow f;
    f.name = "hooks";
    f.source.type = "webhook";
    f.source.listener_id = kWebhookListener;
    configure(f.source);
    config::Branch all;
    all.name = "all";
    config::Destination d;
    d.name = "sink";
    d.connection = "sink";
    d.path = "/hooks";
    all.destinations.push_back(d);
    f.branches.push_back(all);
    cfg.flows.push_back(f);
    return cfg;
  }

  static void github(config::Source& s) {
    s.name = "github";
    s.verify.type = config::Verify::Type::hmac;
    s.verify.header = "X-Hub-Signature-256";
    s.verify.prefix = "sha256=";
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_GITHUB_SECRET", {}});
    s.type_header = "X-GitHub-Event";
    s.id_header = "X-GitHub-Delivery";
    s.keep_headers = {"X-GitHub-Hook-ID"};
    s.topics = {"ping", "push"};
  }

  PostResult hook(const std::string& body, const Headers& headers) {
    Headers h{{"Content-Type", "application/json"}};
    h.insert(h.end(), headers.begin(), headers.end());
    return http_request(daemon_->port(), "POST", std::string("/hooks/") + kWebhookListener, h, body);
  }

  static std::string error_of(const PostResult& r) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].get<std::string>() : "<" + r.body + ">";
  }

  static Headers standard_headers(const std::string& key, const std::string& id, int64_t ts,
                                  const std::string& body) {
    const std::string content = id + "." + std::to_string(ts) + "." + body;
    return {{"webhook-id", id},
            {"webhook-timestamp", std::to_string(ts)},
            {"webhook-signature", "v1," + crypto::base64_encode(crypto::hmac_sha256(key, content))}};
  }
};

std::string github_signature(const std::string& secret, const std::string& body) {
  return "sha256=" + crypto::hex_encode(crypto::hmac_sha256(secret, body));
}

}  // namespace

TEST_F(SourcesTest, GitHubHmacIsVerifiedTypedFromHeadersAndDeduplicated) {
  start(with_webhook(github));
  const std::string body = R"({"ref":"refs/heads/main","commits":[]})";
  const Headers h{{"X-GitHub-Event", "push"},
                  {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                  {"X-GitHub-Hook-ID", "292430182"},
                  {"X-Hub-Signature-256", github_signature("gh-secret", body)}};
  auto r = hook(body, h);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["status"], "accepted");
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  auto req = sink_.requests().at(0);
  EXPECT_EQ(req.target, "/api/hooks");
  EXPECT_EQ(req.body, body);
  EXPECT_EQ(req.header("x-evrouter-event-type"), "push");
  EXPECT_EQ(req.header("x-evrouter-flow"), "hooks");

  // GitHub redelivers with the same X-GitHub-Delivery: a duplicate.
  auto again = hook(body, h);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(nlohmann::json::parse(again.body)["status"], "duplicate");
  EXPECT_EQ(nlohmann::json::parse(again.body)["event_id"], j["event_id"]);
  // A topic the flow does not take is acknowledged and dropped.
  Headers issues = h;
  issues[0].second = "issues";
  issues[1].second = "delivery-2";
  auto ignored = hook(body, issues);
  EXPECT_EQ(nlohmann::json::parse(ignored.body)["status"], "ignored");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 1u);
  EXPECT_EQ(daemon_->store().counts().events, 1);
}

TEST_F(SourcesTest, GitHubHmacInvalidOrMissingIs401AndMissingTypeIs400) {
  start(with_webhook(github));
  const std::string body = R"({"zen":"Design for failure."})";
  auto wrong =
      hook(body, {{"X-GitHub-Event", "ping"}, {"X-Hub-Signature-256", github_signature("nope", body)}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(error_of(wrong), "invalid_signature");
  auto no_prefix =
      hook(body, {{"X-GitHub-Event", "ping"},
                  {"X-Hub-Signature-256", crypto::hex_encode(crypto::hmac_sha256("gh-secret", body))}});
  EXPECT_EQ(no_prefix.status, 401);
  auto missing = hook(body, {{"X-GitHub-Event", "ping"}});
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(error_of(missing), "missing_signature");
  auto no_type = hook(body, {{"X-Hub-Signature-256", github_signature("gh-secret", body)}});
  EXPECT_EQ(no_type.status, 400);
  EXPECT_EQ(error_of(no_type), "missing_type");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(daemon_->store().counts().events, 0);
}

TEST_F(SourcesTest, Sha1HmacVerifies) {
  start(with_webhook([](config::Source& s) {
    github(s);
    s.verify.header = "X-Hub-Signature";
    s.verify.algorithm = config::Verify::Algorithm::sha1;
    s.verify.prefix = "sha1=";
  }));
  const std::string body = R"({"a":1})";
  const std::string sig = "sha1=" + crypto::hex_encode(crypto::hmac(crypto::Digest::sha1, "gh-secret", body));
  EXPECT_EQ(hook(body, {{"X-GitHub-Event", "push"}, {"X-Hub-Signature", sig}}).status, 200);
  const std::string sha256 = "sha1=" + crypto::hex_encode(crypto::hmac_sha256("gh-secret", body));
  EXPECT_EQ(hook(body, {{"X-GitHub-Event", "push"}, {"X-Hub-Signature", sha256}}).status, 401);
}

TEST_F(SourcesTest, StandardWebhooksValidWrongStaleAndRotated) {
  start(with_webhook([](config::Source& s) {
    s.name = "acme";
    s.verify.type = config::Verify::Type::standard_webhooks;
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_SW_SECRET", {}});
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_SW_SECRET_OLD", {}});
  }));
  const int64_t now = event::now_ms() / 1000;
  const std::string body =
      R"({"type":"invoice.paid","timestamp":"2026-11-22T10:00:00Z","data":{"id":"in_1"}})";
  auto ok = hook(body, standard_headers("standard-key-0001", "msg_1", now, body));
  ASSERT_EQ(ok.status, 200) << ok.body;
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().at(0).header("x-evrouter-event-type"), "invoice.paid");
  // The previous secret still verifies during a rotation.
  EXPECT_EQ(hook(body, standard_headers("standard-key-0000", "msg_2", now, body)).status, 200);
  // Same webhook-id again: a duplicate.
  auto dup = hook(body, standard_headers("standard-key-0001", "msg_1", now, body));
  EXPECT_EQ(nlohmann::json::parse(dup.body)["status"], "duplicate");

  auto wrong = hook(body, standard_headers("another-key", "msg_3", now, body));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(error_of(wrong), "invalid_signature");
  auto stale = hook(body, standard_headers("standard-key-0001", "msg_4", now - 3600, body));
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(error_of(stale), "timestamp_out_of_tolerance");
  EXPECT_NE(stale.body.find("in the past"), std::string::npos) << stale.body;
  auto missing = hook(body, {});
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(error_of(missing), "missing_signature");
  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 2u);
}

TEST_F(SourcesTest, BasicCredentialsGoodAndBad) {
  start(with_webhook([](config::Source& s) {
    s.verify.type = config::Verify::Type::basic;
    s.verify.username = "producer";
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_HOOK_PASSWORD", {}});
    s.event_type = "record.changed";
  }));
  const std::string body = R"({"id":3})";
  auto good = hook(body, {{"Authorization", "Basic " + crypto::base64_encode("producer:hook-password")}});
  ASSERT_EQ(good.status, 200) << good.body;
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().at(0).header("x-evrouter-event-type"), "record.changed");
  auto bad = hook(body, {{"Authorization", "Basic " + crypto::base64_encode("producer:guess")}});
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(error_of(bad), "invalid_credentials");
  EXPECT_EQ(bad.headers["www-authenticate"], R"(Basic realm="evrouter")");
  auto none = hook(body, {});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(error_of(none), "missing_credentials");
}

TEST_F(SourcesTest, BearerTokenGoodAndBad) {
  start(with_webhook([](config::Source& s) {
    s.verify.type = config::Verify::Type::bearer;
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_HOOK_TOKEN", {}});
    s.type_field = "kind";
  }));
  auto good = hook(R"({"kind":"ticket.closed"})", {{"Authorization", "Bearer hook-token"}});
  ASSERT_EQ(good.status, 200) << good.body;
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().at(0).header("x-evrouter-event-type"), "ticket.closed");
  auto bad = hook(R"({"kind":"ticket.closed"})", {{"Authorization", "Bearer hook-tokens"}});
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(error_of(bad), "invalid_credentials");
  // Authenticated but without the configured type field.
  auto untyped = hook(R"({"id":1})", {{"Authorization", "Bearer hook-token"}});
  EXPECT_EQ(untyped.status, 400);
  EXPECT_EQ(error_of(untyped), "missing_type");
}

// The event type is sent to destinations as X-Evrouter-Event-Type: a type read from the body may hold any
// character (JSON escapes), so one with a control character is refused at once rather than accepted and
// then failing every delivery attempt on its header.
TEST_F(SourcesTest, EventTypeWithAControlCharacterIsRefused) {
  start(with_webhook([](config::Source& s) {
    s.verify.type = config::Verify::Type::bearer;
    s.verify.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_HOOK_TOKEN", {}});
    s.type_field = "kind";
  }));
  for (const char* body : {R"({"kind":"ticket.closed\r\nX-Injected: 1"})", R"({"kind":"tab\there"})",
                           R"({"kind":"nul\u0000"})"}) {
    auto r = hook(body, {{"Authorization", "Bearer hook-token"}});
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(error_of(r), "invalid_type") << body;
  }
  auto good = hook(R"({"kind":"ticket.closed"})", {{"Authorization", "Bearer hook-token"}});
  ASSERT_EQ(good.status, 200) << good.body;
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().at(0).header("x-evrouter-event-type"), "ticket.closed");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 1U);
}

// Shopify's headers are bounded as a generic webhook's are: a topic, id or shop domain longer than any real
// one is refused (400) rather than stored, indexed for deduplication and sent on with every delivery.
TEST_F(SourcesTest, ShopifyHeadersLongerThanKeptAreRefused) {
  start(with_webhook(github));
  struct Case {
    const char* header;
    std::string value;
    const char* error;
  };
  const Case cases[] = {
      {"X-Shopify-Topic", "orders/" + std::string(300, 'c'), "invalid_type"},
      {"X-Shopify-Webhook-Id", std::string(129, '7'), "invalid_id"},
      {"X-Shopify-Event-Id", std::string(200, '8'), "invalid_id"},
      {"X-Shopify-Shop-Domain", std::string(300, 's') + ".myshopify.com", "invalid_header"}};
  for (const auto& c : cases) {
    auto r = post(order_, {{c.header, c.value}});
    EXPECT_EQ(r.status, 400) << c.header << ": " << r.body;
    EXPECT_EQ(error_of(r), c.error) << c.header;
  }
  // At the limits they are taken.
  auto r = post(order_, {{"X-Shopify-Webhook-Id", std::string(128, '7')},
                         {"X-Shopify-Shop-Domain", std::string(241, 's') + ".myshopify.com"}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink_.count(), 1U);
}

TEST_F(SourcesTest, ShopifyFlowKeepsWorkingBesideAWebhookFlow) {
  start(with_webhook(github));
  auto r = post(order_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(post(order_, {}, "orders/create", "wrong").status, 401);
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().at(0).header("x-evrouter-flow"), "orders");
}
