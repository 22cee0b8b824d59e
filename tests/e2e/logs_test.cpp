// Logs as operators read them: JSON lines with --log-format json, event and correlation ids on delivery
// lines, and never a secret or a payload at info level.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/harness.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;

TEST(Logs, JsonLinesCarryIdsAndNoSecretsOrPayload) {
  constexpr const char* kSecret = "logs-test-secret-do-not-print";
  constexpr const char* kToken = "logs-test-bearer-token-do-not-print";
  TempDir dir;
  const uint16_t port = free_port();
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply r;
    r.status = 500;
    r.body = "{\"oops\":true}";
    return r;
  });
  DaemonConfig c;
  c.port = port;
  c.sink_base_uri = "http://127.0.0.1:" + std::to_string(sink.port());
  c.sink_extra =
      "    auth: {type: bearer, token: {env: EVR_LOGS_TEST_TOKEN}}\n"
      "    retry: {max_attempts: 2, backoff_base: 10ms, backoff_cap: 20ms}\n";
  c.top_extra = "log: {level: info, format: text}\n";
  write_daemon_config(dir, c);
  write_file(dir / "flows" / "orders.yaml",
             "name: orders\n"
             "source:\n"
             "  type: shopify\n"
             "  listener_id: logs-test-listener-000000001\n"
             "  secret: {env: EVR_LOGS_TEST_SECRET}\n"
             "branches:\n"
             "  - name: all\n"
             "    destinations:\n"
             "      - connection: sink\n");
  DaemonProcess d(
      {"serve", "--config", (dir / "evrouter.yaml").string(), "--log-format", "json"},
      {std::string("EVR_LOGS_TEST_SECRET=") + kSecret, std::string("EVR_LOGS_TEST_TOKEN=") + kToken});
  ASSERT_TRUE(wait_port(port, 10s)) << read_file(d.log_path());
  const std::string body = R"({"id":42,"email":"payload-marker@example.com"})";
  auto r = http_request(port, "POST", "/hooks/logs-test-listener-000000001",
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-logs-1"}},
                        body);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string event_id = nlohmann::json::parse(r.body)["event_id"];
  ASSERT_TRUE(sink.wait_for(2, 10s)) << "two attempts, then dead";
  // The bad signature must be logged without the secret.
  auto bad = http_request(port, "POST", "/hooks/logs-test-listener-000000001",
                          {{"X-Shopify-Topic", "orders/create"}, {"X-Shopify-Hmac-Sha256", "AAAA"}}, body);
  EXPECT_EQ(bad.status, 401);
  // Every received request carried the bearer token (so the token was resolved), yet it is never logged.
  EXPECT_EQ(sink.requests().front().header("authorization"), std::string("Bearer ") + kToken);

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string log;
  while (std::chrono::steady_clock::now() < deadline) {
    log = read_file(d.log_path());
    if (log.find("delivery dead") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0);
  log = read_file(d.log_path());

  EXPECT_EQ(log.find(kSecret), std::string::npos) << log;
  EXPECT_EQ(log.find(kToken), std::string::npos) << log;
  EXPECT_EQ(log.find("payload-marker"), std::string::npos) << log;
  std::istringstream lines(log);
  int delivery_lines = 0;
  int parsed = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not a JSON line: " << line;
    ++parsed;
    EXPECT_TRUE(j.contains("level") && j.contains("msg")) << line;
    const std::string msg = j.value("msg", "");
    if (msg.rfind("delivery", 0) == 0) {
      ++delivery_lines;
      EXPECT_EQ(j.value("event_id", ""), event_id) << line;
      EXPECT_EQ(j.value("correlation_id", ""), event_id)
          << "correlation id defaults to the event id: " << line;
    }
  }
  EXPECT_GE(parsed, 3);
  EXPECT_GE(delivery_lines, 2) << log;  // a retry line and a dead line
}

TEST(Logs, OAuth2TokensAndClientSecretAreNeverLogged) {
  constexpr const char* kSecret = "logs-oauth-webhook-secret";
  constexpr const char* kClientSecret = "logs-oauth-client-secret-do-not-print";
  static constexpr const char* kTokenA = "logs-oauth-token-a-do-not-print";
  static constexpr const char* kTokenB = "logs-oauth-token-b-do-not-print";
  TempDir dir;
  const uint16_t port = free_port();
  Sink tokens;
  std::atomic<int> fetches{0};
  tokens.set_handler([&fetches](const Recorded&) {
    Reply r;
    const int n = ++fetches;
    if (n == 2) {
      r.status = 401;
      r.body = R"({"error":"invalid_client"})";
    } else {
      r.body = std::string(R"({"token_type":"Bearer","expires_in":3600,"access_token":")") +
               (n == 1 ? kTokenA : kTokenB) + "\"}";
    }
    return r;
  });
  Sink sink;
  sink.set_handler([](const Recorded& req) {
    Reply r;
    if (req.header("authorization") == std::string("Bearer ") + kTokenA) r.status = 401;
    return r;
  });
  DaemonConfig c;
  c.port = port;
  c.sink_base_uri = sink.url();
  c.sink_extra = "    auth: {type: oauth2, token_url: " + tokens.url() +
                 "/token, client_id: logs, client_secret: {env: EVR_LOGS_OAUTH_SECRET}}\n"
                 "    retry: {max_attempts: 5, backoff_base: 10ms, backoff_cap: 20ms}\n";
  c.top_extra = "log: {level: debug, format: text}\n";
  write_daemon_config(dir, c);
  write_file(dir / "flows" / "orders.yaml",
             "name: orders\n"
             "source:\n"
             "  type: shopify\n"
             "  listener_id: logs-test-listener-000000002\n"
             "  secret: {env: EVR_LOGS_TEST_SECRET}\n"
             "branches:\n"
             "  - name: all\n"
             "    destinations:\n"
             "      - connection: sink\n");
  DaemonProcess d({"serve", "--config", (dir / "evrouter.yaml").string()},
                  {std::string("EVR_LOGS_TEST_SECRET=") + kSecret,
                   std::string("EVR_LOGS_OAUTH_SECRET=") + kClientSecret});
  ASSERT_TRUE(wait_port(port, 10s)) << read_file(d.log_path());
  const std::string body = R"({"id":43})";
  auto r = http_request(port, "POST", "/hooks/logs-test-listener-000000002",
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-logs-2"}},
                        body);
  ASSERT_EQ(r.status, 200) << r.body;
  // Token A refused by the destination, a fetch refused by the token endpoint, then token B delivers.
  ASSERT_TRUE(sink.wait_for(2, 10s)) << read_file(d.log_path());
  EXPECT_EQ(sink.requests()[1].header("authorization"), std::string("Bearer ") + kTokenB);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string log;
  while (std::chrono::steady_clock::now() < deadline) {
    log = read_file(d.log_path());
    if (log.find("delivered") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0);
  log = read_file(d.log_path());
  EXPECT_NE(log.find("oauth2 token fetch failed"), std::string::npos) << log;
  EXPECT_NE(log.find("oauth2 token: HTTP 401 from"), std::string::npos) << log;
  EXPECT_EQ(log.find(kClientSecret), std::string::npos) << log;
  EXPECT_EQ(log.find(kTokenA), std::string::npos) << log;
  EXPECT_EQ(log.find(kTokenB), std::string::npos) << log;
}
