#pragma once
// Token bucket: at most `burst` requests at once, refilled at `rate` per second. In any window of T seconds
// it lets through at most burst + rate * T. rate <= 0 means unlimited.

#include <algorithm>
#include <chrono>

namespace evr::connection {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate, double burst, Clock::time_point now = Clock::now())
      : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_), last_(now) {}

  bool unlimited() const { return rate_ <= 0; }

  // New settings (configuration reload). Tokens earned so far are kept up to the new burst, so a change
  // never lets more through than either setting would have.
  void reconfigure(double rate, double burst, Clock::time_point now = Clock::now()) {
    if (!unlimited()) refill(now);
    const bool was_unlimited = unlimited();
    rate_ = rate;
    burst_ = std::max(1.0, burst);
    tokens_ = was_unlimited ? burst_ : std::min(tokens_, burst_);
    last_ = now;
  }

  bool try_take(Clock::time_point now) {
    if (unlimited()) return true;
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  void refund() {
    if (!unlimited()) tokens_ = std::min(burst_, tokens_ + 1.0);
  }

  // Time until one token is available (zero when one is).
  Clock::duration wait(Clock::time_point now) {
    if (unlimited()) return Clock::duration::zero();
    refill(now);
    if (tokens_ >= 1.0) return Clock::duration::zero();
    const double seconds = (1.0 - tokens_) / rate_;
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)) +
           std::chrono::microseconds(50);
  }

 private:
  void refill(Clock::time_point now) {
    if (now <= last_) return;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace evr::connection
