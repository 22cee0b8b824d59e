#include "store/operations.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>
#include <stdexcept>
#include <variant>
#include <vector>

namespace evr::store {

const char* to_string(DeliveryState s) {
  switch (s) {
    case DeliveryState::pending:
      return "pending";
    case DeliveryState::delivered:
      return "delivered";
    case DeliveryState::dead:
      return "dead";
    case DeliveryState::discarded:
      return "discarded";
  }
  return "pending";
}

std::optional<DeliveryState> parse_delivery_state(const std::string& s) {
  if (s == "pending") return DeliveryState::pending;
  if (s == "delivered") return DeliveryState::delivered;
  if (s == "dead") return DeliveryState::dead;
  if (s == "discarded") return DeliveryState::discarded;
  return std::nullopt;
}

Pruned Store::prune(int64_t) {
  throw NotSupported("retention is not applied by this store");
}
ArchivePage Store::archived(const ArchiveQuery&) {
  throw NotSupported("replaying a time window is not supported by this store");
}
Bulk Store::add_replay(const std::vector<ReplayIngest>&, int64_t) {
  throw NotSupported("replaying a time window is not supported by this store");
}
std::map<std::string, int64_t> Store::oldest_pending() {
  throw NotSupported("queue ages are not kept by this store");
}

namespace ops {
namespace {

// Deliveries replayed or discarded per transaction.
constexpr int64_t kBulkChunk = 500;
// Rows a page holds at most.
constexpr std::size_t kMaxLimit = 1000;
// Rows a list examines at most per page, whatever its filters: past that it answers what it found (maybe
// nothing) with a cursor to go on from, so a filter that matches little costs many short pages instead of
// one read of the whole store holding the operator connection. The JetStream store bounds its walks alike.
constexpr int64_t kScanBudget = 10000;
// A list bounded by receive time (since, until) walks this far past it in commit order: an event's commit
// follows its receipt by less than this unless the store stalled for longer (its request timed out long
// before).
constexpr int64_t kCommitSkewMs = int64_t{3600} * 1000;

constexpr const char* kEventColumns =
    "e.seq, e.id, e.flow, e.listener_id, e.source, e.type, e.time_ms, e.shop, e.webhook_id, e.dedup_key, "
    "e.correlation_id, e.headers, e.resources, e.occurred_ms";
constexpr int kEventColumnCount = 14;

constexpr const char* kDeliveryColumns =
    "d.id, d.lane, d.state, d.attempts, d.created_ms, d.next_ms, d.updated_ms, d.last_error, d.replays, "
    "d.replayed_ms, d.replay_ms";
constexpr int kDeliveryColumnCount = 11;

using Value = std::variant<int64_t, std::string>;

// A WHERE clause built from optional filters, with its bound values.
struct Where {
  std::string sql;
  std::vector<Value> values;
  void add(const std::string& condition, std::vector<Value> vs = {}) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql += condition;
    for (auto& v : vs) values.push_back(std::move(v));
  }
  // "?N" for the next value.
  std::string next() const { return "?" + std::to_string(values.size() + 1); }
  void bind(sqlite::Stmt& st) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const int n = static_cast<int>(i + 1);
      if (const auto* v = std::get_if<int64_t>(&values[i])) {
        st.bind(n, *v);
      } else {
        st.bind(n, std::get<std::string>(values[i]));
      }
    }
  }
};

// Event columns from kEventColumns starting at `col`; the payload is not among them.
std::shared_ptr<event::Event> read_event(const sqlite::Stmt& st, int col, int64_t& seq) {
  auto e = std::make_shared<event::Event>();
  seq = st.int64(col);
  e->id = st.text(col + 1);
  e->flow = st.text(col + 2);
  e->listener_id = st.text(col + 3);
  e->source = st.text(col + 4);
  e->type = st.text(col + 5);
  e->time_ms = st.int64(col + 6);
  e->shop_domain = st.text(col + 7);
  e->webhook_id = st.text(col + 8);
  e->dedup_key = st.text(col + 9);
  e->correlation_id = st.text(col + 10);
  auto headers = nlohmann::json::parse(st.text(col + 11), nullptr, false);
  if (headers.is_object()) {
    for (auto it = headers.begin(); it != headers.end(); ++it) {
      if (it.value().is_string()) e->headers.emplace_back(it.key(), it.value().get<std::string>());
    }
  }
  auto resources = nlohmann::json::parse(st.text(col + 12), nullptr, false);
  if (resources.is_array()) {
    for (const auto& r : resources) {
      if (r.is_string()) e->resources.push_back(r.get<std::string>());
    }
  }
  e->occurred_ms = st.int64(col + 13);
  return e;
}

DeliveryInfo read_delivery(const sqlite::Stmt& st, int col) {
  DeliveryInfo d;
  d.id = st.int64(col);
  d.lane = st.text(col + 1);
  const int64_t state = st.int64(col + 2);
  d.state = state == kDelivered   ? DeliveryState::delivered
            : state == kDead      ? DeliveryState::dead
            : state == kDiscarded ? DeliveryState::discarded
                                  : DeliveryState::pending;
  d.attempts = static_cast<int>(st.int64(col + 3));
  d.created_ms = st.int64(col + 4);
  if (d.state == DeliveryState::pending) d.next_attempt_ms = st.int64(col + 5);
  d.updated_ms = st.int64(col + 6);
  if (!st.is_null(col + 7)) d.last_error = st.text(col + 7);
  d.replays = static_cast<int>(st.int64(col + 8));
  d.replayed_ms = st.int64(col + 9);
  d.replay_ms = st.int64(col + 10);
  return d;
}

std::vector<DeliveryInfo> deliveries_of(sqlite::Db& db, int64_t seq, bool with_history) {
  sqlite::Stmt st(db, (std::string("SELECT ") + kDeliveryColumns +
                       " FROM deliveries d WHERE d.event_seq = ?1 ORDER BY d.id")
                          .c_str());
  st.bind(1, seq);
  std::vector<DeliveryInfo> out;
  while (st.step()) out.push_back(read_delivery(st, 0));
  if (with_history) {
    for (auto& d : out) d.history = history(db, d.id);
  }
  return out;
}

std::string payload_of(sqlite::Db& db, int64_t seq) {
  sqlite::Stmt st(db, "SELECT payload FROM events WHERE seq = ?1");
  st.bind(1, seq);
  return st.step() ? st.text(0) : std::string();
}

bool parse_int(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::size_t clamp_limit(std::size_t limit) {
  return limit == 0 ? 50 : std::min(limit, kMaxLimit);
}

// Dead, and died within `time`: a range on deliveries_dead.
void add_dead_range(Where& w, const TimeRange& time) {
  w.add("d.state = " + std::to_string(kDead));
  if (time.since_ms) w.add("d.updated_ms >= " + w.next(), {*time.since_ms});
  if (time.until_ms) w.add("d.updated_ms < " + w.next(), {*time.until_ms});
}

// Of the lane and flow asked for: checked per row.
void add_dead_owner(Where& w, const DeadLetterFilter& f) {
  if (f.lane) w.add("d.lane = " + w.next(), {*f.lane});
  if (f.flow) w.add("e.flow = " + w.next(), {*f.flow});
}

void add_dead_filter(Where& w, const DeadLetterFilter& f) {
  add_dead_range(w, f.time);
  add_dead_owner(w, f);
}

// Dead letters after (`older`: past, in newest-first order) or up to and including the one at (at, id).
void add_dead_position(Where& w, int64_t at, int64_t id, bool older) {
  const std::string a = w.next();
  w.values.emplace_back(at);
  const std::string b = w.next();
  w.values.emplace_back(id);
  w.add(older ? "(d.updated_ms < " + a + " OR (d.updated_ms = " + a + " AND d.id < " + b + "))"
              : "(d.updated_ms > " + a + " OR (d.updated_ms = " + a + " AND d.id >= " + b + "))");
}

// Applies `set` (an UPDATE's SET list) to the dead letters chosen, a chunk per transaction.
Bulk change_dead(sqlite::Db& db, const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
                 int64_t now_ms, const std::string& set) {
  Where w;
  if (filter) add_dead_filter(w, *filter);
  if (!filter) w.add("d.state = " + std::to_string(kDead));
  if (delivery_id) w.add("d.id = " + w.next(), {*delivery_id});
  // Never a delivery that died after the call began (it may have been replayed by this very call).
  w.add("d.updated_ms <= " + w.next(), {now_ms});
  const std::string select = "SELECT d.id, d.lane FROM deliveries d JOIN events e ON e.seq = d.event_seq" +
                             w.sql + " LIMIT " + std::to_string(kBulkChunk);
  const std::string update =
      "UPDATE deliveries SET " + set + " WHERE id = ?1 AND state = " + std::to_string(kDead);
  Bulk out;
  std::set<std::string> lanes;
  for (;;) {
    int64_t n = 0;
    db.exec("BEGIN IMMEDIATE");
    try {
      sqlite::Stmt sel(db, select.c_str());
      w.bind(sel);
      std::vector<std::pair<int64_t, std::string>> rows;
      while (sel.step()) rows.emplace_back(sel.int64(0), sel.text(1));
      sqlite::Stmt upd(db, update.c_str());
      for (const auto& [id, lane] : rows) {
        upd.bind(1, id).bind(2, now_ms).run();
        if (sqlite3_changes(db.get()) > 0) {
          ++n;
          lanes.insert(lane);
        }
      }
      db.exec("COMMIT");
      out.count += n;
      if (static_cast<int64_t>(rows.size()) < kBulkChunk || delivery_id) break;
    } catch (...) {
      db.exec("ROLLBACK");
      throw;
    }
  }
  out.lanes.assign(lanes.begin(), lanes.end());
  return out;
}

}  // namespace

std::vector<Attempt> history(sqlite::Db& db, int64_t delivery_id) {
  sqlite::Stmt st(db,
                  "SELECT number, at_ms, status, latency_ms, error, response FROM attempts "
                  "WHERE delivery_id = ?1 ORDER BY number");
  st.bind(1, delivery_id);
  std::vector<Attempt> out;
  while (st.step()) {
    out.push_back(Attempt{static_cast<int>(st.int64(0)), st.int64(1), static_cast<int>(st.int64(2)),
                          st.int64(3), st.text(4), st.text(5)});
  }
  return out;
}

void migrate(sqlite::Db& db) {
  std::set<std::string> columns;
  sqlite::Stmt info(db, "PRAGMA table_info(deliveries)");
  while (info.step()) columns.insert(info.text(1));
  info.reset();
  if (!columns.count("replays")) {
    db.exec("ALTER TABLE deliveries ADD COLUMN replays INTEGER NOT NULL DEFAULT 0");
  }
  if (!columns.count("replayed_ms")) {
    db.exec("ALTER TABLE deliveries ADD COLUMN replayed_ms INTEGER NOT NULL DEFAULT 0");
  }
  if (!columns.count("attempts_base")) {
    db.exec("ALTER TABLE deliveries ADD COLUMN attempts_base INTEGER NOT NULL DEFAULT 0");
  }
  if (!columns.count("replay_ms")) {
    db.exec("ALTER TABLE deliveries ADD COLUMN replay_ms INTEGER NOT NULL DEFAULT 0");
  }
  db.exec(
      "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_seq);"
      "CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(updated_ms, id) WHERE state = 2;"
      "CREATE INDEX IF NOT EXISTS events_webhook ON events(webhook_id) WHERE webhook_id <> '';"
      // Retention and window replay walk events in receive order.
      "CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);"
      "CREATE TABLE IF NOT EXISTS flow_state(flow TEXT PRIMARY KEY, enabled INTEGER, updated_ms INTEGER "
      "NOT NULL);");
  db.exec(
      "CREATE TABLE IF NOT EXISTS schemas(source TEXT NOT NULL, type TEXT NOT NULL, document TEXT NOT NULL, "
      "updated_ms INTEGER NOT NULL, PRIMARY KEY(source, type));");
}

std::optional<EventRecord> find_event(sqlite::Db& db, const std::string& key) {
  if (key.empty()) return std::nullopt;
  const std::string cols = kEventColumns;
  for (const char* where :
       {"e.id = ?1", "e.webhook_id = ?1 AND e.webhook_id <> '' ORDER BY e.seq DESC LIMIT 1"}) {
    sqlite::Stmt st(db, ("SELECT " + cols + " FROM events e WHERE " + where).c_str());
    st.bind(1, key);
    if (!st.step()) continue;
    EventRecord r;
    auto e = read_event(st, 0, r.seq);
    e->payload = payload_of(db, r.seq);
    r.event = std::move(e);
    r.deliveries = deliveries_of(db, r.seq, true);
    return r;
  }
  return std::nullopt;
}

namespace {

// The newest event by receive time before `ms` (its seq), or the oldest at or after it: seeks on
// events_time. None: 0.
int64_t seq_received_before(sqlite::Db& db, int64_t ms) {
  sqlite::Stmt st(db,
                  "SELECT seq FROM events INDEXED BY events_time WHERE time_ms < ?1 ORDER BY time_ms DESC "
                  "LIMIT 1");
  st.bind(1, ms);
  return st.step() ? st.int64(0) : 0;
}

int64_t seq_received_from(sqlite::Db& db, int64_t ms) {
  sqlite::Stmt st(
      db, "SELECT seq FROM events INDEXED BY events_time WHERE time_ms >= ?1 ORDER BY time_ms LIMIT 1");
  st.bind(1, ms);
  return st.step() ? st.int64(0) : 0;
}

int64_t seq_bound(sqlite::Db& db, const char* sql) {
  sqlite::Stmt st(db, sql);
  return st.step() ? st.int64(0) : 0;
}

}  // namespace

EventPage list_events(sqlite::Db& db, const EventQuery& q) {
  // The walk: sequences from just below the cursor (or the newest) down to `floor` (exclusive), at most
  // kScanBudget of them per page. Receive times bound it too: an event received at or after `since` was
  // committed after every event received kCommitSkewMs before it had been (and symmetrically for
  // `until`), unless a commit lagged its receipt by more than that.
  int64_t hi = seq_bound(db, "SELECT max(seq) FROM events");
  int64_t floor = seq_bound(db, "SELECT min(seq) FROM events") - 1;
  if (q.cursor) {
    int64_t seq = 0;
    if (!parse_int(*q.cursor, seq)) throw std::invalid_argument("malformed cursor");
    hi = std::min(hi, seq - 1);
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (q.time.since_ms && *q.time.since_ms > std::numeric_limits<int64_t>::min() + kCommitSkewMs)
    floor = std::max(floor, seq_received_before(db, *q.time.since_ms - kCommitSkewMs));
  if (q.time.until_ms && *q.time.until_ms < kMax - kCommitSkewMs) {
    if (const int64_t w = seq_received_from(db, *q.time.until_ms + kCommitSkewMs); w > 0)
      hi = std::min(hi, w - 1);
  }
  EventPage page;
  if (hi <= floor) return page;
  const int64_t lo = std::max(floor + 1, hi - kScanBudget + 1);

  Where w;
  w.add("e.seq >= " + w.next(), {lo});
  w.add("e.seq <= " + w.next(), {hi});
  if (q.flow) w.add("e.flow = " + w.next(), {*q.flow});
  if (q.type) w.add("e.type = " + w.next(), {*q.type});
  if (q.time.since_ms) w.add("e.time_ms >= " + w.next(), {*q.time.since_ms});
  if (q.time.until_ms) w.add("e.time_ms < " + w.next(), {*q.time.until_ms});
  if (q.status) {
    const int64_t state = static_cast<int64_t>(*q.status);
    w.add("EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state = " + w.next() + ")",
          {state});
  }
  const std::size_t limit = clamp_limit(q.limit);
  // NOT INDEXED: the sequence range on the table itself, never an index walk that sorts afterwards.
  sqlite::Stmt st(db, (std::string("SELECT ") + kEventColumns + " FROM events e NOT INDEXED" + w.sql +
                       " ORDER BY e.seq DESC LIMIT " + std::to_string(limit + 1))
                          .c_str());
  w.bind(st);
  while (st.step()) {
    if (page.events.size() == limit) {
      page.next_cursor = std::to_string(page.events.back().seq);
      break;
    }
    EventRecord r;
    r.event = read_event(st, 0, r.seq);
    page.events.push_back(std::move(r));
  }
  // The budget ran out before the page filled: go on below what was examined.
  if (!page.next_cursor && lo > floor + 1) page.next_cursor = std::to_string(lo);
  for (auto& r : page.events) r.deliveries = deliveries_of(db, r.seq, false);
  return page;
}

DeadLetterPage list_dead_letters(sqlite::Db& db, const DeadLetterQuery& q) {
  // Dead letters newest first on deliveries_dead: the time filter and the cursor are ranges on it; lane
  // and flow are checked per row, so with those a page examines at most kScanBudget dead letters (the
  // boundary is found on the index alone).
  Where range;
  add_dead_range(range, q.filter.time);
  if (q.cursor) {
    const auto sep = q.cursor->find('_');
    int64_t at = 0, id = 0;
    if (sep == std::string::npos || !parse_int(std::string_view(*q.cursor).substr(0, sep), at) ||
        !parse_int(std::string_view(*q.cursor).substr(sep + 1), id)) {
      throw std::invalid_argument("malformed cursor");
    }
    add_dead_position(range, at, id, true);
  }
  Where w = range;
  std::optional<std::pair<int64_t, int64_t>> boundary;
  if (q.filter.lane || q.filter.flow) {
    sqlite::Stmt st(
        db, ("SELECT d.updated_ms, d.id FROM deliveries d INDEXED BY deliveries_dead" + range.sql +
             " ORDER BY d.updated_ms DESC, d.id DESC LIMIT 1 OFFSET " + std::to_string(kScanBudget - 1))
                .c_str());
    range.bind(st);
    if (st.step()) {
      boundary.emplace(st.int64(0), st.int64(1));
      add_dead_position(w, boundary->first, boundary->second, false);
    }
    add_dead_owner(w, q.filter);
  }
  const std::size_t limit = clamp_limit(q.limit);
  sqlite::Stmt st(db, (std::string("SELECT ") + kDeliveryColumns + ", " + kEventColumns +
                       " FROM deliveries d INDEXED BY deliveries_dead JOIN events e ON e.seq = d.event_seq" +
                       w.sql + " ORDER BY d.updated_ms DESC, d.id DESC LIMIT " + std::to_string(limit + 1))
                          .c_str());
  w.bind(st);
  DeadLetterPage page;
  while (st.step()) {
    if (page.dead_letters.size() == limit) {
      const auto& last = page.dead_letters.back().delivery;
      page.next_cursor = std::to_string(last.updated_ms) + "_" + std::to_string(last.id);
      break;
    }
    DeadLetter dl;
    dl.delivery = read_delivery(st, 0);
    int64_t seq = 0;
    dl.event = read_event(st, kDeliveryColumnCount, seq);
    page.dead_letters.push_back(std::move(dl));
  }
  if (!page.next_cursor && boundary)
    page.next_cursor = std::to_string(boundary->first) + "_" + std::to_string(boundary->second);
  return page;
}

std::optional<DeadLetter> find_dead_letter(sqlite::Db& db, int64_t delivery_id) {
  sqlite::Stmt st(db, (std::string("SELECT ") + kDeliveryColumns + ", " + kEventColumns +
                       " FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1")
                          .c_str());
  st.bind(1, delivery_id);
  if (!st.step()) return std::nullopt;
  DeadLetter dl;
  dl.delivery = read_delivery(st, 0);
  int64_t seq = 0;
  auto e = read_event(st, kDeliveryColumnCount, seq);
  e->payload = payload_of(db, seq);
  dl.event = std::move(e);
  dl.delivery.history = history(db, dl.delivery.id);
  static_assert(kEventColumnCount == 14);
  return dl;
}

Bulk replay(sqlite::Db& db, const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
            int64_t now_ms) {
  return change_dead(db, filter, delivery_id, now_ms,
                     "state = 0, next_ms = ?2, updated_ms = ?2, replays = replays + 1, replayed_ms = ?2, "
                     "attempts_base = attempts");
}

Bulk discard(sqlite::Db& db, const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
             int64_t now_ms) {
  auto out = change_dead(db, filter, delivery_id, now_ms, "state = 3, updated_ms = ?2");
  out.lanes.clear();
  return out;
}

std::map<std::string, FlowState> flow_states(sqlite::Db& db) {
  sqlite::Stmt st(db, "SELECT flow, enabled FROM flow_state");
  std::map<std::string, FlowState> out;
  while (st.step()) {
    FlowState s;
    if (!st.is_null(1)) s.enabled = st.int64(1) != 0;
    out.emplace(st.text(0), s);
  }
  return out;
}

void set_flow_enabled(sqlite::Db& db, const std::string& flow, std::optional<bool> enabled) {
  if (!enabled) {
    sqlite::Stmt del(db, "DELETE FROM flow_state WHERE flow = ?1");
    del.bind(1, flow).run();
    return;
  }
  sqlite::Stmt up(
      db,
      "INSERT INTO flow_state(flow, enabled, updated_ms) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(flow) DO UPDATE SET enabled = excluded.enabled, updated_ms = excluded.updated_ms");
  up.bind(1, flow).bind(2, int64_t{*enabled ? 1 : 0}).bind(3, event::now_ms()).run();
}

std::vector<SchemaRecord> schemas(sqlite::Db& db) {
  sqlite::Stmt st(db, "SELECT source, type, document, updated_ms FROM schemas ORDER BY source, type");
  std::vector<SchemaRecord> out;
  while (st.step()) out.push_back({st.text(0), st.text(1), st.text(2), st.int64(3)});
  return out;
}

void save_schemas(sqlite::Db& db, const std::vector<SchemaRecord>& records) {
  if (records.empty()) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    sqlite::Stmt up(db,
                    "INSERT INTO schemas(source, type, document, updated_ms) VALUES(?1, ?2, ?3, ?4) "
                    "ON CONFLICT(source, type) DO UPDATE SET document = excluded.document, "
                    "updated_ms = excluded.updated_ms");
    for (const auto& r : records)
      up.bind(1, r.source).bind(2, r.type).bind(3, r.document).bind(4, r.updated_ms).run();
    db.exec("COMMIT");
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
}

PruneChunk prune_chunk(sqlite::Db& db, int64_t cutoff_ms, std::optional<std::pair<int64_t, int64_t>>& after,
                       std::size_t limit) {
  PruneChunk out;
  // An event goes only when no delivery of it still has to be sent (pending) or waits for an operator
  // (dead): at-least-once delivery and dead letters outlive retention.
  const std::string select =
      "SELECT e.seq, e.time_ms, NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq "
      "= e.seq AND d.state IN (0, 2)) FROM events e WHERE e.time_ms < ?1" +
      std::string(after ? " AND (e.time_ms, e.seq) > (?2, ?3)" : "") + " ORDER BY e.time_ms, e.seq LIMIT " +
      std::to_string(limit);
  db.exec("BEGIN IMMEDIATE");
  try {
    sqlite::Stmt sel(db, select.c_str());
    sel.bind(1, cutoff_ms);
    if (after) sel.bind(2, after->first).bind(3, after->second);
    std::vector<int64_t> doomed;
    std::size_t rows = 0;
    while (sel.step()) {
      ++rows;
      after = std::make_pair(sel.int64(1), sel.int64(0));
      if (sel.int64(2) != 0) doomed.push_back(sel.int64(0));
    }
    sqlite::Stmt del_attempts(
        db, "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = ?1)");
    sqlite::Stmt del_deliveries(db, "DELETE FROM deliveries WHERE event_seq = ?1");
    sqlite::Stmt del_event(db, "DELETE FROM events WHERE seq = ?1");
    for (const int64_t seq : doomed) {
      del_attempts.bind(1, seq).run();
      del_deliveries.bind(1, seq).run();
      out.deliveries += sqlite3_changes(db.get());
      del_event.bind(1, seq).run();
      out.events += sqlite3_changes(db.get());
    }
    db.exec("COMMIT");
    out.done = rows < limit;
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
  return out;
}

ArchivePage archived(sqlite::Db& db, const ArchiveQuery& q) {
  Where w;
  if (q.flow) w.add("e.flow = " + w.next(), {*q.flow});
  if (q.listener_id) w.add("e.listener_id = " + w.next(), {*q.listener_id});
  w.add("e.time_ms >= " + w.next(), {q.from_ms});
  w.add("e.time_ms < " + w.next(), {q.to_ms});
  if (q.after) {
    const std::string a = w.next();
    w.values.emplace_back(q.after->first);
    const std::string b = w.next();
    w.values.emplace_back(q.after->second);
    w.add("(e.time_ms, e.seq) > (" + a + ", " + b + ")");
  }
  const std::size_t limit = clamp_limit(q.limit);
  sqlite::Stmt st(db, (std::string("SELECT ") + kEventColumns + ", e.payload FROM events e" + w.sql +
                       " ORDER BY e.time_ms, e.seq LIMIT " + std::to_string(limit))
                          .c_str());
  w.bind(st);
  ArchivePage page;
  while (st.step()) {
    EventRecord r;
    auto e = read_event(st, 0, r.seq);
    e->payload = st.text(kEventColumnCount);
    r.event = std::move(e);
    page.events.push_back(std::move(r));
  }
  page.more = page.events.size() == limit;
  return page;
}

Bulk add_replay(sqlite::Db& db, const std::vector<ReplayIngest>& ingests, int64_t now_ms) {
  Bulk out;
  std::set<std::string> lanes;
  db.exec("BEGIN IMMEDIATE");
  try {
    sqlite::Stmt key_pending(
        db, "SELECT 1 FROM deliveries WHERE lane = ?1 AND ordering_key = ?2 AND state = 0 LIMIT 1");
    // Only while the event is still there (retention may have pruned it since it was read).
    sqlite::Stmt ins(
        db,
        "INSERT INTO deliveries(event_seq, lane, state, attempts, created_ms, next_ms, updated_ms, "
        "ordering_key, blocked, replay_ms) SELECT ?1, ?2, 0, 0, ?3, ?3, ?3, ?4, ?5, ?3 "
        "WHERE EXISTS (SELECT 1 FROM events WHERE seq = ?1)");
    for (const auto& in : ingests) {
      for (std::size_t i = 0; i < in.lanes.size(); ++i) {
        const std::string& lane = in.lanes[i];
        bool blocked = false;
        if (i < in.ordering_keys.size() && in.ordering_keys[i]) {
          key_pending.bind(1, lane).bind(2, *in.ordering_keys[i]);
          blocked = key_pending.step();
          key_pending.reset();
          ins.bind(4, *in.ordering_keys[i]);
        } else {
          ins.bind_null(4);
        }
        ins.bind(1, in.seq).bind(2, lane).bind(3, now_ms).bind(5, int64_t{blocked ? 1 : 0}).run();
        if (sqlite3_changes(db.get()) > 0) {
          ++out.count;
          lanes.insert(lane);
        }
      }
    }
    db.exec("COMMIT");
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
  out.lanes.assign(lanes.begin(), lanes.end());
  return out;
}

std::vector<std::string> pending_lanes(sqlite::Db& db) {
  // A skip scan by hand: the next lane after the last one found, each a seek in deliveries_waiting.
  sqlite::Stmt next(db,
                    "SELECT lane FROM deliveries INDEXED BY deliveries_waiting "
                    "WHERE state = 0 AND lane > ?1 ORDER BY lane LIMIT 1");
  std::vector<std::string> out;
  std::string after;
  for (;;) {
    next.bind(1, after);  // bound without a copy: `after` changes only once the statement is reset
    const bool found = next.step();
    std::string lane = found ? next.text(0) : std::string();
    next.reset();
    if (!found) break;
    out.push_back(lane);
    after = std::move(lane);
  }
  return out;
}

std::map<std::string, int64_t> oldest_pending(sqlite::Db& db) {
  // Per lane, its pending deliveries by the time they were made. The answer is the least
  // max(created_ms, replayed_ms); created_ms only grows along the walk, so it stops at the first delivery
  // made after the best value so far: at once when the oldest was never replayed. Deliveries put back from
  // the dead letters are old, so they come first; past kWalk of them the value found so far is reported (it
  // can only make the age look younger, and only after a replay of more than kWalk dead letters).
  constexpr int kWalk = 4096;
  sqlite::Stmt walk(db,
                    "SELECT created_ms, replayed_ms FROM deliveries INDEXED BY deliveries_waiting "
                    "WHERE state = 0 AND lane = ?1 ORDER BY created_ms");
  std::map<std::string, int64_t> out;
  for (const auto& lane : pending_lanes(db)) {
    walk.bind(1, lane);
    int64_t best = std::numeric_limits<int64_t>::max();
    for (int i = 0; i < kWalk && walk.step(); ++i) {
      const int64_t created = walk.int64(0);
      if (created >= best) break;
      best = std::min(best, std::max(created, walk.int64(1)));
    }
    walk.reset();
    if (best != std::numeric_limits<int64_t>::max()) out.emplace(lane, best);
  }
  return out;
}

void ensure_counts(sqlite::Db& db) {
  sqlite::Stmt exists(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'totals'");
  const bool present = exists.step();
  exists.reset();
  if (present) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec("CREATE TABLE totals(kind INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
    sqlite::Stmt seed(db, "INSERT INTO totals(kind, n) VALUES(?1, ?2)");
    sqlite::Stmt events(db, "SELECT count(*) FROM events");
    events.step();
    seed.bind(1, kEventsTotal).bind(2, events.int64(0)).run();
    std::map<int64_t, int64_t> states{{kPending, 0}, {kDelivered, 0}, {kDead, 0}, {kDiscarded, 0}};
    sqlite::Stmt deliveries(db, "SELECT state, count(*) FROM deliveries GROUP BY state");
    while (deliveries.step()) states[deliveries.int64(0)] = deliveries.int64(1);
    for (const auto& [state, n] : states) seed.bind(1, state).bind(2, n).run();
    db.exec("COMMIT");
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
}

void count_changes(sqlite::Db& db) {
  // TEMP: the writer's own inserts and updates (the hot path) do not pay a trigger per row. A state change
  // moves one from the old state's row to the new one's in one statement.
  static_assert(kEventsTotal == -1);
  db.exec(
      "CREATE TEMP TRIGGER totals_event_added AFTER INSERT ON main.events BEGIN "
      "UPDATE totals SET n = n + 1 WHERE kind = -1; END;"
      "CREATE TEMP TRIGGER totals_event_removed AFTER DELETE ON main.events BEGIN "
      "UPDATE totals SET n = n - 1 WHERE kind = -1; END;"
      "CREATE TEMP TRIGGER totals_delivery_added AFTER INSERT ON main.deliveries BEGIN "
      "UPDATE totals SET n = n + 1 WHERE kind = NEW.state; END;"
      "CREATE TEMP TRIGGER totals_delivery_removed AFTER DELETE ON main.deliveries BEGIN "
      "UPDATE totals SET n = n - 1 WHERE kind = OLD.state; END;"
      "CREATE TEMP TRIGGER totals_delivery_moved AFTER UPDATE OF state ON main.deliveries "
      "WHEN OLD.state <> NEW.state BEGIN "
      "UPDATE totals SET n = n + (kind = NEW.state) - (kind = OLD.state) WHERE kind IN (OLD.state, "
      "NEW.state); "
      "END;");
}

Counts counts(sqlite::Db& db) {
  sqlite::Stmt st(db, "SELECT kind, n FROM totals");
  Counts c;
  while (st.step()) {
    const int64_t kind = st.int64(0), n = st.int64(1);
    if (kind == kEventsTotal) c.events = n;
    if (kind == kPending) c.pending = n;
    if (kind == kDelivered) c.delivered = n;
    if (kind == kDead) c.dead = n;
    if (kind == kDiscarded) c.discarded = n;
  }
  return c;
}

}  // namespace ops
}  // namespace evr::store
