// A WAL sync that fails (durability fsync): the commit it covered was visible but may not be on disk, and the
// kernel may have dropped the pages it could not write, so no later write can be trusted either. The
// webhook is answered 503 (never 2xx), so are all later ones, the probes turn 503 with the reason, the
// daemon asks to be stopped (`evrouter serve` exits 1 there, for a supervisor to restart it), and a restart
// on the same state directory takes webhooks again with nothing acknowledged lost. The failure is injected
// where the store calls fdatasync (store/wal_vfs.h): a disk whose writeback fails cannot be made here.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "e2e/pipeline_fixture.h"
#include "store/wal_vfs.h"
#include "support/slowdown.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

// Ends the injected failure however the test ends.
struct FailingWalSyncs {
  explicit FailingWalSyncs(int err) { store::sqlite::fail_wal_syncs_for_testing(err); }
  ~FailingWalSyncs() { store::sqlite::fail_wal_syncs_for_testing(0); }
  FailingWalSyncs(const FailingWalSyncs&) = delete;
  FailingWalSyncs& operator=(const FailingWalSyncs&) = delete;
};

}  // namespace

TEST_F(PipelineTest, AFailedWalSyncRefusesEveryLaterWebhookAndAsksForARestart) {
  auto cfg = make_config();
  cfg.admin.enabled = true;
  cfg.admin.port = 0;
  std::atomic<int> fatal_calls{0};
  daemon_ = std::make_unique<daemon::Daemon>(cfg);
  daemon_->on_fatal([&fatal_calls] { ++fatal_calls; });
  daemon_->start();
  auto get = [](uint16_t port, const char* path) { return http_request(port, "GET", path, {}, ""); };

  const std::string first = order("150.00", 1);
  ASSERT_EQ(post(first, {{"X-Shopify-Webhook-Id", "wh-before"}}).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, scaled(10s)));
  EXPECT_EQ(metric_sample(get(daemon_->admin_port(), "/metrics").body, "evrouter_store_failed"), 0);

  const std::string failed_body = order("20.00", 2);
  {
    FailingWalSyncs eio(EIO);
    const auto r = post(failed_body, {{"X-Shopify-Webhook-Id", "wh-failed"}});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("store_unavailable"), std::string::npos) << r.body;
  }
  // The disk "works" again, but the store does not trust it any more.
  const auto later = post(order("30.00", 3), {{"X-Shopify-Webhook-Id", "wh-later"}});
  EXPECT_EQ(later.status, 503) << later.body;

  EXPECT_EQ(fatal_calls.load(), 1);
  EXPECT_NE(daemon_->failure().find("could not be synced"), std::string::npos) << daemon_->failure();
  EXPECT_NE(daemon_->failure().find(std::strerror(EIO)), std::string::npos) << daemon_->failure();
  for (const char* probe : {"/healthz", "/readyz"}) {
    const auto admin = get(daemon_->admin_port(), probe);
    EXPECT_EQ(admin.status, 503) << probe;
    EXPECT_NE(admin.body.find(R"("status":"failed")"), std::string::npos) << admin.body;
    EXPECT_NE(admin.body.find("could not be synced"), std::string::npos) << admin.body;
    const auto listener = get(daemon_->port(), probe);
    EXPECT_EQ(listener.status, 503) << probe;
    EXPECT_NE(listener.body.find(R"("status":"failed")"), std::string::npos) << listener.body;
  }
  EXPECT_EQ(metric_sample(get(daemon_->admin_port(), "/metrics").body, "evrouter_store_failed"), 1);

  // A restart on the same state directory recovers: the producer's retries are taken (routed at least
  // once: the refused webhook's commit may have reached the disk, then the retry is a duplicate), and
  // the webhook acknowledged before the failure is still known.
  daemon_->stop();
  daemon_.reset();
  start(cfg);
  EXPECT_EQ(get(daemon_->port(), "/healthz").status, 200);
  EXPECT_EQ(get(daemon_->admin_port(), "/readyz").status, 200);
  EXPECT_EQ(metric_sample(get(daemon_->admin_port(), "/metrics").body, "evrouter_store_failed"), 0);
  const auto retried = post(failed_body, {{"X-Shopify-Webhook-Id", "wh-failed"}});
  EXPECT_EQ(retried.status, 200) << retried.body;
  const auto again = post(first, {{"X-Shopify-Webhook-Id", "wh-before"}});
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("duplicate"), std::string::npos) << again.body;
  EXPECT_TRUE(daemon_->failure().empty());
}
