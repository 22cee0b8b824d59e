#include "connection/adaptive_limit.h"

#include <algorithm>

namespace evr::connection {

AdaptiveLimit::AdaptiveLimit(bool adaptive, int max, int initial)
    : adaptive_(adaptive), max_(std::max(1, max)), limit_(std::clamp(initial, 1, max_)) {}

void AdaptiveLimit::reconfigure(bool adaptive, int max, int initial) {
  const bool was = adaptive_;
  adaptive_ = adaptive;
  max_ = std::max(1, max);
  limit_ = was && adaptive ? std::clamp(limit_, 1.0, static_cast<double>(max_))
                           : static_cast<double>(std::clamp(initial, 1, max_));
}

void AdaptiveLimit::observe(Clock::time_point now, std::chrono::milliseconds rtt, bool overload) {
  if (!adaptive_) return;
  if (window_start_ == Clock::time_point{}) window_start_ = now;  // the first response ever
  window_sum_ms_ += static_cast<double>(rtt.count());
  ++window_count_;
  window_overload_ = window_overload_ || overload;
  const auto length = std::max<Clock::duration>(
      kMinWindow, std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double, std::milli>(std::max(0.0, baseline_ms_))));
  if (now - window_start_ < length) return;

  const double mean = window_sum_ms_ / window_count_;
  const bool have = baseline_ms_ >= 0;
  if (window_overload_ || (have && mean > baseline_ms_ * kRttTolerance + 1.0)) {
    limit_ = std::max(1.0, limit_ * kDecrease);
  } else if (limited_ && (!have || mean <= baseline_ms_ * kRttHealthy + 1.0)) {
    limit_ = std::min(static_cast<double>(max_), limit_ + 1.0);
  }
  if (!have) {
    baseline_ms_ = mean;
  } else {
    // Falls fast, rises slowly: a service that has slowed down because it is overloaded must not become
    // the new normal before the limit has come down.
    baseline_ms_ += (mean > baseline_ms_ ? kAlphaUp : kAlphaDown) * (mean - baseline_ms_);
  }
  window_sum_ms_ = 0;
  window_count_ = 0;
  window_overload_ = false;
  limited_ = false;
  window_start_ = now;
}

}  // namespace evr::connection
