#pragma once
// The dispatcher delivers committed deliveries to their destinations. It owns one event loop (thread),
// one runtime Connection per configured connection (HTTP client pool, rate limit, concurrency cap, shared
// by every lane that uses it) and one Lane per destination (a bounded in-memory window over the lane's
// pending deliveries on disk). Outcomes are written back to the store; retries wait on disk.

#include <chrono>
#include <memory>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/store/store.h"

namespace evr::dispatcher {

struct LaneStats {
  std::string lane;
  std::size_t ready = 0;
  std::size_t in_flight = 0;
  bool more_on_disk = false;
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void start() = 0;
  // Hands newly committed deliveries over (thread-safe). Deliveries of lanes it does not know stay on disk.
  virtual void offer(std::vector<store::Delivery> deliveries) = 0;
  // Stops sending; waits up to `grace` for requests in flight, then cancels the rest (they stay pending).
  virtual void stop(std::chrono::milliseconds grace) = 0;
};

std::unique_ptr<Dispatcher> make_dispatcher(const config::Config& config, store::Store& store);

}  // namespace evr::dispatcher
