#include "evrouter/store/sqlite_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "evrouter/metrics/metrics.h"
#include "store/sqlite.h"
#include "store/wal_vfs.h"
#include "support/harness.h"
#include "support/stored_event.h"

// Helpers and tests of this file in a namespace of their own: the other store tests define helpers
// of the same names, and a unity batch compiles them in one translation unit.
namespace sqlite_store_test {

using namespace evr;
using Status = store::CommitResult::Status;

namespace {

config::Store options(const test::TempDir& dir) {
  config::Store o;
  o.state_dir = (dir / "state").string();
  return o;
}

event::EventPtr make_event(const std::string& dedup, const std::string& payload = R"({"id":1})") {
  return test::stored_event(dedup, payload);
}

store::CommitResult commit(store::Store& s, event::EventPtr e, std::vector<std::string> lanes) {
  std::promise<store::CommitResult> p;
  s.commit({std::move(e), std::move(lanes)}, [&p](store::CommitResult r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

store::Due fetch(store::Store& s, const std::string& lane, int64_t now, std::size_t limit,
                 std::unordered_set<int64_t> exclude = {}) {
  std::promise<store::Due> p;
  s.fetch_due(lane, now, limit, std::move(exclude), [&p](store::Due d) { p.set_value(std::move(d)); });
  return p.get_future().get();
}

// The keys "<prefix><batch>-<i>" for i < n.
std::vector<std::string> batch_keys(const std::string& prefix, int batch, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(prefix + std::to_string(batch) + "-" + std::to_string(i));
  return keys;
}

// Commits one event per key (with `payload`, to lane f/a/x) as one batch: the results, in the keys' order.
std::vector<store::CommitResult> commit_keys(store::Store& s, const std::vector<std::string>& keys,
                                             const std::string& payload) {
  std::vector<store::Ingest> batch;
  for (const auto& key : keys) batch.push_back({make_event(key, payload), {"f/a/x"}});
  std::promise<std::vector<store::CommitResult>> p;
  s.commit_batch(std::move(batch), [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

// The number a count query gives on the store of `dir`, read on a connection of its own.
int64_t count_in(const test::TempDir& dir, const char* sql) {
  store::sqlite::Db db((dir / "state" / "evrouter.db").string());
  store::sqlite::Stmt st(db, sql);
  EXPECT_TRUE(st.step()) << sql;
  return st.int64(0);
}

void record(store::Store& s, store::Outcome o) {
  std::promise<void> p;
  s.record(std::move(o), [&p] { p.set_value(); });
  p.get_future().get();
}

}  // namespace

TEST(SqliteStore, CommitCreatesDeliveriesAndDeduplicates) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  auto r = commit(*s, make_event("w1"), {"f/a/x", "f/b/y"});
  ASSERT_EQ(r.status, Status::accepted);
  ASSERT_EQ(r.deliveries.size(), 2u);
  EXPECT_EQ(r.deliveries[0].lane, "f/a/x");
  auto dup = commit(*s, make_event("w1"), {"f/a/x"});
  EXPECT_EQ(dup.status, Status::duplicate);
  EXPECT_EQ(dup.event_id, r.event_id);
  EXPECT_TRUE(dup.deliveries.empty());
  auto other = commit(*s, make_event("w2"), {"f/a/x"});
  EXPECT_EQ(other.status, Status::accepted);
  auto nodedup = commit(*s, make_event(""), {});
  EXPECT_EQ(nodedup.status, Status::accepted);
  auto nodedup2 = commit(*s, make_event(""), {});
  EXPECT_EQ(nodedup2.status, Status::accepted);
  auto c = s->counts();
  EXPECT_EQ(c.events, 4);
  EXPECT_EQ(c.pending, 3);
}

// The headers column is written by hand on the writer's thread: the same JSON a nlohmann object gives
// (names sorted, a repeated name's last value, every escape), and still stored when a value is not UTF-8.
TEST(SqliteStore, HeadersAreStoredAsTheJsonObjectNlohmannWouldWrite) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"X-B", "first"},
      {"X-A", "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f"},
      {"X-B", "second"},
      {"X-\xc3\xa9", "\xe2\x82\xac \xf0\x9f\x98\x80"},
      {"", "empty name"}};
  auto e = std::make_shared<event::Event>(*make_event("h1"));
  e->headers = headers;
  ASSERT_EQ(commit(*s, e, {}).status, Status::accepted);
  auto bad = std::make_shared<event::Event>(*make_event("h2"));
  bad->headers = {{"X-Bad", "\xff\xfe"}, {"X-Ok", "fine"}};
  ASSERT_EQ(commit(*s, bad, {}).status, Status::accepted);
  s->close();

  auto expected = [](const std::vector<std::pair<std::string, std::string>>& hs) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : hs) j[k] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  store::sqlite::Db db((dir / "state" / "evrouter.db").string());
  store::sqlite::Stmt st(db, "SELECT headers FROM events WHERE dedup_key = ?1");
  const std::string h1 = "h1", h2 = "h2";  // bound without a copy: they outlive each step
  st.bind(1, h1);
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.text(0), expected(headers));
  EXPECT_EQ(nlohmann::json::parse(st.text(0)).at("X-B"), "second");
  st.reset();
  st.bind(1, h2);
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.text(0), expected(bad->headers));
  EXPECT_NE(st.text(0).find("\xef\xbf\xbd"), std::string::npos) << "invalid bytes replaced";
}

TEST(SqliteStore, DedupWindowExpires) {
  test::TempDir dir;
  auto o = options(dir);
  o.dedup_window = std::chrono::milliseconds(50);
  auto s = store::make_sqlite_store(o);
  s->open();
  EXPECT_EQ(commit(*s, make_event("w1"), {}).status, Status::accepted);
  EXPECT_EQ(commit(*s, make_event("w1"), {}).status, Status::duplicate);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(commit(*s, make_event("w1"), {}).status, Status::accepted);
}

// Dedup keys past the window leave the table as later commits go on, a bounded number in each commit's own
// transaction (no pass over the whole table holding the writer back), while keys inside the window still
// deduplicate.
TEST(SqliteStore, DedupKeysPastTheWindowAreDeletedByLaterCommitsInChunks) {
  test::TempDir dir;
  auto o = options(dir);
  o.dedup_window = std::chrono::milliseconds(400);
  auto s = store::make_sqlite_store(o);
  s->open();
  auto dedup_rows = [&dir] { return count_in(dir, "SELECT count(*) FROM dedup"); };
  auto& expired = metrics::Registry::global().counter("evrouter_store_pruned_total", "", {{"kind", "dedup"}});
  const auto expired_before = expired.value();
  for (const auto& r : commit_keys(*s, batch_keys("old", 0, 200), "{}"))
    ASSERT_EQ(r.status, Status::accepted);
  EXPECT_EQ(dedup_rows(), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Each commit deletes at most 64 expired keys: 200 - 64 + 1 after the first.
  ASSERT_EQ(commit(*s, make_event("new0"), {}).status, Status::accepted);
  EXPECT_EQ(dedup_rows(), 137);
  for (int i = 1; i < 4; ++i)
    ASSERT_EQ(commit(*s, make_event("new" + std::to_string(i)), {}).status, Status::accepted);
  EXPECT_EQ(dedup_rows(), 4);
  EXPECT_EQ(expired.value() - expired_before,
            200u);  // on /metrics as evrouter_store_pruned_total{kind="dedup"}
  EXPECT_EQ(commit(*s, make_event("new0"), {}).status, Status::duplicate);
  EXPECT_EQ(commit(*s, make_event("old0-0"), {}).status, Status::accepted);
  s->close();
}

// A store from before the dedup_expiry index gets it at its next start, with its keys still there.
TEST(SqliteStore, AnOlderStoreGetsTheDedupExpiryIndexAtStart) {
  test::TempDir dir;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    for (const auto& r : commit_keys(*s, batch_keys("k", 0, 3), "{}")) ASSERT_EQ(r.status, Status::accepted);
    s->close();
  }
  const std::string path = (dir / "state" / "evrouter.db").string();
  auto has_index = [&dir] {
    return count_in(dir,
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'dedup_expiry'") == 1;
  };
  {
    store::sqlite::Db db(path);
    db.exec("DROP INDEX dedup_expiry");
  }
  ASSERT_FALSE(has_index());
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  EXPECT_TRUE(has_index());
  EXPECT_EQ(commit(*s, make_event("k0-1"), {}).status, Status::duplicate);
  s->close();
}

TEST(SqliteStore, FetchDueRetryAndDeadLifecycle) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = commit(*s, make_event("w" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}"), {"L"});
    ids.push_back(r.deliveries.at(0).id);
  }
  const int64_t now = event::now_ms() + 1;
  auto due = fetch(*s, "L", now, 3);
  ASSERT_EQ(due.deliveries.size(), 3u);
  EXPECT_EQ(due.deliveries[0].id, ids[0]);
  EXPECT_EQ(due.deliveries[0].event->payload, "{\"n\":0}");
  EXPECT_EQ(due.deliveries[0].event->headers.size(), 1u);
  // Excluding held ids returns the next ones.
  due = fetch(*s, "L", now, 3, {ids[0], ids[1], ids[2]});
  ASSERT_EQ(due.deliveries.size(), 2u);
  EXPECT_EQ(due.deliveries[0].id, ids[3]);

  store::Outcome ok{ids[0], store::Outcome::Kind::delivered, 1, 0, {1, now, 200, 5, "", "{}"}};
  record(*s, ok);
  store::Outcome retry{ids[1], store::Outcome::Kind::retry, 1, now + 60000, {1, now, 503, 5, "HTTP 503", ""}};
  record(*s, retry);
  store::Outcome dead{ids[2], store::Outcome::Kind::dead, 1, 0, {1, now, 400, 5, "HTTP 400", "bad"}};
  record(*s, dead);
  due = fetch(*s, "L", now, 10);
  ASSERT_EQ(due.deliveries.size(), 2u);  // ids[3], ids[4]; ids[1] waits until later
  ASSERT_TRUE(due.next_due_ms.has_value());
  EXPECT_EQ(*due.next_due_ms, now + 60000);
  due = fetch(*s, "L", now + 60000, 10);
  EXPECT_EQ(due.deliveries.size(), 3u);
  auto c = s->counts();
  EXPECT_EQ(c.delivered, 1);
  EXPECT_EQ(c.dead, 1);
  EXPECT_EQ(c.pending, 3);
  auto history = s->attempts(ids[2]);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].status, 400);
  EXPECT_EQ(history[0].response, "bad");
  EXPECT_EQ(s->pending_lanes(), std::vector<std::string>{"L"});
}

TEST(SqliteStore, ListenerIdsPersistAcrossReopen) {
  test::TempDir dir;
  std::string id;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    id = s->listener_id("orders", std::nullopt);
    EXPECT_GE(id.size(), 22u);  // >= 128 bits
    EXPECT_EQ(s->listener_id("orders", std::nullopt), id);
    EXPECT_NE(s->listener_id("other", std::nullopt), id);
    EXPECT_EQ(s->listener_id("pinned", std::string("my-fixed-listener-id-0001")),
              "my-fixed-listener-id-0001");
  }
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  EXPECT_EQ(s->listener_id("orders", std::nullopt), id);
}

// The batch form a start uses: one read, one write per new or changed id, the same answers as listener_id.
TEST(SqliteStore, ListenerIdsForManyFlowsAreMadeOnceAndKept) {
  test::TempDir dir;
  std::vector<std::pair<std::string, std::optional<std::string>>> flows;
  for (int i = 0; i < 300; ++i) flows.emplace_back("f" + std::to_string(i), std::nullopt);
  flows.emplace_back("pinned", std::string("my-fixed-listener-id-0001"));
  std::map<std::string, std::string> first;
  {
    auto s = store::make_sqlite_store(options(dir));
    s->open();
    const std::string kept_before = s->listener_id("f7", std::nullopt);  // made one at a time before
    first = s->listener_ids(flows);
    ASSERT_EQ(first.size(), flows.size());
    EXPECT_EQ(first.at("f7"), kept_before);
    EXPECT_EQ(first.at("pinned"), "my-fixed-listener-id-0001");
    std::set<std::string> distinct;
    for (const auto& [flow, id] : first) {
      if (flow == "pinned") continue;
      EXPECT_EQ(id.size(), 32u) << flow;  // 192 bits
      EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos);
      distinct.insert(id);
      EXPECT_EQ(s->listener_id(flow, std::nullopt), id);
    }
    EXPECT_EQ(distinct.size(), flows.size() - 1);
  }
  // A restart gets the same ids; a pin that changed is written; a new flow gets a new id.
  flows.back().second = "my-fixed-listener-id-0002";
  flows.emplace_back("new", std::nullopt);
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  const auto again = s->listener_ids(flows);
  for (const auto& [flow, id] : first) {
    if (flow != "pinned") {
      EXPECT_EQ(again.at(flow), id) << flow;
    }
  }
  EXPECT_EQ(again.at("pinned"), "my-fixed-listener-id-0002");
  EXPECT_EQ(s->listener_id("pinned", std::nullopt), "my-fixed-listener-id-0002");
  EXPECT_EQ(again.at("new").size(), 32u);
  EXPECT_EQ(first.count("new"), 0u);
}

TEST(SqliteStore, ManyConcurrentCommitsAreGrouped) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  constexpr int kN = 2000;
  std::atomic<int> accepted{0};
  std::promise<void> all;
  std::atomic<int> left{kN};
  for (int i = 0; i < kN; ++i) {
    s->commit({make_event("w" + std::to_string(i)), {"L"}}, [&](store::CommitResult r) {
      if (r.status == Status::accepted) ++accepted;
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().get();
  EXPECT_EQ(accepted.load(), kN);
  EXPECT_EQ(s->counts().pending, kN);
}

// The count of a series in the process's metrics (0 when absent).
double metric(const std::string& series) {
  return std::max(test::metric_sample(metrics::Registry::global().render(), series), 0.0);
}

// durability fsync: the writer commits while the syncer fdatasyncs the WAL; every answer follows the sync
// of its commit (fewer syncs than commits when they overlap), in the order the commits were asked for, a
// duplicate among them too; and close() answers what was still queued, all of it kept.
TEST(SqliteStore, FsyncCommitsAreAnsweredAfterTheirWalSyncInOrder) {
  test::TempDir dir;
  config::Store o = options(dir);
  o.durability = config::Store::Durability::fsync;
  constexpr int kN = 3000;
  const double syncs_before = metric("evrouter_store_sync_seconds_count");
  int late_accepted = 0;
  {
    auto s = store::make_sqlite_store(o);
    s->open();
    std::mutex mu;
    std::vector<int> order;
    std::vector<store::CommitResult> results(kN + 1);
    std::promise<void> all;
    std::atomic<int> left{kN + 1};
    std::string seventh;
    for (int i = 0; i <= kN; ++i) {
      const std::string dedup = i == kN ? "w7" : "w" + std::to_string(i);  // the last repeats w7
      auto e = make_event(dedup);
      if (i == 7) seventh = e->id;
      s->commit({std::move(e), {"L"}}, [&, i](store::CommitResult r) {
        {
          std::lock_guard lk(mu);
          order.push_back(i);
          results[i] = std::move(r);
        }
        if (--left == 0) all.set_value();
      });
    }
    all.get_future().get();
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kN + 1));
    for (int i = 0; i <= kN; ++i) ASSERT_EQ(order[i], i) << "answers out of commit order";
    for (int i = 0; i < kN; ++i) ASSERT_EQ(results[i].status, Status::accepted) << i;
    EXPECT_EQ(results[kN].status, Status::duplicate);
    EXPECT_EQ(results[kN].event_id, seventh);
    const double syncs = metric("evrouter_store_sync_seconds_count") - syncs_before;
    EXPECT_GE(syncs, 1);
    EXPECT_LE(syncs, kN);

    // Closed with commits still queued: each is answered (accepted, or refused as closed), none lost.
    std::atomic<int> answered{0};
    std::atomic<int> accepted{0};
    for (int i = 0; i < 500; ++i) {
      s->commit({make_event("late" + std::to_string(i)), {"L"}}, [&](store::CommitResult r) {
        if (r.status == Status::accepted) ++accepted;
        ++answered;
      });
    }
    s->close();
    EXPECT_EQ(answered.load(), 500);
    late_accepted = accepted.load();
  }
  auto again = store::make_sqlite_store(o);
  again->open();
  EXPECT_EQ(again->counts().pending, kN + late_accepted);
}

TEST(SqliteStore, UnwritableStateDirIsAClearError) {
  config::Store o;
  o.state_dir = "/proc/evrouter-cannot-exist";
  auto s = store::make_sqlite_store(o);
  try {
    s->open();
    FAIL() << "open should fail";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("state directory"), std::string::npos) << e.what();
  }
}

namespace {

std::vector<store::CommitResult> commit_batch(store::Store& s, std::vector<store::Ingest> ingests) {
  std::promise<std::vector<store::CommitResult>> p;
  s.commit_batch(std::move(ingests), [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

}  // namespace

TEST(SqliteStore, BatchCommitsTogetherWithResultsInOrder) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  auto first = commit(*s, make_event("b0"), {"f/a/x"});
  ASSERT_EQ(first.status, Status::accepted);
  auto published = std::make_shared<event::Event>(*make_event("b1"));
  published->resources = {"order/1", "shop/2"};
  published->occurred_ms = 1795341600000;
  auto results = commit_batch(*s, {{published, {"f/a/x", "f/b/y"}},
                                   {make_event("b0"), {"f/a/x"}},    // a duplicate of an earlier commit
                                   {make_event("b2"), {}},           // stored, routed nowhere
                                   {make_event("b1"), {"f/a/x"}}});  // a duplicate within the batch
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].status, Status::accepted);
  EXPECT_EQ(results[0].deliveries.size(), 2u);
  EXPECT_EQ(results[1].status, Status::duplicate);
  EXPECT_EQ(results[1].event_id, first.event_id);
  EXPECT_EQ(results[2].status, Status::accepted);
  EXPECT_TRUE(results[2].deliveries.empty());
  EXPECT_EQ(results[3].status, Status::duplicate);
  EXPECT_EQ(results[3].event_id, results[0].event_id);
  EXPECT_EQ(s->counts().events, 3);
  // Resources and the producer's time survive the round trip through the store.
  auto due = fetch(*s, "f/b/y", event::now_ms() + 1000, 10);
  ASSERT_EQ(due.deliveries.size(), 1u);
  EXPECT_EQ(due.deliveries[0].event->resources, (std::vector<std::string>{"order/1", "shop/2"}));
  EXPECT_EQ(due.deliveries[0].event->occurred_ms, 1795341600000);
  s->close();
}

TEST(SqliteStore, BatchOnAClosedStoreFailsEveryEntry) {
  test::TempDir dir;
  auto s = store::make_sqlite_store(options(dir));
  s->open();
  s->close();
  auto results = commit_batch(*s, {{make_event("c1"), {}}, {make_event("c2"), {}}});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, Status::failed);
  EXPECT_EQ(results[1].status, Status::failed);
}

// A reader that keeps an old snapshot (a long query of the operations API, a backup) stops checkpoints from
// starting the WAL over. The writer must not wait for it: commits past the WAL's hard limit go on at
// their usual pace (the WAL grows while the reader lasts) and the WAL starts over once it is gone.
TEST(SqliteStore, ALongReaderDoesNotHoldCommitsBackPastTheWalLimit) {
  test::TempDir dir;
  auto o = options(dir);
  o.durability = config::Store::Durability::none;  // the test is about checkpoints, not fsync
  const std::string payload(3500, 'x');
  auto s = store::make_sqlite_store(o);
  s->open();
  for (const auto& r : commit_keys(*s, batch_keys("before", 0, 10), payload))
    ASSERT_EQ(r.status, Status::accepted);
  store::sqlite::Db reader((dir / "state" / "evrouter.db").string());
  reader.exec("BEGIN");
  {
    store::sqlite::Stmt st(reader, "SELECT count(*) FROM events");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.int64(0), 10);
  }
  auto& by_writer =
      metrics::Registry::global().counter("evrouter_store_checkpoints_total", "", {{"by", "writer"}});
  const auto by_writer_before = by_writer.value();
  // ~25,000 pages of 4 KiB: past the 16,384-page hard limit while the reader holds its snapshot.
  constexpr int kBatches = 80, kPerBatch = 200;
  std::chrono::steady_clock::duration slowest{};
  for (int b = 0; b < kBatches; ++b) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& r : commit_keys(*s, batch_keys("w", b, kPerBatch), payload))
      ASSERT_EQ(r.status, Status::accepted);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
  }
  EXPECT_GT(by_writer.value(), by_writer_before) << "the WAL never reached the hard limit";
  EXPECT_LT(slowest, std::chrono::seconds(2)) << "a commit waited for the reader";
  const auto wal = dir / "state" / "evrouter.db-wal";
  EXPECT_GT(std::filesystem::file_size(wal), 72U * 1024 * 1024) << "the WAL grew while the reader lasted";
  reader.exec("COMMIT");
  // Without the reader a checkpoint starts the WAL over, and the file is cut back to its limit.
  int batches_after = 0;
  while (std::filesystem::file_size(wal) > 64U * 1024 * 1024 && batches_after < 40) {
    for (const auto& r : commit_keys(*s, batch_keys("after", batches_after, kPerBatch), payload))
      ASSERT_EQ(r.status, Status::accepted);
    ++batches_after;
  }
  EXPECT_LE(std::filesystem::file_size(wal), 64U * 1024 * 1024) << "after " << batches_after << " batches";
  EXPECT_EQ(s->counts().events, 10 + (kBatches + batches_after) * kPerBatch);
  s->close();
}

// Checkpoints run on their own thread: once the WAL passes its threshold the database file receives the
// pages without the writer doing it, the WAL stays bounded, and everything is there after a reopen.
TEST(SqliteStore, CheckpointerCopiesTheWalIntoTheDatabase) {
  test::TempDir dir;
  auto o = options(dir);
  o.durability = config::Store::Durability::none;  // the test is about checkpoints, not fsync
  const auto db = dir / "state" / "evrouter.db";
  const auto wal = dir / "state" / "evrouter.db-wal";
  const std::string payload(3500, 'x');
  constexpr int kBatches = 30, kPerBatch = 200;  // ~6,000 pages of 4 KiB: past the 4,096-page threshold
  auto& checkpoints =
      metrics::Registry::global().counter("evrouter_store_checkpoints_total", "", {{"by", "checkpointer"}});
  const auto checkpoints_before = checkpoints.value();
  {
    auto s = store::make_sqlite_store(o);
    s->open();
    const auto db_before = std::filesystem::file_size(db);
    for (int b = 0; b < kBatches; ++b) {
      for (const auto& r : commit_keys(*s, batch_keys("w", b, kPerBatch), payload))
        ASSERT_EQ(r.status, Status::accepted);
    }
    // The checkpointer copies the WAL's pages into the database file (asynchronously).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    // (The counter moves when a checkpoint returns, after the pages it wrote.)
    while ((std::filesystem::file_size(db) < db_before + 8 * 1024 * 1024 ||
            checkpoints.value() == checkpoints_before) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GE(std::filesystem::file_size(db), db_before + 8 * 1024 * 1024);
    EXPECT_LE(std::filesystem::file_size(wal), 80U * 1024 * 1024);
    EXPECT_GT(checkpoints.value(), checkpoints_before);  // counted on /metrics (by="checkpointer")
    EXPECT_EQ(s->counts().events, kBatches * kPerBatch);
    s->close();
  }
  auto s = store::make_sqlite_store(o);
  s->open();
  EXPECT_EQ(s->counts().events, kBatches * kPerBatch);
  EXPECT_EQ(commit(*s, make_event("w0-0"), {"f/a/x"}).status, Status::duplicate);
}

// A checkpoint whose sync of the database file fails (durability fsync) stops the store as a failed WAL sync
// does: SQLite kept the frames in the WAL (it records a checkpoint's progress only after that sync), but the
// disk just failed a writeback. The store reports the failure once, refuses every later commit, and a
// reopen recovers every acknowledged event from the WAL.
TEST(SqliteStore, AFailedCheckpointSyncStopsTheStoreAndAReopenRecoversEverything) {
  struct FailingDatabaseSyncs {
    FailingDatabaseSyncs() { store::sqlite::fail_database_syncs_for_testing(true); }
    ~FailingDatabaseSyncs() { store::sqlite::fail_database_syncs_for_testing(false); }
    FailingDatabaseSyncs(const FailingDatabaseSyncs&) = delete;
    FailingDatabaseSyncs& operator=(const FailingDatabaseSyncs&) = delete;
  };
  test::TempDir dir;
  auto o = options(dir);  // durability fsync: the checkpointer's connection goes through the gathering VFS
  const std::string payload(3500, 'x');
  constexpr int kBatches = 30, kPerBatch = 200;  // ~6,000 pages of 4 KiB: past the 4,096-page threshold
  std::atomic<int> failures{0};
  std::string reason;
  std::mutex reason_mu;
  std::vector<std::string> acked;
  {
    auto s = store::make_sqlite_store(o);
    s->on_failure([&](const std::string& why) {
      std::lock_guard lk(reason_mu);
      reason = why;
      ++failures;
    });
    s->open();
    FailingDatabaseSyncs eio;
    for (int b = 0; b < kBatches; ++b) {
      const auto keys = batch_keys("c", b, kPerBatch);
      const auto results = commit_keys(*s, keys, payload);
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (results[i].status == Status::accepted) acked.push_back(keys[i]);
      }
    }
    // The checkpointer runs once the WAL passed its threshold; its sync fails.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (failures.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(failures.load(), 1);
    {
      std::lock_guard lk(reason_mu);
      EXPECT_NE(reason.find("a checkpoint could not sync the database file"), std::string::npos) << reason;
    }
    EXPECT_GE(acked.size(), 4096U / 2);  // the WAL passed its threshold before the failure
    // Nothing more is written, even once the disk "works" again.
    store::sqlite::fail_database_syncs_for_testing(false);
    const auto after = commit(*s, make_event("after-the-failure"), {"f/a/x"});
    EXPECT_EQ(after.status, Status::failed);
    EXPECT_NE(after.error.find("a checkpoint could not sync"), std::string::npos) << after.error;
    EXPECT_EQ(failures.load(), 1);  // reported once
    s->close();
  }
  // Every acknowledged event is there (a batch answered "failed" may have been written too: at least once).
  auto s = store::make_sqlite_store(o);
  s->open();
  EXPECT_GE(s->counts().events, static_cast<int64_t>(acked.size()));
  const auto results = commit_keys(*s, acked, payload);
  ASSERT_EQ(results.size(), acked.size());
  EXPECT_TRUE(std::all_of(results.begin(), results.end(),
                          [](const store::CommitResult& r) { return r.status == Status::duplicate; }));
  EXPECT_EQ(commit(*s, make_event("after-the-failure"), {"f/a/x"}).status, Status::accepted);
}

}  // namespace sqlite_store_test
