#pragma once
// The dispatcher delivers committed deliveries to their destinations. It owns one event loop (thread),
// one runtime Connection per configured connection (HTTP client pool, rate limit, concurrency cap, shared
// by every lane that uses it) and one Lane per destination (a bounded in-memory window over the lane's
// pending deliveries on disk). Outcomes are written back to the store; retries wait on disk.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/connection/state.h"
#include "evrouter/store/store.h"

namespace evr::dispatcher {

struct LaneStats {
  std::string lane;
  std::size_t ready = 0;
  std::size_t in_flight = 0;
  bool more_on_disk = false;
};

// What a reconfigure() changed, by name.
struct Changes {
  std::vector<std::string> lanes_added, lanes_removed, lanes_changed;
  std::vector<std::string> connections_added, connections_removed, connections_changed;
  bool empty() const {
    return lanes_added.empty() && lanes_removed.empty() && lanes_changed.empty() &&
           connections_added.empty() && connections_removed.empty() && connections_changed.empty();
  }
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void start() = 0;
  // Hands newly committed deliveries over (thread-safe). Deliveries of lanes it does not know stay on disk.
  virtual void offer(std::vector<store::Delivery> deliveries) = 0;
  // Makes these lanes read the store again soon (thread-safe): deliveries were put back to pending
  // there (dead-letter replay). Unknown lanes are ignored.
  virtual void wake(std::vector<std::string> lanes) = 0;
  // Makes these lanes read the store soon (thread-safe): new deliveries were committed there that the
  // store does not hand over (CommitResult::lanes_to_read). Unknown lanes are ignored.
  virtual void notify(std::vector<std::string> lanes) = 0;
  // Applies a new configuration while running (configuration reload). Blocking: call it off the event
  // loops. What it needs is built first, off the dispatcher's loop; when something cannot be built it
  // throws std::runtime_error and nothing changes. Then, on the loop:
  //  - new lanes start (reading whatever is already pending for them on disk);
  //  - changed lanes send from now on with their new settings; requests in flight finish as sent;
  //  - removed lanes are retired: they keep delivering what is pending for them (with their last
  //    settings) until `previous` (the routes they were configured with) has expired, so no ingest
  //    request can add to them any more, and a read of the store after that finds nothing left;
  //  - connections get their new limits at once; a new client serves new requests while requests in
  //    flight finish on the old one; removed connections go once no lane uses them.
  virtual Changes reconfigure(const config::Config& config, std::weak_ptr<const void> previous) = 0;
  // A snapshot of every connection (breaker, limits, in flight). Blocking (waits for the dispatcher's loop):
  // call it from a thread that is not an event loop, e.g. the admin server's.
  virtual std::vector<connection::ConnectionState> connections() = 0;
  // Stops sending; waits up to `grace` for requests in flight, then cancels the rest (they stay pending).
  virtual void stop(std::chrono::milliseconds grace) = 0;
};

std::unique_ptr<Dispatcher> make_dispatcher(const config::Config& config, store::Store& store);

}  // namespace evr::dispatcher
