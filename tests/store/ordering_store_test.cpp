// Ordered delivery in the store: deliveries with an ordering key are blocked behind their key's earliest
// pending delivery (across fetches and restarts), and an old state directory gains the columns it needs.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"
#include "support/stored_event.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace ordering_store_test {

using namespace evr;

namespace {

config::Store options(const test::TempDir& dir) {
  config::Store o;
  o.state_dir = (dir / "state").string();
  o.durability = config::Store::Durability::none;
  return o;
}

event::EventPtr make_event(int n) {
  return test::stored_event("wh-" + std::to_string(n), R"({"n":)" + std::to_string(n) + "}");
}

store::Delivery commit(store::Store& s, int n, std::optional<std::string> key) {
  std::promise<store::CommitResult> p;
  store::Ingest in{make_event(n), {"f/b/d"}, {std::move(key)}};
  s.commit(std::move(in), [&p](store::CommitResult r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  EXPECT_EQ(r.status, store::CommitResult::Status::accepted);
  return r.deliveries.at(0);
}

store::Due fetch(store::Store& s, int64_t now, std::unordered_set<int64_t> exclude = {}) {
  std::promise<store::Due> p;
  s.fetch_due("f/b/d", now, 100, std::move(exclude), [&p](store::Due d) { p.set_value(std::move(d)); });
  return p.get_future().get();
}

void record(store::Store& s, int64_t id, store::Outcome::Kind kind, int64_t next_ms = 0) {
  store::Outcome o;
  o.delivery_id = id;
  o.kind = kind;
  o.attempts = 1;
  o.next_attempt_ms = next_ms;
  o.attempt.number = 1;
  std::promise<void> p;
  s.record(std::move(o), [&p] { p.set_value(); });
  p.get_future().get();
}

std::vector<int64_t> ids(const store::Due& due) {
  std::vector<int64_t> out;
  for (const auto& d : due.deliveries) out.push_back(d.id);
  return out;
}

}  // namespace

TEST(OrderingStore, OnlyTheHeadOfEachKeyIsFetched) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const auto a1 = commit(*s, 1, "A");
  const auto b1 = commit(*s, 2, "B");
  const auto a2 = commit(*s, 3, "A");
  const auto none = commit(*s, 4, std::nullopt);
  const auto a3 = commit(*s, 5, "A");
  EXPECT_FALSE(a1.blocked);
  EXPECT_FALSE(b1.blocked);
  EXPECT_TRUE(a2.blocked);
  EXPECT_FALSE(none.blocked);
  EXPECT_TRUE(a3.blocked);
  ASSERT_TRUE(a2.ordering_key);
  EXPECT_EQ(*a2.ordering_key, "A");

  const int64_t now = event::now_ms() + 1000;
  auto due = fetch(*s, now);
  EXPECT_EQ(ids(due), (std::vector<int64_t>{a1.id, b1.id, none.id}));
  EXPECT_TRUE(due.blocked);
  ASSERT_TRUE(due.deliveries[0].ordering_key);
  EXPECT_EQ(*due.deliveries[0].ordering_key, "A");
  EXPECT_FALSE(due.deliveries[2].ordering_key);

  // In flight (excluded): its key's next delivery is still not handed out.
  EXPECT_EQ(ids(fetch(*s, now, {a1.id, b1.id, none.id})), std::vector<int64_t>{});

  // The head waits for a retry: its key stays blocked, other keys go on.
  record(*s, a1.id, store::Outcome::Kind::retry, now + 60000);
  record(*s, b1.id, store::Outcome::Kind::delivered);
  const auto b2 = commit(*s, 6, "B");
  EXPECT_FALSE(b2.blocked);  // B's head was delivered
  due = fetch(*s, now, {none.id});
  EXPECT_EQ(ids(due), std::vector<int64_t>{b2.id});
  ASSERT_TRUE(due.next_due_ms);
  EXPECT_EQ(*due.next_due_ms, now + 60000);

  // Delivered at last: the next of its key becomes the head, in commit order.
  record(*s, a1.id, store::Outcome::Kind::delivered);
  EXPECT_EQ(ids(fetch(*s, now, {none.id, b2.id})), std::vector<int64_t>{a2.id});
  // A dead head releases its key too.
  record(*s, a2.id, store::Outcome::Kind::dead);
  due = fetch(*s, now, {none.id, b2.id});
  EXPECT_EQ(ids(due), std::vector<int64_t>{a3.id});
  EXPECT_FALSE(due.blocked);
  s->close();
}

TEST(OrderingStore, BlockedDeliveriesSurviveAReopen) {
  test::TempDir dir;
  int64_t a1 = 0, a2 = 0;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    a1 = commit(*s, 1, "A").id;
    a2 = commit(*s, 2, "A").id;
    s->close();
  }
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t now = event::now_ms() + 1000;
  EXPECT_EQ(ids(fetch(*s, now)), std::vector<int64_t>{a1});
  record(*s, a1, store::Outcome::Kind::delivered);
  EXPECT_EQ(ids(fetch(*s, now)), std::vector<int64_t>{a2});
  s->close();
}

TEST(OrderingStore, AnOldStateDirectoryGainsTheOrderingColumns) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "state");
  const std::string db_path = (dir / "state" / "evrouter.db").string();
  {
    // The deliveries table as the first release created it, with a pending delivery.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    const char* sql =
        "CREATE TABLE deliveries(id INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL, lane TEXT NOT NULL, "
        "state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, "
        "next_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, last_error TEXT);"
        "CREATE INDEX deliveries_pending ON deliveries(lane, next_ms, id) WHERE state = 0;";
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = store::make_sqlite_store(options(dir));
  ASSERT_NO_THROW(s->open());
  const auto a1 = commit(*s, 1, "A");
  const auto a2 = commit(*s, 2, "A");
  EXPECT_TRUE(a2.blocked);
  EXPECT_EQ(ids(fetch(*s, event::now_ms() + 1000)), std::vector<int64_t>{a1.id});
  s->close();
}

}  // namespace ordering_store_test
