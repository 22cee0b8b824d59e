// `evrouter backup`, run as the real binary against a live daemon's store, and a restore from its copy.
#include <gtest/gtest.h>

#include <filesystem>
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

using Ran = test::CliRun;
using test::run_cli;

// A copy taken while the daemon runs (deliveries pending: the destination is down) holds every webhook
// acknowledged before it and none after; restored (once the daemon is stopped), a daemon started on it
// delivers exactly those.
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
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("40 events, 40 deliveries pending, 0 dead"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(backup));
    EXPECT_FALSE(fs::exists(backup.string() + ".partial"));
    // No restore over a store in use; the daemon goes on.
    const Ran busy = run_cli({"restore", "--config", s.config_path, "--from", backup.string()}, s.env());
    EXPECT_EQ(busy.status, 1);
    EXPECT_NE(busy.output.find("is in use (is evrouter running?)"), std::string::npos) << busy.output;
    for (int i = 100; i < 110; ++i) ASSERT_EQ(s.post(i).status, 200);  // after the copy
    // A backup never overwrites a file.
    const Ran again = run_cli({"backup", "--config", s.config_path, "--output", backup.string()}, s.env());
    EXPECT_EQ(again.status, 1);
    EXPECT_NE(again.output.find("exists; give a new file name"), std::string::npos) << again.output;
    d.kill(SIGTERM);
    EXPECT_EQ(d.wait(15s), 0);
  }
  // Restore: the copy becomes the store; the one it replaces is kept beside it.
  const Ran restored = run_cli({"restore", "--config", s.config_path, "--from", backup.string()}, s.env());
  ASSERT_EQ(restored.status, 0) << restored.output;
  EXPECT_NE(restored.output.find("40 events, 40 deliveries pending, 0 dead"), std::string::npos)
      << restored.output;
  EXPECT_NE(restored.output.find("evrouter.db.before-restore-"), std::string::npos) << restored.output;
  EXPECT_FALSE(fs::exists(s.dir / "state" / "evrouter.db-wal"));
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(test::wait_port(s.port, 10s)) << test::read_file(d.log_path());
  ASSERT_TRUE(sink.wait_for(before.size(), 20s)) << sink.count() << " delivered";
  std::this_thread::sleep_for(500ms);  // nothing more is coming
  EXPECT_EQ(test::delivered_ids(sink), before);
}

TEST(Backup, RestoreRefusesWhatIsNotAStore) {
  ProcessRig s;
  const fs::path junk = s.dir / "junk.db";
  test::write_file(junk,
                   "not a database at all, but long enough to have a header............................");
  const Ran r = run_cli({"restore", "--config", s.config_path, "--from", junk.string()}, s.env());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("evrouter restore: "), std::string::npos) << r.output;
  const Ran missing =
      run_cli({"restore", "--config", s.config_path, "--from", (s.dir / "none.db").string()}, s.env());
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("no backup at"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(s.dir / "state" / "evrouter.db"));  // nothing was put in place
}

TEST(Backup, RefusesWithoutAStoreOrWithJetStream) {
  ProcessRig s;
  // No environment: the flows' secrets are not needed to find the store.
  const Ran none = run_cli({"backup", "--config", s.config_path, "--output", (s.dir / "b.db").string()});
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.output.find("no store at"), std::string::npos) << none.output;
  EXPECT_EQ(none.output.find("EVR_PROCESS_TEST_SECRET"), std::string::npos) << none.output;
  const Ran usage = run_cli({"backup", "--config", s.config_path}, s.env());
  EXPECT_EQ(usage.status, 2);
  EXPECT_NE(usage.output.find("--output PATH"), std::string::npos) << usage.output;

  test::DaemonConfig c;
  c.port = s.port;
  c.store_extra = "  type: jetstream\n  servers: [nats://127.0.0.1:4222]\n";
  test::TempDir js;
  const std::string path = test::write_daemon_config(js, c);
  test::write_orders_flow(js);
  const Ran jet = run_cli({"backup", "--config", path, "--output", (js / "b.db").string()}, s.env());
  EXPECT_EQ(jet.status, 1);
  EXPECT_NE(jet.output.find("nats stream backup"), std::string::npos) << jet.output;
}

}  // namespace
}  // namespace evr
