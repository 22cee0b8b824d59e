#include "evrouter/metrics/flow_stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace evr::metrics {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Flows {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<FlowStats>, std::less<>> by_name;
};

Flows& flows() {
  static Flows f;
  return f;
}

}  // namespace

std::optional<FlowStats::Window> FlowStats::parse_window(std::string_view text) {
  if (text == "1m") return Window::minute;
  if (text == "1h") return Window::hour;
  if (text == "24h" || text == "1d") return Window::day;
  return std::nullopt;
}

const char* FlowStats::to_string(Window w) {
  switch (w) {
    case Window::minute:
      return "1m";
    case Window::hour:
      return "1h";
    case Window::day:
      return "24h";
  }
  return "1h";
}

const std::array<double, FlowStats::kLatencyBins - 1>& FlowStats::latency_bounds_ms() {
  static const std::array<double, kLatencyBins - 1> b{1,   2,    5,    10,   25,    50,    100,  250,
                                                      500, 1000, 2500, 5000, 10000, 30000, 60000};
  return b;
}

FlowStats& FlowStats::of(std::string_view flow) {
  auto& f = flows();
  std::lock_guard lk(f.mu);
  auto it = f.by_name.find(flow);
  if (it == f.by_name.end()) it = f.by_name.emplace(std::string(flow), std::make_unique<FlowStats>()).first;
  return *it->second;
}

FlowStats* FlowStats::find(std::string_view flow) {
  auto& f = flows();
  std::lock_guard lk(f.mu);
  auto it = f.by_name.find(flow);
  return it == f.by_name.end() ? nullptr : it->second.get();
}

FlowStats::Ring::Ring(int64_t width, std::size_t buckets) : width_ms(width), size(buckets) {}

std::size_t FlowStats::Ring::touch(int64_t now_ms) {
  if (period.empty()) {
    period.assign(size, -1);
    counts.resize(size);
    lat.resize(size);
  }
  const int64_t p = now_ms / width_ms;
  const auto i = static_cast<std::size_t>(p % static_cast<int64_t>(size));
  if (period[i] != p) {
    period[i] = p;
    std::fill(counts[i].begin(), counts[i].end(), 0);
    for (auto& h : lat[i]) h.fill(0);
  }
  return i;
}

FlowStats::Key FlowStats::key(Count kind, std::string_view label) {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].first == kind && keys_[i].second == label) return static_cast<Key>(i);
  }
  if (keys_.size() >= kMaxKeys) return -1;
  keys_.emplace_back(kind, std::string(label));
  return static_cast<Key>(keys_.size() - 1);
}

FlowStats::LaneKey FlowStats::lane_key(std::string_view lane) {
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i] == lane) return static_cast<LaneKey>(i);
  }
  if (lanes_.size() >= kMaxKeys) return -1;
  lanes_.emplace_back(lane);
  return static_cast<LaneKey>(lanes_.size() - 1);
}

void FlowStats::add(Key key, uint64_t n) {
  add_at(key, wall_ms(), n);
}

void FlowStats::add_at(Key key, int64_t now_ms, uint64_t n) {
  if (key < 0) return;
  const auto k = static_cast<std::size_t>(key);
  std::lock_guard lk(mu_);
  for (auto& r : rings_) {
    auto& c = r.counts[r.touch(now_ms)];
    if (c.size() <= k) c.resize(keys_.size(), 0);  // a new key: grows once per bucket
    c[k] += n;
  }
}

void FlowStats::add(std::initializer_list<Key> keys) {
  add(std::span<const Key>(keys.begin(), keys.size()));
}

void FlowStats::add(std::span<const Key> keys) {
  const int64_t now_ms = wall_ms();
  std::lock_guard lk(mu_);
  for (auto& r : rings_) {
    auto& c = r.counts[r.touch(now_ms)];
    for (const Key key : keys) {
      if (key < 0) continue;
      const auto k = static_cast<std::size_t>(key);
      if (c.size() <= k) c.resize(keys_.size(), 0);
      ++c[k];
    }
  }
}

void FlowStats::latency(LaneKey lane, double seconds) {
  latency_at(lane, wall_ms(), seconds);
}

void FlowStats::latency_at(LaneKey lane, int64_t now_ms, double seconds) {
  if (lane < 0) return;
  const auto l = static_cast<std::size_t>(lane);
  const double ms = seconds * 1000.0;
  const auto& bounds = latency_bounds_ms();
  const auto bin =
      static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), ms) - bounds.begin());
  std::lock_guard lk(mu_);
  for (auto& r : rings_) {
    auto& h = r.lat[r.touch(now_ms)];
    if (h.size() <= l) h.resize(lanes_.size(), std::array<uint32_t, kLatencyBins>{});
    ++h[l][bin];
  }
}

const FlowStats::Ring& FlowStats::ring(Window w) const {
  return rings_[static_cast<std::size_t>(w)];
}

FlowStats::Report FlowStats::report(Window w) const {
  return report_at(w, wall_ms());
}

FlowStats::Report FlowStats::report_at(Window w, int64_t now_ms) const {
  std::vector<uint64_t> sums;
  std::vector<std::array<uint64_t, kLatencyBins>> lat;
  Report out;
  std::lock_guard lk(mu_);
  const Ring& r = ring(w);
  const int64_t current = now_ms / r.width_ms;
  const auto size = static_cast<int64_t>(r.size);
  out.from_ms = (current - size + 1) * r.width_ms;
  out.to_ms = now_ms;
  sums.assign(keys_.size(), 0);
  lat.assign(lanes_.size(), std::array<uint64_t, kLatencyBins>{});
  for (std::size_t b = 0; b < r.period.size(); ++b) {
    if (r.period[b] < 0 || r.period[b] > current || r.period[b] <= current - size) continue;
    for (std::size_t k = 0; k < r.counts[b].size(); ++k) sums[k] += r.counts[b][k];
    for (std::size_t l = 0; l < r.lat[b].size(); ++l) {
      for (std::size_t i = 0; i < kLatencyBins; ++i) lat[l][i] += r.lat[b][l][i];
    }
  }
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    if (sums[k] != 0) out.counts.push_back({keys_[k].first, keys_[k].second, sums[k]});
  }
  for (std::size_t l = 0; l < lanes_.size(); ++l) {
    uint64_t n = 0;
    for (auto c : lat[l]) n += c;
    if (n == 0) continue;
    out.latency.push_back(
        {lanes_[l], n, quantile_ms(lat[l], 0.5), quantile_ms(lat[l], 0.9), quantile_ms(lat[l], 0.99)});
  }
  return out;
}

double FlowStats::quantile_ms(const std::array<uint64_t, kLatencyBins>& bins, double q) {
  uint64_t total = 0;
  for (auto c : bins) total += c;
  if (total == 0) return 0;
  const auto& bounds = latency_bounds_ms();
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i < kLatencyBins; ++i) {
    const auto c = static_cast<double>(bins[i]);
    if (c > 0 && seen + c >= rank) {
      if (i == kLatencyBins - 1) return bounds.back();  // above the last bound: that bound is all we know
      const double lo = i == 0 ? 0 : bounds[i - 1];
      const double hi = bounds[i];
      return lo + (hi - lo) * std::clamp((rank - seen) / c, 0.0, 1.0);
    }
    seen += c;
  }
  return bounds.back();
}

}  // namespace evr::metrics
