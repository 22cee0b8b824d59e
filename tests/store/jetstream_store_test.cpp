#include "evrouter/store/jetstream_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "evrouter/schema/registry.h"
#include "support/harness.h"
#include "support/nats_server.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace jetstream_store_test {

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

// A delivered outcome is answered once its ack is taken, while its journal entry (which the state read
// here comes from) may still be on its way: reads see it within moments.
template <typename Read, typename Done>
auto eventually(Read read, Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  auto r = read();
  while (!done(r) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r = read();
  }
  return r;
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

  std::unique_ptr<store::Store> open() const {
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

// Commits queued together are published together (two round trips for the lot): each is still answered
// on its own, duplicates among them are found, and the lane holds the deliveries in commit order.
// Outcomes recorded together are settled together: each journaled and acknowledged.
// An idle store costs next to no CPU. Its writer thread (a worker without a periodic job) used to wait
// until a deadline that had passed a second after the start, which returned at once: it spun on a core.
TEST_F(JetStreamStoreTest, IdleStoreLeavesTheCpuAlone) {
  auto s = open();
  ASSERT_EQ(commit(*s, make_event("wh-idle"), {"lane"}).status, Status::accepted);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the workers' 1 s period
  const double before = test::process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double used = test::process_cpu_seconds() - before;
  EXPECT_LT(used, 0.3) << "CPU seconds this process used in 1 s with the store idle";
}

TEST_F(JetStreamStoreTest, CommitsAndOutcomesQueuedTogetherArePipelinedAndEachAnswered) {
  auto s = open();
  constexpr int kUnique = 250;
  constexpr int kRepeats = 50;
  std::vector<event::EventPtr> events;
  for (int i = 0; i < kUnique; ++i) events.push_back(make_event("p-" + std::to_string(i)));
  for (int i = 0; i < kRepeats; ++i) events.push_back(make_event("p-" + std::to_string(i * 3)));
  std::vector<std::promise<store::CommitResult>> answers(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    s->commit({events[i], {"lane"}},
              [&answers, i](store::CommitResult r) { answers[i].set_value(std::move(r)); });
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto r = answers[i].get_future().get();
    if (i < kUnique) {
      ASSERT_EQ(r.status, Status::accepted) << i << ": " << r.error;
      EXPECT_EQ(r.event_id, events[i]->id);
    } else {
      ASSERT_EQ(r.status, Status::duplicate) << i << ": " << r.error;
      EXPECT_EQ(r.event_id, events[(i - kUnique) * 3]->id);  // the first one's id
    }
  }
  EXPECT_EQ(s->counts().events, kUnique);

  auto got = fetch_n(*s, "lane", kUnique, std::chrono::seconds(10));
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kUnique));
  for (int i = 0; i < kUnique; ++i) EXPECT_EQ(got[i].event->id, events[i]->id) << "delivery " << i;
  EXPECT_TRUE(fetch(*s, "lane", 10).deliveries.empty());  // the repeats' deliveries were dropped

  std::vector<std::promise<void>> settled(got.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    s->record(outcome(got[i], store::Outcome::Kind::delivered), [&settled, i] { settled[i].set_value(); });
  }
  for (auto& p : settled) p.get_future().get();
  EXPECT_EQ(s->counts().delivered, kUnique);
  const auto one = [](const std::vector<store::Attempt>& a) { return a.size() == 1; };
  EXPECT_EQ(eventually([&] { return s->attempts(got.front().id); }, one).size(), 1u);
  EXPECT_EQ(eventually([&] { return s->attempts(got.back().id); }, one).size(), 1u);
  // Acknowledged: none comes back, here or in another instance after the ack wait.
  EXPECT_TRUE(fetch(*s, "lane", kUnique).deliveries.empty());
}

// Outcomes of every kind recorded together, in one settle pass: the delivered ones are answered without
// waiting for their journal entries, the retries and dead letters once theirs are in; each lands where
// it should.
TEST_F(JetStreamStoreTest, DeliveredRetriedAndDeadSettledInOnePass) {
  auto s = open();
  constexpr int kEach = 4;
  for (int i = 0; i < 3 * kEach; ++i)
    ASSERT_EQ(commit(*s, make_event("mixed-" + std::to_string(i)), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*s, "lane", 3 * kEach);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(3 * kEach));
  using K = store::Outcome::Kind;
  const K kinds[] = {K::delivered, K::retry, K::dead};
  std::vector<std::promise<void>> answered(got.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    s->record(outcome(got[i], kinds[i % 3], event::now_ms()), [&answered, i] { answered[i].set_value(); });
  }
  for (auto& p : answered) {
    ASSERT_EQ(p.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }
  EXPECT_EQ(s->counts().delivered, kEach);
  EXPECT_EQ(s->dead_letters({}).dead_letters.size(), static_cast<std::size_t>(kEach));
  // Only the retries come back, each with its attempt counted.
  auto again = fetch_n(*s, "lane", kEach, std::chrono::seconds(5));
  ASSERT_EQ(again.size(), static_cast<std::size_t>(kEach));
  for (const auto& d : again) {
    EXPECT_EQ(d.attempts, 1);
    EXPECT_EQ(std::count_if(got.begin(), got.end(), [&](const auto& g) { return g.id == d.id; }), 1);
  }
  std::set<int64_t> retried;
  for (std::size_t i = 1; i < got.size(); i += 3) retried.insert(got[i].id);
  for (const auto& d : again) EXPECT_EQ(retried.count(d.id), 1u) << d.id;
  EXPECT_TRUE(fetch(*s, "lane", 10).deliveries.empty());  // the retries are held, the rest settled
}

// A dead delivery replayed (same id) while its lane has not yet heard that its outcome was settled: the
// lane's fetch still excludes that id. The replay must not be held where no lane sends it; a fetch once
// the lane knows gets it.
TEST_F(JetStreamStoreTest, ReplayFetchedWhileTheLaneStillExcludesItsIdComesBackLater) {
  auto s = open();
  ASSERT_EQ(commit(*s, make_event("wh-replay-race"), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*s, "lane", 1);
  ASSERT_EQ(got.size(), 1u);
  const int64_t id = got[0].id;
  record(*s, outcome(got[0], store::Outcome::Kind::dead));
  ASSERT_EQ(s->replay(id).count, 1);
  // The lane's stale view: it still holds `id`.
  const auto stale = fetch(*s, "lane", 10, {id});
  EXPECT_TRUE(stale.deliveries.empty());
  // Once the lane has finished with it, the replay comes back.
  auto again = fetch_n(*s, "lane", 1, std::chrono::seconds(5));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  EXPECT_GT(again[0].replayed_ms, 0);  // the replay, not the first message
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
  EXPECT_EQ(s->dead_letters({}).dead_letters.size(), 1u);
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

// A held delivery stays this instance's while the store's reader thread is busy for several ack_waits
// (as when it waits out the PubAcks of a dying NATS node): its in-progress marks do not wait for the
// reader. Here a fetch's callback, which runs on the reader thread, holds it for 3.5 x ack_wait.
TEST_F(JetStreamStoreTest, HeldDeliveriesStayHeldWhileTheReaderIsBusy) {
  auto o = options();
  o.ack_wait = std::chrono::seconds(1);
  auto a = store::make_jetstream_store(o);
  a->open();
  auto b = store::make_jetstream_store(o);
  b->open();
  ASSERT_EQ(commit(*a, make_event("busy-reader"), {"lane"}).status, Status::accepted);
  auto got = fetch_n(*a, "lane", 1);
  ASSERT_EQ(got.size(), 1u);

  std::promise<void> blocked;
  a->fetch_due("other lane", event::now_ms(), 1, {}, [&blocked](store::Due) {
    blocked.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  });
  blocked.get_future().get();
  // Meanwhile the other instance asks for the lane's deliveries, past several ack_waits.
  auto stolen = fetch_n(*b, "lane", 1, std::chrono::milliseconds(3000));
  EXPECT_TRUE(stolen.empty()) << "handed out again while held";

  // Still a's to settle: delivered, it leaves the queue for good.
  record(*a, outcome(got[0], store::Outcome::Kind::delivered));
  EXPECT_TRUE(fetch_n(*b, "lane", 1, std::chrono::milliseconds(1500)).empty());
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

// ---- Operations (docs/scaling.md#what-is-cluster-wide) ----

namespace {

// Fetches one delivery of `lane` and records `kinds` for it in turn (all but the last must be retries,
// due at once). Returns the delivery as last fetched.
store::Delivery attempt(store::Store& s, const std::string& lane,
                        std::initializer_list<store::Outcome::Kind> kinds) {
  store::Delivery d;
  for (auto kind : kinds) {
    auto got = fetch_n(s, lane, 1);
    EXPECT_EQ(got.size(), 1u);
    if (got.empty()) return d;
    d = got[0];
    auto o = outcome(d, kind, event::now_ms());
    o.attempt.error = kind == store::Outcome::Kind::delivered ? "" : "HTTP 500";
    record(s, o);
  }
  return d;
}

std::vector<std::string> ids_of(const store::EventPage& p) {
  std::vector<std::string> out;
  for (const auto& r : p.events) out.push_back(r.event->id);
  return out;
}

}  // namespace

TEST_F(JetStreamStoreTest, EventByIdOrWebhookIdWithDeliveriesAndHistory) {
  auto s = open();
  auto e = make_event("wh-lookup", R"({"id":7})");
  ASSERT_EQ(commit(*s, e, {"lane-a", "lane-b"}).status, Status::accepted);
  using K = store::Outcome::Kind;
  attempt(*s, "lane-a", {K::retry, K::delivered});

  auto r = eventually([&] { return s->event(e->id); },
                      [](const auto& r) {
                        return r && !r->deliveries.empty() &&
                               r->deliveries[0].state == store::DeliveryState::delivered;
                      });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->event->id, e->id);
  EXPECT_EQ(r->event->payload, e->payload);
  EXPECT_EQ(r->event->headers, e->headers);
  ASSERT_EQ(r->deliveries.size(), 2u);
  const auto& a = r->deliveries[0];
  EXPECT_EQ(a.lane, "lane-a");
  EXPECT_EQ(a.state, store::DeliveryState::delivered);
  EXPECT_EQ(a.attempts, 2);
  ASSERT_EQ(a.history.size(), 2u);
  EXPECT_EQ(a.history[0].number, 1);
  EXPECT_EQ(a.history[0].error, "HTTP 500");
  EXPECT_EQ(a.history[1].status, 200);
  const auto& b = r->deliveries[1];
  EXPECT_EQ(b.lane, "lane-b");
  EXPECT_EQ(b.state, store::DeliveryState::pending);
  EXPECT_EQ(b.attempts, 0);
  EXPECT_GT(b.id, 0);

  auto by_webhook = s->event("wh-lookup");
  ASSERT_TRUE(by_webhook.has_value());
  EXPECT_EQ(by_webhook->event->id, e->id);
  EXPECT_FALSE(s->event("no-such-event").has_value());
  EXPECT_FALSE(s->event("").has_value());
  EXPECT_FALSE(s->event("a.b*>").has_value());
  // Any delivery by id, in whatever state: the pending one, never attempted.
  auto pending = s->dead_letter(b.id);
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->delivery.state, store::DeliveryState::pending);
  EXPECT_EQ(pending->event->id, e->id);
  auto delivered = s->dead_letter(a.id);
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->delivery.state, store::DeliveryState::delivered);
  EXPECT_EQ(delivered->event->payload, e->payload);
  EXPECT_EQ(s->attempts(a.id).size(), 2u);
  EXPECT_FALSE(s->dead_letter(999999).has_value());
}

TEST_F(JetStreamStoreTest, EventListFiltersAndPagesNewestFirst) {
  auto s = open();
  std::vector<std::string> ids;  // oldest first
  for (int i = 0; i < 5; ++i) {
    auto e = std::make_shared<event::Event>(*make_event("list-" + std::to_string(i)));
    if (i >= 3) {
      e->flow = "other flow";
      e->type = "products/update";
    }
    ids.push_back(e->id);
    ASSERT_EQ(commit(*s, e, {i >= 3 ? "lane-o" : "lane"}).status, Status::accepted);
  }
  const std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  store::EventQuery all;
  auto page = s->events(all);
  EXPECT_EQ(ids_of(page), newest_first);
  EXPECT_FALSE(page.next_cursor.has_value());
  EXPECT_TRUE(page.events[0].event->payload.empty());  // lists leave payloads out
  ASSERT_EQ(page.events[0].deliveries.size(), 1u);
  EXPECT_EQ(page.events[0].deliveries[0].lane, "lane-o");

  // Pages of two, following the cursor: every event once, in order.
  std::vector<std::string> paged;
  store::EventQuery q;
  q.limit = 2;
  for (int i = 0; i < 5; ++i) {
    auto p = s->events(q);
    for (auto& id : ids_of(p)) paged.push_back(id);
    if (!p.next_cursor) break;
    q.cursor = p.next_cursor;
  }
  EXPECT_EQ(paged, newest_first);

  store::EventQuery by_flow;
  by_flow.flow = "other flow";
  EXPECT_EQ(ids_of(s->events(by_flow)), (std::vector<std::string>{ids[4], ids[3]}));
  store::EventQuery by_type;
  by_type.type = "orders/create";
  EXPECT_EQ(ids_of(s->events(by_type)), (std::vector<std::string>{ids[2], ids[1], ids[0]}));
  store::EventQuery old;
  old.time.until_ms = event::now_ms() - 3'600'000;
  EXPECT_TRUE(s->events(old).events.empty());
  store::EventQuery recent;
  recent.time.since_ms = event::now_ms() - 60'000;
  EXPECT_EQ(s->events(recent).events.size(), 5u);

  // Status: the one dead-lettered.
  attempt(*s, "lane-o", {store::Outcome::Kind::dead});
  store::EventQuery dead;
  dead.status = store::DeliveryState::dead;
  auto dead_page = s->events(dead);
  ASSERT_EQ(dead_page.events.size(), 1u);
  EXPECT_EQ(dead_page.events[0].deliveries[0].state, store::DeliveryState::dead);
  store::EventQuery pending;
  pending.status = store::DeliveryState::pending;
  EXPECT_EQ(s->events(pending).events.size(), 4u);

  store::EventQuery bad;
  bad.cursor = "nonsense";
  EXPECT_THROW(s->events(bad), std::invalid_argument);
}

TEST_F(JetStreamStoreTest, DeadLettersListLookupReplayAndDiscard) {
  auto s = open();
  using K = store::Outcome::Kind;
  std::vector<std::string> events;
  store::Delivery first, third;
  for (int i = 0; i < 3; ++i) {
    auto e = std::make_shared<event::Event>(
        *make_event("dl-" + std::to_string(i), R"({"n":)" + std::to_string(i) + "}"));
    if (i == 2) e->flow = "second";
    events.push_back(e->id);
    ASSERT_EQ(commit(*s, e, {i == 2 ? "lane-2" : "lane-1"}).status, Status::accepted);
    // Each dies before the next is committed (a retried delivery may come back after a newer one).
    const auto d =
        attempt(*s, i == 2 ? "lane-2" : "lane-1",
                i == 0 ? std::initializer_list<K>{K::retry, K::dead} : std::initializer_list<K>{K::dead});
    if (i == 0) first = d;
    if (i == 2) third = d;
  }

  auto page = s->dead_letters({});
  ASSERT_EQ(page.dead_letters.size(), 3u);
  EXPECT_EQ(page.dead_letters[0].delivery.id, third.id);  // most recently dead first
  EXPECT_EQ(page.dead_letters[2].delivery.id, first.id);
  EXPECT_EQ(page.dead_letters[2].delivery.attempts, 2);
  EXPECT_EQ(page.dead_letters[2].delivery.last_error, "HTTP 500");
  EXPECT_EQ(page.dead_letters[2].delivery.state, store::DeliveryState::dead);
  EXPECT_EQ(page.dead_letters[2].event->id, events[0]);
  EXPECT_TRUE(page.dead_letters[2].delivery.history.empty());  // lists leave history out

  store::DeadLetterQuery by_lane;
  by_lane.filter.lane = "lane-1";
  EXPECT_EQ(s->dead_letters(by_lane).dead_letters.size(), 2u);
  store::DeadLetterQuery by_flow;
  by_flow.filter.flow = "second";
  EXPECT_EQ(s->dead_letters(by_flow).dead_letters.size(), 1u);
  store::DeadLetterQuery paged;
  paged.limit = 2;
  auto p1 = s->dead_letters(paged);
  ASSERT_EQ(p1.dead_letters.size(), 2u);
  ASSERT_TRUE(p1.next_cursor.has_value());
  paged.cursor = p1.next_cursor;
  auto p2 = s->dead_letters(paged);
  ASSERT_EQ(p2.dead_letters.size(), 1u);
  EXPECT_EQ(p2.dead_letters[0].delivery.id, first.id);
  EXPECT_FALSE(p2.next_cursor.has_value());

  // By id: payload and the whole history, persisted.
  auto dl = s->dead_letter(first.id);
  ASSERT_TRUE(dl.has_value());
  EXPECT_EQ(dl->event->payload, R"({"n":0})");
  ASSERT_EQ(dl->delivery.history.size(), 2u);
  EXPECT_EQ(dl->delivery.history[1].number, 2);

  // Replay one: back in its lane under the same id; the retry policy starts over, numbering goes on.
  auto b = s->replay(first.id);
  EXPECT_EQ(b.count, 1);
  EXPECT_EQ(b.lanes, std::vector<std::string>{"lane-1"});
  EXPECT_EQ(s->replay(first.id).count, 0);  // not dead any more
  EXPECT_EQ(s->dead_letters({}).dead_letters.size(), 2u);
  auto back = fetch_n(*s, "lane-1", 1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].id, first.id);
  EXPECT_EQ(back[0].attempts, 2);
  EXPECT_EQ(back[0].attempts_before_replay, 2);
  EXPECT_GT(back[0].replayed_ms, 0);
  EXPECT_EQ(back[0].event->payload, R"({"n":0})");
  record(*s, outcome(back[0], K::delivered));
  auto done = s->dead_letter(first.id);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->delivery.state, store::DeliveryState::delivered);
  EXPECT_EQ(done->delivery.replays, 1);
  ASSERT_EQ(done->delivery.history.size(), 3u);
  EXPECT_EQ(done->delivery.history[2].number, 3);

  // Discard by filter: kept with its history, never listed as dead again, not sent.
  store::DeadLetterFilter lane2;
  lane2.lane = "lane-2";
  auto d = s->discard(lane2);
  EXPECT_EQ(d.count, 1);
  EXPECT_TRUE(d.lanes.empty());
  auto gone = s->dead_letter(third.id);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->delivery.state, store::DeliveryState::discarded);
  EXPECT_EQ(gone->delivery.history.size(), 1u);
  EXPECT_TRUE(fetch(*s, "lane-2", 10).deliveries.empty());
  // Replay by filter: the one left; a time range in the past matches none.
  store::DeadLetterFilter past;
  past.time.until_ms = event::now_ms() - 3'600'000;
  EXPECT_EQ(s->replay(past).count, 0);
  auto all = s->replay(store::DeadLetterFilter{});
  EXPECT_EQ(all.count, 1);
  EXPECT_TRUE(s->dead_letters({}).dead_letters.empty());
  EXPECT_EQ(s->counts().dead, 0);
  EXPECT_EQ(fetch_n(*s, "lane-1", 1).size(), 1u);
}

TEST_F(JetStreamStoreTest, HistoryAndAttemptsSurviveARestart) {
  int64_t id = 0;
  {
    auto s = open();
    ASSERT_EQ(commit(*s, make_event("restart-h"), {"lane"}).status, Status::accepted);
    id = attempt(*s, "lane", {store::Outcome::Kind::retry}).id;
    s->close();
  }
  auto s = open();
  EXPECT_EQ(s->attempts(id).size(), 1u);
  auto got = fetch_n(*s, "lane", 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].attempts, 1);  // from the journal, not JetStream's hand-out count
  record(*s, outcome(got[0], store::Outcome::Kind::dead));
  auto dl = s->dead_letter(id);
  ASSERT_TRUE(dl.has_value());
  EXPECT_EQ(dl->delivery.history.size(), 2u);
}

TEST_F(JetStreamStoreTest, TwoInstancesSeeTheSameEventsDeadLettersAndFlowState) {
  auto a = open();
  auto b = open();
  std::atomic<int> changes{0};
  b->watch_shared_state([&changes] { ++changes; });
  auto e = make_event("two-1");
  ASSERT_EQ(commit(*a, e, {"lane"}).status, Status::accepted);
  const auto dead = attempt(*a, "lane", {store::Outcome::Kind::dead});

  auto seen = b->event(e->id);
  ASSERT_TRUE(seen.has_value());
  ASSERT_EQ(seen->deliveries.size(), 1u);
  EXPECT_EQ(seen->deliveries[0].state, store::DeliveryState::dead);
  auto page = b->dead_letters({});
  ASSERT_EQ(page.dead_letters.size(), 1u);
  EXPECT_EQ(page.dead_letters[0].delivery.id, dead.id);
  // Replayed on b, delivered by a; both see it delivered.
  EXPECT_EQ(b->replay(dead.id).count, 1);
  EXPECT_EQ(a->replay(dead.id).count, 0);
  EXPECT_TRUE(a->dead_letters({}).dead_letters.empty());
  auto back = fetch_n(*a, "lane", 1);
  ASSERT_EQ(back.size(), 1u);
  record(*a, outcome(back[0], store::Outcome::Kind::delivered));
  auto after =
      eventually([&] { return b->dead_letter(dead.id); },
                 [](const auto& d) { return d && d->delivery.state == store::DeliveryState::delivered; });
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->delivery.state, store::DeliveryState::delivered);

  // A flow disabled and a listener id rotated on a reach b's watch.
  a->set_flow_enabled("orders", false);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (changes.load() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(changes.load(), 1);
  EXPECT_EQ(b->flow_states()["orders"].enabled, std::optional<bool>(false));
  const int before = changes.load();
  const std::string rotated = a->rotate_listener_id("orders");
  const auto until2 = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (changes.load() == before && std::chrono::steady_clock::now() < until2)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GT(changes.load(), before);
  EXPECT_EQ(b->listener_id("orders", std::nullopt), rotated);
}

TEST_F(JetStreamStoreTest, WindowReplayReadsPagesInStreamOrderAndMarksItsDeliveries) {
  auto s = open();
  const int64_t t0 = event::now_ms() - 60'000;
  auto at = [](const std::string& webhook_id, int64_t time_ms, const std::string& flow) {
    auto e = std::make_shared<event::Event>(*make_event(webhook_id, R"({"id":")" + webhook_id + R"("})"));
    e->time_ms = time_ms;
    e->id = event::new_event_id(time_ms);
    e->flow = flow;
    e->listener_id = "L-" + flow;
    return event::EventPtr(std::move(e));
  };
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(commit(*s, at("f" + std::to_string(i), t0 + i * 1000, "f"), {"f/b/a"}).status,
              Status::accepted);
  ASSERT_EQ(commit(*s, at("other", t0 + 1500, "g"), {"g/b/a"}).status, Status::accepted);
  ASSERT_EQ(commit(*s, at("late", t0 + 10'000, "f"), {"f/b/a"}).status, Status::accepted);

  store::ArchiveQuery q;
  q.flow = "f";
  q.from_ms = t0 + 1000;
  q.to_ms = t0 + 10'000;  // exclusive: "late" is out
  q.limit = 2;
  std::vector<std::string> seen;
  std::vector<store::ReplayIngest> ingests;
  int pages = 0;
  for (;;) {
    auto page = s->archived(q);
    ++pages;
    for (const auto& r : page.events) {
      seen.push_back(r.event->webhook_id);
      EXPECT_EQ(r.event->payload, R"({"id":")" + r.event->webhook_id + R"("})");
      ingests.push_back({r.seq,
                         {"f/b/new"},
                         {r.event->webhook_id == "f2" ? std::optional<std::string>("k2") : std::nullopt}});
    }
    if (!page.more || page.events.empty()) break;
    q.after = std::make_pair(page.events.back().event->time_ms, page.events.back().seq);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"f1", "f2", "f3", "f4"}));
  EXPECT_EQ(pages, 2);

  // By listener id (the publish API's events), any flow.
  store::ArchiveQuery by_listener;
  by_listener.listener_id = "L-g";
  by_listener.from_ms = t0;
  by_listener.to_ms = t0 + 60'000;
  const auto g = s->archived(by_listener);
  ASSERT_EQ(g.events.size(), 1U);
  EXPECT_EQ(g.events[0].event->webhook_id, "other");
  EXPECT_FALSE(g.more);

  // The start is found by the time events were stored: one committed after `mid` only.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int64_t mid = event::now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_EQ(commit(*s, at("now", event::now_ms(), "f"), {"f/b/a"}).status, Status::accepted);
  store::ArchiveQuery recent;
  recent.flow = "f";
  recent.from_ms = mid;
  recent.to_ms = event::now_ms() + 1;
  const auto r = s->archived(recent);
  ASSERT_EQ(r.events.size(), 1U);
  EXPECT_EQ(r.events[0].event->webhook_id, "now");
  recent.from_ms = event::now_ms() + 1000;
  recent.to_ms = recent.from_ms + 1000;
  EXPECT_TRUE(s->archived(recent).events.empty());

  const auto made = s->add_replay(ingests, event::now_ms());
  EXPECT_EQ(made.count, 4);
  EXPECT_EQ(made.lanes, std::vector<std::string>{"f/b/new"});
  const auto due = fetch_n(*s, "f/b/new", 4);
  ASSERT_EQ(due.size(), 4U);
  std::set<std::string> replayed;
  for (const auto& d : due) {
    EXPECT_TRUE(d.replay);
    EXPECT_EQ(d.attempts, 0);
    EXPECT_GE(d.created_ms, t0 + 60'000);  // made now, not when the event was received
    EXPECT_EQ(d.ordering_key, d.event->webhook_id == "f2" ? std::optional<std::string>("k2") : std::nullopt);
    replayed.insert(d.event->webhook_id);
  }
  EXPECT_EQ(replayed, (std::set<std::string>{"f1", "f2", "f3", "f4"}));
  for (const auto& d : fetch_n(*s, "f/b/a", 7)) EXPECT_FALSE(d.replay);  // ingest deliveries

  // The event lists the replay's delivery after its own, marked.
  const auto ev = s->event("f2");
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->deliveries.size(), 2U);
  EXPECT_EQ(ev->deliveries[0].replay_ms, 0);
  EXPECT_GT(ev->deliveries[1].replay_ms, 0);
  EXPECT_EQ(ev->deliveries[1].lane, "f/b/new");
  EXPECT_EQ(ev->deliveries[1].state, store::DeliveryState::pending);
  record(*s, outcome(due[0], store::Outcome::Kind::delivered));
  const auto listed = eventually(
      [&] {
        store::EventQuery eq;
        eq.flow = "f";
        eq.status = store::DeliveryState::delivered;
        return s->events(eq);
      },
      [](const store::EventPage& p) { return p.events.size() == 1; });
  ASSERT_EQ(listed.events.size(), 1U);
  EXPECT_EQ(listed.events[0].event->webhook_id, due[0].event->webhook_id);

  // Queue ages: when each lane's oldest pending delivery was stored.
  const auto ages = s->oldest_pending();
  ASSERT_TRUE(ages.count("f/b/a"));
  ASSERT_TRUE(ages.count("f/b/new"));
  EXPECT_GE(ages.at("f/b/a"), t0 + 60'000 - 5'000);
  EXPECT_LE(ages.at("f/b/a"), ages.at("f/b/new"));
  EXPECT_FALSE(ages.count("f/b/none"));
}

TEST_F(JetStreamStoreTest, InferredSchemasAreKeptForEveryInstance) {
  auto a = open();
  config::Schemas cfg;
  auto event_of = [](const std::string& source, const std::string& type, const std::string& payload) {
    auto e = std::make_shared<event::Event>();
    e->source = source;
    e->type = type;
    e->payload = payload;
    e->time_ms = event::now_ms();
    return event::EventPtr(std::move(e));
  };
  {
    schema::Registry r(cfg, *a);
    r.start();
    r.offer(event_of("shopify", "orders/create", R"({"id": 1, "email": "a@b.c"})"));
    r.offer(event_of("shopify", "orders/create", R"({"id": 2})"));
    r.offer(event_of("billing app", "invoice.paid", R"({"amount": 3.5})"));
    r.sync();
    r.stop();
  }
  const auto kept = a->schemas();
  ASSERT_EQ(kept.size(), 2U);
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& k : kept) {
    keys.emplace(k.source, k.type);
    EXPECT_FALSE(k.document.empty());
    EXPECT_GT(k.updated_ms, 0);
  }
  EXPECT_EQ(keys, (std::set<std::pair<std::string, std::string>>{{"billing app", "invoice.paid"},
                                                                 {"shopify", "orders/create"}}));

  // Another instance (or this one after a restart) starts from them.
  auto b = open();
  schema::Registry again(cfg, *b);
  again.start();
  auto s = again.get("shopify", "orders/create");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->events, 2);
  EXPECT_EQ(schema::fields(*s).size(), 2U);
  ASSERT_TRUE(again.get("billing app", "invoice.paid"));
  again.offer(event_of("shopify", "orders/create", R"({"id": 3})"));
  again.sync();
  again.stop();
  a->close();
  a = open();
  int counted = 0;
  for (const auto& k : a->schemas()) {
    if (k.type != "orders/create") continue;
    EXPECT_EQ(schema::deserialize(k.source, k.type, k.document).events, 3);
    ++counted;
  }
  EXPECT_EQ(counted, 1);
}

}  // namespace jetstream_store_test
