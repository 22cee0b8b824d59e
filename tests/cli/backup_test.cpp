// `evrouter backup`, run as the real binary against a live daemon's store, and a restore from its copy.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "support/process_rig.h"

namespace evr {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::DaemonProcess;
using test::ProcessRig;
using test::Sink;
using test::SinkOptions;

struct Ran {
  int code;
  std::string output;
};

Ran run_cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
  DaemonProcess p(std::move(args), std::move(env));
  const int code = p.wait(30s);
  return {code, test::read_file(p.log_path())};
}

// The ids ("id": n) of the orders the sink received.
std::set<int> received_ids(const Sink& sink) {
  std::set<int> ids;
  static const std::regex id(R"re("id":(\d+))re");
  for (const auto& r : sink.requests()) {
    std::smatch m;
    if (std::regex_search(r.body, m, id)) ids.insert(std::stoi(m[1]));
  }
  return ids;
}

// A copy taken while the daemon runs (deliveries pending: the destination is down) holds every webhook
// acknowledged before it and none after; a daemon started on the copy delivers exactly those.
TEST(Backup, CopyOfALiveStoreRestoresItsPendingDeliveries) {
  ProcessRig s;
  const fs::path backup = s.dir / "backup.db";
  std::set<int> before;
  {
    DaemonProcess d({"serve", "--config", s.config_path}, s.env());
    ASSERT_TRUE(test::wait_port(s.port, 10s)) << test::read_file(d.log_path());
    for (int i = 0; i < 40; ++i) {
      ASSERT_EQ(s.post(i).status, 200);
      before.insert(i);
    }
    const Ran r = run_cli({"backup", "--config", s.config_path, "--output", backup.string()}, s.env());
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("40 events, 40 deliveries pending, 0 dead"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(backup));
    EXPECT_FALSE(fs::exists(backup.string() + ".partial"));
    for (int i = 100; i < 110; ++i) ASSERT_EQ(s.post(i).status, 200);  // after the copy
    // A backup never overwrites a file.
    const Ran again = run_cli({"backup", "--config", s.config_path, "--output", backup.string()}, s.env());
    EXPECT_EQ(again.code, 1);
    EXPECT_NE(again.output.find("exists; give a new file name"), std::string::npos) << again.output;
    d.kill(SIGTERM);
    EXPECT_EQ(d.wait(15s), 0);
  }
  // Restore: the copy becomes the store.
  const fs::path state = s.dir / "state";
  for (const char* f : {"evrouter.db", "evrouter.db-wal", "evrouter.db-shm"}) fs::remove(state / f);
  fs::copy_file(backup, state / "evrouter.db");
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(test::wait_port(s.port, 10s)) << test::read_file(d.log_path());
  ASSERT_TRUE(sink.wait_for(before.size(), 20s)) << sink.count() << " delivered";
  std::this_thread::sleep_for(500ms);  // nothing more is coming
  EXPECT_EQ(received_ids(sink), before);
}

TEST(Backup, RefusesWithoutAStoreOrWithJetStream) {
  ProcessRig s;
  const Ran none =
      run_cli({"backup", "--config", s.config_path, "--output", (s.dir / "b.db").string()}, s.env());
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.output.find("no store at"), std::string::npos) << none.output;
  const Ran usage = run_cli({"backup", "--config", s.config_path}, s.env());
  EXPECT_EQ(usage.code, 2);
  EXPECT_NE(usage.output.find("--output PATH"), std::string::npos) << usage.output;

  test::DaemonConfig c;
  c.port = s.port;
  c.store_extra = "  type: jetstream\n  servers: [nats://127.0.0.1:4222]\n";
  test::TempDir js;
  const std::string path = test::write_daemon_config(js, c);
  test::write_orders_flow(js);
  const Ran jet = run_cli({"backup", "--config", path, "--output", (js / "b.db").string()}, s.env());
  EXPECT_EQ(jet.code, 1);
  EXPECT_NE(jet.output.find("nats stream backup"), std::string::npos) << jet.output;
}

}  // namespace
}  // namespace evr
