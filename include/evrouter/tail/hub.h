#pragma once
// Live tail: what happens to events as it happens — events accepted, delivery attempts' outcomes — fanned
// out to whoever watches (the admin API's server-sent-events stream, `evrouter tail`, the dashboard).
//
// Watching must never slow ingest or delivery: when nobody watches, publishing costs one relaxed atomic
// load; when someone does, a short lock and a pointer push per watcher. Each watcher has a bounded queue;
// a watcher that falls behind is dropped (told so, then closed), never waited for.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "evrouter/event/event.h"

namespace evr::tail {

struct Record {
  enum class Kind { event, delivery };
  Kind kind = Kind::event;
  event::EventPtr event;
  int64_t at_ms = 0;
  // event: the lanes it was routed to
  std::vector<std::string> lanes;
  // delivery: one attempt's outcome
  std::string lane;
  std::string outcome;  // delivered | retry | dead
  int attempt = 0;
  int status = 0;  // HTTP status, 0 when there was no response
  int64_t latency_ms = 0;
  std::string error;
  // The event's deliveries were made by a window replay (flow/replay.h), not at ingest.
  bool replay = false;
};
using RecordPtr = std::shared_ptr<const Record>;

// One watcher's queue. Records are taken on the watcher's own thread.
class Subscription {
 public:
  Subscription(std::size_t capacity, std::function<void()> wake)
      : capacity_(capacity), wake_(std::move(wake)) {}
  // Moves every queued record into `out`; false once the watcher has been dropped (after its last
  // records were taken).
  bool take(std::vector<RecordPtr>& out);
  bool dropped() const { return dropped_.load(std::memory_order_acquire); }

 private:
  friend class Hub;
  // Publisher side: false when the queue is full (the watcher is then dropped).
  bool push(const RecordPtr& r);

  std::size_t capacity_;
  std::function<void()> wake_;  // thread-safe; called when records arrive after the queue was emptied
  std::mutex mu_;
  std::deque<RecordPtr> queue_;
  bool woken_ = false;  // mu_: a wake is pending, no need to call it again
  std::atomic<bool> dropped_{false};
};

class Hub {
 public:
  // The process's hub (lanes and ingest publish into it without being handed one).
  static Hub& global();

  bool active() const { return watchers_.load(std::memory_order_relaxed) != 0; }
  // Hands the record to every watcher; drops those whose queue is full. Never blocks on a watcher.
  void publish(const RecordPtr& record);
  // At most `max_watchers` at once: nullptr beyond that. `wake` is called from publishing threads.
  std::shared_ptr<Subscription> subscribe(std::size_t capacity, std::function<void()> wake,
                                          std::size_t max_watchers = 32);
  void unsubscribe(const std::shared_ptr<Subscription>& s);

  uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;  // mu_
  std::atomic<std::size_t> watchers_{0};
  std::atomic<uint64_t> dropped_total_{0};
};

// Publishes one delivery attempt's outcome to the global hub (a no-op when nobody watches).
// `replay`: the delivery was made by a window replay (flow/replay.h).
void publish_delivery(const event::EventPtr& event, const std::string& lane, const char* outcome, int attempt,
                      int status, int64_t latency_ms, const std::string& error, bool replay = false);

}  // namespace evr::tail
