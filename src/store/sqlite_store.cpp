#include "evrouter/store/sqlite_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <variant>

#include "evrouter/common/crypto.h"
#include "evrouter/common/json_text.h"
#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "evrouter/common/utf8.h"
#include "evrouter/metrics/metrics.h"
#include "store/operations.h"
#include "store/sqlite.h"
#include "store/wal_vfs.h"

namespace evr::store {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  flow TEXT NOT NULL,
  listener_id TEXT NOT NULL,
  source TEXT NOT NULL,
  type TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  shop TEXT NOT NULL,
  webhook_id TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  headers TEXT NOT NULL,
  payload BLOB NOT NULL,
  resources TEXT NOT NULL DEFAULT '[]',
  occurred_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS deliveries(
  id INTEGER PRIMARY KEY,
  event_seq INTEGER NOT NULL,
  lane TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  next_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_error TEXT,
  ordering_key TEXT,
  blocked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS attempts(
  delivery_id INTEGER NOT NULL,
  number INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  status INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  error TEXT NOT NULL,
  response TEXT NOT NULL,
  PRIMARY KEY(delivery_id, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup(
  listener TEXT NOT NULL,
  key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY(listener, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listeners(
  flow TEXT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE);
)sql";

// Indexes on columns added after the first release: created after migrate() has added the columns.
// Ordered delivery: `blocked` marks a pending delivery whose lane and key have an earlier pending one (set at
// commit, cleared for the key's next delivery when its head is delivered or dead), so a fetch reads only
// unblocked rows (deliveries_ready) and the key's head is found without scanning the backlog.
// deliveries_waiting: a lane's pending deliveries by the time they were made, so the lanes with a backlog and
// each one's oldest delivery are found by seeks (ops::pending_lanes, ops::oldest_pending) rather than a
// scan of the backlog. It replaces deliveries_pending (lane, next_ms, id), which duplicated deliveries_ready
// for every unblocked delivery while no query needed it any more.
constexpr const char* kIndexes = R"sql(
DROP INDEX IF EXISTS deliveries_pending;
CREATE INDEX IF NOT EXISTS deliveries_waiting ON deliveries(lane, created_ms) WHERE state = 0;
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries(lane, next_ms, id) WHERE state = 0 AND blocked = 0;
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(lane, ordering_key, id)
  WHERE state = 0 AND ordering_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_blocked ON deliveries(lane, id) WHERE state = 0 AND blocked = 1;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup(at_ms);
)sql";

// Commits queued at most before new ones are refused (each holds a request body in memory).
constexpr std::size_t kMaxQueuedCommits = 20000;
// durability fsync: ingests waiting for the writer from which it leaves its commits' WAL syncs to the
// syncer thread and goes on; below, the writer keeps up and syncs and answers itself (one hand-off less).
constexpr std::size_t kPipelineBacklog = 32;

// WAL checkpoints run on their own thread and connection, off the commit path. The writer asks for a
// (PASSIVE: never blocks the writer) checkpoint once the WAL holds kCheckpointPages pages since it last
// restarted; past kWalHardLimitPages (the checkpointer could not catch up, e.g. starved by a steady
// stream of commits) the writer checkpoints itself (RESTART: copies the few frames left and makes the next
// commit start the WAL over), which bounds the WAL on disk. journal_size_limit truncates the file back.
// Under a steady stream of commits a run cannot copy the frames committed while it runs, so the WAL stays
// past kCheckpointPages and each commit wakes the checkpointer for one more short run, until one ends
// between two commits and the WAL starts over. Letting the writer copy the last frames instead, or a
// larger or smaller WAL, cost more at the tail than it saved (docs/benchmarks.md, Round 10).
constexpr int kCheckpointPages = 4096;     // 16 MiB with 4 KiB pages
constexpr int kWalHardLimitPages = 16384;  // 64 MiB
// The writer's RESTART waits for readers still on the WAL at most kRestartPatience: enough for the
// store's own short reads, not for a long one (an operations API query, an operator's backup), which
// would otherwise hold every commit back for the busy timeout. When it gives up the WAL grows on, and the
// writer tries again once the WAL has grown by kRestartRetryPages.
constexpr int kRestartPatienceMs = 50;
constexpr int kRestartRetryPages = 1024;  // 4 MiB
constexpr const char* kJournalSizeLimit = "PRAGMA journal_size_limit=67108864";

// Dedup keys older than dedup_window are deleted by the writer, at most kDedupExpireChunk in each group
// commit's transaction, found through dedup_expiry (the keys are random: each one costs a leaf page, so a
// large pass in one transaction would hold every answer back; no extra transaction or fsync either).
constexpr int64_t kDedupExpireChunk = 64;
constexpr const char* kPrunedHelp =
    "Rows deleted: by retention (store.retention: events, deliveries) and dedup keys past store.dedup_window "
    "(dedup), by kind.";

// Retention (store.retention): a pass every kPruneEvery on the pruner's own thread and connection, in
// transactions of kPruneChunk events with a pause between them, so the group-commit writer (which waits
// for the database's write lock) is never held back for more than one short transaction.
constexpr std::chrono::seconds kPruneEvery{60};
constexpr std::size_t kPruneChunk = 256;
constexpr std::chrono::milliseconds kPrunePause{20};

const char* synchronous_pragma(config::Store::Durability d) {
  switch (d) {
    case config::Store::Durability::fsync:
      return "PRAGMA synchronous=FULL";
    case config::Store::Durability::os:
      return "PRAGMA synchronous=NORMAL";
    case config::Store::Durability::none:
      return "PRAGMA synchronous=OFF";
  }
  return "PRAGMA synchronous=FULL";
}

// The event's selected headers as a JSON object, written on the writer's thread for every event: by hand,
// with what a nlohmann object would give (names sorted, a repeated name's last value kept). Invalid UTF-8
// (refused at ingest: source::check_envelope_text) goes through nlohmann instead and is replaced rather
// than thrown: one event's text must never fail the group commit it shares with others.
std::string headers_json(const event::Event& e) {
  using Header = std::pair<std::string, std::string>;
  const auto& headers = e.headers;
  bool plain = true;
  std::size_t bytes = 2;
  for (const auto& [k, v] : headers) {
    plain = plain && utf8::valid(k) && utf8::valid(v);
    bytes += k.size() + v.size() + 6;
  }
  if (!plain) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : headers) j[k] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::vector<const Header*> order;
  order.reserve(headers.size());
  for (const auto& h : headers) order.push_back(&h);
  std::stable_sort(order.begin(), order.end(),
                   [](const Header* a, const Header* b) { return a->first < b->first; });
  std::string out;
  out.reserve(bytes + bytes / 8);
  out += '{';
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && order[i + 1]->first == order[i]->first) continue;  // the last one wins
    if (out.size() > 1) out += ',';
    json_text::append_json_string(order[i]->first, out);
    out += ':';
    json_text::append_json_string(order[i]->second, out);
  }
  out += '}';
  return out;
}

struct CommitOp {
  Ingest ingest;
  std::function<void(CommitResult)> done;
};
struct BatchOp {
  std::vector<Ingest> ingests;
  std::function<void(std::vector<CommitResult>)> done;
};
struct RecordOp {
  Outcome outcome;
  std::function<void()> done;
};
using WriteOp = std::variant<CommitOp, BatchOp, RecordOp>;

// Commits an op holds, for the queue's bound.
std::size_t commits_in(const WriteOp& op) {
  if (std::holds_alternative<CommitOp>(op)) return 1;
  if (const auto* b = std::get_if<BatchOp>(&op)) return b->ingests.size();
  return 0;
}

std::string resources_json(const event::Event& e) {
  return e.resources.empty()
             ? std::string("[]")
             : nlohmann::json(e.resources).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(config::Store options) : options_(std::move(options)) {}
  ~SqliteStore() override { close(); }

  void open() override {
    std::error_code ec;
    std::filesystem::create_directories(options_.state_dir, ec);
    if (ec)
      throw std::runtime_error("cannot create state directory " + options_.state_dir + ": " + ec.message());
    path_ = (std::filesystem::path(options_.state_dir) / "evrouter.db").string();
    // fsync: every commit syncs the WAL, so the writer's frames can be gathered into one write per commit.
    writer_db_ = sqlite::Db(path_, options_.durability == config::Store::Durability::fsync
                                       ? sqlite::wal_gathering_vfs()
                                       : nullptr);
    configure(writer_db_);
    // The schema and its migrations in one transaction: one sync on a first start, not one per statement
    // (about 25), and never half a migration.
    writer_db_.exec("BEGIN IMMEDIATE");
    try {
      writer_db_.exec(kSchema);
      migrate();
      ops::migrate(writer_db_);
      note_new_indexes();
      writer_db_.exec(kIndexes);
      writer_db_.exec("COMMIT");
    } catch (...) {
      writer_db_.exec("ROLLBACK");
      throw;
    }
    ops::ensure_counts(writer_db_);
    reader_db_ = sqlite::Db(path_);
    configure(reader_db_);
    admin_db_ = sqlite::Db(path_);
    configure(admin_db_);
    // Operators' writes go through this connection (listener ids, which are the URLs users paste into
    // their producers' settings; flows switched on or off; dead-letter replays and discards; schemas):
    // synced in durability `os` too, so that a power cut changes no URL and undoes no operator's action
    // (`os` may lose events, not those). `none` never syncs.
    if (options_.durability == config::Store::Durability::os) admin_db_.exec("PRAGMA synchronous=FULL");
    ops::count_changes(admin_db_);
    stats_db_ = sqlite::Db(path_);
    configure(stats_db_);
    // fsync: a checkpoint syncs the database file before it publishes its progress, so the pages it copies
    // can be gathered into one write per contiguous run (new pages are appended: most of a checkpoint).
    checkpoint_db_ = sqlite::Db(path_, options_.durability == config::Store::Durability::fsync
                                           ? sqlite::wal_gathering_vfs()
                                           : nullptr);
    configure(checkpoint_db_);
    prune_db_ = sqlite::Db(path_);
    configure(prune_db_);
    ops::count_changes(prune_db_);
    // Replaces SQLite's automatic checkpoint (itself a WAL hook) on the writer: report the WAL's size.
    sqlite3_wal_hook(writer_db_.get(), &SqliteStore::on_wal_commit, this);
    prepare_writer();
    open_ = true;
    cstop_ = false;
    checkpointer_ = std::thread([this] {
      name_this_thread("store-ckpt");
      checkpointer_loop();
    });
    defer_syncs_ = options_.durability == config::Store::Durability::fsync;
    sstop_ = false;
    if (defer_syncs_)
      syncer_ = std::thread([this] {
        name_this_thread("store-sync");
        syncer_loop();
      });
    writer_ = std::thread([this] {
      name_this_thread("store-write");
      writer_loop();
    });
    reader_ = std::thread([this] {
      name_this_thread("store-read");
      reader_loop();
    });
    pstop_ = false;
    if (options_.retention.count() > 0)
      pruner_ = std::thread([this] {
        name_this_thread("store-prune");
        pruner_loop();
      });
  }

  void on_failure(std::function<void(const std::string&)> failed) override {
    on_failure_ = std::move(failed);
  }

  void close() override {
    {
      std::lock_guard lk(wmu_);
      if (!open_) return;
      open_ = false;
      wstop_ = true;
    }
    wcv_.notify_all();
    {
      std::lock_guard lk(rmu_);
      rstop_ = true;
    }
    rcv_.notify_all();
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard lk(smu_);
      sstop_ = true;
    }
    scv_.notify_all();
    if (syncer_.joinable()) syncer_.join();  // answers what the writer committed last
    if (reader_.joinable()) reader_.join();
    {
      std::lock_guard lk(cmu_);
      cstop_ = true;
    }
    ccv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
    {
      std::lock_guard lk(pmu_);
      pstop_ = true;
    }
    pcv_.notify_all();
    if (pruner_.joinable()) pruner_.join();
    sel_due_.reset();
    sel_next_.reset();
    sel_blocked_.reset();
    sel_event_.reset();
    ins_event_ = {};
    ins_delivery_ = {};
    sel_key_pending_ = {};
    upd_unblock_ = {};
    ins_dedup_ = {};
    sel_dedup_ = {};
    del_expired_dedup_ = {};
    upd_delivered_ = {};
    upd_retry_ = {};
    upd_dead_ = {};
    ins_attempt_ = {};
    upd_total_ = {};
    checkpoint_db_ = sqlite::Db();
    prune_db_ = sqlite::Db();
    reader_db_ = sqlite::Db();
    admin_db_ = sqlite::Db();
    stats_db_ = sqlite::Db();
    writer_db_ = sqlite::Db();  // last: the last connection to close checkpoints the WAL into the database
  }

  std::string listener_id(const std::string& flow, const std::optional<std::string>& pinned) override {
    std::lock_guard lk(admin_mu_);
    return listener_id_locked(flow, pinned);
  }

  // One transaction for all: a first start with 1,000 flows writes 1,000 ids with one fsync, not 1,000.
  std::map<std::string, std::string> listener_ids(
      const std::vector<std::pair<std::string, std::optional<std::string>>>& flows) override {
    std::lock_guard lk(admin_mu_);
    std::map<std::string, std::string> ids;
    admin_db_.exec("BEGIN IMMEDIATE");
    try {
      // Every kept id in one read, and one prepared statement for what is written.
      std::map<std::string, std::string, std::less<>> kept;
      for (sqlite::Stmt all(admin_db_, "SELECT flow, id FROM listeners"); all.step();)
        kept.emplace(all.text(0), all.text(1));
      sqlite::Stmt put(admin_db_,
                       "INSERT INTO listeners(flow, id) VALUES(?1, ?2) "
                       "ON CONFLICT(flow) DO UPDATE SET id = excluded.id");
      std::size_t unnamed = 0;
      for (const auto& [flow, pinned] : flows) unnamed += !pinned && !kept.count(flow);
      auto fresh = crypto::random_tokens(unnamed, 24);  // 192 bits each
      for (const auto& [flow, pinned] : flows) {
        const auto it = kept.find(flow);
        std::string id;
        if (pinned) {
          id = *pinned;
          if (it != kept.end() && it->second == id) {
            ids[flow] = std::move(id);
            continue;  // a restart with pinned ids writes nothing
          }
        } else if (it != kept.end()) {
          ids[flow] = it->second;
          continue;
        } else if (!fresh.empty()) {
          id = std::move(fresh.back());
          fresh.pop_back();
        } else {
          id = crypto::random_token(24);  // the same flow twice in `flows`
        }
        put.bind(1, flow).bind(2, id).run();
        kept.insert_or_assign(flow, id);
        ids[flow] = std::move(id);
      }
      admin_db_.exec("COMMIT");
    } catch (...) {
      admin_db_.exec("ROLLBACK");
      throw;
    }
    return ids;
  }

  std::string listener_id_locked(const std::string& flow, const std::optional<std::string>& pinned) {
    if (pinned) {
      // Written only when it changed: a restart with pinned ids writes nothing.
      sqlite::Stmt cur(admin_db_, "SELECT id FROM listeners WHERE flow = ?1");
      cur.bind(1, flow);
      if (cur.step() && cur.text(0) == *pinned) return *pinned;
      sqlite::Stmt up(admin_db_,
                      "INSERT INTO listeners(flow, id) VALUES(?1, ?2) "
                      "ON CONFLICT(flow) DO UPDATE SET id = excluded.id");
      up.bind(1, flow).bind(2, *pinned).run();
      return *pinned;
    }
    sqlite::Stmt sel(admin_db_, "SELECT id FROM listeners WHERE flow = ?1");
    sel.bind(1, flow);
    if (sel.step()) return sel.text(0);
    std::string id = crypto::random_token(24);  // 192 bits
    sqlite::Stmt ins(admin_db_, "INSERT INTO listeners(flow, id) VALUES(?1, ?2)");
    ins.bind(1, flow).bind(2, id).run();
    return id;
  }

  void commit(Ingest ingest, std::function<void(CommitResult)> done) override {
    if (!admit(1)) {
      CommitResult r;
      r.error = "store overloaded";
      done(std::move(r));
      return;
    }
    enqueue(CommitOp{std::move(ingest), std::move(done)});
  }

  void commit_batch(std::vector<Ingest> ingests,
                    std::function<void(std::vector<CommitResult>)> done) override {
    if (!admit(ingests.size())) {
      std::vector<CommitResult> results(ingests.size());
      for (auto& r : results) r.error = "store overloaded";
      done(std::move(results));
      return;
    }
    enqueue(BatchOp{std::move(ingests), std::move(done)});
  }

  void record(Outcome outcome, std::function<void()> done) override {
    enqueue(RecordOp{std::move(outcome), std::move(done)});
  }

  void fetch_due(std::string lane, int64_t now_ms, std::size_t limit, std::unordered_set<int64_t> exclude,
                 std::function<void(Due)> done) override {
    auto task = [this, lane = std::move(lane), now_ms, limit, exclude = std::move(exclude),
                 done = std::move(done)]() mutable {
      Due due;
      try {
        due = read_due(lane, now_ms, limit, exclude);
      } catch (const std::exception& e) {
        log::error("store read failed", {{"lane", lane}, {"error", e.what()}});
        due.next_due_ms = now_ms + 1000;  // try again soon
      }
      done(std::move(due));
    };
    {
      std::lock_guard lk(rmu_);
      rqueue_.emplace_back(std::move(task));
    }
    rcv_.notify_one();
  }

  std::vector<std::string> pending_lanes() override {
    std::lock_guard lk(stats_mu_);
    return ops::pending_lanes(stats_db_);
  }

  // Kept in the store's own transactions (ops::ensure_counts): a few rows read, whatever the backlog, and
  // on a connection of their own, so /metrics never waits for an operator's search on admin_db_.
  Counts counts() override {
    std::lock_guard lk(stats_mu_);
    return ops::counts(stats_db_);
  }

  std::vector<Attempt> attempts(int64_t delivery_id) override {
    std::lock_guard lk(admin_mu_);
    return ops::history(admin_db_, delivery_id);
  }

  std::optional<EventRecord> event(const std::string& id_or_webhook_id) override {
    std::lock_guard lk(admin_mu_);
    return ops::find_event(admin_db_, id_or_webhook_id);
  }

  EventPage events(const EventQuery& query) override {
    std::lock_guard lk(admin_mu_);
    return ops::list_events(admin_db_, query);
  }

  DeadLetterPage dead_letters(const DeadLetterQuery& query) override {
    std::lock_guard lk(admin_mu_);
    return ops::list_dead_letters(admin_db_, query);
  }

  std::optional<DeadLetter> dead_letter(int64_t delivery_id) override {
    std::lock_guard lk(admin_mu_);
    return ops::find_dead_letter(admin_db_, delivery_id);
  }

  Bulk replay(int64_t delivery_id) override {
    std::lock_guard lk(admin_mu_);
    return ops::replay(admin_db_, nullptr, delivery_id, event::now_ms());
  }

  Bulk replay(const DeadLetterFilter& filter) override {
    std::lock_guard lk(admin_mu_);
    return ops::replay(admin_db_, &filter, std::nullopt, event::now_ms());
  }

  Bulk discard(int64_t delivery_id) override {
    std::lock_guard lk(admin_mu_);
    return ops::discard(admin_db_, nullptr, delivery_id, event::now_ms());
  }

  Bulk discard(const DeadLetterFilter& filter) override {
    std::lock_guard lk(admin_mu_);
    return ops::discard(admin_db_, &filter, std::nullopt, event::now_ms());
  }

  std::map<std::string, FlowState> flow_states() override {
    std::lock_guard lk(admin_mu_);
    return ops::flow_states(admin_db_);
  }

  void set_flow_enabled(const std::string& flow, std::optional<bool> enabled) override {
    std::lock_guard lk(admin_mu_);
    ops::set_flow_enabled(admin_db_, flow, enabled);
  }

  std::vector<SchemaRecord> schemas() override {
    std::lock_guard lk(admin_mu_);
    return ops::schemas(admin_db_);
  }

  void save_schemas(const std::vector<SchemaRecord>& records) override {
    std::lock_guard lk(admin_mu_);
    ops::save_schemas(admin_db_, records);
  }

  Pruned prune(int64_t cutoff_ms) override {
    static metrics::Counter& events =
        metrics::Registry::global().counter("evrouter_store_pruned_total", kPrunedHelp, {{"kind", "events"}});
    static metrics::Counter& deliveries = metrics::Registry::global().counter(
        "evrouter_store_pruned_total", kPrunedHelp, {{"kind", "deliveries"}});
    std::lock_guard lk(prune_mu_);
    Pruned total;
    std::optional<std::pair<int64_t, int64_t>> after;
    for (;;) {
      {
        std::lock_guard plk(pmu_);
        if (pstop_) break;  // closing
      }
      const ops::PruneChunk chunk = ops::prune_chunk(prune_db_, cutoff_ms, after, kPruneChunk);
      total.events += chunk.events;
      total.deliveries += chunk.deliveries;
      events.inc(static_cast<uint64_t>(chunk.events));
      deliveries.inc(static_cast<uint64_t>(chunk.deliveries));
      if (chunk.done) break;
      std::this_thread::sleep_for(kPrunePause);  // let the writer in
    }
    return total;
  }

  ArchivePage archived(const ArchiveQuery& query) override {
    std::lock_guard lk(admin_mu_);
    return ops::archived(admin_db_, query);
  }

  Bulk add_replay(const std::vector<ReplayIngest>& ingests, int64_t now_ms) override {
    std::lock_guard lk(admin_mu_);
    return ops::add_replay(admin_db_, ingests, now_ms);
  }

  std::map<std::string, int64_t> oldest_pending() override {
    std::lock_guard lk(stats_mu_);
    return ops::oldest_pending(stats_db_);
  }

  std::string rotate_listener_id(const std::string& flow) override {
    std::lock_guard lk(admin_mu_);
    std::string id = crypto::random_token(24);
    sqlite::Stmt up(admin_db_,
                    "INSERT INTO listeners(flow, id) VALUES(?1, ?2) "
                    "ON CONFLICT(flow) DO UPDATE SET id = excluded.id");
    up.bind(1, flow).bind(2, id).run();
    return id;
  }

 private:
  // Counts `n` more queued commits, or refuses them when the disk is not keeping up: a quick 503 rather
  // than unbounded request bodies held in memory.
  bool admit(std::size_t n) {
    std::lock_guard lk(wmu_);
    if (open_ && pending_commits_ > 0 && pending_commits_ + n > kMaxQueuedCommits) return false;
    pending_commits_ += n;
    return true;
  }

  // An index added to a table that already holds rows is built at this start, once: say so, since it
  // takes about a second per million dedup keys.
  void note_new_indexes() {
    sqlite::Stmt has(writer_db_,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'dedup_expiry'");
    if (!has.step() || has.int64(0) != 0) return;
    sqlite::Stmt keys(writer_db_, "SELECT count(*) FROM dedup");
    if (keys.step() && keys.int64(0) > 0)
      log::info("store: indexing the dedup keys by age (once, after an upgrade)",
                {{"keys", std::to_string(keys.int64(0))}});
  }

  // Columns added after the first release of the schema.
  void migrate() {
    std::set<std::string> columns;
    sqlite::Stmt info(writer_db_, "PRAGMA table_info(events)");
    while (info.step()) columns.insert(info.text(1));
    info.reset();
    if (!columns.count("resources")) {
      writer_db_.exec("ALTER TABLE events ADD COLUMN resources TEXT NOT NULL DEFAULT '[]'");
    }
    if (!columns.count("occurred_ms")) {
      writer_db_.exec("ALTER TABLE events ADD COLUMN occurred_ms INTEGER NOT NULL DEFAULT 0");
    }
    columns.clear();
    sqlite::Stmt dinfo(writer_db_, "PRAGMA table_info(deliveries)");
    while (dinfo.step()) columns.insert(dinfo.text(1));
    dinfo.reset();
    if (!columns.count("ordering_key"))
      writer_db_.exec("ALTER TABLE deliveries ADD COLUMN ordering_key TEXT");
    if (!columns.count("blocked")) {
      writer_db_.exec("ALTER TABLE deliveries ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0");
    }
  }

  void configure(sqlite::Db& db) {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(synchronous_pragma(options_.durability));
    sqlite3_busy_timeout(db.get(), sqlite::kBusyTimeoutMs);
    db.exec("PRAGMA temp_store=MEMORY");
    db.exec("PRAGMA cache_size=-16000");     // 16 MB per connection
    db.exec("PRAGMA wal_autocheckpoint=0");  // checkpoints: see kCheckpointPages
    db.exec(kJournalSizeLimit);
  }

  // SQLite calls this on the writer thread after each commit with the WAL's size in pages.
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    static_cast<SqliteStore*>(self)->wal_pages_ = pages;
    return SQLITE_OK;
  }

  // evrouter_store_checkpoints_total: checkpoints run by the checkpointer thread (PASSIVE, beside the
  // writer) or, past kWalHardLimitPages, by the writer itself (RESTART: commits wait for it).
  static metrics::Counter& checkpoints(const char* by) {
    return metrics::Registry::global().counter(
        "evrouter_store_checkpoints_total",
        "WAL checkpoints, by who ran them: the checkpointer thread (beside the writer) or the writer, "
        "when the WAL passed its hard limit (commits wait for it).",
        {{"by", by}});
  }

  // After a commit, on the writer thread: wake the checkpointer, or checkpoint here past the hard limit.
  void after_commit() {
    static metrics::Counter& by_writer = checkpoints("writer");
    const int pages = wal_pages_;
    if (pages < kWalHardLimitPages) restart_at_pages_ = kWalHardLimitPages;  // the WAL started over
    if (pages >= restart_at_pages_) {
      by_writer.inc();
      int frames = 0, done = 0;
      sqlite3_busy_timeout(writer_db_.get(), kRestartPatienceMs);
      const int rc =
          sqlite3_wal_checkpoint_v2(writer_db_.get(), nullptr, SQLITE_CHECKPOINT_RESTART, &frames, &done);
      sqlite3_busy_timeout(writer_db_.get(), sqlite::kBusyTimeoutMs);
      check_checkpoint(rc, writer_db_);
      wal_pages_ = 0;
      if (rc == SQLITE_BUSY) {
        restart_at_pages_ = pages + kRestartRetryPages;
        const int64_t now = event::now_ms();
        if (now - wal_held_logged_ms_ >= 60000) {
          wal_held_logged_ms_ = now;
          log::warn(
              "store: the WAL is past its limit and a long read holds an old snapshot; the WAL grows "
              "until the read ends (commits go on)",
              {{"wal_mib", std::to_string(pages / 256)}});
        }
      }
      return;
    }
    if (pages >= kCheckpointPages) {
      {
        std::lock_guard lk(cmu_);
        if (cwanted_) return;
        cwanted_ = true;
      }
      ccv_.notify_one();
    }
  }

  void checkpointer_loop() {
    static metrics::Counter& by_checkpointer = checkpoints("checkpointer");
    for (;;) {
      {
        std::unique_lock lk(cmu_);
        ccv_.wait(lk, [this] { return cstop_ || cwanted_; });
        if (cstop_) return;
      }
      int frames = 0, done = 0;
      int rc = SQLITE_OK;
      {
        const sqlite::CheckpointReadAhead read_ahead;  // takes effect on the gathering VFS (fsync) only
        rc = sqlite3_wal_checkpoint_v2(checkpoint_db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                       &done);
      }
      check_checkpoint(rc, checkpoint_db_);
      by_checkpointer.inc();
      std::lock_guard lk(cmu_);
      cwanted_ = false;
    }
  }

  void prepare_writer() {
    ins_event_ =
        sqlite::Stmt(writer_db_,
                     "INSERT INTO events(id, flow, listener_id, source, type, time_ms, shop, webhook_id, "
                     "dedup_key, correlation_id, headers, payload, resources, occurred_ms) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
    ins_delivery_ =
        sqlite::Stmt(writer_db_,
                     "INSERT INTO deliveries(event_seq, lane, state, attempts, created_ms, next_ms, "
                     "updated_ms, ordering_key, blocked) VALUES(?1, ?2, 0, 0, ?3, ?3, ?3, ?4, ?5)");
    sel_key_pending_ = sqlite::Stmt(
        writer_db_, "SELECT 1 FROM deliveries WHERE lane = ?1 AND ordering_key = ?2 AND state = 0 LIMIT 1");
    // The delivery ?1 is final: its key's earliest pending delivery (if blocked) becomes the head.
    upd_unblock_ = sqlite::Stmt(writer_db_,
                                "UPDATE deliveries SET blocked = 0 WHERE blocked = 1 AND id = ("
                                "SELECT min(p.id) FROM deliveries d JOIN deliveries p ON p.lane = d.lane "
                                "AND p.ordering_key = d.ordering_key WHERE d.id = ?1 AND p.state = 0)");
    ins_dedup_ = sqlite::Stmt(writer_db_,
                              "INSERT INTO dedup(listener, key, event_id, at_ms) VALUES(?1, ?2, ?3, ?4) "
                              "ON CONFLICT(listener, key) DO UPDATE SET event_id = excluded.event_id, "
                              "at_ms = excluded.at_ms WHERE dedup.at_ms < ?5");
    sel_dedup_ = sqlite::Stmt(writer_db_, "SELECT event_id FROM dedup WHERE listener = ?1 AND key = ?2");
    del_expired_dedup_ =
        sqlite::Stmt(writer_db_,
                     "DELETE FROM dedup WHERE (listener, key) IN (SELECT listener, key FROM dedup "
                     "WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)");
    upd_delivered_ =
        sqlite::Stmt(writer_db_,
                     "UPDATE deliveries SET state = 1, attempts = ?2, updated_ms = ?3, last_error = NULL "
                     "WHERE id = ?1 AND state = 0");
    upd_retry_ =
        sqlite::Stmt(writer_db_,
                     "UPDATE deliveries SET attempts = ?2, updated_ms = ?3, next_ms = ?4, last_error = ?5 "
                     "WHERE id = ?1");
    upd_dead_ =
        sqlite::Stmt(writer_db_,
                     "UPDATE deliveries SET state = 2, attempts = ?2, updated_ms = ?3, last_error = ?4 "
                     "WHERE id = ?1 AND state = 0");
    upd_total_ = sqlite::Stmt(writer_db_, "UPDATE totals SET n = n + ?2 WHERE kind = ?1");
    ins_attempt_ =
        sqlite::Stmt(writer_db_,
                     "INSERT OR REPLACE INTO attempts(delivery_id, number, at_ms, status, latency_ms, "
                     "error, response) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  }

  void enqueue(WriteOp op) {
    std::unique_lock lk(wmu_);
    if (!open_) {
      lk.unlock();
      fail_closed(op);
      return;
    }
    wqueue_.push_back(std::move(op));
    lk.unlock();
    wcv_.notify_one();
  }

  static void fail_closed(WriteOp& op) {
    if (auto* c = std::get_if<CommitOp>(&op)) {
      CommitResult r;
      r.error = "store closed";
      c->done(std::move(r));
    } else if (auto* b = std::get_if<BatchOp>(&op)) {
      std::vector<CommitResult> results(b->ingests.size());
      for (auto& r : results) r.error = "store closed";
      b->done(std::move(results));
    } else if (auto* rec = std::get_if<RecordOp>(&op)) {
      if (rec->done) rec->done();
    }
  }

  void writer_loop() {
    std::vector<WriteOp> batch;
    std::vector<CommitResult> results;
    for (;;) {
      if (defer_syncs_) {
        // One committed batch waits for the syncer at most: while it syncs, what arrives gathers into the
        // next transaction rather than into many small ones (fewer commits, fewer pages written per event).
        std::unique_lock lk(smu_);
        sspace_.wait(lk, [this] { return squeue_.empty(); });
      }
      {
        std::unique_lock lk(wmu_);
        wcv_.wait(lk, [this] { return wstop_ || !wqueue_.empty(); });
        if (wqueue_.empty() && wstop_) return;
        const std::size_t n =
            std::min<std::size_t>(wqueue_.size(), static_cast<std::size_t>(options_.commit_max_batch));
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          pending_commits_ -= commits_in(wqueue_.front());
          batch.push_back(std::move(wqueue_.front()));
          wqueue_.pop_front();
        }
      }
      write_batch(batch, results);
      after_commit();
    }
  }

  void write_batch(std::vector<WriteOp>& batch, std::vector<CommitResult>& results) {
    results.assign(batch.size(), CommitResult{});
    batch_results_.resize(batch.size());
    const int64_t now = event::now_ms();
    const auto started = std::chrono::steady_clock::now();
    std::string failure;
    {
      std::lock_guard lk(smu_);
      failure = sync_failure_;  // after a failed sync nothing more is written, in any durability
    }
    if (!failure.empty()) {
      finish(batch, results, batch_results_, failure);
      batch.clear();
      batch_results_.clear();
      return;
    }
    added_ = Counts{};
    int deferred_wal = -1;
    try {
      // fsync: the WAL's fdatasync follows the transaction, on this thread or the syncer (see pipelining)
      std::optional<sqlite::DeferredWalSync> defer;
      if (defer_syncs_) defer.emplace();
      writer_db_.exec("BEGIN IMMEDIATE");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (auto* c = std::get_if<CommitOp>(&batch[i])) {
          apply_commit(c->ingest, now, results[i]);
        } else if (auto* b = std::get_if<BatchOp>(&batch[i])) {
          batch_results_[i].assign(b->ingests.size(), CommitResult{});
          for (std::size_t j = 0; j < b->ingests.size(); ++j) {
            apply_commit(b->ingests[j], now, batch_results_[i][j]);
          }
        } else {
          apply_record(std::get<RecordOp>(batch[i]).outcome, now);
        }
      }
      add_totals();
      const int64_t expired = expire_dedup(now);
      writer_db_.exec("COMMIT");
      if (expired > 0) dedup_expired().inc(static_cast<uint64_t>(expired));
      if (defer) deferred_wal = defer->wal();
      observe_commit(batch, std::chrono::steady_clock::now() - started);
    } catch (const std::exception& e) {
      failure = e.what();
      try {
        writer_db_.exec("ROLLBACK");
      } catch (...) {
      }
      log::error("store commit failed", {{"error", failure}});
    }
    if (failure.empty() && deferred_wal >= 0 && pipelining()) {
      hand_to_syncer(deferred_wal, batch, results);
    } else {
      if (failure.empty() && deferred_wal >= 0) failure = sync_wal(deferred_wal);
      finish(batch, results, batch_results_, failure);
    }
    batch.clear();
    batch_results_.clear();
  }

  // After a commit with its WAL sync deferred: hand the sync to the syncer (and go on with the next
  // transaction) when kPipelineBacklog ingests wait or the syncer is still busy with earlier commits (their
  // answers come first); else sync here, as a commit without the syncer would: when the writer keeps up,
  // a hand-off to another thread costs more latency than it saves.
  bool pipelining() {
    {
      std::lock_guard lk(wmu_);
      if (pending_commits_ >= kPipelineBacklog) return true;
    }
    std::lock_guard lk(smu_);
    return syncing_ || !squeue_.empty();
  }

  // fdatasync of the WAL, on the writer or the syncer: "" or why the commits it covers failed (for good
  // after a first failure: the kernel may have dropped the pages it could not write).
  std::string sync_wal(int wal) {
    static metrics::Histogram& seconds = metrics::Registry::global().histogram(
        "evrouter_store_sync_seconds",
        "Duration of a WAL fdatasync after a group commit (durability: fsync): on the writer, or on the "
        "syncer for every commit made since its last sync.");
    {
      std::lock_guard lk(smu_);
      if (!sync_failure_.empty()) return sync_failure_;
    }
    const auto started = std::chrono::steady_clock::now();
    const int err = sqlite::sync_wal(wal);
    seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (err == 0) return {};
    return fail_for_good(std::string("store: the WAL could not be synced (") + std::strerror(err) +
                         "); restart evrouter");
  }

  // A failed fdatasync (of the WAL, or of the database file at a checkpoint): every later commit fails,
  // and the daemon is told to stop (on_failure). Returns the failure, the first one when there were several.
  std::string fail_for_good(std::string why) {
    {
      std::lock_guard lk(smu_);
      if (!sync_failure_.empty()) return sync_failure_;
      sync_failure_ = std::move(why);
      why = sync_failure_;
    }
    log::error("store sync failed", {{"error", why}});
    if (on_failure_) on_failure_(why);
    return why;
  }

  // After sqlite3_wal_checkpoint_v2 on `db`: a checkpoint whose sync of the database file failed stops the
  // store as a failed WAL sync does. Nothing is lost yet (the checkpoint did not record its progress: the
  // frames stay in the WAL, and a restart's recovery copies them all again), but the disk just failed a
  // writeback, and acknowledging more events onto it is not worth the risk. Other errors are logged (a
  // full disk fails the copy, not a sync: the next checkpoint tries again).
  void check_checkpoint(int rc, const sqlite::Db& db) {
    if (rc == SQLITE_OK || rc == SQLITE_BUSY) return;
    const int code = sqlite3_extended_errcode(db.get());
    if (code == SQLITE_IOERR_FSYNC || code == SQLITE_IOERR_DIR_FSYNC) {
      fail_for_good(std::string("store: a checkpoint could not sync the database file (") +
                    sqlite3_errmsg(db.get()) + "); restart evrouter");
      return;
    }
    log::warn("store checkpoint failed", {{"error", sqlite3_errmsg(db.get())}});
  }

  // Answers a batch's ops: their results, or all failed with `failure`.
  static void finish(std::vector<WriteOp>& batch, std::vector<CommitResult>& results,
                     std::vector<std::vector<CommitResult>>& batch_results, const std::string& failure) {
    auto failed = [&failure] {
      CommitResult r;
      r.status = CommitResult::Status::failed;
      r.error = failure;
      return r;
    };
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (auto* c = std::get_if<CommitOp>(&batch[i])) {
        CommitResult& r = results[i];
        if (!failure.empty()) r = failed();
        c->done(std::move(r));
      } else if (auto* b = std::get_if<BatchOp>(&batch[i])) {
        auto& rs = batch_results[i];
        if (!failure.empty()) rs.assign(b->ingests.size(), failed());
        b->done(std::move(rs));
      } else {
        auto& rec = std::get<RecordOp>(batch[i]);
        if (rec.done) rec.done();
      }
    }
  }

  // A committed batch whose WAL sync was deferred: queued for the syncer, which answers it once the WAL is
  // synced. At most one waits (writer_loop starts no transaction before the syncer took it), so a disk
  // that stalls holds the writer back, and the listeners' bounded queue fills and refuses, as with a
  // synchronous commit.
  void hand_to_syncer(int wal, std::vector<WriteOp>& batch, std::vector<CommitResult>& results) {
    {
      std::lock_guard lk(smu_);
      squeue_.push_back(SyncGroup{wal, std::move(batch), std::move(results), std::move(batch_results_)});
    }
    scv_.notify_one();
  }

  // fsync, under a backlog: makes the WAL durable for every batch handed to it since its last sync, then
  // answers them in commit order. While it syncs, the writer commits the next batch: the two overlap, where
  // a commit would otherwise wait for its own fdatasync before the writer could take the next. A reader may
  // see a batch (e.g. the dispatcher a new delivery) before it is synced; no answer, to a producer or to
  // any other caller of the store, is given before. After a failed fdatasync the WAL's state on disk is
  // unknown (the kernel may have dropped the pages it could not write): every later answer fails too.
  void syncer_loop() {
    std::vector<SyncGroup> groups;
    for (;;) {
      {
        std::unique_lock lk(smu_);
        syncing_ = false;
        scv_.wait(lk, [this] { return sstop_ || !squeue_.empty(); });
        if (squeue_.empty()) return;
        while (!squeue_.empty()) {
          groups.push_back(std::move(squeue_.front()));
          squeue_.pop_front();
        }
        syncing_ = true;
      }
      sspace_.notify_all();
      std::string failure;
      int synced = -1;
      for (const auto& g : groups) {
        if (g.wal == synced) continue;
        failure = sync_wal(g.wal);
        if (!failure.empty()) break;
        synced = g.wal;
      }
      for (auto& g : groups) finish(g.ops, g.results, g.batch_results, failure);
      groups.clear();
    }
  }

  // One transaction committed (and synced as the durability setting asks): its latency and how many
  // ingests it carried. Series are looked up once; observing is lock-free.
  static void observe_commit(const std::vector<WriteOp>& batch, std::chrono::steady_clock::duration took) {
    static metrics::Histogram& seconds = metrics::Registry::global().histogram(
        "evrouter_store_commit_seconds",
        "Duration of a store group commit: the write transaction, including its fsync except in "
        "durability fsync, where the WAL is synced after it (evrouter_store_sync_seconds).");
    static metrics::Histogram& size = metrics::Registry::global().histogram(
        "evrouter_store_commit_batch_size",
        "Ingests (accepted webhooks and published events) per store transaction.", {},
        metrics::size_buckets());
    std::size_t ingests = 0;
    for (const auto& op : batch) {
      if (std::holds_alternative<CommitOp>(op)) {
        ++ingests;
      } else if (auto* b = std::get_if<BatchOp>(&op)) {
        ingests += b->ingests.size();
      }
    }
    seconds.observe(std::chrono::duration<double>(took).count());
    if (ingests > 0)
      size.observe(static_cast<double>(ingests));  // delivery outcomes only: not a group commit
  }

  void apply_commit(Ingest& ingest, int64_t now, CommitResult& r) {
    const event::Event& e = *ingest.event;
    if (!e.dedup_key.empty()) {
      const int64_t cutoff = now - options_.dedup_window.count();
      ins_dedup_.bind(1, e.listener_id).bind(2, e.dedup_key).bind(3, e.id).bind(4, now).bind(5, cutoff).run();
      if (sqlite3_changes(writer_db_.get()) == 0) {
        r.status = CommitResult::Status::duplicate;
        sel_dedup_.bind(1, e.listener_id).bind(2, e.dedup_key);
        if (sel_dedup_.step()) r.event_id = sel_dedup_.text(0);
        sel_dedup_.reset();
        return;
      }
    }
    const std::string headers = headers_json(e);
    ++added_.events;
    ins_event_.bind(1, e.id)
        .bind(2, e.flow)
        .bind(3, e.listener_id)
        .bind(4, e.source)
        .bind(5, e.type)
        .bind(6, e.time_ms)
        .bind(7, e.shop_domain)
        .bind(8, e.webhook_id)
        .bind(9, e.dedup_key)
        .bind(10, e.correlation_id)
        .bind(11, headers)
        .bind_blob(12, e.payload)
        .bind(13, resources_json(e))
        .bind(14, e.occurred_ms)
        .run();
    const int64_t seq = sqlite3_last_insert_rowid(writer_db_.get());
    r.deliveries.reserve(ingest.lanes.size());
    for (std::size_t i = 0; i < ingest.lanes.size(); ++i) {
      const std::string& lane = ingest.lanes[i];
      Delivery d;
      if (i < ingest.ordering_keys.size() && ingest.ordering_keys[i]) {
        d.ordering_key = std::move(ingest.ordering_keys[i]);
        sel_key_pending_.bind(1, lane).bind(2, *d.ordering_key);
        d.blocked = sel_key_pending_.step();
        sel_key_pending_.reset();
        ins_delivery_.bind(4, *d.ordering_key);
      } else {
        ins_delivery_.bind_null(4);
      }
      ins_delivery_.bind(1, seq).bind(2, lane).bind(3, e.time_ms).bind(5, int64_t{d.blocked ? 1 : 0}).run();
      d.id = sqlite3_last_insert_rowid(writer_db_.get());
      ++added_.pending;
      d.lane = lane;
      d.created_ms = e.time_ms;
      d.next_attempt_ms = e.time_ms;
      d.event = ingest.event;
      r.deliveries.push_back(std::move(d));
    }
    r.status = CommitResult::Status::accepted;
    r.event_id = e.id;
  }

  // A pending delivery of this transaction became delivered or dead (the update matched only a pending row).
  void count_move(int64_t& to) {
    if (sqlite3_changes(writer_db_.get()) == 0) return;
    --added_.pending;
    ++to;
  }

  // The writer's changes to the totals, once per transaction rather than once per row (its rows are the hot
  // path; the other connections' rare changes are counted by triggers: ops::count_changes).
  void add_totals() {
    const std::pair<int64_t, int64_t> changes[] = {{ops::kEventsTotal, added_.events},
                                                   {ops::kPending, added_.pending},
                                                   {ops::kDelivered, added_.delivered},
                                                   {ops::kDead, added_.dead}};
    for (const auto& [kind, n] : changes) {
      if (n != 0) upd_total_.bind(1, kind).bind(2, n).run();
    }
  }

  void apply_record(const Outcome& o, int64_t now) {
    switch (o.kind) {
      case Outcome::Kind::delivered:
        upd_delivered_.bind(1, o.delivery_id).bind(2, o.attempts).bind(3, now).run();
        count_move(added_.delivered);
        if (o.ordered) upd_unblock_.bind(1, o.delivery_id).run();
        break;
      case Outcome::Kind::retry:
        upd_retry_.bind(1, o.delivery_id).bind(2, o.attempts).bind(3, now).bind(4, o.next_attempt_ms);
        upd_retry_.bind(5, o.attempt.error).run();
        break;
      case Outcome::Kind::dead:
        upd_dead_.bind(1, o.delivery_id).bind(2, o.attempts).bind(3, now).bind(4, o.attempt.error).run();
        count_move(added_.dead);
        if (o.ordered) upd_unblock_.bind(1, o.delivery_id).run();
        break;
    }
    const Attempt& a = o.attempt;
    ins_attempt_.bind(1, o.delivery_id)
        .bind(2, a.number)
        .bind(3, a.at_ms)
        .bind(4, a.status)
        .bind(5, a.latency_ms)
        .bind(6, a.error)
        .bind(7, a.response)
        .run();
  }

  // In the writer's transaction: up to kDedupExpireChunk dedup keys past the window (one index seek when
  // there are none). A key past the window that is still there is treated as absent by ins_dedup_.
  int64_t expire_dedup(int64_t now) {
    del_expired_dedup_.bind(1, now - options_.dedup_window.count()).bind(2, kDedupExpireChunk).run();
    return sqlite3_changes(writer_db_.get());
  }

  static metrics::Counter& dedup_expired() {
    static metrics::Counter& c =
        metrics::Registry::global().counter("evrouter_store_pruned_total", kPrunedHelp, {{"kind", "dedup"}});
    return c;
  }

  void pruner_loop() {
    for (;;) {
      {
        std::unique_lock lk(pmu_);
        if (pcv_.wait_for(lk, kPruneEvery, [this] { return pstop_; })) return;
      }
      try {
        const Pruned p = prune(event::now_ms() - options_.retention.count());
        if (p.events > 0) {
          log::info("store pruned",
                    {{"events", std::to_string(p.events)}, {"deliveries", std::to_string(p.deliveries)}});
        }
      } catch (const std::exception& e) {
        log::warn("store prune failed", {{"error", e.what()}});
      }
    }
  }

  void reader_loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lk(rmu_);
        rcv_.wait(lk, [this] { return rstop_ || !rqueue_.empty(); });
        if (rqueue_.empty()) return;
        task = std::move(rqueue_.front());
        rqueue_.pop_front();
      }
      task();
    }
  }

  Due read_due(const std::string& lane, int64_t now_ms, std::size_t limit,
               const std::unordered_set<int64_t>& exclude) {
    if (!sel_due_) {
      // Each names its index: without statistics the planner may take deliveries_waiting for the blocked
      // check (any pending row of the lane) and walk a lane's whole backlog on every fetch.
      sel_due_ = std::make_unique<sqlite::Stmt>(
          reader_db_,
          "SELECT id, event_seq, attempts, created_ms, next_ms, ordering_key, attempts_base, replayed_ms, "
          "replay_ms "
          "FROM deliveries INDEXED BY deliveries_ready "
          "WHERE lane = ?1 AND state = 0 AND blocked = 0 AND next_ms <= ?2 ORDER BY next_ms, id LIMIT ?3");
      sel_next_ = std::make_unique<sqlite::Stmt>(
          reader_db_,
          "SELECT min(next_ms) FROM deliveries INDEXED BY deliveries_ready WHERE lane = ?1 AND "
          "state = 0 AND blocked = 0 AND next_ms > ?2");
      sel_blocked_ = std::make_unique<sqlite::Stmt>(reader_db_,
                                                    "SELECT 1 FROM deliveries INDEXED BY deliveries_blocked "
                                                    "WHERE lane = ?1 AND state = 0 AND blocked = 1 "
                                                    "LIMIT 1");
      sel_event_ = std::make_unique<sqlite::Stmt>(
          reader_db_,
          "SELECT id, flow, listener_id, source, type, time_ms, shop, webhook_id, dedup_key, correlation_id, "
          "headers, payload, resources, occurred_ms FROM events WHERE seq = ?1");
    }
    Due due;
    struct Row {
      Delivery d;
      int64_t seq;
    };
    std::vector<Row> rows;
    reader_db_.exec("BEGIN");
    try {
      sel_due_->bind(1, lane).bind(2, now_ms).bind(3, static_cast<int64_t>(limit + exclude.size()));
      while (sel_due_->step() && rows.size() < limit) {
        const int64_t id = sel_due_->int64(0);
        if (exclude.count(id)) continue;
        Row r;
        r.d.id = id;
        r.d.lane = lane;
        r.seq = sel_due_->int64(1);
        r.d.attempts = static_cast<int>(sel_due_->int64(2));
        r.d.created_ms = sel_due_->int64(3);
        r.d.next_attempt_ms = sel_due_->int64(4);
        if (!sel_due_->is_null(5)) r.d.ordering_key = sel_due_->text(5);
        r.d.attempts_before_replay = static_cast<int>(sel_due_->int64(6));
        r.d.replayed_ms = sel_due_->int64(7);
        r.d.replay = sel_due_->int64(8) != 0;
        rows.push_back(std::move(r));
      }
      sel_due_->reset();
      sel_next_->bind(1, lane).bind(2, now_ms);
      if (sel_next_->step() && !sel_next_->is_null(0)) due.next_due_ms = sel_next_->int64(0);
      sel_next_->reset();
      sel_blocked_->bind(1, lane);
      due.blocked = sel_blocked_->step();
      sel_blocked_->reset();
      std::unordered_map<int64_t, event::EventPtr> cache;
      for (auto& r : rows) {
        auto it = cache.find(r.seq);
        if (it == cache.end()) it = cache.emplace(r.seq, load_event(r.seq)).first;
        r.d.event = it->second;
        if (r.d.event) due.deliveries.push_back(std::move(r.d));
      }
      reader_db_.exec("COMMIT");
    } catch (...) {
      sel_due_->reset();
      sel_next_->reset();
      sel_blocked_->reset();
      sel_event_->reset();
      reader_db_.exec("ROLLBACK");
      throw;
    }
    return due;
  }

  event::EventPtr load_event(int64_t seq) {
    sel_event_->bind(1, seq);
    if (!sel_event_->step()) {
      sel_event_->reset();
      return nullptr;
    }
    auto e = std::make_shared<event::Event>();
    e->id = sel_event_->text(0);
    e->flow = sel_event_->text(1);
    e->listener_id = sel_event_->text(2);
    e->source = sel_event_->text(3);
    e->type = sel_event_->text(4);
    e->time_ms = sel_event_->int64(5);
    e->shop_domain = sel_event_->text(6);
    e->webhook_id = sel_event_->text(7);
    e->dedup_key = sel_event_->text(8);
    e->correlation_id = sel_event_->text(9);
    auto headers = nlohmann::json::parse(sel_event_->text(10), nullptr, false);
    if (headers.is_object()) {
      for (auto it = headers.begin(); it != headers.end(); ++it) {
        if (it.value().is_string()) e->headers.emplace_back(it.key(), it.value().get<std::string>());
      }
    }
    e->payload = sel_event_->text(11);
    auto resources = nlohmann::json::parse(sel_event_->text(12), nullptr, false);
    if (resources.is_array()) {
      for (const auto& r : resources) {
        if (r.is_string()) e->resources.push_back(r.get<std::string>());
      }
    }
    e->occurred_ms = sel_event_->int64(13);
    sel_event_->reset();
    return e;
  }

  config::Store options_;
  std::string path_;
  bool open_ = false;

  sqlite::Db writer_db_;
  sqlite::Stmt ins_event_, ins_delivery_, ins_dedup_, sel_dedup_, del_expired_dedup_, upd_delivered_,
      upd_retry_, upd_dead_, ins_attempt_, sel_key_pending_, upd_unblock_, upd_total_;
  Counts added_;  // the current transaction's changes to the totals (writer thread only)
  std::mutex wmu_;
  std::condition_variable wcv_;
  std::deque<WriteOp> wqueue_;
  std::vector<std::vector<CommitResult>> batch_results_;  // writer thread only
  std::size_t pending_commits_ = 0;
  bool wstop_ = false;
  std::thread writer_;

  // fsync: batches committed with their WAL sync deferred, waiting for the syncer (see syncer_loop).
  struct SyncGroup {
    int wal;  // the WAL to sync (DeferredWalSync::wal)
    std::vector<WriteOp> ops;
    std::vector<CommitResult> results;
    std::vector<std::vector<CommitResult>> batch_results;
  };
  bool defer_syncs_ = false;
  std::mutex smu_;
  std::condition_variable scv_;     // the syncer waits for groups
  std::condition_variable sspace_;  // the writer waits until the syncer took the queued group
  std::deque<SyncGroup> squeue_;
  bool sstop_ = false;
  bool syncing_ = false;      // the syncer is syncing or answering the groups it took
  std::string sync_failure_;  // set by a failed fdatasync, for good
  std::function<void(const std::string&)> on_failure_;  // set before the first write
  std::thread syncer_;

  sqlite::Db reader_db_;
  std::unique_ptr<sqlite::Stmt> sel_due_, sel_next_, sel_blocked_, sel_event_;
  std::mutex rmu_;
  std::condition_variable rcv_;
  std::deque<std::function<void()>> rqueue_;
  bool rstop_ = false;
  std::thread reader_;

  std::mutex admin_mu_;
  sqlite::Db admin_db_;
  std::mutex stats_mu_;  // counts, pending lanes, queue ages: reads by seeks, never held long
  sqlite::Db stats_db_;

  std::mutex prune_mu_;  // one pass at a time, on prune_db_
  sqlite::Db prune_db_;
  std::mutex pmu_;
  std::condition_variable pcv_;
  bool pstop_ = false;
  std::thread pruner_;

  int wal_pages_ = 0;                          // writer thread only: the WAL's size after the last commit
  int restart_at_pages_ = kWalHardLimitPages;  // writer thread only: the WAL's size for its next RESTART
  int64_t wal_held_logged_ms_ = 0;             // writer thread only
  sqlite::Db checkpoint_db_;
  std::mutex cmu_;
  std::condition_variable ccv_;
  bool cwanted_ = false;
  bool cstop_ = false;
  std::thread checkpointer_;
};

}  // namespace

std::unique_ptr<Store> make_sqlite_store(const config::Store& options) {
  return std::make_unique<SqliteStore>(options);
}

}  // namespace evr::store
