// Retention (Store::prune) and the store side of window replays (Store::archived, Store::add_replay):
// nothing that still has to be delivered or waits in the dead letters is ever pruned; archived events are
// read a page at a time in receive order; replay deliveries are marked and due at once.
#include <gtest/gtest.h>

#include <future>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"
#include "support/store_calls.h"
#include "support/stored_event.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace retention_store_test {

using namespace evr;

namespace {

using test::commit_now;
using test::record_now;
constexpr auto options = test::quiet_store_options;
constexpr int64_t kDay = 24LL * 3600 * 1000;

event::EventPtr make_event(const std::string& webhook_id, int64_t time_ms, const std::string& flow = "f") {
  auto e = test::stored_event(webhook_id, R"({"id":")" + webhook_id + R"("})");
  e->time_ms = time_ms;
  e->id = event::new_event_id(time_ms);
  e->correlation_id = e->id;
  e->flow = flow;
  e->listener_id = "L-" + flow;
  return e;
}

store::Due fetch(store::Store& s, const std::string& lane) {
  std::promise<store::Due> p;
  s.fetch_due(lane, event::now_ms() + 1, 100, {}, [&p](store::Due d) { p.set_value(std::move(d)); });
  return p.get_future().get();
}

}  // namespace

TEST(Retention, PrunesOnlyOldEventsWhoseDeliveriesAreFinished) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t now = event::now_ms();
  const int64_t old = now - 10 * kDay;
  const int64_t delivered = commit_now(*s, make_event("delivered", old), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, delivered, store::Outcome::Kind::delivered);
  commit_now(*s, make_event("pending", old), {"f/b/a"});
  const int64_t retrying = commit_now(*s, make_event("retrying", old), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, retrying, store::Outcome::Kind::retry);
  const int64_t dead = commit_now(*s, make_event("dead", old), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, dead, store::Outcome::Kind::dead);
  const int64_t discarded = commit_now(*s, make_event("discarded", old), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, discarded, store::Outcome::Kind::dead);
  ASSERT_EQ(s->discard(discarded).count, 1);
  commit_now(*s, make_event("unmatched", old), {});
  // Delivered to one lane, still pending in another: kept.
  auto half = commit_now(*s, make_event("half", old), {"f/b/a", "f/b/b"});
  record_now(*s, half.deliveries.at(0).id, store::Outcome::Kind::delivered);
  const int64_t recent = commit_now(*s, make_event("recent", now), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, recent, store::Outcome::Kind::delivered);
  ASSERT_EQ(s->counts().events, 8);

  const auto pruned = s->prune(now - 7 * kDay);
  EXPECT_EQ(pruned.events, 3);      // delivered, discarded, unmatched
  EXPECT_EQ(pruned.deliveries, 2);  // delivered, discarded
  EXPECT_FALSE(s->event("delivered"));
  EXPECT_FALSE(s->event("discarded"));
  EXPECT_FALSE(s->event("unmatched"));
  EXPECT_TRUE(s->attempts(delivered).empty());  // the history went with it
  for (const char* kept : {"pending", "retrying", "dead", "half", "recent"})
    EXPECT_TRUE(s->event(kept)) << kept;
  EXPECT_EQ(s->dead_letters({}).dead_letters.size(), 1U);  // dead letters outlive retention
  EXPECT_EQ(fetch(*s, "f/b/a").deliveries.size(), 1U);     // "pending" (retrying waits a minute)

  // Once delivered, the old events go at the next pass; nothing else does.
  record_now(*s, half.deliveries.at(1).id, store::Outcome::Kind::delivered);
  EXPECT_EQ(s->prune(now - 7 * kDay).events, 1);
  EXPECT_FALSE(s->event("half"));
  EXPECT_EQ(s->prune(now - 7 * kDay).events, 0);
  EXPECT_EQ(s->counts().events, 4);
}

TEST(Retention, PrunesManyEventsInShortTransactions) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t old = event::now_ms() - 30 * kDay;
  std::vector<store::Ingest> batch;
  for (int i = 0; i < 700; ++i) batch.push_back({make_event("w" + std::to_string(i), old + i), {}});
  std::promise<void> p;
  s->commit_batch(std::move(batch), [&p](std::vector<store::CommitResult>) { p.set_value(); });
  p.get_future().get();
  commit_now(*s, make_event("keep", old), {"f/b/a"});  // pending, in the middle of nothing
  EXPECT_EQ(s->prune(event::now_ms() - kDay).events, 700);
  EXPECT_EQ(s->counts().events, 1);
}

TEST(WindowReplay, ArchivedPagesInReceiveOrderAndReplayDeliveriesAreMarked) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t t0 = event::now_ms() - kDay;
  for (int i = 0; i < 5; ++i) commit_now(*s, make_event("f" + std::to_string(i), t0 + i * 1000), {"f/b/a"});
  commit_now(*s, make_event("other", t0 + 1500, "g"), {"g/b/a"});
  commit_now(*s, make_event("late", t0 + 10'000), {"f/b/a"});

  store::ArchiveQuery q;
  q.flow = "f";
  q.from_ms = t0 + 1000;
  q.to_ms = t0 + 10'000;  // exclusive: "late" is out
  q.limit = 2;
  std::vector<std::string> seen;
  std::vector<store::ReplayIngest> ingests;
  for (;;) {
    auto page = s->archived(q);
    for (const auto& r : page.events) {
      seen.push_back(r.event->webhook_id);
      EXPECT_FALSE(r.event->payload.empty());
      ingests.push_back({r.seq, {"f/b/new"}});
    }
    if (!page.more || page.events.empty()) break;
    q.after = std::make_pair(page.events.back().event->time_ms, page.events.back().seq);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"f1", "f2", "f3", "f4"}));

  // An event pruned between the read and the write is skipped.
  const int64_t gone = commit_now(*s, make_event("gone", t0 - kDay), {"f/b/a"}).deliveries.at(0).id;
  record_now(*s, gone, store::Outcome::Kind::delivered);
  q.from_ms = t0 - 2 * kDay;
  q.after.reset();
  q.limit = 1;
  const auto first = s->archived(q);
  ASSERT_EQ(first.events.size(), 1U);
  ASSERT_EQ(first.events[0].event->webhook_id, "gone");
  ingests.push_back({first.events[0].seq, {"f/b/new"}});
  EXPECT_EQ(s->prune(t0 - kDay / 2).events, 1);

  const auto made = s->add_replay(ingests, event::now_ms());
  EXPECT_EQ(made.count, 4);
  EXPECT_EQ(made.lanes, std::vector<std::string>{"f/b/new"});
  const auto due = fetch(*s, "f/b/new");
  ASSERT_EQ(due.deliveries.size(), 4U);
  for (const auto& d : due.deliveries) {
    EXPECT_TRUE(d.replay);
    EXPECT_EQ(d.attempts, 0);
  }
  const auto ev = s->event("f2");
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->deliveries.size(), 2U);
  EXPECT_EQ(ev->deliveries[0].replay_ms, 0);  // the ingest delivery
  EXPECT_GT(ev->deliveries[1].replay_ms, 0);
  EXPECT_EQ(ev->deliveries[1].lane, "f/b/new");
  // Ingest deliveries are not replays.
  for (const auto& d : fetch(*s, "f/b/a").deliveries) EXPECT_FALSE(d.replay);
  // Replayed deliveries are pending: their events are not pruned, however old.
  EXPECT_EQ(s->prune(event::now_ms()).events, 0);
  const auto ages = s->oldest_pending();
  ASSERT_TRUE(ages.count("f/b/a"));
  EXPECT_EQ(ages.at("f/b/a"), t0);  // made when received
  EXPECT_GT(ages.at("f/b/new"), t0);
}

}  // namespace retention_store_test
