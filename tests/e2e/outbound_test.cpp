// What goes on the wire to a destination: Standard Webhooks signatures, the CloudEvents HTTP binding and
// OAuth2 client credentials, end to end over 127.0.0.1 (tests/support/sink.h).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <thread>

#include "evrouter/common/crypto.h"
#include "evrouter/source/source.h"
#include "evrouter/source/verifiers.h"
#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

// Two Standard Webhooks secrets (a rotation): whsec_ + base64 of the key bytes.
constexpr const char* kSigningA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSigningB = "whsec_c2Vjb25kLXNpZ25pbmcta2V5LWZvci10ZXN0cw==";

// base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")) computed here with OpenSSL alone.
std::string expected_signature(const std::string& whsec, const Recorded& r) {
  const std::string b64 = whsec.substr(6);
  std::string key(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  EXPECT_GT(n, 0);
  if (b64.size() >= 1 && b64.back() == '=') --n;
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') --n;
  key.resize(static_cast<std::size_t>(n));
  const std::string content = r.header("webhook-id") + "." + r.header("webhook-timestamp") + "." + r.body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  std::string out(4 * ((len + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(len));
  return out;
}

// The project's own inbound verifier accepts the request (any of `secrets`).
bool inbound_verifier_accepts(const Recorded& r, const std::vector<std::string>& secrets) {
  std::vector<std::string> keys;
  for (const auto& s : secrets) keys.push_back(*source::standard_webhooks_key(s));
  auto verifier = source::make_standard_webhooks_verifier(keys, std::chrono::minutes(5));
  source::HeaderLookup lookup = [&r](std::string_view name) -> std::string_view {
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = r.headers.find(lower);
    return it == r.headers.end() ? std::string_view() : std::string_view(it->second);
  };
  source::Request req{lookup, r.body, event::now_ms()};
  auto refusal = verifier->verify(req);
  if (refusal) ADD_FAILURE() << refusal->code << ": " << refusal->message;
  return !refusal;
}

config::SecretRef env_ref(const char* name) {
  return config::SecretRef{config::SecretRef::Kind::env, name, {}};
}

// Waits for `condition`, polling; false after `timeout`.
template <class F>
bool eventually(F condition, std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

class OutboundTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    ::setenv("EVR_TEST_SIGNING_A", kSigningA, 1);
    ::setenv("EVR_TEST_SIGNING_B", kSigningB, 1);
    ::setenv("EVR_TEST_CLIENT_SECRET", "s3cret:&=", 1);
  }

  // The sample config with OAuth2 on the sink connection, tokens from token_sink_.
  config::Config oauth2_config(const std::string& token_url) {
    auto cfg = make_config();
    auto& a = cfg.connections["sink"].auth;
    a = {};
    a.type = config::Auth::Type::oauth2;
    a.token_url = token_url;
    a.client_id = "evrouter-test";
    a.secret = env_ref("EVR_TEST_CLIENT_SECRET");
    a.scope = "orders:write";
    return cfg;
  }

  // Token endpoint answers: tok-1, tok-2, ... each valid `expires_in` seconds, after `delay`.
  void serve_tokens(int expires_in, std::chrono::milliseconds delay = 0ms) {
    token_sink_.set_handler([this, expires_in, delay](const Recorded&) {
      Reply r;
      r.delay = delay;
      r.headers = {{"Content-Type", "application/json"}};
      r.body = R"({"access_token":"tok-)" + std::to_string(++tokens_issued_) +
               R"(","token_type":"Bearer","expires_in":)" + std::to_string(expires_in) + "}";
      return r;
    });
  }

  Sink token_sink_;
  std::atomic<int> tokens_issued_{0};
};

}  // namespace

TEST_F(OutboundTest, SignsWithEverySecretVerifiableIndependentlyAndByTheInboundVerifier) {
  auto cfg = make_config();
  auto& signing = cfg.connections["sink"].signing;
  signing.type = config::Signing::Type::standard_webhooks;
  signing.secrets = {env_ref("EVR_TEST_SIGNING_A"), env_ref("EVR_TEST_SIGNING_B")};
  start(cfg);
  const int64_t before = event::now_ms() / 1000;
  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  const Recorded r = sink_.requests()[0];
  // webhook-id: "<event id>-<delivery id>".
  EXPECT_EQ(r.header("webhook-id"),
            r.header("x-evrouter-event-id") + "-" + r.header("x-evrouter-delivery-id"));
  const int64_t ts = std::stoll(r.header("webhook-timestamp"));
  EXPECT_GE(ts, before);
  EXPECT_LE(ts, event::now_ms() / 1000);
  EXPECT_EQ(r.header("webhook-signature"),
            "v1," + expected_signature(kSigningA, r) + " v1," + expected_signature(kSigningB, r));
  EXPECT_TRUE(inbound_verifier_accepts(r, {kSigningA}));
  EXPECT_TRUE(inbound_verifier_accepts(r, {kSigningB}));
  // The body is the payload as received (the signature covers exactly what was sent).
  EXPECT_EQ(nlohmann::json::parse(r.body)["id"], 1);
}

TEST_F(OutboundTest, SignatureIdIsStableAcrossRetriesTimestampPerAttempt) {
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    r.status = ++calls == 1 ? 503 : 200;
    return r;
  });
  auto cfg = make_config();
  cfg.connections["sink"].retry.backoff_base = 1100ms;  // the retry lands in another second
  cfg.connections["sink"].retry.backoff_cap = 1100ms;
  cfg.connections["sink"].retry.jitter = 0;
  auto& signing = cfg.connections["sink"].signing;
  signing.type = config::Signing::Type::standard_webhooks;
  signing.secrets = {env_ref("EVR_TEST_SIGNING_A")};
  start(cfg);
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 15s));
  const auto reqs = sink_.requests();
  EXPECT_EQ(reqs[0].header("x-evrouter-attempt"), "1");
  EXPECT_EQ(reqs[1].header("x-evrouter-attempt"), "2");
  EXPECT_FALSE(reqs[0].header("webhook-id").empty());
  EXPECT_EQ(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
  EXPECT_LT(std::stoll(reqs[0].header("webhook-timestamp")), std::stoll(reqs[1].header("webhook-timestamp")));
  for (const auto& r : reqs) {
    EXPECT_EQ(r.header("webhook-signature"), "v1," + expected_signature(kSigningA, r));
    EXPECT_TRUE(inbound_verifier_accepts(r, {kSigningA}));
  }
}

TEST_F(OutboundTest, DestinationSigningOverridesTheConnection) {
  auto cfg = make_config();
  auto& signing = cfg.connections["sink"].signing;
  signing.type = config::Signing::Type::standard_webhooks;
  signing.secrets = {env_ref("EVR_TEST_SIGNING_A")};
  auto& branches = cfg.flows[0].branches;
  branches[0].destinations[0].signing = config::Signing{};  // priority: none
  config::Signing other;
  other.type = config::Signing::Type::standard_webhooks;
  other.secrets = {env_ref("EVR_TEST_SIGNING_B")};
  branches[1].destinations[0].signing = other;  // standard: its own secret
  start(cfg);
  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_EQ(post(order("10.00", 2)).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  for (const auto& r : sink_.requests()) {
    if (r.target == "/api/orders/priority") {
      EXPECT_EQ(r.header("webhook-signature"), "");
      EXPECT_EQ(r.header("webhook-id"), "");
    } else {
      EXPECT_EQ(r.header("webhook-signature"), "v1," + expected_signature(kSigningB, r));
    }
  }
}

TEST_F(OutboundTest, CloudEventsBinaryMode) {
  auto cfg = make_config();
  for (auto& b : cfg.flows[0].branches)
    b.destinations[0].cloudevents = config::Destination::CloudEvents::binary;
  start(cfg);
  ASSERT_EQ(post(order("10.00", 7)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  const Recorded r = sink_.requests()[0];
  EXPECT_EQ(r.header("ce-specversion"), "1.0");
  EXPECT_EQ(r.header("ce-id"), r.header("x-evrouter-event-id"));
  EXPECT_EQ(r.header("ce-source"), "shopify");
  EXPECT_EQ(r.header("ce-type"), "orders/create");
  const auto t = event::parse_time(r.header("ce-time"));
  ASSERT_TRUE(t.has_value()) << r.header("ce-time");
  EXPECT_LE(std::llabs(*t - event::now_ms()), 60000);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(order("10.00", 7)));
}

TEST_F(OutboundTest, CloudEventsStructuredModeSignedOverTheEnvelope) {
  auto cfg = make_config();
  for (auto& b : cfg.flows[0].branches)
    b.destinations[0].cloudevents = config::Destination::CloudEvents::structured;
  auto& signing = cfg.connections["sink"].signing;
  signing.type = config::Signing::Type::standard_webhooks;
  signing.secrets = {env_ref("EVR_TEST_SIGNING_A")};
  start(cfg);
  const std::string payload = order("10.00", 8);
  ASSERT_EQ(post(payload).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  const Recorded r = sink_.requests()[0];
  EXPECT_EQ(r.header("content-type"), "application/cloudevents+json");
  EXPECT_EQ(r.header("ce-id"), "");  // structured: attributes in the body only
  const auto ce = nlohmann::json::parse(r.body);
  EXPECT_EQ(ce["specversion"], "1.0");
  EXPECT_EQ(ce["id"], r.header("x-evrouter-event-id"));
  EXPECT_EQ(ce["source"], "shopify");
  EXPECT_EQ(ce["type"], "orders/create");
  EXPECT_EQ(ce["datacontenttype"], "application/json");
  EXPECT_TRUE(event::parse_time(ce["time"].get<std::string>()).has_value());
  EXPECT_EQ(ce["data"], nlohmann::json::parse(payload));
  EXPECT_EQ(r.header("webhook-signature"), "v1," + expected_signature(kSigningA, r));
}

TEST_F(OutboundTest, OAuth2TokenFetchedOnceForManyDeliveries) {
  serve_tokens(3600, 300ms);  // a slow token endpoint: the first deliveries wait for it together
  start(oauth2_config(token_sink_.url() + "/oauth/token"));
  constexpr int kN = 12;
  for (int i = 0; i < kN; ++i) ASSERT_EQ(post(order("10.00", i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(kN, 10s));
  for (const auto& r : sink_.requests()) EXPECT_EQ(r.header("authorization"), "Bearer tok-1");
  EXPECT_EQ(token_sink_.count(), 1u);
  const Recorded t = token_sink_.requests()[0];
  EXPECT_EQ(t.method, "POST");
  EXPECT_EQ(t.target, "/oauth/token");
  EXPECT_EQ(t.header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(t.body, "grant_type=client_credentials&scope=orders%3Awrite");
  // HTTP Basic of the form-encoded id and secret (RFC 6749 2.3.1).
  EXPECT_EQ(t.header("authorization"), "Basic " + crypto::base64_encode("evrouter-test:s3cret%3A%26%3D"));
}

TEST_F(OutboundTest, OAuth2ClientCredentialsInTheFormWhenConfigured) {
  serve_tokens(3600);
  auto cfg = oauth2_config(token_sink_.url() + "/token");
  cfg.connections["sink"].auth.client_auth = config::Auth::ClientAuth::form;
  cfg.connections["sink"].auth.audience = "https://api.example.com";
  start(cfg);
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  const Recorded t = token_sink_.requests()[0];
  EXPECT_EQ(t.header("authorization"), "");
  EXPECT_EQ(t.body,
            "grant_type=client_credentials&scope=orders%3Awrite&audience=https%3A%2F%2Fapi.example.com"
            "&client_id=evrouter-test&client_secret=s3cret%3A%26%3D");
}

TEST_F(OutboundTest, OAuth2TokenRefreshedBeforeExpiry) {
  serve_tokens(1);  // fetched again 0.8 s after it was issued
  start(oauth2_config(token_sink_.url() + "/token"));
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  std::this_thread::sleep_for(1200ms);
  ASSERT_EQ(post(order("10.00", 2)).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  const auto reqs = sink_.requests();
  EXPECT_EQ(reqs[0].header("authorization"), "Bearer tok-1");
  EXPECT_EQ(reqs[1].header("authorization"), "Bearer tok-2");
  EXPECT_EQ(token_sink_.count(), 2u);
}

TEST_F(OutboundTest, OAuth2RefreshedOnceOn401AndSentAgainWithoutCountingAnAttempt) {
  serve_tokens(3600);
  sink_.set_handler([](const Recorded& req) {
    Reply r;
    if (req.header("authorization") == "Bearer tok-1") r.status = 401;  // revoked
    return r;
  });
  start(oauth2_config(token_sink_.url() + "/token"));
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  const auto reqs = sink_.requests();
  EXPECT_EQ(reqs[0].header("authorization"), "Bearer tok-1");
  EXPECT_EQ(reqs[1].header("authorization"), "Bearer tok-2");
  EXPECT_EQ(reqs[0].body, reqs[1].body);
  EXPECT_EQ(reqs[1].header("x-evrouter-attempt"), "1");
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 1; }));
  const int64_t id = std::stoll(reqs[1].header("x-evrouter-delivery-id"));
  const auto history = daemon_->store().attempts(id);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].status, 200);
  EXPECT_EQ(token_sink_.count(), 2u);
}

TEST_F(OutboundTest, OAuth2RefusedTwiceIsOneFailedAttempt) {
  serve_tokens(3600);
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 401;
    return r;
  });
  start(oauth2_config(token_sink_.url() + "/token"));
  ASSERT_EQ(post(order_).status, 200);
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().dead == 1; }));
  EXPECT_EQ(sink_.count(), 2u);  // the first try and one more with a new token, no loop
  EXPECT_EQ(token_sink_.count(), 2u);
}

TEST_F(OutboundTest, OAuth2TokenEndpointDownRetriesWithAClearError) {
  const uint16_t dead = free_port();
  const std::string token_url = "http://127.0.0.1:" + std::to_string(dead) + "/token";
  start(oauth2_config(token_url));
  ASSERT_EQ(post(order_).status, 200);
  std::vector<store::Attempt> history;
  ASSERT_TRUE(eventually([&] {
    history = daemon_->store().attempts(1);
    return history.size() >= 2;
  }));
  EXPECT_EQ(sink_.count(), 0u);
  for (const auto& a : history) {
    EXPECT_EQ(a.error.rfind("oauth2 token: connect: ", 0), 0u) << a.error;
    EXPECT_NE(a.error.find(token_url), std::string::npos) << a.error;
  }
  EXPECT_EQ(daemon_->store().counts().pending, 1);
}

TEST_F(OutboundTest, OAuth2TokenEndpointRefusesRetriesWithTheStatusAndThenRecovers) {
  std::atomic<bool> refuse{true};
  token_sink_.set_handler([&refuse](const Recorded&) {
    Reply r;
    if (refuse) {
      r.status = 401;
      r.body = R"({"error":"invalid_client"})";
    } else {
      r.body = R"({"access_token":"good","token_type":"bearer","expires_in":"3600"})";
    }
    return r;
  });
  start(oauth2_config(token_sink_.url() + "/token"));
  ASSERT_EQ(post(order_).status, 200);
  std::vector<store::Attempt> history;
  ASSERT_TRUE(eventually([&] {
    history = daemon_->store().attempts(1);
    return !history.empty();
  }));
  EXPECT_EQ(history[0].error, "oauth2 token: HTTP 401 from " + token_sink_.url() + "/token (invalid_client)");
  refuse = false;
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  EXPECT_EQ(sink_.requests()[0].header("authorization"), "Bearer good");
  ASSERT_TRUE(eventually([&] { return daemon_->store().counts().delivered == 1; }));
}

TEST_F(OutboundTest, OAuth2TokenKeptAcrossAReloadThatLeavesItsSettings) {
  serve_tokens(3600);
  auto cfg = oauth2_config(token_sink_.url() + "/token");
  start(cfg);
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  auto next = cfg;
  next.connections["sink"].concurrency = 2;  // the connection changes, its token settings do not
  auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  ASSERT_EQ(post(order("10.00", 2)).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  EXPECT_EQ(sink_.requests()[1].header("authorization"), "Bearer tok-1");
  EXPECT_EQ(token_sink_.count(), 1u);
  next.connections["sink"].auth.scope = "orders:read";  // now they do: a new token
  result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  ASSERT_EQ(post(order("10.00", 3)).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 10s));
  EXPECT_EQ(sink_.requests()[2].header("authorization"), "Bearer tok-2");
  EXPECT_EQ(token_sink_.requests()[1].body, "grant_type=client_credentials&scope=orders%3Aread");
}
