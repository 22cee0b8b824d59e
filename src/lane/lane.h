#pragma once
// A lane: the queue of deliveries for one destination. The queue lives in the store; the lane keeps a
// bounded window of it in memory (`ready`), refills that window from disk when it runs low, and sends
// through its connection whenever the connection grants a slot.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_set>

#include "connection/connection.h"
#include "evrouter/config/config.h"
#include "evrouter/destination/retry.h"
#include "evrouter/destination/signing.h"
#include "evrouter/http/client.h"
#include "evrouter/mapping/mapping.h"
#include "evrouter/store/store.h"
#include "lane/key_gate.h"
#include "lane/lane_metrics.h"

namespace evr::lane {

struct Spec {
  std::string id;  // "<flow>/<branch>/<destination>"
  std::string flow;
  config::Destination destination;
  config::RetryPolicy retry;
  std::optional<mapping::Mapping> mapping;  // none: raw payload, constant path and headers
  // The destination's own signing (secrets resolved; null: unsigned); unset: the connection's.
  std::optional<std::shared_ptr<const destination::Signer>> signer;
  config::Responses responses;       // the destination's, else its connection's
  destination::Classifier classify;  // built from `responses`
};

class Lane {
 public:
  static constexpr std::size_t kWindow = 256;  // deliveries held in memory at most

  Lane(Spec spec, connection::Connection& connection, store::Store& store, boost::asio::io_context& ioc,
       const bool& stopping);

  const Spec& spec() const { return spec_; }
  connection::Connection& connection() const { return *connection_; }
  // New settings (configuration reload): deliveries sent from now on use them; requests in flight finish
  // as they were sent (and are released to the connection they were sent on).
  void reconfigure(Spec spec, connection::Connection& connection);
  // A delivery just committed for this lane.
  void offer(store::Delivery delivery);
  // Periodic: refill from disk when deliveries wait there or a retry has come due.
  void tick(int64_t now_ms);
  // Called by the connection with a granted slot: sends the next ready delivery (or, batching, the next
  // batch); false when none may go now.
  bool send_one();
  // Whether send_one() would send: a delivery ready whose key is free, and for a batching lane a batch due.
  bool has_ready() const;
  std::size_t ready() const { return ready_.size(); }
  std::size_t in_flight() const { return in_flight_; }
  bool more_on_disk() const { return more_on_disk_; }

  // Makes the next tick read the store again, even if the lane believes nothing waits there.
  void look_on_disk() {
    more_on_disk_ = true;
    if (fetching_) deferred_during_fetch_ = true;  // that fetch may have read the store too early
  }
  // Fetches started so far (to know whether one started after some moment).
  uint64_t fetches() const { return fetches_; }
  // Nothing in memory, in flight or awaiting an outcome's commit, and nothing known to wait on disk.
  bool drained() const {
    return ready_.empty() && in_flight_ == 0 && held_.empty() && !fetching_ && !more_on_disk_ &&
           next_due_ms_ == 0;
  }

  bool queued = false;  // waiting in the connection's queue

 private:
  void fetch(int64_t now_ms);
  // Records the attempt; returns its verdict for the connection (breaker, adaptive limit).
  connection::Feedback on_result(const store::Delivery& delivery, const http::Result& result);
  // The delivery cannot be sent as configured (its mapping failed): dead at once, no request.
  void reject(const store::Delivery& delivery, std::string error);
  // The delivery's outcome is durable. `retry_at_ms` (a retry's next attempt, else 0) re-arms the lane's
  // next read: a read that ran before the outcome was written could not see the delivery as due.
  void finish(int64_t delivery_id, int64_t retry_at_ms = 0);
  // Batching (lane/batch.cpp): sends the next batch when one is due; else arms the flush timer.
  bool send_batch();
  void arm_flush(int64_t deadline_ms);
  // Work just entered the window: ask for a slot, or for a batching lane, for one when its batch is due.
  void on_ready();
  // Ordered lanes: a key's delivery finished, so its next one may have become fetchable.
  void look_again();

  Spec spec_;
  connection::Connection* connection_;
  store::Store& store_;
  boost::asio::io_context& ioc_;
  const bool& stopping_;

  std::deque<store::Delivery> ready_;
  std::unordered_set<int64_t> held_;  // ids ready, in flight, or awaiting their outcome's commit
  // Ids whose outcome became durable while a fetch was under way: that fetch may have read them still
  // pending (before the outcome's commit) and must not bring them back.
  std::unordered_set<int64_t> finished_during_fetch_;
  std::size_t in_flight_ = 0;
  int64_t next_due_ms_ = 0;  // earliest retry known to wait on disk (0 = none known)
  LaneMetrics metrics_;
  KeyGate keys_;                           // ordering keys of deliveries sent and not yet finished
  boost::asio::steady_timer flush_timer_;  // batching: when the oldest ready delivery's max_wait ends
  int64_t flush_at_ms_ = 0;                // 0 = not armed
  uint64_t fetches_ = 0;
  // The flags together (less padding).
  bool more_on_disk_ = true;  // unknown at start: look
  bool fetching_ = false;
  bool deferred_during_fetch_ = false;  // offer() left a delivery on disk while a fetch was under way
  bool blocked_on_disk_ = false;        // deliveries wait on disk behind their key's head
  bool blocked_during_fetch_ = false;   // offer() saw a blocked delivery while a fetch was under way
  bool capped_ = false;                 // the last fetch was cut short by a cap (Due::capped)
};

}  // namespace evr::lane
