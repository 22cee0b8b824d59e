// Event and dead-letter lists on a store larger than one page's scan budget (10,000 rows): a filter that
// matches little answers short pages with a cursor instead of reading the whole store in one call, the
// cursors reach every match, and receive-time bounds stop the walk early.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"
#include "support/store_calls.h"
#include "support/stored_event.h"

namespace store_search_test {

using namespace evr;

namespace {

constexpr int64_t kHour = 3600 * 1000;

// `n` events of type orders/create received at `time_ms`, one delivery each on `lane`, in batches.
std::vector<int64_t> add_events(store::Store& s, int n, int64_t time_ms, const std::string& lane,
                                const std::string& type = "orders/create") {
  std::vector<int64_t> deliveries;
  static int serial = 0;
  for (int done = 0; done < n;) {
    std::vector<store::Ingest> batch;
    for (; done < n && batch.size() < 2000; ++done) {
      auto e = test::stored_event("w" + std::to_string(++serial));
      e->time_ms = time_ms;
      e->type = type;
      batch.push_back({std::move(e), {lane}});
    }
    std::promise<std::vector<store::CommitResult>> p;
    s.commit_batch(std::move(batch), [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
    for (const auto& r : p.get_future().get()) {
      EXPECT_EQ(r.status, store::CommitResult::Status::accepted);
      deliveries.push_back(r.deliveries.at(0).id);
    }
  }
  return deliveries;
}

void kill_all(store::Store& s, const std::vector<int64_t>& ids) {
  std::vector<std::promise<void>> done(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    store::Outcome o{
        ids[i], store::Outcome::Kind::dead, 1, 0, {1, event::now_ms(), 400, 3, "HTTP 400", "no"}};
    s.record(std::move(o), [&p = done[i]] { p.set_value(); });
  }
  for (auto& p : done) p.get_future().get();
}

}  // namespace

TEST(StoreSearch, ARareTypeIsReachedThroughShortPagesWithCursors) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(test::quiet_store_options(dir));
  s->open();
  const int64_t now = event::now_ms();
  add_events(*s, 1, now, "f/b/a", "orders/rare");  // the oldest event
  add_events(*s, 25000, now, "f/b/a");

  store::EventQuery q;
  q.type = "orders/rare";
  int pages = 0;
  std::vector<std::string> found;
  for (;;) {
    const auto page = s->events(q);
    ++pages;
    for (const auto& r : page.events) found.push_back(r.event->type);
    if (!page.next_cursor) break;
    EXPECT_TRUE(page.events.empty()) << "page " << pages;
    q.cursor = page.next_cursor;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(found, std::vector<std::string>{"orders/rare"});
  EXPECT_EQ(pages, 3);  // 25,001 events examined 10,000 at a time

  // Without a filter that leaves rows out, pages are full and the cursor is the last event's.
  store::EventQuery all;
  all.limit = 1000;
  const auto full = s->events(all);
  ASSERT_EQ(full.events.size(), 1000U);
  ASSERT_TRUE(full.next_cursor);
  EXPECT_EQ(*full.next_cursor, std::to_string(full.events.back().seq));
}

TEST(StoreSearch, ReceiveTimeBoundsStopTheWalk) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(test::quiet_store_options(dir));
  s->open();
  const int64_t now = event::now_ms();
  add_events(*s, 12000, now - 3 * kHour, "f/b/a");
  add_events(*s, 3, now, "f/b/a");

  // since one hour ago: the old events lie more than the commit-skew margin before it, so one page
  // examines only the recent ones and says there is nothing more.
  store::EventQuery recent;
  recent.time.since_ms = now - kHour;
  const auto r = s->events(recent);
  EXPECT_EQ(r.events.size(), 3U);
  EXPECT_FALSE(r.next_cursor);

  // until two hours ago: the walk starts below the recent events and fills its page with old ones.
  store::EventQuery old;
  old.time.until_ms = now - 2 * kHour;
  old.limit = 1000;
  const auto o = s->events(old);
  ASSERT_EQ(o.events.size(), 1000U);
  for (const auto& e : o.events) EXPECT_EQ(e.event->time_ms, now - 3 * kHour);
  EXPECT_TRUE(o.next_cursor);

  // A filter on a window with no event at all answers at once, empty.
  store::EventQuery none;
  none.time.since_ms = now + kHour;
  const auto n = s->events(none);
  EXPECT_TRUE(n.events.empty());
  EXPECT_FALSE(n.next_cursor);
}

TEST(StoreSearch, DeadLettersOfARareLaneAreReachedThroughShortPages) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(test::quiet_store_options(dir));
  s->open();
  const int64_t now = event::now_ms();
  const auto rare = add_events(*s, 1, now, "f/b/rare");
  kill_all(*s, rare);  // the oldest dead letter
  kill_all(*s, add_events(*s, 12000, now, "f/b/a"));

  store::DeadLetterQuery q;
  q.filter.lane = "f/b/rare";
  int pages = 0;
  std::vector<int64_t> found;
  for (;;) {
    const auto page = s->dead_letters(q);
    ++pages;
    for (const auto& dl : page.dead_letters) found.push_back(dl.delivery.id);
    if (!page.next_cursor) break;
    EXPECT_TRUE(page.dead_letters.empty()) << "page " << pages;
    q.cursor = page.next_cursor;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(found, rare);
  EXPECT_EQ(pages, 2);  // 12,001 dead letters examined 10,000 at a time

  // Without lane or flow, a page is full and its cursor the last dead letter's.
  store::DeadLetterQuery all;
  all.limit = 1000;
  const auto full = s->dead_letters(all);
  ASSERT_EQ(full.dead_letters.size(), 1000U);
  const auto& last = full.dead_letters.back().delivery;
  EXPECT_EQ(full.next_cursor, std::to_string(last.updated_ms) + "_" + std::to_string(last.id));
}

}  // namespace store_search_test
