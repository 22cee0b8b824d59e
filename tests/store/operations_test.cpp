// The store's operator calls: dead letters replayed with their history kept and the retry budget reset,
// discard, flow state, listener rotation, and opening a database written before these columns existed.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"
#include "support/stored_event.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace operations_store_test {

using namespace evr;

namespace {

config::Store options(const test::TempDir& dir) {
  config::Store o;
  o.state_dir = (dir / "state").string();
  return o;
}

event::EventPtr make_event(const std::string& webhook_id) {
  return test::stored_event(webhook_id);
}

int64_t commit(store::Store& s, const std::string& webhook_id, const std::string& lane) {
  std::promise<store::CommitResult> p;
  s.commit({make_event(webhook_id), {lane}}, [&p](store::CommitResult r) { p.set_value(std::move(r)); });
  return p.get_future().get().deliveries.at(0).id;
}

void kill(store::Store& s, int64_t id, int attempts) {
  std::promise<void> p;
  store::Outcome o{
      id, store::Outcome::Kind::dead, attempts, 0, {attempts, event::now_ms(), 400, 3, "HTTP 400", "no"}};
  s.record(std::move(o), [&p] { p.set_value(); });
  p.get_future().get();
}

store::Due fetch(store::Store& s, const std::string& lane) {
  std::promise<store::Due> p;
  s.fetch_due(lane, event::now_ms() + 1, 10, {}, [&p](store::Due d) { p.set_value(std::move(d)); });
  return p.get_future().get();
}

}  // namespace

TEST(StoreOperations, ReplayKeepsHistoryAndResetsTheRetryBudget) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t a = commit(*s, "w1", "f/b/a");
  const int64_t b = commit(*s, "w2", "f/b/b");
  kill(*s, a, 3);
  kill(*s, b, 1);
  EXPECT_TRUE(fetch(*s, "f/b/a").deliveries.empty());
  EXPECT_EQ(s->dead_letters({}).dead_letters.size(), 2U);

  auto r = s->replay(a);
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.lanes, std::vector<std::string>{"f/b/a"});
  EXPECT_EQ(s->replay(a).count, 0);  // no longer dead
  auto due = fetch(*s, "f/b/a");
  ASSERT_EQ(due.deliveries.size(), 1U);
  EXPECT_EQ(due.deliveries[0].attempts, 3);
  EXPECT_EQ(due.deliveries[0].attempts_before_replay, 3);
  EXPECT_GT(due.deliveries[0].replayed_ms, 0);
  auto dl = s->dead_letter(a);
  ASSERT_TRUE(dl);
  EXPECT_EQ(dl->delivery.state, store::DeliveryState::pending);
  EXPECT_EQ(dl->delivery.replays, 1);
  EXPECT_EQ(dl->delivery.history.size(), 1U);

  store::DeadLetterFilter other_lane;
  other_lane.lane = "f/b/zzz";
  EXPECT_EQ(s->discard(other_lane).count, 0);
  EXPECT_EQ(s->discard(store::DeadLetterFilter{}).count, 1);
  EXPECT_EQ(s->counts().discarded, 1);
  EXPECT_TRUE(s->dead_letters({}).dead_letters.empty());
  EXPECT_THROW(s->dead_letters({{}, 10, std::string("x")}), std::invalid_argument);

  auto ev = s->event("w2");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event->payload, R"({"id":1})");
  ASSERT_EQ(ev->deliveries.size(), 1U);
  EXPECT_EQ(ev->deliveries[0].state, store::DeliveryState::discarded);
  EXPECT_FALSE(s->event(""));
}

TEST(StoreOperations, FlowStateAndListenerRotationAreKept) {
  test::TempDir dir;
  std::string rotated;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    const std::string first = s->listener_id("f", std::nullopt);
    rotated = s->rotate_listener_id("f");
    EXPECT_NE(rotated, first);
    s->set_flow_enabled("f", false);
    s->set_flow_enabled("g", true);
    s->set_flow_enabled("g", std::nullopt);
  }
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  EXPECT_EQ(s->listener_id("f", std::nullopt), rotated);
  const auto states = s->flow_states();
  ASSERT_EQ(states.size(), 1U);
  EXPECT_EQ(states.at("f").enabled, false);
}

TEST(StoreOperations, ListenerIdsOfManyFlowsAtOnceMatchOneByOne) {
  test::TempDir dir;
  std::vector<std::pair<std::string, std::optional<std::string>>> flows;
  for (int i = 0; i < 300; ++i) flows.emplace_back("flow-" + std::to_string(i), std::nullopt);
  flows.emplace_back("pinned", std::string("pinned-id-0123456789abcdef"));
  std::map<std::string, std::string> first;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    first = s->listener_ids(flows);
    ASSERT_EQ(first.size(), flows.size());
    EXPECT_EQ(first.at("pinned"), "pinned-id-0123456789abcdef");
    EXPECT_NE(first.at("flow-0"), first.at("flow-1"));
    EXPECT_EQ(first.at("flow-7").size(), 32U);  // 24 random bytes, base64url
    for (const auto& [flow, pinned] : flows) EXPECT_EQ(s->listener_id(flow, pinned), first.at(flow)) << flow;
  }
  // Kept across a restart; a pinned id that changes is written, the others stay.
  flows.back().second = std::string("pinned-id-changed-0123456789");
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const auto again = s->listener_ids(flows);
  EXPECT_EQ(again.at("pinned"), "pinned-id-changed-0123456789");
  EXPECT_EQ(s->listener_id("pinned", std::nullopt), "pinned-id-changed-0123456789");
  for (int i = 0; i < 300; ++i) {
    const auto name = "flow-" + std::to_string(i);
    EXPECT_EQ(again.at(name), first.at(name)) << name;
  }
}

TEST(StoreOperations, OpensADatabaseFromBeforeTheReplayColumns) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "state");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "state" / "evrouter.db").string().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "CREATE TABLE deliveries(id INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL, lane TEXT "
                   "NOT NULL, state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
                   "created_ms INTEGER NOT NULL, next_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
                   "last_error TEXT);",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const int64_t id = commit(*s, "w1", "f/b/a");
  kill(*s, id, 1);
  EXPECT_EQ(s->replay(id).count, 1);
  EXPECT_EQ(fetch(*s, "f/b/a").deliveries.size(), 1U);
}

}  // namespace operations_store_test
