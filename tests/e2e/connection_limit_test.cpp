// server.max_connections: a listener worker at its share of the limit stops accepting; a connection past it
// waits in the kernel's backlog (it is not refused or reset) and is served as soon as another closes. The
// counts are on /metrics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>

#include "e2e/pipeline_fixture.h"
#include "support/slowdown.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

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
    idle.push_back(connect_loopback(daemon_->port()));
    ASSERT_GE(idle.back(), 0);
  }
  std::string m;
  for (int i = 0; i < 200 && metric_sample(m, "evrouter_ingest_connections") != 3; ++i) {
    std::this_thread::sleep_for(10ms);
    m = metrics();
  }
  ASSERT_EQ(metric_sample(m, "evrouter_ingest_connections"), 3) << m;
  EXPECT_EQ(metric_sample(m, "evrouter_ingest_connection_limit"), 3);
  EXPECT_GE(metric_sample(m, "evrouter_ingest_connection_limit_reached_total"), 1);

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
