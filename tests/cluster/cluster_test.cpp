// Scale-out against real processes (docs/scaling.md#the-cluster-test): a 3-node NATS JetStream cluster
// (R3 streams), two evrouter daemons sharing it, a load generator posting webhooks to both (some to both,
// with the same webhook id), and a sink that answers slowly. During the run one evrouter is SIGKILLed and
// later started again, and one NATS node is SIGKILLed and restarted. Checked afterwards: every webhook
// answered 200 reached the sink; each was routed once apart from the bounded redeliveries of the faults;
// the connection's concurrency cap and rate limit held across both instances.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/harness.h"
#include "support/nats_server.h"
#include "support/process_rig.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;

namespace {

constexpr int kConcurrency = 4;  // the sink connection's cap, for both instances together
constexpr double kRate = 8;      // its rate limit (per second), for both together: below what ingest
constexpr double kBurst = 2;     // takes, so that a backlog builds up on both instances

// One evrouter instance: its own config file and listener port, the shared NATS cluster as its store.
struct Instance {
  TempDir dir;
  uint16_t port = free_port();
  std::string config_path;
  std::unique_ptr<DaemonProcess> process;

  Instance(const std::vector<std::string>& nats_urls, uint16_t sink_port) {
    std::string servers;
    for (const auto& u : nats_urls) servers += (servers.empty() ? "" : ", ") + u;
    DaemonConfig c;
    c.port = port;
    c.sink_base_uri = "http://127.0.0.1:" + std::to_string(sink_port);
    c.server_extra = "  workers: 2\n  shutdown_grace: 2s\n";
    c.store_extra = "  type: jetstream\n  servers: [" + servers +
                    "]\n  stream: evrcluster\n  replicas: 3\n  timeout: 5s\n  ack_wait: 4s\n";
    c.sink_extra = "    concurrency: " + std::to_string(kConcurrency) +
                   "\n"
                   "    rate_limit: {per_second: " +
                   std::to_string(static_cast<int>(kRate)) +
                   ", burst: " + std::to_string(static_cast<int>(kBurst)) +
                   "}\n"
                   "    connect_timeout: 1s\n"
                   "    request_timeout: 2s\n"
                   "    retry: {max_attempts: 1000, backoff_base: 50ms, backoff_cap: 300ms}\n";
    c.top_extra = "log:\n  level: info\n";
    config_path = write_daemon_config(dir, c);
    write_orders_flow(dir);
  }

  void start() {
    process = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"serve", "--config", config_path},
        std::vector<std::string>{std::string("EVR_PROCESS_TEST_SECRET=") + kProcessSecret});
  }

  PostResult post(int n) const {
    const std::string body = R"({"id":)" + std::to_string(n) + R"(,"total_price":"10.00"})";
    return http_request(port, "POST", std::string("/hooks/") + kProcessListener,
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kProcessSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-" + std::to_string(n)},
                         {"Content-Type", "application/json"}},
                        body, 5s);
  }
};

// The most requests that arrived within any `window`.
std::size_t busiest(const std::vector<Recorded>& requests, std::chrono::milliseconds window) {
  std::vector<std::chrono::steady_clock::time_point> t;
  for (const auto& r : requests) t.push_back(r.arrived);
  std::sort(t.begin(), t.end());
  std::size_t best = 0;
  for (std::size_t i = 0, j = 0; j < t.size(); ++j) {
    while (t[j] - t[i] >= window) ++i;
    best = std::max(best, j - i + 1);
  }
  return best;
}

}  // namespace

TEST(Cluster, TwoInstancesOnAThreeNodeNatsClusterSurviveKillsWithinTheirLimits) {
  if (!NatsServer::available()) GTEST_SKIP() << "nats-server is not installed";
  const auto started = std::chrono::steady_clock::now();
  TempDir dir;
  NatsCluster nats(dir.path(), 3);
  ASSERT_TRUE(nats.wait_healthy(30s)) << "the NATS cluster did not form";
  auto mark = [&](const char* what) {
    std::cout << "[cluster] " << what << " at "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                       started)
                     .count()
              << " ms\n";
  };
  mark("NATS cluster healthy");

  uint16_t sink_port = free_port();
  Sink sink(SinkOptions::on_port(sink_port));
  // Every third request is slow, so that the requests in flight pile up to the cap now and then; the
  // cap alone would let through 4 / ~0.33 s = 12/s, above the rate limit.
  std::atomic<int> seq{0};
  sink.set_handler([&seq](const Recorded&) {
    Reply r;
    r.delay = ++seq % 3 == 0 ? 900ms : 50ms;
    return r;
  });

  Instance a(nats.urls(), sink_port);
  Instance b(nats.urls(), sink_port);
  a.start();
  ASSERT_TRUE(wait_port(a.port, 30s)) << log_tail(a.process->log_path());
  b.start();
  ASSERT_TRUE(wait_port(b.port, 30s)) << log_tail(b.process->log_path());
  mark("both instances up");

  // The load: ids 0..kTotal-1, even ones to a, odd ones to b, every fifth one to both (same webhook id).
  // A post that fails (its instance killed, a NATS node down) is tried on the other instance, then again,
  // as a producer would; an id counts as acked once either instance answered 200.
  constexpr int kTotal = 120;
  std::set<int> acked;
  std::mutex mu;
  std::atomic<int> next{0};
  std::atomic<int> duplicates{0};
  std::atomic<bool> b_down{false};
  std::atomic<bool> give_up{false};
  auto client = [&] {
    for (int id = next++; id < kTotal && !give_up; id = next++) {
      const Instance* first = id % 2 == 0 ? &a : &b;
      const Instance* other = first == &a ? &b : &a;
      std::vector<const Instance*> targets = {first};
      if (id % 5 == 0) targets.push_back(other);
      bool ok = false;
      for (const Instance* t : targets) {
        for (int attempt = 0; attempt < 40; ++attempt) {
          const Instance* to = attempt % 2 == 0 ? t : (t == &a ? &b : &a);
          if (to == &b && b_down) to = &a;
          auto r = to->post(id);
          if (r.status == 200) {
            ok = true;
            if (r.body.find("duplicate") != std::string::npos) ++duplicates;
            break;
          }
          std::this_thread::sleep_for(50ms);
        }
      }
      if (ok) {
        std::lock_guard lk(mu);
        acked.insert(id);
      }
    }
  };
  // Joined however the test ends (an assertion returning early included).
  struct Clients {
    std::vector<std::thread> threads;
    std::atomic<bool>& stop;
    ~Clients() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } clients{{}, give_up};
  for (int c = 0; c < 4; ++c) clients.threads.emplace_back(client);

  auto wait_delivered = [&](std::size_t n) {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (sink.count() < n && std::chrono::steady_clock::now() < until) sink.wait_for(n, 100ms);
  };
  // Faults, while the load runs: b is SIGKILLed, then a NATS node is killed and restarted, then b comes
  // back.
  wait_delivered(30);
  b_down = true;
  mark("SIGKILL instance b");
  b.process->kill(SIGKILL);
  EXPECT_EQ(b.process->wait(5s), 128 + SIGKILL);
  wait_delivered(70);
  mark("SIGKILL NATS node 2");
  nats.node(1).kill();
  std::this_thread::sleep_for(1500ms);
  nats.node(1).start();
  ASSERT_TRUE(nats.wait_healthy(30s)) << "the NATS cluster did not recover";
  mark("NATS node 2 back");
  b.start();
  ASSERT_TRUE(wait_port(b.port, 30s)) << log_tail(b.process->log_path());
  b_down = false;
  mark("instance b back");
  for (auto& t : clients.threads) t.join();

  ASSERT_GE(acked.size(), static_cast<std::size_t>(kTotal * 9 / 10)) << "too few webhooks were accepted";
  EXPECT_GE(duplicates.load(), kTotal / 5 / 2) << "the webhooks posted to both were not seen as duplicates";

  // Every acked webhook reaches the sink.
  const auto until = std::chrono::steady_clock::now() + 40s;
  std::map<int, int> got;
  for (;;) {
    got = arrivals(sink);
    const bool all = std::all_of(acked.begin(), acked.end(), [&](int id) { return got.count(id) > 0; });
    if (all || std::chrono::steady_clock::now() > until) break;
    sink.wait_for(sink.count() + 1, 200ms);
  }
  mark("every acked webhook arrived");
  std::vector<int> missing;
  for (int id : acked) {
    if (!got.count(id)) missing.push_back(id);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " acked webhooks never arrived, first " << missing.front()
                               << "\n"
                               << log_tail(a.process->log_path());

  // Routed once, apart from redeliveries after the faults, at most the cap each: what was unsettled when b
  // died; what was acknowledged to the NATS node as it went (those acknowledgements lost); and what an
  // instance held while its store's reader waited out the PubAcks of journal entries sent to that node
  // (up to `timeout`, longer than `ack_wait`). Seen once in CI under AddressSanitizer on a loaded machine:
  // 10 repeats against 8, when the in-progress marks still went out from that reader thread (they have a
  // thread of their own since); the bound keeps the margin, as marks sent to the dying node are lost too.
  int repeats = 0;
  for (const auto& [id, n] : got) repeats += n - 1;
  EXPECT_LE(repeats, 3 * kConcurrency) << "more redeliveries than the faults can cause";
  for (const auto& [id, n] : got) EXPECT_TRUE(id >= 0 && id < kTotal) << id;

  // Limits held across both instances: never more than the cap in flight at the sink; never more than
  // burst + rate x window in any window of a second.
  EXPECT_LE(sink.max_in_flight(), kConcurrency);
  const auto requests = sink.requests();
  const std::size_t peak = busiest(requests, 1000ms);
  EXPECT_LE(static_cast<double>(peak), kBurst + kRate + 2) << "requests in the busiest second: " << peak;
  const auto took = std::chrono::steady_clock::now() - started;
  std::cout << "[cluster] acked " << acked.size() << ", duplicates answered " << duplicates.load()
            << ", requests " << requests.size() << ", repeats " << repeats << ", max in flight "
            << sink.max_in_flight() << ", busiest second " << peak << ", took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_LT(took, 90s);
}
