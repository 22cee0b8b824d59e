// The real binary as users run it: crash safety (SIGKILL), graceful SIGTERM, refusing broken YAML.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <set>

#include "support/harness.h"
#include "support/process_rig.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;

TEST(Process, AckedWebhooksSurviveSigkill) {
  ProcessRig s;
  constexpr int kN = 40;
  {
    DaemonProcess d({"serve", "--config", s.config_path}, s.env());
    ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
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
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  std::set<int> ids;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (ids.size() < kN && std::chrono::steady_clock::now() < deadline) {
    sink.wait_for(sink.count() + 1, 200ms);
    ids = delivered_ids(sink);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kN)) << log_tail(d.log_path());
}

TEST(Process, SigtermExitsZeroWithinGrace) {
  ProcessRig s;
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(s.post(i).status, 200);
  ASSERT_TRUE(sink.wait_for(10, 5s));
  const auto t0 = std::chrono::steady_clock::now();
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(6s), 0) << log_tail(d.log_path());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

TEST(Process, BrokenFlowFileIsRefusedWithItsLocation) {
  ProcessRig s;
  write_file(s.dir / "flows" / "orders.yaml",
             "name: orders\n"
             "source:\n"
             "  type: shopify\n"
             "  secret: {env: EVR_PROCESS_TEST_SECRET}\n"
             "branches:\n"
             "  - name: all\n"
             "    destinations:\n"
             "      - connection: nowhere\n");
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  EXPECT_EQ(d.wait(10s), 1);
  const std::string log = log_tail(d.log_path());
  EXPECT_NE(log.find("orders.yaml:8:"), std::string::npos) << log;
  EXPECT_NE(log.find("nowhere"), std::string::npos) << log;
}

TEST(Process, MissingSecretIsNamed) {
  ProcessRig s;
  DaemonProcess d({"serve", "--config", s.config_path}, {});
  ::unsetenv("EVR_PROCESS_TEST_SECRET");
  EXPECT_EQ(d.wait(10s), 1);
  const std::string log = log_tail(d.log_path());
  EXPECT_NE(log.find("EVR_PROCESS_TEST_SECRET"), std::string::npos) << log;
}
