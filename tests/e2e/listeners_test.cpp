// Listener URLs as users see them: `evrouter listeners`, the daemon's start log, and the URL answering.
#include <gtest/gtest.h>

#include <regex>

#include "support/harness.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kListenersSecret = "listeners-test-secret";

struct ListenerRig {
  TempDir dir;
  uint16_t port = free_port();
  std::string config_path = (dir / "evrouter.yaml").string();

  explicit ListenerRig(const std::string& pinned = "") {
    DaemonConfig c;
    c.port = port;
    c.server_extra = "  public_base_url: https://hooks.example.com/\n";
    write_daemon_config(dir, c);
    write_file(dir / "flows" / "orders.yaml",
               "name: orders\n"
               "source:\n"
               "  type: shopify\n" +
                   (pinned.empty() ? std::string() : "  listener_id: " + pinned + "\n") +
                   "  secret: {env: EVR_LISTENERS_TEST_SECRET}\n"
                   "branches:\n"
                   "  - name: all\n"
                   "    destinations:\n"
                   "      - connection: sink\n");
  }

  std::vector<std::string> env() const {
    return {std::string("EVR_LISTENERS_TEST_SECRET=") + kListenersSecret};
  }

  // Runs `evrouter listeners` and returns its output.
  std::string listeners() const {
    DaemonProcess p({"listeners", "--config", config_path}, env());
    EXPECT_EQ(p.wait(10s), 0);
    return read_file(p.log_path());
  }
};

}  // namespace

TEST(Listeners, GeneratedIdIsUnguessableAndStableAcrossRuns) {
  ListenerRig rig;
  const std::string first = rig.listeners();
  std::smatch m;
  const std::regex line("^orders\thttps://hooks\\.example\\.com/hooks/([A-Za-z0-9_-]+)\n$");
  ASSERT_TRUE(std::regex_match(first, m, line)) << first;
  const std::string id = m[1];
  EXPECT_GE(id.size(), 22U) << "at least 128 bits of base64url";
  EXPECT_EQ(rig.listeners(), first) << "the id is kept in the state directory";

  // The daemon logs the same URL at start, and that listener answers.
  DaemonProcess d({"serve", "--config", rig.config_path}, rig.env());
  ASSERT_TRUE(wait_port(rig.port, 10s)) << read_file(d.log_path());
  const std::string body = R"({"id":1})";
  auto r = http_request(rig.port, "POST", "/hooks/" + id,
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kListenersSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-1"}},
                        body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(read_file(d.log_path()).find("https://hooks.example.com/hooks/" + id), std::string::npos);
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0);
  EXPECT_EQ(rig.listeners(), first) << "and survives the daemon's restart";
}

TEST(Listeners, DifferentStateDirsGetDifferentIds) {
  ListenerRig a;
  ListenerRig b;
  EXPECT_NE(a.listeners().substr(7 + 26), b.listeners().substr(7 + 26));
}

TEST(Listeners, PinnedIdIsUsedAsWritten) {
  ListenerRig rig("orders-pinned-listener-0001");
  EXPECT_EQ(rig.listeners(), "orders\thttps://hooks.example.com/hooks/orders-pinned-listener-0001\n");
}
