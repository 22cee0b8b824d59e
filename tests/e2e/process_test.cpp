// The real binary as users run it: crash safety (SIGKILL), graceful SIGTERM, refusing broken YAML.
#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "support/harness.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "process-test-secret";
constexpr const char* kListener = "process-listener-00000000001";

struct ProcessRig {
  TempDir dir;
  uint16_t port = free_port();
  uint16_t sink_port = free_port();
  std::string config_path;

  ProcessRig() {
    DaemonConfig c;
    c.port = port;
    c.sink_base_uri = "http://127.0.0.1:" + std::to_string(sink_port);
    c.server_extra = "  workers: 2\n  shutdown_grace: 3s\n";
    c.store_extra = "  durability: fsync\n";
    c.sink_extra =
        "    concurrency: 4\n"
        "    connect_timeout: 1s\n"
        "    retry: {max_attempts: 1000, backoff_base: 50ms, backoff_cap: 300ms}\n"
        "    breaker: {failures: 5, cooldown: 300ms}\n";
    c.top_extra = "log:\n  level: info\n";
    config_path = write_daemon_config(dir, c);
    write_file(dir / "flows" / "orders.yaml", std::string("name: orders\n"
                                                          "source:\n"
                                                          "  type: shopify\n"
                                                          "  listener_id: ") + kListener + "\n"
                                                          "  secret: {env: EVR_PROCESS_TEST_SECRET}\n"
                                                          "branches:\n"
                                                          "  - name: all\n"
                                                          "    destinations:\n"
                                                          "      - connection: sink\n"
                                                          "        path: /orders\n");
  }

  std::vector<std::string> env() const {
    return {std::string("EVR_PROCESS_TEST_SECRET=") + kSecret};
  }

  PostResult post(int n) const {
    const std::string body = R"({"id":)" + std::to_string(n) + R"(,"total_price":"10.00"})";
    return http_request(port, "POST", std::string("/hooks/") + kListener,
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-" + std::to_string(n)},
                         {"Content-Type", "application/json"}},
                        body);
  }
};

std::string tail(const std::string& path) {
  try {
    auto s = read_file(path);
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  } catch (...) {
    return {};
  }
}

}  // namespace

TEST(Process, AckedWebhooksSurviveSigkill) {
  ProcessRig s;
  constexpr int kN = 40;
  {
    DaemonProcess d({"serve", "--config", s.config_path}, s.env());
    ASSERT_TRUE(wait_port(s.port, 10s)) << tail(d.log_path());
    for (int i = 0; i < kN; ++i) {
      auto r = s.post(i);
      ASSERT_EQ(r.status, 200) << r.body << r.error;
    }
    d.kill(SIGKILL);
    EXPECT_EQ(d.wait(5s), 128 + SIGKILL);
  }
  // The destination comes up only now; the restarted daemon must deliver every acknowledged webhook.
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << tail(d.log_path());
  std::set<int> ids;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (ids.size() < kN && std::chrono::steady_clock::now() < deadline) {
    sink.wait_for(sink.count() + 1, 200ms);
    ids.clear();
    for (const auto& r : sink.requests()) ids.insert(nlohmann::json::parse(r.body)["id"].get<int>());
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kN)) << tail(d.log_path());
}

TEST(Process, SigtermExitsZeroWithinGrace) {
  ProcessRig s;
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << tail(d.log_path());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(s.post(i).status, 200);
  ASSERT_TRUE(sink.wait_for(10, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(6s), 0) << tail(d.log_path());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

TEST(Process, BrokenFlowFileIsRefusedWithItsLocation) {
  ProcessRig s;
  write_file(s.dir / "flows" / "orders.yaml", "name: orders\n"
                                              "source:\n"
                                              "  type: shopify\n"
                                              "  secret: {env: EVR_PROCESS_TEST_SECRET}\n"
                                              "branches:\n"
                                              "  - name: all\n"
                                              "    destinations:\n"
                                              "      - connection: nowhere\n");
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  EXPECT_EQ(d.wait(10s), 1);
  const std::string log = tail(d.log_path());
  EXPECT_NE(log.find("orders.yaml:8:"), std::string::npos) << log;
  EXPECT_NE(log.find("nowhere"), std::string::npos) << log;
}

TEST(Process, MissingSecretIsNamed) {
  ProcessRig s;
  DaemonProcess d({"serve", "--config", s.config_path}, {});
  ::unsetenv("EVR_PROCESS_TEST_SECRET");
  EXPECT_EQ(d.wait(10s), 1);
  const std::string log = tail(d.log_path());
  EXPECT_NE(log.find("EVR_PROCESS_TEST_SECRET"), std::string::npos) << log;
}
