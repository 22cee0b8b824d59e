#pragma once
// A snapshot of one connection at run time, for the admin API and metrics (Dispatcher::connections()).

#include <cstdint>
#include <string>

namespace evr::connection {

enum class BreakerState { closed = 0, half_open = 1, open = 2 };

const char* to_string(BreakerState s);

struct ConnectionState {
  std::string name;
  BreakerState breaker = BreakerState::closed;
  int consecutive_failures = 0;  // retryable failures in a row (reset by any other outcome)
  int64_t opened_at_ms = 0;      // Unix ms when the breaker last opened; 0 = never
  int64_t next_probe_ms = 0;     // while open: Unix ms when the probe may go; 0 otherwise
  int in_flight = 0;
  int concurrency_limit = 0;  // the limit now (adaptive: the current window)
  int concurrency_max = 0;    // the configured cap
  bool adaptive = false;
  double rate_per_second = 0;  // 0 = unlimited
  double rate_burst = 0;
  std::size_t waiting_lanes = 0;  // lanes with deliveries ready, waiting for a slot
};

}  // namespace evr::connection
