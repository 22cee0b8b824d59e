#pragma once
// The store keeps events and their deliveries durably. Two implementations: the embedded SQLite store
// (sqlite_store.h) and NATS JetStream (jetstream_store.h). Every call that touches disk completes
// asynchronously on the store's own threads: callbacks run there, and callers post back to their own event
// loop.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "evrouter/event/event.h"

namespace evr::store {

// What ingest commits: an event and the lanes (destinations) it must be delivered to.
struct Ingest {
  event::EventPtr event;
  std::vector<std::string> lanes;
  // Per lane (same index; may be shorter: missing = none): the delivery's ordering key, when its
  // destination has an `ordering_key` and the path selected a value.
  std::vector<std::optional<std::string>> ordering_keys = {};
};

// A delivery of one event to one lane.
struct Delivery {
  int64_t id = 0;
  std::string lane;
  int attempts = 0;  // attempts made so far
  int64_t created_ms = 0;
  int64_t next_attempt_ms = 0;
  event::EventPtr event;
  // After a dead-letter replay the retry policy starts over: attempts and age count from the replay
  // (the attempt history keeps numbering on).
  int attempts_before_replay = 0;
  int64_t replayed_ms = 0;  // 0: never replayed
  // Ordered delivery (docs/architecture.md#ordered-delivery): the key, when it has one, and whether an
  // earlier delivery of the same lane and key is still pending (then it waits on disk until that one is
  // delivered or dead: the store clears `blocked` in the same transaction).
  std::optional<std::string> ordering_key;
  bool blocked = false;
  // Made by a replay of a time window through the flow's current definition (Store::add_replay), not at
  // ingest: sent with X-Evrouter-Replay: true.
  bool replay = false;
};

struct CommitResult {
  enum class Status { accepted, duplicate, failed };
  Status status = Status::failed;
  std::string event_id;              // for a duplicate: the id of the event first accepted
  std::string error;                 // for failed
  std::vector<Delivery> deliveries;  // accepted: the deliveries created (state pending)
  // Accepted or duplicate: lanes that got new pending deliveries the store does not hand over in
  // `deliveries` (the JetStream store: its lanes pull them from their consumers); they should read soon.
  std::vector<std::string> lanes_to_read = {};
};

// Thrown by operations a store implementation does not offer (the admin API answers 501).
class NotSupported : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One HTTP attempt, kept as the delivery's history.
struct Attempt {
  int number = 0;  // 1-based
  int64_t at_ms = 0;
  int status = 0;  // HTTP status, 0 when no response
  int64_t latency_ms = 0;
  std::string error;     // network error or classification
  std::string response;  // first KB of the response body
};

struct Outcome {
  enum class Kind { delivered, retry, dead };
  int64_t delivery_id = 0;
  Kind kind = Kind::retry;
  int attempts = 0;             // attempts made, this one included
  int64_t next_attempt_ms = 0;  // retry only
  Attempt attempt;
  // The delivery has an ordering key: a final outcome hands its key's turn to the next pending delivery.
  // False skips that step (the default, true, is always correct).
  bool ordered = true;
};

struct Due {
  std::vector<Delivery> deliveries;
  std::optional<int64_t> next_due_ms;  // earliest pending delivery of the lane not yet due
  bool blocked = false;                // the lane has pending deliveries blocked behind their key's head
  // More deliveries wait than the store could hand out now (a cluster-wide cap is full): read again as
  // soon as one of the lane's deliveries is settled.
  bool capped = false;
};

struct Counts {
  int64_t events = 0;
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t dead = 0;
  int64_t discarded = 0;
};

// ---- Operations: event lookup, dead letters, runtime flow state (all blocking; admin thread / CLI) ----

enum class DeliveryState { pending, delivered, dead, discarded };
const char* to_string(DeliveryState s);
std::optional<DeliveryState> parse_delivery_state(const std::string& s);

// A delivery as operators see it.
struct DeliveryInfo {
  int64_t id = 0;
  std::string lane;
  DeliveryState state = DeliveryState::pending;
  int attempts = 0;
  int64_t created_ms = 0;
  int64_t next_attempt_ms = 0;  // pending only
  int64_t updated_ms = 0;       // last change (for a dead letter: when it died)
  std::string last_error;
  int replays = 0;  // times replayed from the dead letters
  int64_t replayed_ms = 0;
  int64_t replay_ms = 0;         // made by a window replay at this time (0: made at ingest)
  std::vector<Attempt> history;  // filled by event()/dead_letter() lookups, not by lists
};

// An event's envelope (payload included when asked) and its deliveries.
struct EventRecord {
  int64_t seq = 0;  // store order (keyset cursor)
  event::EventPtr event;
  std::vector<DeliveryInfo> deliveries;
};

// Half-open time range [since, until) in epoch milliseconds; either end may be open.
struct TimeRange {
  std::optional<int64_t> since_ms;
  std::optional<int64_t> until_ms;
};

struct EventQuery {
  std::optional<std::string> flow;
  std::optional<std::string> type;
  std::optional<DeliveryState> status;  // events with at least one delivery in this state
  TimeRange time;                       // on the event's receive time
  std::size_t limit = 50;
  std::optional<std::string> cursor;  // opaque, from EventPage::next_cursor
};

struct EventPage {
  std::vector<EventRecord> events;  // newest first; payloads not loaded; deliveries without history
  std::optional<std::string> next_cursor;
};

// Dead letters are deliveries in state dead.
struct DeadLetterFilter {
  std::optional<std::string> lane;
  std::optional<std::string> flow;
  TimeRange time;  // on when the delivery died
};

struct DeadLetterQuery {
  DeadLetterFilter filter;
  std::size_t limit = 50;
  std::optional<std::string> cursor;  // opaque, from DeadLetterPage::next_cursor
};

struct DeadLetter {
  DeliveryInfo delivery;  // with history when looked up by id
  event::EventPtr event;  // envelope; payload only when looked up by id
};

struct DeadLetterPage {
  std::vector<DeadLetter> dead_letters;  // most recently dead first
  std::optional<std::string> next_cursor;
};

// What a replay or discard changed.
struct Bulk {
  int64_t count = 0;
  std::vector<std::string> lanes;  // lanes that got deliveries back (replay: wake them)
};

// Runtime overrides of a flow, kept across restarts and reloads.
struct FlowState {
  std::optional<bool> enabled;  // none: the YAML `enabled` applies
};

// An inferred payload schema (schema discovery, include/evrouter/schema/): one per source and event type.
// The document is the schema module's own serialisation; the store keeps it as an opaque string.
struct SchemaRecord {
  std::string source;
  std::string type;
  std::string document;
  int64_t updated_ms = 0;
};

// ---- Retention and window replay ----

// What one retention pass deleted.
struct Pruned {
  int64_t events = 0;
  int64_t deliveries = 0;
};

// Archived events of one flow received in [from_ms, to_ms), in receive order, a page at a time.
struct ArchiveQuery {
  std::optional<std::string> flow;         // events a webhook flow accepted
  std::optional<std::string> listener_id;  // or: events that came in on this listener (the publish API's)
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  // Keyset: the last (time_ms, seq) of the previous page; none = from the window's start.
  std::optional<std::pair<int64_t, int64_t>> after;
  std::size_t limit = 200;
};

struct ArchivePage {
  std::vector<EventRecord> events;  // with payload; deliveries not loaded
  bool more = false;                // another page may follow
};

// New deliveries of an archived event (a window replay): the lanes it routes to now.
struct ReplayIngest {
  int64_t seq = 0;  // EventRecord::seq
  std::vector<std::string> lanes;
  std::vector<std::optional<std::string>> ordering_keys = {};  // per lane, as Ingest
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the store. Throws std::runtime_error with a clear message on failure.
  virtual void open() = 0;
  // Flushes queued writes and closes. Callbacks still queued are called first.
  virtual void close() = 0;

  // The listener id of a flow: the pinned one, else the one kept from before, else a new random one.
  // Blocking; for startup and the CLI, never on an event loop.
  virtual std::string listener_id(const std::string& flow, const std::optional<std::string>& pinned) = 0;
  // The listener ids of many flows at once (flow name → pinned id or none), as listener_id() gives them;
  // a store may write them all in one transaction (startup with many flows). Blocking, like listener_id().
  virtual std::map<std::string, std::string> listener_ids(
      const std::vector<std::pair<std::string, std::optional<std::string>>>& flows) {
    std::map<std::string, std::string> ids;
    for (const auto& [flow, pinned] : flows) ids[flow] = listener_id(flow, pinned);
    return ids;
  }

  // Durably records the event and its deliveries (grouped with other commits into one transaction), or
  // recognises a duplicate (same listener and dedup key within the dedup window).
  virtual void commit(Ingest ingest, std::function<void(CommitResult)> done) = 0;

  // Durably records several ingests as one atomic write (all or none, one fsync): each gets its own
  // result, accepted or duplicate (a repeat of an earlier ingest of the same batch is a duplicate too).
  // `done` receives the results in the order of `ingests`; when the write fails, every result is failed.
  virtual void commit_batch(std::vector<Ingest> ingests,
                            std::function<void(std::vector<CommitResult>)> done) = 0;

  // Up to `limit` pending deliveries of `lane` due at `now_ms`, oldest first, skipping ids in `exclude`.
  // Never a blocked one (a delivery whose key has an earlier pending delivery in the lane).
  virtual void fetch_due(std::string lane, int64_t now_ms, std::size_t limit,
                         std::unordered_set<int64_t> exclude, std::function<void(Due)> done) = 0;

  // Records an attempt's outcome; `done` runs once it is durable.
  virtual void record(Outcome outcome, std::function<void()> done) = 0;

  // Lanes that have pending deliveries (startup: which lanes to resume).
  virtual std::vector<std::string> pending_lanes() = 0;

  // Totals, for tests and diagnostics. Blocking.
  virtual Counts counts() = 0;
  // Attempt history of a delivery. Blocking.
  virtual std::vector<Attempt> attempts(int64_t delivery_id) = 0;

  // Operations. All blocking: call them from the admin thread or the CLI, never from an event loop.

  // An event by its id, or else by its webhook id (the most recent with that webhook id), with payload
  // and every delivery with its attempt history.
  virtual std::optional<EventRecord> event(const std::string& id_or_webhook_id) = 0;
  // Recent events, newest first (keyset pagination on the store order). Throws std::invalid_argument on
  // a malformed cursor.
  virtual EventPage events(const EventQuery& query) = 0;
  // Dead letters, most recently dead first. Throws std::invalid_argument on a malformed cursor.
  virtual DeadLetterPage dead_letters(const DeadLetterQuery& query) = 0;
  // A delivery by id with its event (payload included) and attempt history, in whatever state it is
  // (none when no delivery has that id).
  virtual std::optional<DeadLetter> dead_letter(int64_t delivery_id) = 0;
  // Puts dead letters back to pending, due now: the retry policy starts over, the attempt history is
  // kept, `replays` counts up. The caller wakes the lanes (Dispatcher::wake).
  virtual Bulk replay(int64_t delivery_id) = 0;
  virtual Bulk replay(const DeadLetterFilter& filter) = 0;
  // Marks dead letters discarded (kept with their history, never sent again, not listed as dead).
  virtual Bulk discard(int64_t delivery_id) = 0;
  virtual Bulk discard(const DeadLetterFilter& filter) = 0;

  // Runtime flow state (enable/disable overrides).
  virtual std::map<std::string, FlowState> flow_states() = 0;
  virtual void set_flow_enabled(const std::string& flow, std::optional<bool> enabled) = 0;
  // A new random listener id for the flow, kept from now on; the old one stops being known.
  virtual std::string rotate_listener_id(const std::string& flow) = 0;
  // Calls `changed` (on a store thread, never an event loop) after listener ids or flow states changed,
  // also when another instance sharing the store changed them; once at most per burst of changes. Stores
  // that one process owns alone (SQLite) never call it. Call before any change; close() stops it.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): overrides keep their copy
  virtual void watch_shared_state(std::function<void()> changed) { (void)changed; }

  // Cluster-wide limits (docs/scaling.md#what-is-cluster-wide), for stores shared by several evrouter
  // instances (JetStream); the SQLite store has one instance and ignores them.
  // The most deliveries each lane may hold unsettled at once across every instance (lane → cap; a lane
  // not named has none). Set at start and after each reload, before the lanes read. Blocking: off loops.
  virtual void cap_lanes(const std::map<std::string, int>& caps) { (void)caps; }
  // How many evrouter instances share the store now (each sends at its share of a connection's rate
  // limit). Cheap and thread-safe: a value the store keeps current on its own thread.
  virtual int live_instances() const { return 1; }

  // Schema discovery. Blocking; called from the schema registry's own thread, never from an event loop.
  // Every kept schema (startup).
  virtual std::vector<SchemaRecord> schemas() = 0;
  // Inserts or replaces these schemas (by source and type) in one write.
  virtual void save_schemas(const std::vector<SchemaRecord>& records) = 0;

  // Retention and window replay (docs/admin-api.md#replay-a-time-window). Blocking; the base class throws
  // NotSupported (the JetStream store: its streams' own limits apply).

  // Deletes the events received before `cutoff_ms` none of whose deliveries is pending or dead (with their
  // deliveries and attempts), in short transactions. Runs periodically on the store's own thread when
  // `retention` is set; callable directly (tests, operators' tools).
  virtual Pruned prune(int64_t cutoff_ms);
  // One page of archived events (see ArchiveQuery). Payloads included.
  virtual ArchivePage archived(const ArchiveQuery& query);
  // New pending deliveries, due now, marked as replays, for archived events (one transaction). Events
  // pruned meanwhile are skipped. `count`: deliveries made; `lanes`: lanes to wake.
  virtual Bulk add_replay(const std::vector<ReplayIngest>& ingests, int64_t now_ms);
  // Per lane with pending deliveries: since when its oldest pending delivery has waited (Unix ms: when it
  // was made, or put back from the dead letters).
  virtual std::map<std::string, int64_t> oldest_pending();

  // Failing for good: a write the store had made visible could not be made durable (a failed fdatasync:
  // the kernel may have dropped the pages it could not write), so every later write fails too until the
  // process restarts and recovers from what is on disk. `failed` runs once, on a store thread, with the
  // reason; set it before the first write. Stores that cannot fail so never call it.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): overrides keep their copy
  virtual void on_failure(std::function<void(const std::string& reason)> failed) { (void)failed; }
};

}  // namespace evr::store
