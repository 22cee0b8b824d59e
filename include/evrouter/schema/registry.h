#pragma once
// Schema discovery: the registry infers a schema per source and event type from the events ingest
// accepted. It never slows ingest: offer() only samples (schemas.sample_rate) and appends the event
// pointer to a bounded queue (schemas.queue), dropping it when the queue is full; payloads are parsed and
// inferred on the registry's own thread, at most schemas.max_rate events per second per source and type
// (a busy source's schema is known after a few events; parsing every one would cost ingest CPU). Changed
// schemas are written to the store every schemas.flush_interval and on stop, and loaded back at start.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/event/event.h"
#include "evrouter/schema/inference.h"
#include "evrouter/schema/redaction.h"
#include "evrouter/store/store.h"

namespace evr::schema {

struct Summary {
  std::string source;
  std::string type;
  int64_t events = 0;
  std::size_t fields = 0;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  bool truncated = false;
};

struct Stats {
  int64_t observed = 0;     // events inferred
  int64_t sampled_out = 0;  // skipped by sample_rate or max_rate
  int64_t dropped = 0;      // the queue was full
  int64_t unparsable = 0;   // payload not JSON
  int64_t over_limit = 0;   // a new source/type beyond max_schemas
  std::size_t queued = 0;
};

class Registry {
 public:
  Registry(config::Schemas config, store::Store& store);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Loads the kept schemas (blocking; a document that does not load is logged and started over) and
  // starts the inference thread.
  void start();
  // Infers what is queued, writes every changed schema and ends the thread. Safe to call twice.
  void stop();

  // From any thread (the ingest event loops): never blocks beyond a short lock, never allocates more than
  // a queue slot.
  void offer(const event::EventPtr& event);

  // Blocks until everything offered so far is inferred and written to the store (tests, diagnostics).
  void sync();

  std::vector<Summary> list() const;
  std::optional<Schema> get(const std::string& source, const std::string& type) const;
  Stats stats() const;

 private:
  using Key = std::pair<std::string, std::string>;
  void run();
  bool within_rate(const event::Event& e);
  void infer(const event::Event& e);
  void flush();

  const config::Schemas config_;
  const Limits limits_;
  const Redaction redaction_;
  store::Store& store_;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable idle_cv_;
  std::deque<event::EventPtr> queue_;
  bool stopping_ = false;
  uint64_t sync_asked_ = 0;  // sync() calls so far
  uint64_t sync_done_ = 0;   // the last one answered: its events inferred and written

  mutable std::mutex schemas_mu_;
  std::map<Key, Schema> schemas_;
  std::set<Key> dirty_;
  struct Window {
    int64_t second = -1;
    int examined = 0;
  };
  std::map<Key, Window> windows_;  // per source and type: max_rate; registry thread only

  std::atomic<int64_t> observed_ = 0, sampled_out_ = 0, dropped_ = 0, unparsable_ = 0, over_limit_ = 0;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace evr::schema
