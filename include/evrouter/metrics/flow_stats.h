#pragma once
// Per-flow dashboard numbers over a sliding window (the last minute, hour or day): webhooks received,
// accepted, rejected by reason, duplicates, events matched per branch, deliveries by outcome per lane, and
// each lane's attempt latency percentiles (GET /v1/flows/{name}/stats).
//
// Memory is bounded: each flow keeps three rings of buckets (60 per-second, 60 per-minute, 96
// per-15-minute), each bucket a counter per key and a small fixed-bucket latency histogram per lane; at most
// kMaxKeys keys per flow. Recording takes the flow's own short lock (a few increments), so the hot paths look
// a key up once and keep it.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace evr::metrics {

class FlowStats {
 public:
  enum class Count : uint8_t {
    received,   // every answer the flow's listener gave
    accepted,   // stored (2xx accepted)
    duplicate,  // same webhook id seen before
    ignored,    // topic not subscribed
    rejected,   // refused; label: the error code
    matched,    // accepted events that matched a branch; label: the branch
    unmatched,  // accepted events that matched no branch
    delivered,  // label: the lane
    retrying,   // an attempt failed and another is scheduled; label: the lane
    dead,       // label: the lane
    replayed,   // deliveries made by a window replay (flow/replay.h); label: the lane
  };
  enum class Window { minute, hour, day };
  static std::optional<Window> parse_window(std::string_view text);  // "1m", "1h", "24h"
  static const char* to_string(Window w);

  static constexpr int kMaxKeys = 256;
  static constexpr std::size_t kLatencyBins = 16;
  // Upper bounds of the latency bins in milliseconds (the last bin is everything above).
  static const std::array<double, kLatencyBins - 1>& latency_bounds_ms();

  // The process-wide stats of a flow, made on first use and kept for the process's life (a flow removed by a
  // reload keeps its numbers until they age out of the windows).
  static FlowStats& of(std::string_view flow);
  // nullptr when nothing was ever recorded for the flow.
  static FlowStats* find(std::string_view flow);

  using Key = int;  // -1: the key table is full and the count is dropped
  Key key(Count kind, std::string_view label = {});
  using LaneKey = int;
  LaneKey lane_key(std::string_view lane);

  void add(Key key, uint64_t n = 1);
  void add_at(Key key, int64_t now_ms, uint64_t n = 1);
  // One each of several keys, under one lock (an ingest answer: received and its result).
  void add(std::initializer_list<Key> keys);
  void add(std::span<const Key> keys);
  void latency(LaneKey lane, double seconds);
  void latency_at(LaneKey lane, int64_t now_ms, double seconds);

  struct Entry {
    Count kind;
    std::string label;
    uint64_t value;
  };
  struct Latency {
    std::string lane;
    uint64_t attempts = 0;
    double p50_ms = 0;
    double p90_ms = 0;
    double p99_ms = 0;
  };
  struct Report {
    int64_t from_ms = 0;  // the window's first bucket's start
    int64_t to_ms = 0;
    std::vector<Entry> counts;  // non-zero keys only
    std::vector<Latency> latency;
  };
  Report report(Window w) const;
  Report report_at(Window w, int64_t now_ms) const;

  // The q-quantile (0..1) of a latency histogram, interpolated inside its bin; 0 when empty.
  static double quantile_ms(const std::array<uint64_t, kLatencyBins>& bins, double q);

 private:
  // The buckets are made on the first record (touch): a flow that never records anything (most of a
  // thousand flows at startup) costs no bucket memory, and a start makes none.
  struct Ring {
    int64_t width_ms;
    std::size_t size;                           // buckets in the window
    std::vector<int64_t> period;                // the period each bucket holds, -1 none; empty: untouched
    std::vector<std::vector<uint64_t>> counts;  // [bucket][key]
    std::vector<std::vector<std::array<uint32_t, kLatencyBins>>> lat;  // [bucket][lane]
    Ring(int64_t width, std::size_t buckets);
    std::size_t touch(int64_t now_ms);  // the bucket for now, cleared when it held an older period
  };
  const Ring& ring(Window w) const;

  mutable std::mutex mu_;
  std::vector<std::pair<Count, std::string>> keys_;
  std::vector<std::string> lanes_;
  std::array<Ring, 3> rings_{Ring(1000, 60), Ring(60'000, 60), Ring(900'000, 96)};
};

}  // namespace evr::metrics
