#pragma once
// The concurrency limit of one connection. Fixed, or adaptive (AIMD on round-trip time, in the manner of
// Vector's adaptive request concurrency):
//  - responses are grouped in windows about one average round trip long (at least kMinWindow);
//  - at the end of a window its mean RTT is compared with a moving average of past windows (the baseline);
//  - when the window's mean is clearly above the baseline (more than kRttTolerance times it, plus 1 ms),
//    or the window saw back-pressure (429, 503, a timeout), the limit is multiplied by kDecrease (floor 1);
//  - when requests waited because the limit was reached and the window's mean RTT is healthy (at most
//    kRttHealthy times the baseline, plus 1 ms), the limit grows by 1 (up to max);
//  - the baseline then moves toward the window's mean (exponential moving average): quickly when the mean
//    is lower (kAlphaDown), slowly when higher (kAlphaUp), so that an overloaded destination's long round
//    trips do not become the new normal before the limit has come down; a lasting slow-down is still
//    learned within a few dozen windows.
// At most one change per window. Pure logic: the caller passes the time.

#include <chrono>

namespace evr::connection {

class AdaptiveLimit {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kDecrease = 0.9;
  static constexpr double kRttTolerance = 1.5;
  static constexpr double kRttHealthy = 1.2;
  static constexpr double kAlphaUp = 0.05;
  static constexpr double kAlphaDown = 0.5;
  static constexpr std::chrono::milliseconds kMinWindow{20};

  // Fixed at `max` unless `adaptive`; adaptive starts at `initial` (clamped to 1..max).
  AdaptiveLimit(bool adaptive, int max, int initial);
  // New settings; an adaptive limit keeps its current value (clamped to the new max).
  void reconfigure(bool adaptive, int max, int initial);

  int limit() const { return adaptive_ ? static_cast<int>(limit_) : max_; }
  int max() const { return max_; }
  bool adaptive() const { return adaptive_; }

  // A lane waited for a slot because the limit was reached.
  void limited() { limited_ = true; }
  // A response (or a failure) came back after `rtt`; `overload`: 429, 503 or a timeout.
  void observe(Clock::time_point now, std::chrono::milliseconds rtt, bool overload);

 private:
  bool adaptive_;
  int max_;
  double limit_;
  double baseline_ms_ = -1;  // < 0: no window yet
  Clock::time_point window_start_{};
  double window_sum_ms_ = 0;
  int window_count_ = 0;
  bool window_overload_ = false;
  bool limited_ = false;
};

}  // namespace evr::connection
