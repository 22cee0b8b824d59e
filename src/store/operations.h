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

std::vector<SchemaRecord> schemas(sqlite::Db& db);
void save_schemas(sqlite::Db& db, const std::vector<SchemaRecord>& records);

}  // namespace evr::store::ops
