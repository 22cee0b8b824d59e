// Isolation between connections: every event goes to four destinations on four connections, three of
// which fail in different ways (a black hole that accepts and never answers, a closed port, a server that
// answers 500 forever). The healthy one must still receive every event promptly: not after the others'
// request timeouts, backoffs or breakers.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <map>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "support/slowdown.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A port on 127.0.0.1 that nothing listens on (bound once to find it, then closed): connections are refused.
uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

config::Connection failing_connection(const config::Connection& base, const std::string& name,
                                      const std::string& url) {
  config::Connection c = base;
  c.name = name;
  c.base_uri = url;
  c.request_timeout = 2s;
  c.connect_timeout = 2s;
  c.retry.max_attempts = 1000;
  c.retry.backoff_base = 20ms;
  c.retry.backoff_cap = 100ms;
  return c;
}

}  // namespace

class IsolationTest : public PipelineTest {};

TEST_F(IsolationTest, HealthySinkIsNotDelayedByFailingConnections) {
  Sink black_hole;  // reads the request and never answers (within the test)
  black_hole.set_handler([](const Recorded&) {
    Reply r;
    r.delay = 60s;
    return r;
  });
  Sink error_500;
  error_500.set_handler([](const Recorded&) {
    Reply r;
    r.status = 500;
    return r;
  });

  auto cfg = make_config();
  cfg.store.durability = config::Store::Durability::os;
  const auto base = cfg.connections["sink"];
  cfg.connections["black-hole"] = failing_connection(base, "black-hole", black_hole.url());
  cfg.connections["refusing"] =
      failing_connection(base, "refusing", "http://127.0.0.1:" + std::to_string(closed_port()));
  cfg.connections["error-500"] = failing_connection(base, "error-500", error_500.url());
  // One catch-all branch delivering every event to the four connections.
  auto& flow = cfg.flows[0];
  config::Branch all;
  all.name = "all";
  for (const std::string name : {"black-hole", "refusing", "error-500", "sink"}) {
    config::Destination d;
    d.name = name;
    d.connection = name;
    d.path = "/orders";
    all.destinations.push_back(d);
  }
  flow.branches = {all};
  start(cfg);

  // 100 events at 25/s (4 s): the failing connections time out (2 s), retry and open their breakers
  // meanwhile.
  constexpr int kEvents = 100;
  std::map<int64_t, Clock::time_point> posted;
  const auto t0 = Clock::now();
  for (int i = 0; i < kEvents; ++i) {
    std::this_thread::sleep_until(t0 + i * 40ms);
    posted[i] = Clock::now();
    ASSERT_EQ(post(order("10.00", i)).status, 200);
  }
  ASSERT_TRUE(sink_.wait_for(kEvents, 10s)) << "healthy sink got " << sink_.count() << " of " << kEvents;
  std::this_thread::sleep_for(200ms);

  const auto reqs = sink_.requests();
  EXPECT_EQ(reqs.size(), static_cast<std::size_t>(kEvents));  // each once: none failed or was retried
  std::vector<double> ms;
  for (const auto& r : reqs) {
    const auto id = nlohmann::json::parse(r.body).at("id").get<int64_t>();
    ASSERT_TRUE(posted.count(id)) << id;
    ms.push_back(std::chrono::duration<double, std::milli>(r.arrived - posted[id]).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf(
      "healthy sink: %zu events, latency from post median %.1f ms, max %.1f ms; black hole got %zu, "
      "error-500 got %zu\n",
      ms.size(), median, ms.back(), black_hole.count(), error_500.count());
  // Prompt: well below the failing connections' 2 s request timeout (a blocked delivery would show it).
  EXPECT_LT(median, 200 * slowdown());
  EXPECT_LT(ms.back(), 1000 * slowdown());
  // The failing destinations were really tried (and failing) meanwhile.
  EXPECT_GE(black_hole.count(), 1u);
  EXPECT_GE(error_500.count(), 3u);
  // Only the healthy destination's deliveries are done; the others' are still pending (retrying).
  const auto deadline = Clock::now() + 5s;
  while (daemon_->store().counts().delivered < kEvents && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  const auto counts = daemon_->store().counts();
  EXPECT_EQ(counts.delivered, kEvents);
  EXPECT_GE(counts.pending, 2 * kEvents);
}
