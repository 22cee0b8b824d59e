// server.max_connections: a listener worker at its share of the limit stops accepting; a connection past it
// waits in the kernel's backlog (it is not refused or reset) and is served as soon as another closes. The
// counts are on /metrics.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "e2e/pipeline_fixture.h"
#include "support/slowdown.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

int open_idle_connection(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The value of the sample line `series value` in a /metrics text, or -1.
double metric_value(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

TEST_F(PipelineTest, ConnectionsPastMaxConnectionsWaitUntilOneCloses) {
  auto cfg = make_config();
  cfg.server.workers = 1;  // the whole limit on one worker
  cfg.server.max_connections = 3;
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  start(cfg);
  auto metrics = [this] { return http_request(daemon_->admin_port(), "GET", "/metrics", {}, "").body; };

  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(open_idle_connection(daemon_->port()));
    ASSERT_GE(idle.back(), 0);
  }
  std::string m;
  for (int i = 0; i < 200 && metric_value(m, "evrouter_ingest_connections") != 3; ++i) {
    std::this_thread::sleep_for(10ms);
    m = metrics();
  }
  ASSERT_EQ(metric_value(m, "evrouter_ingest_connections"), 3) << m;
  EXPECT_EQ(metric_value(m, "evrouter_ingest_connection_limit"), 3);
  EXPECT_GE(metric_value(m, "evrouter_ingest_connection_limit_reached_total"), 1);

  // A fourth client connects (the kernel's backlog) but is not served while the three stay open.
  auto fourth = std::async(std::launch::async, [this] { return post(order("150.00", 1)); });
  EXPECT_EQ(fourth.wait_for(500ms), std::future_status::timeout) << "served past the connection limit";
  EXPECT_EQ(sink_.count(), 0u);

  ::close(idle.back());
  idle.pop_back();
  ASSERT_EQ(fourth.wait_for(scaled(5s)), std::future_status::ready) << "not served after a connection closed";
  const auto r = fourth.get();
  EXPECT_EQ(r.status, 200) << r.error;
  for (int fd : idle) ::close(fd);
}
