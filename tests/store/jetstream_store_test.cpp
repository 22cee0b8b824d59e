#include "evrouter/store/jetstream_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "support/harness.h"
#include "support/nats_server.h"

using namespace evr;
using Status = store::CommitResult::Status;

namespace {

event::EventPtr make_event(const std::string& dedup, const std::string& payload = R"({"id":1})") {
  auto e = std::make_shared<event::Event>();
  e->time_ms = event::now_ms();
  e->id = event::new_event_id(e->time_ms);
  e->flow = "orders flow";
  e->listener_id = "L1";
  e->source = "shopify";
  e->type = "orders/create";
  e->dedup_key = dedup;
  e->webhook_id = dedup;
  e->headers = {{"X-Shopify-Topic", "orders/create"}};
  e->payload = payload;
  return e;
}

store::CommitResult commit(store::Store& s, event::EventPtr e, std::vector<std::string> lanes) {
  std::promise<store::CommitResult> p;
  s.commit({std::move(e), std::move(lanes)}, [&p](store::CommitResult r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

store::Due fetch(store::Store& s, const std::string& lane, std::size_t limit,
                 std::unordered_set<int64_t> exclude = {}) {
  std::promise<store::Due> p;
  s.fetch_due(lane, event::now_ms(), limit, std::move(exclude),
              [&p](store::Due d) { p.set_value(std::move(d)); });
  return p.get_future().get();
}

// Fetches until `n` deliveries came or the time is up.
std::vector<store::Delivery> fetch_n(store::Store& s, const std::string& lane, std::size_t n,
                                     std::chrono::milliseconds within = std::chrono::seconds(15)) {
  std::vector<store::Delivery> out;
  const auto until = std::chrono::steady_clock::now() + within;
  while (out.size() < n && std::chrono::steady_clock::now() < until) {
    auto due = fetch(s, lane, n - out.size());
    for (auto& d : due.deliveries) out.push_back(std::move(d));
    if (out.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return out;
}

void record(store::Store& s, store::Outcome o) {
  std::promise<void> p;
  s.record(std::move(o), [&p] { p.set_value(); });
  p.get_future().get();
}

store::Outcome outcome(const store::Delivery& d, store::Outcome::Kind kind, int64_t next_ms = 0) {
  store::Outcome o;
  o.delivery_id = d.id;
  o.kind = kind;
  o.attempts = d.attempts + 1;
  o.next_attempt_ms = next_ms;
  o.attempt.number = o.attempts;
  o.attempt.at_ms = event::now_ms();
  o.attempt.status = kind == store::Outcome::Kind::delivered ? 200 : 500;
  return o;
}

class JetStreamStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::NatsServer::available()) GTEST_SKIP() << "nats-server is not installed";
    nats_ = std::make_unique<test::NatsServer>(dir_ / "nats");
  }

  config::Store options() const {
    config::Store o;
    o.type = "jetstream";
    o.servers = {nats_->url()};
    o.stream = "evrtest";
    o.timeout = std::chrono::seconds(5);
    o.dedup_window = std::chrono::minutes(10);
    return o;
  }

  std::unique_ptr<store::Store> open() {
    auto s = store::make_jetstream_store(options());
    s->open();
    return s;
  }

  test::TempDir dir_;
  std::unique_ptr<test::NatsServer> nats_;
};

}  // namespace

TEST_F(JetStreamStoreTest, CommitFetchAndDeliver) {
  auto s = open();
  auto e = make_event("wh-1", R"({"id":42,"note":"line\nbreak"})");
  auto r = commit(*s, e, {"orders/sink", "orders/other"});
  ASSERT_EQ(r.status, Status::accepted) << r.error;
  EXPECT_EQ(r.event_id, e->id);
  EXPECT_EQ(r.lanes_to_read, (std::vector<std::string>{"orders/sink", "orders/other"}));

  auto got = fetch_n(*s, "orders/sink", 1);
  ASSERT_EQ(got.size(), 1u);
  const auto& d = got[0];
  EXPECT_EQ(d.lane, "orders/sink");
  EXPECT_EQ(d.attempts, 0);
  EXPECT_EQ(d.event->id, e->id);
  EXPECT_EQ(d.event->payload, e->payload);
  EXPECT_EQ(d.event->flow, "orders flow");
  EXPECT_EQ(d.event->headers, e->headers);
  EXPECT_EQ(d.event->webhook_id, "wh-1");

  auto lanes = s->pending_lanes();
  std::sort(lanes.begin(), lanes.end());
  EXPECT_EQ(lanes, (std::vector<std::string>{"orders/other", "orders/sink"}));

  record(*s, outcome(d, store::Outcome::Kind::delivered));
  // Acknowledged: gone from the work queue, never handed out again.
  EXPECT_TRUE(fetch(*s, "orders/sink", 10).deliveries.empty());
  const auto c = s->counts();
  EXPECT_EQ(c.events, 1);
  EXPECT_EQ(c.pending, 1);  // orders/other
  EXPECT_EQ(c.delivered, 1);
  EXPECT_EQ(s->pending_lanes(), std::vector<std::string>{"orders/other"});
}

TEST_F(JetStreamStoreTest, SameListenerAndDedupKeyIsADuplicate) {
  auto s = open();
  auto first = make_event("wh-dup");
  ASSERT_EQ(commit(*s, first, {"lane"}).status, Status::accepted);
  auto again = commit(*s, make_event("wh-dup"), {"lane"});
  EXPECT_EQ(again.status, Status::duplicate);
  EXPECT_EQ(again.event_id, first->id);
  // Another listener with the same key is not a duplicate.
  auto other = std::make_shared<event::Event>(*make_event("wh-dup"));
  other->listener_id = "L2";
  EXPECT_EQ(commit(*s, other, {"lane"}).status, Status::accepted);
  // One delivery per accepted event: the duplicate's were dropped by JetStream.
  auto got = fetch_n(*s, "lane", 3, std::chrono::seconds(2));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(s->counts().events, 2);
}

TEST_F(JetStreamStoreTest, BatchCommitMarksRepeatsAsDuplicates) {
  auto s = open();
  std::vector<store::Ingest> batch;
  batch.push_back({make_event("b-1"), {"lane"}});
  batch.push_back({make_event("b-2"), {"lane"}});
  batch.push_back({make_event("b-1"), {"lane"}});
  std::promise<std::vector<store::CommitResult>> p;
  s->commit_batch(std::move(batch), [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
  auto results = p.get_future().get();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status, Status::accepted);
  EXPECT_EQ(results[1].status, Status::accepted);
  EXPECT_EQ(results[2].status, Status::duplicate);
  EXPECT_EQ(fetch_n(*s, "lane", 3, std::chrono::seconds(2)).size(), 2u);
}

TEST_F(JetStreamStoreTest, RetryComesBackAfterItsDelayWithTheAttemptCounted) {
  auto s = open();
  ASSERT_EQ(commit(*s, make_event("wh-r"), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*s, "lane", 1);
  ASSERT_EQ(got.size(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  record(*s, outcome(got[0], store::Outcome::Kind::retry, event::now_ms() + 600));
  // Not before its delay.
  EXPECT_TRUE(fetch(*s, "lane", 10).deliveries.empty());
  auto again = fetch_n(*s, "lane", 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  EXPECT_EQ(again[0].id, got[0].id);
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_EQ(s->attempts(got[0].id).size(), 1u);
}

TEST_F(JetStreamStoreTest, DeadLetterLeavesTheQueueForTheDeadStream) {
  auto s = open();
  ASSERT_EQ(commit(*s, make_event("wh-d"), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*s, "lane", 1);
  ASSERT_EQ(got.size(), 1u);
  record(*s, outcome(got[0], store::Outcome::Kind::dead));
  EXPECT_TRUE(fetch(*s, "lane", 10).deliveries.empty());
  const auto c = s->counts();
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(c.pending, 0);
  // The operations the store does not offer yet say so.
  EXPECT_THROW(s->dead_letters({}), store::NotSupported);
  EXPECT_THROW(s->event("x"), store::NotSupported);
}

TEST_F(JetStreamStoreTest, HeldDeliveriesAreNotHandedOutTwice) {
  auto s = open();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(commit(*s, make_event("h-" + std::to_string(i)), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*s, "lane", 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(fetch(*s, "lane", 10).deliveries.empty());
  EXPECT_LT(got[0].id, got[1].id);
  EXPECT_LT(got[1].id, got[2].id);
}

// The lane's cap holds across instances: two stores on one stream (two evrouter instances) together
// never hold more unsettled deliveries of the lane than its cap; settling one frees a place.
TEST_F(JetStreamStoreTest, LaneCapHoldsAcrossInstances) {
  auto a = open();
  auto b = open();
  a->cap_lanes({{"lane", 3}});
  b->cap_lanes({{"lane", 3}});
  for (int i = 0; i < 8; ++i)
    ASSERT_EQ(commit(*a, make_event("cap-" + std::to_string(i)), {"lane"}).status, Status::accepted);
  auto got_a = fetch_n(*a, "lane", 2);
  ASSERT_EQ(got_a.size(), 2u);
  // b may only get what is left of the cap, however long it asks.
  auto got_b = fetch_n(*b, "lane", 5, std::chrono::seconds(2));
  EXPECT_EQ(got_b.size(), 1u);
  EXPECT_TRUE(fetch(*a, "lane", 5).deliveries.empty());
  record(*a, outcome(got_a[0], store::Outcome::Kind::delivered));
  EXPECT_EQ(fetch_n(*b, "lane", 5, std::chrono::seconds(2)).size(), 1u);

  // A new cap (configuration reload) applies to the consumer already made.
  a->cap_lanes({{"lane", 5}});
  EXPECT_EQ(fetch_n(*a, "lane", 5, std::chrono::seconds(3)).size(), 2u);
}

// Instances count each other through their heartbeats; one that closes is counted out at once, and a
// store that opens next to a live one starts with both counted.
TEST_F(JetStreamStoreTest, InstancesCountEachOther) {
  auto a = open();
  EXPECT_EQ(a->live_instances(), 1);
  auto b = open();
  EXPECT_EQ(b->live_instances(), 2);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (a->live_instances() != 2 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(a->live_instances(), 2);
  b->close();
  const auto until2 = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (a->live_instances() != 1 && std::chrono::steady_clock::now() < until2)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(a->live_instances(), 1);
}

TEST_F(JetStreamStoreTest, ReopenedStoreStillHasThePendingDeliveries) {
  {
    auto s = open();
    ASSERT_EQ(commit(*s, make_event("p-1"), {"lane"}).status, Status::accepted);
    ASSERT_EQ(commit(*s, make_event("p-2"), {"lane"}).status, Status::accepted);
    // One is fetched and held when the store closes: it goes back at once, not after the ack wait.
    ASSERT_EQ(fetch_n(*s, "lane", 1).size(), 1u);
    s->close();
  }
  auto s = open();
  EXPECT_EQ(s->pending_lanes(), std::vector<std::string>{"lane"});
  EXPECT_EQ(fetch_n(*s, "lane", 2, std::chrono::seconds(10)).size(), 2u);
  EXPECT_EQ(commit(*s, make_event("p-1"), {"lane"}).status, Status::duplicate);
}

TEST_F(JetStreamStoreTest, NatsRestartKeepsListenerIdsFlowStateDedupAndDeliveries) {
  std::string id;
  {
    auto s = open();
    id = s->listener_id("orders", std::nullopt);
    EXPECT_EQ(s->listener_id("orders", std::nullopt), id);
    EXPECT_EQ(s->listener_id("pinned", std::string("pinned-id-0123456789abcdef")),
              "pinned-id-0123456789abcdef");
    s->set_flow_enabled("orders", false);
    ASSERT_EQ(commit(*s, make_event("n-1"), {"lane"}).status, Status::accepted);
    s->close();
  }
  nats_->stop();
  nats_->start();
  auto s = open();
  EXPECT_EQ(s->listener_id("orders", std::nullopt), id);
  EXPECT_NE(s->rotate_listener_id("orders"), id);
  EXPECT_NE(s->listener_id("orders", std::nullopt), id);
  auto states = s->flow_states();
  ASSERT_EQ(states.count("orders"), 1u);
  EXPECT_EQ(states["orders"].enabled, std::optional<bool>(false));
  s->set_flow_enabled("orders", std::nullopt);
  EXPECT_EQ(s->flow_states().count("orders"), 0u);
  EXPECT_EQ(s->pending_lanes(), std::vector<std::string>{"lane"});
  EXPECT_EQ(fetch_n(*s, "lane", 1).size(), 1u);
  EXPECT_EQ(commit(*s, make_event("n-1"), {"lane"}).status, Status::duplicate);
}

TEST_F(JetStreamStoreTest, CommitFailsFastWhenNatsIsDown) {
  auto s = open();
  nats_->stop();
  // Wait until the client notices.
  store::CommitResult r;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    const auto t0 = std::chrono::steady_clock::now();
    r = commit(*s, make_event(""), {"lane"});
    if (r.status == Status::failed) {
      EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < until);
  EXPECT_EQ(r.status, Status::failed);
  EXPECT_FALSE(r.error.empty());
}

TEST(JetStreamStoreOpen, UnreachableServerIsAClearError) {
  config::Store o;
  o.type = "jetstream";
  o.servers = {"nats://127.0.0.1:" + std::to_string(test::free_port())};
  o.timeout = std::chrono::milliseconds(500);
  auto s = store::make_jetstream_store(o);
  try {
    s->open();
    FAIL() << "open succeeded";
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find("cannot connect to NATS"), std::string::npos) << ex.what();
  }
}
