// The windowed per-flow stats: buckets age out of each window, and latency percentiles interpolate.
#include "evrouter/metrics/flow_stats.h"

#include <gtest/gtest.h>

using evr::metrics::FlowStats;

TEST(FlowStats, WindowsForgetWhatIsOlderThanThem) {
  FlowStats s;
  const auto accepted = s.key(FlowStats::Count::accepted);
  const auto refused = s.key(FlowStats::Count::rejected, "invalid_signature");
  EXPECT_EQ(s.key(FlowStats::Count::accepted), accepted);  // keys are interned
  const int64_t t0 = 1'800'000'000'000;
  s.add_at(accepted, t0, 3);
  s.add_at(refused, t0 + 10'000);
  auto total = [&s](FlowStats::Window w, int64_t now, FlowStats::Count kind) {
    uint64_t n = 0;
    for (const auto& e : s.report_at(w, now).counts) n += e.kind == kind ? e.value : 0;
    return n;
  };
  EXPECT_EQ(total(FlowStats::Window::minute, t0 + 30'000, FlowStats::Count::accepted), 3U);
  EXPECT_EQ(total(FlowStats::Window::minute, t0 + 30'000, FlowStats::Count::rejected), 1U);
  EXPECT_EQ(total(FlowStats::Window::minute, t0 + 65'000, FlowStats::Count::accepted), 0U);
  EXPECT_EQ(total(FlowStats::Window::minute, t0 + 65'000, FlowStats::Count::rejected), 1U);
  EXPECT_EQ(total(FlowStats::Window::hour, t0 + 30 * 60'000, FlowStats::Count::accepted), 3U);
  EXPECT_EQ(total(FlowStats::Window::hour, t0 + 61 * 60'000, FlowStats::Count::accepted), 0U);
  EXPECT_EQ(total(FlowStats::Window::day, t0 + 23 * 3'600'000, FlowStats::Count::accepted), 3U);
  EXPECT_EQ(total(FlowStats::Window::day, t0 + 25 * 3'600'000, FlowStats::Count::accepted), 0U);

  // A bucket reused for a later period starts from zero.
  s.add_at(accepted, t0 + 60'000);  // same per-second bucket as t0, one minute later
  EXPECT_EQ(total(FlowStats::Window::minute, t0 + 60'500, FlowStats::Count::accepted), 1U);
  EXPECT_EQ(total(FlowStats::Window::hour, t0 + 60'500, FlowStats::Count::accepted), 4U);
}

TEST(FlowStats, LatencyPercentilesPerLane) {
  FlowStats s;
  const auto lane = s.lane_key("orders/all/erp");
  const int64_t t0 = 1'800'000'000'000;
  for (int i = 0; i < 90; ++i) s.latency_at(lane, t0, 0.003);  // 2-5 ms bin
  for (int i = 0; i < 10; ++i) s.latency_at(lane, t0, 0.4);    // 250-500 ms bin
  const auto r = s.report_at(FlowStats::Window::minute, t0);
  ASSERT_EQ(r.latency.size(), 1U);
  EXPECT_EQ(r.latency[0].lane, "orders/all/erp");
  EXPECT_EQ(r.latency[0].attempts, 100U);
  EXPECT_GT(r.latency[0].p50_ms, 2.0);
  EXPECT_LE(r.latency[0].p50_ms, 5.0);
  EXPECT_LE(r.latency[0].p90_ms, 5.0);
  EXPECT_GT(r.latency[0].p99_ms, 250.0);
  EXPECT_LE(r.latency[0].p99_ms, 500.0);
  EXPECT_EQ(FlowStats::parse_window("24h"), FlowStats::Window::day);
  EXPECT_FALSE(FlowStats::parse_window("2h"));
}

TEST(FlowStats, SeveralKeysAtOnceAndAFullKeyTable) {
  FlowStats s;
  const auto received = s.key(FlowStats::Count::received);
  const auto accepted = s.key(FlowStats::Count::accepted);
  s.add({received, accepted});
  s.add({received, -1});  // a dropped key is skipped
  const auto r = s.report(FlowStats::Window::minute);
  ASSERT_EQ(r.counts.size(), 2U);
  EXPECT_EQ(r.counts[0].value, 2U);
  EXPECT_EQ(r.counts[1].value, 1U);
  for (int i = 0; i < FlowStats::kMaxKeys; ++i)
    s.key(FlowStats::Count::rejected, "reason-" + std::to_string(i));
  EXPECT_EQ(s.key(FlowStats::Count::rejected, "one-too-many"), -1);
  s.add(-1);  // ignored, no crash
}

// The buckets are made on the first record: before it every window reports its span and nothing in it;
// the first record (a latency first, a count after it) lands in every window.
TEST(FlowStats, NothingRecordedYetThenTheFirstRecordsInEveryWindow) {
  FlowStats s;
  const auto delivered = s.key(FlowStats::Count::delivered, "orders/all/erp");
  const auto lane = s.lane_key("orders/all/erp");
  const int64_t t0 = 1'800'000'000'000;
  const auto empty = s.report_at(FlowStats::Window::hour, t0);
  EXPECT_TRUE(empty.counts.empty());
  EXPECT_TRUE(empty.latency.empty());
  EXPECT_EQ(empty.to_ms, t0);
  EXPECT_EQ(empty.from_ms, (t0 / 60'000 - 59) * 60'000);  // 60 per-minute buckets
  EXPECT_EQ(s.report_at(FlowStats::Window::day, t0).from_ms, (t0 / 900'000 - 95) * 900'000);

  s.latency_at(lane, t0, 0.003);
  s.add_at(delivered, t0 + 500, 2);
  for (const auto w : {FlowStats::Window::minute, FlowStats::Window::hour, FlowStats::Window::day}) {
    const auto r = s.report_at(w, t0 + 1'000);
    ASSERT_EQ(r.counts.size(), 1U) << FlowStats::to_string(w);
    EXPECT_EQ(r.counts[0].kind, FlowStats::Count::delivered);
    EXPECT_EQ(r.counts[0].label, "orders/all/erp");
    EXPECT_EQ(r.counts[0].value, 2U);
    ASSERT_EQ(r.latency.size(), 1U) << FlowStats::to_string(w);
    EXPECT_EQ(r.latency[0].attempts, 1U);
  }
}
