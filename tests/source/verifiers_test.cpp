// Verifiers of the webhook source: HMAC (GitHub style and others), Standard Webhooks, basic, bearer.
#include "evrouter/source/verifiers.h"

#include <gtest/gtest.h>

#include <map>

using namespace evr;
using namespace evr::source;

namespace {

// A request with the given headers (looked up case-insensitively, as Beast does).
struct FakeRequest {
  std::map<std::string, std::string> headers;
  std::string body;
  int64_t now_ms = 0;
  HeaderLookup lookup = [this](std::string_view name) -> std::string_view {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return std::tolower(a) == std::tolower(b);
          })) {
        return v;
      }
    }
    return {};
  };
  Request get() const { return Request{lookup, body, now_ms}; }
};

std::string github_signature(const std::string& secret, const std::string& body) {
  return "sha256=" + crypto::hex_encode(crypto::hmac_sha256(secret, body));
}

std::unique_ptr<Verifier> github(std::vector<std::string> secrets = {"gh-secret"}) {
  return make_hmac_verifier(
      {"X-Hub-Signature-256", crypto::Digest::sha256, HmacOptions::Encoding::hex, "sha256="},
      std::move(secrets));
}

}  // namespace

TEST(HmacVerifier, GitHubSha256HexWithPrefix) {
  auto v = github();
  FakeRequest r;
  r.body = R"({"zen":"Keep it logically awesome."})";
  r.headers["x-hub-signature-256"] = github_signature("gh-secret", r.body);
  EXPECT_FALSE(v->verify(r.get()).has_value());
  // Upper-case hex digits are the same signature.
  std::string upper = r.headers["x-hub-signature-256"];
  for (std::size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  r.headers["x-hub-signature-256"] = upper;
  EXPECT_FALSE(v->verify(r.get()).has_value());
}

TEST(HmacVerifier, GitHubRejectsWrongSecretTamperedBodyMissingPrefixAndMissingHeader) {
  auto v = github();
  FakeRequest r;
  r.body = R"({"action":"opened"})";
  r.headers["X-Hub-Signature-256"] = github_signature("other-secret", r.body);
  auto refused = v->verify(r.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 401u);
  EXPECT_EQ(refused->code, "invalid_signature");
  EXPECT_EQ(refused->message, "X-Hub-Signature-256 does not match the body");

  r.headers["X-Hub-Signature-256"] = github_signature("gh-secret", r.body + "\n");
  EXPECT_EQ(v->verify(r.get())->code, "invalid_signature");

  // The right digest without its "sha256=" prefix is not accepted.
  r.headers["X-Hub-Signature-256"] = crypto::hex_encode(crypto::hmac_sha256("gh-secret", r.body));
  EXPECT_EQ(v->verify(r.get())->code, "invalid_signature");
  r.headers["X-Hub-Signature-256"] = "sha256=";
  EXPECT_EQ(v->verify(r.get())->code, "invalid_signature");

  r.headers.clear();
  auto missing = v->verify(r.get());
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code, "missing_signature");
  EXPECT_EQ(missing->message, "X-Hub-Signature-256 header is required");
}

TEST(HmacVerifier, RotatedSecretsEitherVerifies) {
  auto v = github({"new", "old"});
  FakeRequest r;
  r.body = "{}";
  r.headers["X-Hub-Signature-256"] = github_signature("old", r.body);
  EXPECT_FALSE(v->verify(r.get()).has_value());
  r.headers["X-Hub-Signature-256"] = github_signature("new", r.body);
  EXPECT_FALSE(v->verify(r.get()).has_value());
  r.headers["X-Hub-Signature-256"] = github_signature("older", r.body);
  EXPECT_TRUE(v->verify(r.get()).has_value());
}

TEST(HmacVerifier, Sha1HexAndSha256Base64) {
  auto sha1 = make_hmac_verifier(
      {"X-Hub-Signature", crypto::Digest::sha1, HmacOptions::Encoding::hex, "sha1="}, {"s"});
  FakeRequest r;
  r.body = R"({"a":1})";
  const std::string mac1 = crypto::hmac(crypto::Digest::sha1, "s", r.body);
  EXPECT_EQ(mac1.size(), 20u);
  r.headers["X-Hub-Signature"] = "sha1=" + crypto::hex_encode(mac1);
  EXPECT_FALSE(sha1->verify(r.get()).has_value());
  // A SHA-256 digest where SHA-1 is expected is refused.
  r.headers["X-Hub-Signature"] = "sha1=" + crypto::hex_encode(crypto::hmac_sha256("s", r.body));
  EXPECT_TRUE(sha1->verify(r.get()).has_value());

  auto b64 =
      make_hmac_verifier({"X-Signature", crypto::Digest::sha256, HmacOptions::Encoding::base64, ""}, {"s"});
  r.headers["X-Signature"] = crypto::base64_encode(crypto::hmac_sha256("s", r.body));
  EXPECT_FALSE(b64->verify(r.get()).has_value());
  r.headers["X-Signature"] = crypto::hex_encode(crypto::hmac_sha256("s", r.body));
  EXPECT_TRUE(b64->verify(r.get()).has_value());
}

// The example of the Standard Webhooks reference libraries: secret, id, timestamp, body and signature.
TEST(StandardWebhooks, ReferenceVectorVerifies) {
  auto key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.has_value());
  auto v = make_standard_webhooks_verifier({*key}, std::chrono::minutes(5));
  FakeRequest r;
  r.body = R"({"test": 2432232314})";
  r.headers["webhook-id"] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  r.headers["webhook-timestamp"] = "1614265330";
  r.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  r.now_ms = 1614265330LL * 1000 + 1500;
  EXPECT_FALSE(v->verify(r.get()).has_value());
  // Several entries (a rotation on the producer's side), and other versions, are fine.
  r.headers["webhook-signature"] = "v1a,abc v1,bm90IHRoaXM= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  EXPECT_FALSE(v->verify(r.get()).has_value());
}

namespace {

FakeRequest standard_request(const std::string& key, int64_t timestamp_s, int64_t now_ms,
                             const std::string& body = R"({"type":"user.created","data":{}})") {
  FakeRequest r;
  r.body = body;
  r.now_ms = now_ms;
  r.headers["webhook-id"] = "msg_1";
  r.headers["webhook-timestamp"] = std::to_string(timestamp_s);
  const std::string content = "msg_1." + std::to_string(timestamp_s) + "." + body;
  r.headers["webhook-signature"] = "v1," + crypto::base64_encode(crypto::hmac_sha256(key, content));
  return r;
}

}  // namespace

TEST(StandardWebhooks, WrongSignatureTamperedBodyAndWrongId) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  auto v = make_standard_webhooks_verifier({key}, std::chrono::minutes(5));
  const int64_t now = 1'800'000'000'000;
  auto r = standard_request("another key", now / 1000, now);
  auto refused = v->verify(r.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 401u);
  EXPECT_EQ(refused->code, "invalid_signature");

  auto tampered = standard_request(key, now / 1000, now);
  tampered.body += " ";
  EXPECT_EQ(v->verify(tampered.get())->code, "invalid_signature");

  auto other_id = standard_request(key, now / 1000, now);
  other_id.headers["webhook-id"] = "msg_2";  // the id is signed, so it cannot be swapped
  EXPECT_EQ(v->verify(other_id.get())->code, "invalid_signature");

  auto ok = standard_request(key, now / 1000, now);
  EXPECT_FALSE(v->verify(ok.get()).has_value());
}

TEST(StandardWebhooks, StaleAndFutureTimestampsAreRefusedWithTheReason) {
  const std::string key = "k";
  auto v = make_standard_webhooks_verifier({key}, std::chrono::minutes(5));
  const int64_t now = 1'800'000'000'000;
  auto stale = standard_request(key, now / 1000 - 301, now);
  auto refused = v->verify(stale.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, "timestamp_out_of_tolerance");
  EXPECT_NE(refused->message.find("301 s in the past"), std::string::npos) << refused->message;
  EXPECT_NE(refused->message.find("300 s"), std::string::npos);
  auto future = standard_request(key, now / 1000 + 400, now);
  refused = v->verify(future.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->message.find("in the future"), std::string::npos);
  // At the edge of the tolerance it still verifies.
  auto edge = standard_request(key, now / 1000 - 300, now);
  EXPECT_FALSE(v->verify(edge.get()).has_value());
  auto garbage = standard_request(key, now / 1000, now);
  garbage.headers["webhook-timestamp"] = "12a";
  EXPECT_EQ(v->verify(garbage.get())->code, "invalid_timestamp");
}

TEST(StandardWebhooks, RotatedSecretsAndMissingHeaders) {
  auto v = make_standard_webhooks_verifier({"new-key", "old-key"}, std::chrono::minutes(5));
  const int64_t now = 1'800'000'000'000;
  EXPECT_FALSE(v->verify(standard_request("old-key", now / 1000, now).get()).has_value());
  EXPECT_FALSE(v->verify(standard_request("new-key", now / 1000, now).get()).has_value());
  EXPECT_TRUE(v->verify(standard_request("gone-key", now / 1000, now).get()).has_value());
  auto r = standard_request("new-key", now / 1000, now);
  r.headers.erase("webhook-timestamp");
  auto refused = v->verify(r.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, "missing_signature");
  EXPECT_NE(refused->message.find("missing: webhook-timestamp"), std::string::npos) << refused->message;
}

TEST(StandardWebhooks, SecretFormat) {
  EXPECT_EQ(standard_webhooks_key("whsec_" + crypto::base64_encode("raw key")), "raw key");
  EXPECT_EQ(standard_webhooks_key(crypto::base64_encode("raw key")), "raw key");
  EXPECT_FALSE(standard_webhooks_key("whsec_").has_value());
  EXPECT_FALSE(standard_webhooks_key("whsec_not base64!").has_value());
}

TEST(CredentialVerifiers, BasicGoodBadAndMissing) {
  auto v = make_basic_verifier("producer", "p4ss:word");
  FakeRequest r;
  r.headers["Authorization"] = "Basic " + crypto::base64_encode("producer:p4ss:word");
  EXPECT_FALSE(v->verify(r.get()).has_value());
  r.headers["Authorization"] = "basic " + crypto::base64_encode("producer:p4ss:word");
  EXPECT_FALSE(v->verify(r.get()).has_value());
  r.headers["Authorization"] = "Basic " + crypto::base64_encode("producer:wrong");
  auto refused = v->verify(r.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, "invalid_credentials");
  EXPECT_EQ(refused->www_authenticate, R"(Basic realm="evrouter")");
  r.headers["Authorization"] = "Basic %%%";
  EXPECT_EQ(v->verify(r.get())->code, "invalid_credentials");
  r.headers["Authorization"] = "Bearer p4ss:word";
  EXPECT_EQ(v->verify(r.get())->code, "missing_credentials");
  r.headers.clear();
  EXPECT_EQ(v->verify(r.get())->code, "missing_credentials");
}

TEST(CredentialVerifiers, BearerGoodBadAndMissing) {
  auto v = make_bearer_verifier("tok-123");
  FakeRequest r;
  r.headers["Authorization"] = "Bearer tok-123";
  EXPECT_FALSE(v->verify(r.get()).has_value());
  r.headers["Authorization"] = "Bearer tok-1234";
  EXPECT_EQ(v->verify(r.get())->code, "invalid_credentials");
  r.headers["Authorization"] = "Bearer ";
  EXPECT_EQ(v->verify(r.get())->code, "missing_credentials");
  r.headers.clear();
  auto refused = v->verify(r.get());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 401u);
  EXPECT_EQ(refused->www_authenticate, "Bearer");
  EXPECT_FALSE(make_no_verifier()->verify(r.get()).has_value());
}
