// The VFS that gathers a commit's WAL writes into one (src/store/wal_vfs.h): whatever the size of a
// transaction, another connection (on the default VFS) reads exactly what was committed as soon as the
// commit returns, the database stays intact, and a store in `fsync` mode that uses it keeps every event.
#include "store/wal_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "evrouter/store/sqlite_store.h"
#include "store/sqlite.h"
#include "support/harness.h"
#include "support/stored_event.h"

using namespace evr;

namespace {

std::string bytes(std::size_t n, int seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + static_cast<std::size_t>(seed)) % 251);
  return s;
}

void configure(store::sqlite::Db& db) {
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA busy_timeout=10000");
}

// A connection on the gathering VFS with table t, checkpointing only when asked (as the store does).
store::sqlite::Db gathering_db_with_table(const std::string& path) {
  store::sqlite::Db db(path, store::sqlite::wal_gathering_vfs());
  configure(db);
  db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)");
  return db;
}

// A PASSIVE checkpoint reading the WAL ahead, as the store's checkpointer runs it.
int checkpoint_reading_ahead(store::sqlite::Db& db, int& frames, int& copied) {
  const store::sqlite::CheckpointReadAhead read_ahead;
  return sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
}

std::string integrity(store::sqlite::Db& db) {
  store::sqlite::Stmt check(db, "PRAGMA integrity_check");
  return check.step() ? std::string(check.text(0)) : "<no answer>";
}

std::string blob_of(store::sqlite::Db& db, int64_t id) {
  store::sqlite::Stmt st(db, "SELECT b FROM t WHERE id = ?1");
  st.bind(1, id);
  if (!st.step()) return "<missing>";
  return std::string(st.text(0));
}

}  // namespace

TEST(WalGatheringVfs, EveryCommitIsReadBackExactlyByAnotherConnection) {
  test::TempDir dir;
  const std::string path = (dir / "t.db").string();
  store::sqlite::Db writer(path, store::sqlite::wal_gathering_vfs());
  configure(writer);
  writer.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)");
  store::sqlite::Db reader(path);
  configure(reader);
  // Sizes around SQLite's page size, the base VFS's 128 KiB write limit, and the 1 MiB gathering limit.
  const std::vector<std::size_t> sizes = {1,      100,    4000,   4096,    40000,  131071,
                                          131072, 131073, 200000, 1048576, 3000000};
  int64_t id = 0;
  for (const std::size_t n : sizes) {
    ++id;
    const std::string b = bytes(n, static_cast<int>(id));
    writer.exec("BEGIN IMMEDIATE");
    store::sqlite::Stmt ins(writer, "INSERT INTO t(id, b) VALUES (?1, ?2)");
    ins.bind(1, id).bind_blob(2, b).run();
    writer.exec("COMMIT");
    EXPECT_EQ(blob_of(reader, id), b) << "size " << n;
  }
  // Many rows in one transaction: a gathered write far larger than one piece.
  writer.exec("BEGIN IMMEDIATE");
  {
    store::sqlite::Stmt ins(writer, "INSERT INTO t(id, b) VALUES (?1, ?2)");
    for (int i = 0; i < 600; ++i) ins.bind(1, 1000 + i).bind_blob(2, bytes(3500, i)).run();
  }
  writer.exec("COMMIT");
  for (int i = 0; i < 600; i += 97) EXPECT_EQ(blob_of(reader, 1000 + i), bytes(3500, i));
  // A rolled-back transaction leaves nothing behind.
  writer.exec("BEGIN IMMEDIATE");
  writer.exec("INSERT INTO t(id, b) VALUES (5000, zeroblob(100000))");
  writer.exec("ROLLBACK");
  EXPECT_EQ(blob_of(reader, 5000), "<missing>");
  // Checkpointed into the database file and reopened on the default VFS: intact.
  writer.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  reader = store::sqlite::Db();
  writer = store::sqlite::Db();
  store::sqlite::Db again(path);
  EXPECT_EQ(integrity(again), "ok");
  store::sqlite::Stmt count(again, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), static_cast<int64_t>(sizes.size()) + 600);
}

TEST(WalGatheringVfs, AStoreInFsyncModeKeepsEveryEventOfLargeGroupCommits) {
  test::TempDir dir;
  config::Store o;
  o.state_dir = (dir / "state").string();
  o.durability = config::Store::Durability::fsync;
  const std::string order = bytes(3500, 7);
  {
    auto s = store::make_sqlite_store(o);
    s->open();
    for (int round = 0; round < 3; ++round) {
      std::vector<store::Ingest> batch;
      for (int i = 0; i < 300; ++i) {
        auto e = test::stored_event("r" + std::to_string(round) + "-" + std::to_string(i), order);
        batch.push_back({std::move(e), {"f/a/x"}});
      }
      std::promise<std::vector<store::CommitResult>> p;
      s->commit_batch(std::move(batch),
                      [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
      for (const auto& r : p.get_future().get()) ASSERT_EQ(r.status, store::CommitResult::Status::accepted);
    }
    s->close();
  }
  store::sqlite::Db db((dir / "state" / "evrouter.db").string());
  EXPECT_EQ(integrity(db), "ok");
  store::sqlite::Stmt count(db, "SELECT count(*), sum(length(payload) = 3500) FROM events");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 900);
  EXPECT_EQ(count.int64(1), 900);
}

// A checkpoint on the gathering VFS writes the pages it copies in contiguous runs; those writes must be in
// the database file before the checkpoint records its progress, since from then on other connections read
// the pages there (and the next commit starts the WAL over, overwriting the frames).
TEST(WalGatheringVfs, CheckpointedPagesAreReadBackFromTheDatabaseFile) {
  test::TempDir dir;
  const std::string path = (dir / "t.db").string();
  store::sqlite::Db writer = gathering_db_with_table(path);
  writer.exec("CREATE INDEX t_b ON t(substr(b, 1, 16))");  // pages spread over the file
  store::sqlite::Db checkpointer = gathering_db_with_table(path);
  store::sqlite::Db reader(path);
  configure(reader);
  std::vector<std::string> expected;
  for (int round = 0; round < 12; ++round) {
    writer.exec("BEGIN IMMEDIATE");
    {
      store::sqlite::Stmt ins(writer, "INSERT INTO t(id, b) VALUES (?1, ?2)");
      for (int i = 0; i < 40; ++i) {
        expected.push_back(bytes(3500 + static_cast<std::size_t>(i) * 7, round * 100 + i));
        ins.bind(1, static_cast<int64_t>(expected.size())).bind_blob(2, expected.back()).run();
      }
      // Rewrite earlier rows too: pages in the middle of the file, between runs of new ones.
      store::sqlite::Stmt upd(writer, "UPDATE t SET b = ?2 WHERE id = ?1");
      for (std::size_t id = 1 + static_cast<std::size_t>(round); id < expected.size(); id += 37) {
        expected[id - 1] = bytes(3000, round * 1000 + static_cast<int>(id));
        upd.bind(1, static_cast<int64_t>(id)).bind_blob(2, expected[id - 1]).run();
      }
    }
    writer.exec("COMMIT");
    int frames = -1, copied = -1;
    ASSERT_EQ(checkpoint_reading_ahead(checkpointer, frames, copied), SQLITE_OK);
    EXPECT_GT(frames, 0);
    EXPECT_EQ(copied, frames) << "round " << round;
    // The next commit starts the WAL over: every checkpointed page is now read from the database file.
    writer.exec("CREATE TABLE IF NOT EXISTS marker(x)");
    writer.exec("INSERT INTO marker VALUES (1)");
    for (std::size_t id = 1; id <= expected.size(); id += 3)
      ASSERT_EQ(blob_of(reader, static_cast<int64_t>(id)), expected[id - 1])
          << "round " << round << " id " << id;
  }
  // Small commits, each checkpointed and then overwritten by the next one from the start of the WAL: the
  // frames a checkpoint reads sit where the previous checkpoint read others.
  for (int round = 0; round < 40; ++round) {
    const auto id = static_cast<std::size_t>(1 + (round * 53) % static_cast<int>(expected.size()));
    expected[id - 1] = bytes(2000 + static_cast<std::size_t>(round), 7000 + round);
    store::sqlite::Stmt upd(writer, "UPDATE t SET b = ?2 WHERE id = ?1");
    upd.bind(1, static_cast<int64_t>(id)).bind_blob(2, expected[id - 1]).run();
    int frames = -1, copied = -1;
    ASSERT_EQ(checkpoint_reading_ahead(checkpointer, frames, copied), SQLITE_OK);
    EXPECT_EQ(copied, frames) << "small round " << round;
    ASSERT_EQ(blob_of(reader, static_cast<int64_t>(id)), expected[id - 1]) << "small round " << round;
  }
  checkpointer = store::sqlite::Db();
  reader = store::sqlite::Db();
  writer = store::sqlite::Db();
  store::sqlite::Db again(path);
  EXPECT_EQ(integrity(again), "ok");
  for (std::size_t id = 1; id <= expected.size(); ++id)
    ASSERT_EQ(blob_of(again, static_cast<int64_t>(id)), expected[id - 1]) << "id " << id;
}

// Checkpoints reading the WAL ahead while a writer keeps committing (and restarting the WAL whenever a
// checkpoint caught up): bytes read ahead past the checkpoint's last frame, or in an earlier checkpoint,
// must never be copied into the database.
TEST(WalGatheringVfs, CheckpointsReadingAheadBesideAWriterCopyOnlyWhatWasCommitted) {
  test::TempDir dir;
  const std::string path = (dir / "t.db").string();
  store::sqlite::Db writer = gathering_db_with_table(path);
  store::sqlite::Db checkpointer = gathering_db_with_table(path);
  constexpr int kRows = 2400;
  std::vector<std::string> expected(kRows + 1);
  std::atomic<bool> done{false};
  std::atomic<int> checkpoints{0}, copied_frames{0};
  std::thread ckpt([&] {
    while (!done.load()) {
      int frames = 0, copied = 0;
      if (checkpoint_reading_ahead(checkpointer, frames, copied) != SQLITE_OK) continue;
      ++checkpoints;
      copied_frames += copied;
    }
  });
  std::minstd_rand pick(42);
  for (int id = 1; id <= kRows; id += 8) {
    writer.exec("BEGIN IMMEDIATE");
    store::sqlite::Stmt ins(writer, "INSERT INTO t(id, b) VALUES (?1, ?2)");
    for (int i = id; i < id + 8 && i <= kRows; ++i) {
      expected[i] = bytes(3400 + static_cast<std::size_t>(i % 13) * 50, i);
      ins.bind(1, static_cast<int64_t>(i)).bind_blob(2, expected[i]).run();
    }
    store::sqlite::Stmt upd(writer, "UPDATE t SET b = ?2 WHERE id = ?1");
    const int old = 1 + static_cast<int>(pick() % static_cast<unsigned>(id));  // an earlier row, elsewhere
    expected[old] = bytes(3300, id * 31);
    upd.bind(1, static_cast<int64_t>(old)).bind_blob(2, expected[old]).run();
    writer.exec("COMMIT");
  }
  done = true;
  ckpt.join();
  EXPECT_GT(checkpoints.load(), 0);
  EXPECT_GT(copied_frames.load(), 0);
  checkpointer = store::sqlite::Db();
  // Everything into the database file (the default VFS, no read-ahead), then read back from the file alone.
  writer.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  writer = store::sqlite::Db();
  store::sqlite::Db again(path);
  EXPECT_EQ(integrity(again), "ok");
  for (int id = 1; id <= kRows; ++id) ASSERT_EQ(blob_of(again, id), expected[id]) << "id " << id;
}

// In a DeferredWalSync the commit's frames are written (another connection reads them at once) but the
// fdatasync is left to the holder, who is told which WAL to sync; only for commits on that thread.
TEST(WalGatheringVfs, ADeferredSyncWritesTheCommitAndLeavesTheSyncToTheHolder) {
  test::TempDir dir;
  const std::string path = (dir / "t.db").string();
  store::sqlite::Db writer = gathering_db_with_table(path);
  store::sqlite::Db reader(path);
  configure(reader);
  {
    const store::sqlite::DeferredWalSync defer;
    writer.exec("BEGIN IMMEDIATE");
    store::sqlite::Stmt ins(writer, "INSERT INTO t(id, b) VALUES (?1, ?2)");
    ins.bind(1, 1).bind_blob(2, bytes(10000, 1)).run();
    writer.exec("COMMIT");
    ASSERT_GE(defer.wal(), 0);
    EXPECT_EQ(blob_of(reader, 1), bytes(10000, 1)) << "visible before the holder's sync";
    EXPECT_EQ(store::sqlite::sync_wal(defer.wal()), 0);
  }
  {
    // A commit on another thread is not this scope's to defer.
    const store::sqlite::DeferredWalSync defer;
    std::thread([&writer] { writer.exec("INSERT INTO t(id, b) VALUES (2, x'00')"); }).join();
    EXPECT_EQ(defer.wal(), -1);
  }
  EXPECT_EQ(blob_of(reader, 2), std::string(1, '\0'));
  EXPECT_EQ(integrity(reader), "ok");
}
