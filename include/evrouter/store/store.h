#pragma once
// The store keeps events and their deliveries durably. Two implementations: the embedded SQLite store
// (sqlite_store.h) and, later, NATS JetStream. Every call that touches disk completes asynchronously on the
// store's own threads: callbacks run there, and callers post back to their own event loop.

#include <cstdint>
#include <functional>
#include <optional>
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
  // Ordered delivery (docs/architecture.md#ordered-delivery): the key, when it has one, and whether an
  // earlier delivery of the same lane and key is still pending (then it waits on disk until that one is
  // delivered or dead: the store clears `blocked` in the same transaction).
  std::optional<std::string> ordering_key;
  bool blocked = false;
};

struct CommitResult {
  enum class Status { accepted, duplicate, failed };
  Status status = Status::failed;
  std::string event_id;              // for a duplicate: the id of the event first accepted
  std::string error;                 // for failed
  std::vector<Delivery> deliveries;  // accepted: the deliveries created (state pending)
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
};

struct Due {
  std::vector<Delivery> deliveries;
  std::optional<int64_t> next_due_ms;  // earliest pending delivery of the lane not yet due
  bool blocked = false;                // the lane has pending deliveries blocked behind their key's head
};

struct Counts {
  int64_t events = 0;
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t dead = 0;
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
};

}  // namespace evr::store
