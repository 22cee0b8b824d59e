#pragma once
// The circuit breaker of one connection. It counts consecutive retryable failures across every lane of
// the connection; any other outcome resets the count. closed -> open after `failures` of them; while open
// no request is sent (deliveries wait, no attempt is spent); once the cooldown has passed it is half-open
// and lets exactly one probe request go: its success (or any non-retryable answer) closes it, a retryable
// failure opens it again with the cooldown doubled, up to kMaxCooldownFactor times the configured one.
// Results of requests sent before it opened do not move it. Pure logic: the caller passes the time.

#include <chrono>
#include <cstdint>
#include <string>

#include "evrouter/config/config.h"
#include "evrouter/connection/state.h"

namespace evr::connection {

class Breaker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kMaxCooldownFactor = 10;

  // What a granted request carries back with its outcome.
  struct Ticket {
    uint64_t epoch = 0;
    bool probe = false;
  };
  enum class Result { success, failure, other, cancelled };  // other: a non-retryable answer

  Breaker(std::string connection, config::BreakerPolicy policy);
  void reconfigure(config::BreakerPolicy policy);

  // Whether a request may be sent now (moves open -> half-open when the cooldown has passed).
  bool may_send(Clock::time_point now);
  // A request is being sent (after may_send said yes).
  Ticket grant();
  // The granted request came back.
  void complete(Ticket ticket, Result result, Clock::time_point now);

  BreakerState state() const { return state_; }
  int consecutive_failures() const { return failures_; }
  Clock::time_point next_probe() const { return next_probe_; }
  int64_t opened_at_ms() const { return opened_at_ms_; }
  // Unix ms of the next probe while open, else 0.
  int64_t next_probe_ms(Clock::time_point now) const;

 private:
  void open(Clock::time_point now);

  std::string connection_;
  config::BreakerPolicy policy_;
  BreakerState state_ = BreakerState::closed;
  int failures_ = 0;
  uint64_t epoch_ = 0;  // bumped each time it opens
  bool probe_out_ = false;
  std::chrono::milliseconds cooldown_{0};  // of the current or next open period
  Clock::time_point next_probe_{};
  int64_t opened_at_ms_ = 0;
};

}  // namespace evr::connection
