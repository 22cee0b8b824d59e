#pragma once
// Latency samples of one run, in microseconds, and their percentiles (nearest rank).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace evr::bench {

class Latencies {
 public:
  void reserve(std::size_t n) { samples_.reserve(n); }

  void add(std::chrono::nanoseconds d) {
    const int64_t us = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    samples_.push_back(static_cast<uint32_t>(std::min<int64_t>(us, std::numeric_limits<uint32_t>::max())));
    sorted_ = false;
  }

  std::size_t count() const { return samples_.size(); }

  // q in [0, 100]; 0 when there is no sample.
  uint32_t percentile(double q) {
    if (samples_.empty()) return 0;
    if (!sorted_) {
      std::sort(samples_.begin(), samples_.end());
      sorted_ = true;
    }
    const auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(samples_.size())));
    return samples_[std::clamp<std::size_t>(rank, 1, samples_.size()) - 1];
  }

 private:
  std::vector<uint32_t> samples_;
  bool sorted_ = true;
};

}  // namespace evr::bench
