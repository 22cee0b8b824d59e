#pragma once
// Operator queries and changes on the SQLite store (event lookup, dead letters, flow state), private to
// the store. Each takes the connection to use; the caller serialises access to it.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/store/store.h"
#include "store/sqlite.h"

namespace evr::store::ops {

// Delivery states as stored.
inline constexpr int64_t kPending = 0;
inline constexpr int64_t kDelivered = 1;
inline constexpr int64_t kDead = 2;
inline constexpr int64_t kDiscarded = 3;

// Schema the operations need beyond the delivery path's (indexes, flow_state, delivery columns).
void migrate(sqlite::Db& db);

// The totals table: one row for the events (kind kEventsTotal), one per delivery state (kind = state).
// Kept in step in the transaction that changes the rows: the store's writer adds its changes once per
// transaction; every other connection that changes events or deliveries calls count_changes() once.
// A database from before the table (or whose table was dropped) gets it filled from a count of its
// tables, once, here. Needs migrate() first.
inline constexpr int64_t kEventsTotal = -1;
void ensure_counts(sqlite::Db& db);
// Temporary triggers on this connection only (insert, delete, a change of state) that keep the totals.
void count_changes(sqlite::Db& db);
// The totals: a few rows read, whatever the backlog.
Counts counts(sqlite::Db& db);
// Lanes with pending deliveries, one index seek per lane (not a scan of the backlog).
std::vector<std::string> pending_lanes(sqlite::Db& db);

// A delivery's attempts, in order.
std::vector<Attempt> history(sqlite::Db& db, int64_t delivery_id);
std::optional<EventRecord> find_event(sqlite::Db& db, const std::string& id_or_webhook_id);
EventPage list_events(sqlite::Db& db, const EventQuery& query);
DeadLetterPage list_dead_letters(sqlite::Db& db, const DeadLetterQuery& query);
std::optional<DeadLetter> find_dead_letter(sqlite::Db& db, int64_t delivery_id);
// Replays (or discards) the dead letters matching `filter`, or the one `delivery_id`, in transactions of
// a bounded size so the writer is never held back long.
Bulk replay(sqlite::Db& db, const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
            int64_t now_ms);
Bulk discard(sqlite::Db& db, const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
             int64_t now_ms);

std::map<std::string, FlowState> flow_states(sqlite::Db& db);
void set_flow_enabled(sqlite::Db& db, const std::string& flow, std::optional<bool> enabled);

// One retention step: up to `limit` events received before `cutoff_ms`, from `after` (a (time_ms, seq)
// keyset, advanced past what was read), deleted with their deliveries and attempts in one transaction
// when none of their deliveries is pending or dead. `done`: nothing older is left to read.
struct PruneChunk {
  int64_t events = 0;
  int64_t deliveries = 0;
  bool done = false;
};
PruneChunk prune_chunk(sqlite::Db& db, int64_t cutoff_ms, std::optional<std::pair<int64_t, int64_t>>& after,
                       std::size_t limit);
ArchivePage archived(sqlite::Db& db, const ArchiveQuery& query);
Bulk add_replay(sqlite::Db& db, const std::vector<ReplayIngest>& ingests, int64_t now_ms);
std::map<std::string, int64_t> oldest_pending(sqlite::Db& db);

std::vector<SchemaRecord> schemas(sqlite::Db& db);
void save_schemas(sqlite::Db& db, const std::vector<SchemaRecord>& records);

}  // namespace evr::store::ops
