#include "connection/breaker.h"

#include <algorithm>

#include "evrouter/common/log.h"
#include "evrouter/event/event.h"

namespace evr::connection {

const char* to_string(BreakerState s) {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::half_open:
      return "half_open";
    case BreakerState::open:
      return "open";
  }
  return "closed";
}

Breaker::Breaker(std::string connection, config::BreakerPolicy policy)
    : connection_(std::move(connection)), policy_(policy), cooldown_(policy.cooldown) {}

void Breaker::reconfigure(config::BreakerPolicy policy) {
  if (policy == policy_) return;
  policy_ = policy;
  cooldown_ = policy.cooldown;
  if (policy_.failures == 0 && state_ != BreakerState::closed) {
    log::info("circuit breaker closed: turned off", {{"connection", connection_}});
    state_ = BreakerState::closed;
    ++epoch_;
  }
  failures_ = 0;
}

bool Breaker::may_send(Clock::time_point now) {
  switch (state_) {
    case BreakerState::closed:
      return true;
    case BreakerState::open:
      if (now < next_probe_) return false;
      state_ = BreakerState::half_open;
      probe_out_ = false;
      log::info("circuit breaker half-open: sending one probe request", {{"connection", connection_}});
      return true;
    case BreakerState::half_open:
      return !probe_out_;
  }
  return true;
}

Breaker::Ticket Breaker::grant() {
  Ticket t{epoch_, false};
  if (state_ == BreakerState::half_open) {
    probe_out_ = true;
    t.probe = true;
  }
  return t;
}

void Breaker::complete(Ticket ticket, Result result, Clock::time_point now) {
  if (result == Result::cancelled) {
    if (ticket.probe && ticket.epoch == epoch_ && state_ == BreakerState::half_open) probe_out_ = false;
    return;
  }
  if (ticket.probe && ticket.epoch == epoch_ && state_ == BreakerState::half_open) {
    probe_out_ = false;
    if (result == Result::failure) {
      cooldown_ = std::min(cooldown_ * 2, policy_.cooldown * kMaxCooldownFactor);
      open(now);
      return;
    }
    state_ = BreakerState::closed;
    failures_ = 0;
    cooldown_ = policy_.cooldown;
    log::info("circuit breaker closed: probe succeeded", {{"connection", connection_}});
    return;
  }
  if (state_ != BreakerState::closed || ticket.epoch != epoch_) return;  // sent before it opened
  if (result != Result::failure) {
    failures_ = 0;
    return;
  }
  ++failures_;
  if (policy_.failures > 0 && failures_ >= policy_.failures) open(now);
}

void Breaker::open(Clock::time_point now) {
  state_ = BreakerState::open;
  ++epoch_;
  next_probe_ = now + cooldown_;
  opened_at_ms_ = event::now_ms();
  log::warn("circuit breaker open: deliveries wait until a probe succeeds",
            {{"connection", connection_},
             {"consecutive_failures", std::to_string(failures_)},
             {"cooldown_ms", std::to_string(cooldown_.count())}});
}

int64_t Breaker::next_probe_ms(Clock::time_point now) const {
  if (state_ != BreakerState::open) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_probe_ - now).count();
  return event::now_ms() + std::max<int64_t>(0, left);
}

}  // namespace evr::connection
