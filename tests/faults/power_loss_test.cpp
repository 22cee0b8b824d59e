// Power loss: the daemon runs with a preloaded library (tests/preload/power_loss.cpp) that keeps, beside its
// state directory, an image of what the disk would hold after a power cut at any moment (only what an fsync
// or fdatasync covered; every write not yet synced is lost). The daemon is killed with SIGKILL under load,
// its state directory replaced by that image, and it is started again: every webhook answered 200 must
// still be delivered. A SIGKILL alone cannot show this (the kernel's page cache survives it, unsynced writes
// included).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/process_rig.h"
#include "support/slowdown.h"

using namespace evr::test;
using namespace std::chrono_literals;

namespace {

// Waits until the sink holds every id of `want`, or the timeout; returns what it holds.
std::set<int> wait_delivered(const Sink& sink, const std::set<int>& want, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto got = delivered_ids(sink);
    bool all = true;
    for (int id : want) all = all && got.count(id);
    if (all || std::chrono::steady_clock::now() > deadline) return got;
    sink.wait_for(sink.count() + 1, 200ms);
  }
}

// The state directory becomes what the disk held at the cut.
void cut_power(const std::filesystem::path& state, const std::filesystem::path& image) {
  std::filesystem::remove_all(state);
  std::filesystem::create_directories(state);
  for (const auto& f : std::filesystem::directory_iterator(image)) {
    std::filesystem::copy_file(f.path(), state / f.path().filename());
  }
}

// Switches the rig's store to another durability.
void set_durability(const ProcessRig& s, const std::string& durability) {
  std::string config = read_file(s.config_path);
  const auto at = config.find("durability: fsync");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, std::string("durability: fsync").size(), "durability: " + durability);
  write_file(s.config_path, config);
}

// `evrouter listeners` on the rig's config: "<flow>\t<url>" lines.
std::string listener_lines(const ProcessRig& s) {
  DaemonProcess p({"listeners", "--config", s.config_path}, s.env());
  EXPECT_EQ(p.wait(10s), 0) << read_file(p.log_path());
  return read_file(p.log_path());
}

std::vector<std::string> power_loss_env(const ProcessRig& s, const std::filesystem::path& image) {
  auto env = s.env();
  env.push_back("EVR_TEST_POWER_SYNCERS=" + (s.dir / "syncers").string());
  env.push_back(std::string("LD_PRELOAD=") + EVROUTER_POWER_LOSS);
  env.push_back("EVR_TEST_POWER_WATCH=" + (s.dir / "state").string());
  env.push_back("EVR_TEST_POWER_IMAGE=" + image.string());
  return env;
}

}  // namespace

// Three cuts under load, each at the moment one of the store's threads is about to sync (the preloaded
// library kills the process there, before the sync): the writer syncing its own commit; the syncer, which
// syncs for the writer while the writer goes on (the path where a 2xx waits for another thread's sync);
// the checkpointer, about to sync the database file it has just copied WAL pages into. 64 clients post as
// fast as they can (enough of a backlog for the writer to hand its syncs to the syncer), 8 KiB bodies (the
// WAL passes its checkpoint threshold), the destination down (every event stays pending, its retries are
// written too). Each round starts on the state the previous cut left; then a normal start with the
// destination up: every webhook ever answered 200 arrives.
TEST(PowerLoss, EveryAcknowledgedWebhookSurvivesCutsUnderLoad) {
  if (asan_build() || tsan_build())
    GTEST_SKIP() << "a preloaded library cannot come before a sanitizer runtime";
  ProcessRig s;
  const auto state = s.dir / "state";
  std::set<int> acked;
  std::mutex mu;
  std::atomic<int> next{0};
  uintmax_t image_bytes = 0;
  // Small webhooks while the writer's and the syncer's syncs are cut (the WAL stays below the checkpoint
  // threshold, so no checkpoint's sync of the WAL covers for a missing one), 8 KiB ones before the
  // checkpointer's (they take the WAL past it within a second or two).
  const std::vector<std::pair<std::string, std::size_t>> rounds = {
      {"evr-store-sync:5", 256}, {"evr-store-write:100", 256}, {"evr-store-ckpt:2", 8192}};
  for (const auto& round : rounds) {
    const std::string& cut = round.first;
    const std::size_t pad = round.second;  // a plain variable: clang 14 captures no structured binding
    const auto image = s.dir / "image";
    std::filesystem::create_directories(image);
    auto env = power_loss_env(s, image);
    env.push_back("EVR_TEST_POWER_CUT=" + cut);
    DaemonProcess d({"serve", "--config", s.config_path}, env);
    ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 64; ++c) {
      clients.emplace_back([&] {
        while (!stop) {
          const int id = next++;
          if (s.post(id, pad).status == 200) {
            std::lock_guard lk(mu);
            acked.insert(id);
          }
        }
      });
    }
    const auto began = std::chrono::steady_clock::now();
    const int status = d.wait(scaled(std::chrono::milliseconds(60s)));
    std::fprintf(stderr, "cut %s after %lld ms, %zu acked\n", cut.c_str(),
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - began)
                                            .count()),
                 acked.size());
    if (status < 0) d.kill(SIGKILL);
    stop = true;
    for (auto& t : clients) t.join();
    EXPECT_EQ(status, 128 + SIGKILL) << log_tail(d.log_path());
    const std::string cut_line = "cut " + cut.substr(0, cut.find(':')) + " " + cut.substr(cut.find(':') + 1);
    ASSERT_NE(read_file(s.dir / "syncers").find(cut_line), std::string::npos)
        << "the cut " << cut << " was not reached; syncs seen:\n"
        << read_file(s.dir / "syncers");
    image_bytes = 0;
    for (const auto& f : std::filesystem::directory_iterator(image)) image_bytes += f.file_size();
    cut_power(state, image);
    std::filesystem::remove_all(image);
  }
  ASSERT_GT(acked.size(), 100u) << "the load was too light to mean anything";
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  const auto got = wait_delivered(sink, acked, 90s);
  std::vector<int> lost;
  for (int id : acked) {
    if (!got.count(id)) lost.push_back(id);
  }
  EXPECT_TRUE(lost.empty()) << lost.size() << " of " << acked.size()
                            << " acknowledged webhooks lost, the first: "
                            << (lost.empty() ? -1 : lost.front()) << "\n"
                            << log_tail(d.log_path());
  RecordProperty("acked", static_cast<int>(acked.size()));
  RecordProperty("last_image_bytes", static_cast<int>(image_bytes));
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_tail(d.log_path());
}

// The instrument has teeth: with `durability: os` (a commit is written to the WAL but not synced: it
// survives a crash of evrouter, not of the machine) the same cut loses webhooks that were answered 200.
TEST(PowerLoss, WithDurabilityOsACutLosesAcknowledgedWebhooks) {
  if (asan_build() || tsan_build())
    GTEST_SKIP() << "a preloaded library cannot come before a sanitizer runtime";
  ProcessRig s;
  set_durability(s, "os");
  const auto image = s.dir / "image";
  std::filesystem::create_directories(image);
  std::set<int> acked;
  {
    DaemonProcess d({"serve", "--config", s.config_path}, power_loss_env(s, image));
    ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
    for (int id = 0; id < 30; ++id) {
      ASSERT_EQ(s.post(id, 8192).status, 200);
      acked.insert(id);
    }
    d.kill(SIGKILL);
    EXPECT_EQ(d.wait(5s), 128 + SIGKILL);
  }
  cut_power(s.dir / "state", image);
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  const auto got = wait_delivered(sink, acked, 3s);
  RecordProperty("delivered_of_30", static_cast<int>(got.size()));
  EXPECT_LT(got.size(), acked.size()) << "a power cut lost nothing unsynced: the image kept unsynced writes";
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_tail(d.log_path());
}

// A generated listener id is the URL a user pasted into Shopify, and a flow an operator switched off must
// stay off: both must survive a power cut in every durability that syncs at all, `os` included (where an
// event may be lost, the URL must not change nor the flow come back).
TEST(PowerLoss, ListenerIdsAndFlowSwitchesSurviveACutInDurabilityOs) {
  if (asan_build() || tsan_build())
    GTEST_SKIP() << "a preloaded library cannot come before a sanitizer runtime";
  ProcessRig s;
  set_durability(s, "os");
  {  // the flow without a pinned listener id: the daemon generates one at its first start
    std::string flow = read_file(s.dir / "flows" / "orders.yaml");
    const std::string pinned = std::string("  listener_id: ") + kProcessListener + "\n";
    const auto at = flow.find(pinned);
    ASSERT_NE(at, std::string::npos);
    flow.erase(at, pinned.size());
    write_file(s.dir / "flows" / "orders.yaml", flow);
  }
  const uint16_t admin_port = free_port();
  const std::string token = "power-loss-admin-token";
  write_file(s.config_path, read_file(s.config_path) + "admin:\n  listen: 127.0.0.1\n  port: " +
                                std::to_string(admin_port) + "\n  token: {env: EVR_PL_ADMIN_TOKEN}\n");
  auto env = s.env();
  env.push_back("EVR_PL_ADMIN_TOKEN=" + token);
  const auto image = s.dir / "image";
  std::filesystem::create_directories(image);
  std::string before;
  {
    auto daemon_env = power_loss_env(s, image);
    daemon_env.push_back("EVR_PL_ADMIN_TOKEN=" + token);
    DaemonProcess d({"serve", "--config", s.config_path}, daemon_env);
    ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
    ASSERT_TRUE(wait_port(admin_port, 10s)) << log_tail(d.log_path());
    before = listener_lines(s);
    DaemonProcess off({"flows", "disable", "orders", "--admin-url",
                       "http://127.0.0.1:" + std::to_string(admin_port), "--token", token},
                      env);
    ASSERT_EQ(off.wait(10s), 0) << read_file(off.log_path());
    d.kill(SIGKILL);
    EXPECT_EQ(d.wait(5s), 128 + SIGKILL);
  }
  ASSERT_NE(before.find("orders\t"), std::string::npos) << before;
  cut_power(s.dir / "state", image);
  EXPECT_EQ(listener_lines(s), before) << "the listener URL changed after a power cut";
  // Started again: the flow is still off (a webhook to it is refused with 503).
  DaemonProcess d({"serve", "--config", s.config_path}, env);
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  const std::string id = before.substr(before.rfind('/') + 1, before.size() - before.rfind('/') - 2);
  const std::string body = R"({"id":1,"total_price":"10.00"})";
  const auto r = http_request(s.port, "POST", "/hooks/" + id,
                              {{"X-Shopify-Topic", "orders/create"},
                               {"X-Shopify-Hmac-Sha256", shopify_hmac(kProcessSecret, body)},
                               {"X-Shopify-Webhook-Id", "wh-1"}},
                              body);
  EXPECT_EQ(r.status, 503) << "the flow switched off before the cut is on again: " << r.body;
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_tail(d.log_path());
}
