// The store's totals (Store::counts, read by /metrics and /v1/stats), its lanes with a backlog and their
// queue ages: kept or found without scanning the backlog, and always equal to what a full count of the
// tables says, through every path that adds, moves or removes rows.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"
#include "support/store_calls.h"
#include "support/stored_event.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace totals_store_test {

using namespace evr;

namespace {

using test::commit_now;
using test::record_now;
constexpr auto options = test::quiet_store_options;
constexpr int64_t kDay = 24LL * 3600 * 1000;

std::string db_path(const test::TempDir& dir) {
  return (dir / "state" / "evrouter.db").string();
}

event::EventPtr make_event(const std::string& webhook_id, int64_t time_ms) {
  auto e = test::stored_event(webhook_id);
  e->time_ms = time_ms;
  e->id = event::new_event_id(time_ms);
  return e;
}

// The answers of a full count, read with a connection of the test's own.
struct Counted {
  store::Counts counts;
  std::map<std::string, int64_t> oldest;  // per lane: min(max(created_ms, replayed_ms)) of its pending
};

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sql;
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

Counted count_by_scanning(const test::TempDir& dir) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path(dir).c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  Counted c;
  c.counts.events = scalar(db, "SELECT count(*) FROM events");
  c.counts.pending = scalar(db, "SELECT count(*) FROM deliveries NOT INDEXED WHERE state = 0");
  c.counts.delivered = scalar(db, "SELECT count(*) FROM deliveries NOT INDEXED WHERE state = 1");
  c.counts.dead = scalar(db, "SELECT count(*) FROM deliveries NOT INDEXED WHERE state = 2");
  c.counts.discarded = scalar(db, "SELECT count(*) FROM deliveries NOT INDEXED WHERE state = 3");
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT lane, min(max(created_ms, replayed_ms)) FROM deliveries NOT INDEXED "
                               "WHERE state = 0 GROUP BY lane",
                               -1, &st, nullptr),
            SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    c.oldest.emplace(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return c;
}

// Store::counts, pending_lanes and oldest_pending against the full count, with a readable failure.
void expect_matches_scan(store::Store& s, const test::TempDir& dir, const std::string& step) {
  SCOPED_TRACE(step);
  const Counted want = count_by_scanning(dir);
  const store::Counts got = s.counts();
  EXPECT_EQ(got.events, want.counts.events);
  EXPECT_EQ(got.pending, want.counts.pending);
  EXPECT_EQ(got.delivered, want.counts.delivered);
  EXPECT_EQ(got.dead, want.counts.dead);
  EXPECT_EQ(got.discarded, want.counts.discarded);
  EXPECT_EQ(s.oldest_pending(), want.oldest);
  std::vector<std::string> lanes;
  for (const auto& [lane, since] : want.oldest) lanes.push_back(lane);
  EXPECT_EQ(s.pending_lanes(), lanes);
}

}  // namespace

TEST(StoreTotals, FollowEveryPathThatAddsMovesOrRemovesRows) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  expect_matches_scan(*s, dir, "empty");
  EXPECT_EQ(s->counts().events, 0);

  const int64_t now = event::now_ms();
  const int64_t old = now - 10 * kDay;
  std::vector<int64_t> a, b;
  for (int i = 0; i < 6; ++i) {
    auto r = commit_now(*s, make_event("w" + std::to_string(i), old + i), {"f/x/a", "f/x/b"});
    a.push_back(r.deliveries.at(0).id);
    b.push_back(r.deliveries.at(1).id);
  }
  commit_now(*s, make_event("unrouted", old + 10), {});
  EXPECT_EQ(commit_now(*s, make_event("w0", old + 11), {"f/x/a"}).status,
            store::CommitResult::Status::duplicate);
  expect_matches_scan(*s, dir, "committed");
  EXPECT_EQ(s->counts().events, 7);
  EXPECT_EQ(s->counts().pending, 12);

  record_now(*s, a[0], store::Outcome::Kind::delivered);
  record_now(*s, a[1], store::Outcome::Kind::retry);  // stays pending
  record_now(*s, a[2], store::Outcome::Kind::dead);
  record_now(*s, a[3], store::Outcome::Kind::dead);
  record_now(*s, a[4], store::Outcome::Kind::dead);
  for (int64_t id : b) record_now(*s, id, store::Outcome::Kind::delivered);
  // An outcome for a delivery that is no longer pending changes nothing (nor the totals).
  record_now(*s, b[0], store::Outcome::Kind::delivered);
  record_now(*s, a[0], store::Outcome::Kind::dead);
  expect_matches_scan(*s, dir, "recorded");
  EXPECT_EQ(s->counts().dead, 3);
  EXPECT_EQ(s->pending_lanes(), std::vector<std::string>{"f/x/a"});

  // Replayed from the dead letters: pending again, and the lane's age restarts from the replay.
  ASSERT_EQ(s->replay(a[2]).count, 1);
  ASSERT_EQ(s->discard(a[3]).count, 1);
  expect_matches_scan(*s, dir, "replayed and discarded");
  EXPECT_EQ(s->counts().discarded, 1);
  // The oldest pending delivery (a[1], never replayed) sets the age.
  EXPECT_EQ(s->oldest_pending().at("f/x/a"), old + 1);

  // Everything old and finished goes: the unrouted event and the ones delivered everywhere.
  const auto pruned = s->prune(now);
  EXPECT_GT(pruned.events, 0);
  expect_matches_scan(*s, dir, "pruned");

  // Kept across a restart (the totals are rows of the database, not memory).
  const store::Counts before = s->counts();
  s->close();
  s = store::make_sqlite_store(options(dir));
  s->open();
  EXPECT_EQ(s->counts().events, before.events);
  EXPECT_EQ(s->counts().pending, before.pending);
  expect_matches_scan(*s, dir, "reopened");
  s->close();
}

TEST(StoreTotals, QueueAgeOfALaneWhoseOldestDeliveriesWereReplayed) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t now = event::now_ms();
  // Three dead letters made long ago, then two fresh pending deliveries; the dead letters are replayed.
  std::vector<int64_t> dead;
  for (int i = 0; i < 3; ++i) {
    dead.push_back(
        commit_now(*s, make_event("d" + std::to_string(i), now - kDay + i), {"f/x/a"}).deliveries.at(0).id);
    record_now(*s, dead.back(), store::Outcome::Kind::dead);
  }
  commit_now(*s, make_event("fresh-1", now - 5000), {"f/x/a"});
  commit_now(*s, make_event("fresh-2", now - 4000), {"f/x/a"});
  expect_matches_scan(*s, dir, "before the replay");
  EXPECT_EQ(s->oldest_pending().at("f/x/a"), now - 5000);
  for (int64_t id : dead) ASSERT_EQ(s->replay(id).count, 1);
  // Replayed after the fresh ones were made: the fresh ones are still the oldest wait.
  expect_matches_scan(*s, dir, "after the replay");
  EXPECT_EQ(s->oldest_pending().at("f/x/a"), now - 5000);
  s->close();
}

TEST(StoreTotals, AnOlderDatabaseGetsItsTotalsFromItsRowsOnce) {
  test::TempDir dir;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    for (int i = 0; i < 5; ++i) {
      auto r = commit_now(*s, make_event("o" + std::to_string(i), event::now_ms()), {"f/x/a", "f/y/b"});
      if (i < 2) record_now(*s, r.deliveries.at(0).id, store::Outcome::Kind::delivered);
    }
    s->close();
  }
  {
    // As a release before the totals left it: no totals table, the old pending index.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path(dir).c_str(), &db), SQLITE_OK);
    const char* sql =
        "DROP TABLE totals; DROP INDEX deliveries_waiting;"
        "CREATE INDEX deliveries_pending ON deliveries(lane, next_ms, id) WHERE state = 0;";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = store::make_sqlite_store(options(dir));
  ASSERT_NO_THROW(s->open());
  expect_matches_scan(*s, dir, "upgraded");
  EXPECT_EQ(s->counts().events, 5);
  EXPECT_EQ(s->counts().delivered, 2);
  EXPECT_EQ(s->counts().pending, 8);
  commit_now(*s, make_event("after", event::now_ms()), {"f/x/a"});
  expect_matches_scan(*s, dir, "a commit after the upgrade");
  EXPECT_EQ(s->counts().events, 6);
  s->close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path(dir).c_str(), &db), SQLITE_OK);
  EXPECT_EQ(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_pending'"), 0);
  EXPECT_EQ(scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_waiting'"), 1);
  sqlite3_close(db);
}

}  // namespace totals_store_test
