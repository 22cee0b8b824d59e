#pragma once
// Metrics in the Prometheus data model: counters, gauges and histograms in labelled families, rendered in
// the text exposition format (version 0.0.4) for GET /metrics.
//
// Creating a series takes a lock; updating one never does (atomics only), so hot paths look a series up
// once and keep the reference, which stays valid for the registry's lifetime.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace evr::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Cumulative buckets with fixed upper bounds (in the unit the family is named in, e.g. seconds).
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;
  // The q-quantile (0..1) estimated by linear interpolation inside the bucket that holds it; 0 when empty.
  double quantile(double q) const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf (not cumulative)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};  // sum in millionths, kept as an integer to stay lock-free
};

// Bucket bounds for latencies in seconds, from 0.5 ms to 60 s.
const std::vector<double>& latency_buckets();
// Bucket bounds for sizes/counts: 1, 2, 5, 10, ... 10000.
const std::vector<double>& size_buckets();

class Registry {
 public:
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, Labels labels = {},
                       const std::vector<double>& bounds = latency_buckets());
  // A gauge computed when rendered (queue depths, breaker states). `read` runs on the rendering thread and
  // must be thread-safe.
  void gauge_fn(std::string_view name, std::string_view help, Labels labels, std::function<double()> read);

  // Prometheus text format, families sorted by name, series in creation order.
  std::string render() const;

  // The process-wide registry the daemon exposes.
  static Registry& global();

 private:
  enum class Type { counter, gauge, histogram };
  struct Series {
    Labels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> read;
  };
  struct Family {
    Type type;
    std::string help;
    std::deque<Series> series;  // not a vector: growing it would move every series made so far
    // hash of labels -> series with them (no linear scan per lookup, and no second copy of the labels:
    // a start with 1,000 flows makes ~12,000 series)
    std::unordered_multimap<std::size_t, std::size_t> index;
  };
  Family& family(std::string_view name, Type type, std::string_view help);
  Series* find(Family& f, const Labels& labels);
  static void add(Family& f, Series s);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

}  // namespace evr::metrics
