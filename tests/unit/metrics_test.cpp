// The metrics registry: Prometheus text format, label escaping, histogram buckets and quantiles, and
// lock-free updates from many threads.
#include "evrouter/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using evr::metrics::Registry;

TEST(Metrics, RendersCountersGaugesAndHistogramsInTextFormat) {
  Registry r;
  r.counter("evrouter_webhooks_total", "Webhooks received.", {{"flow", "orders"}, {"result", "accepted"}})
      .inc(3);
  r.counter("evrouter_webhooks_total", "Webhooks received.", {{"flow", "orders"}, {"result", "accepted"}})
      .inc();
  r.gauge("evrouter_lane_ready", "Deliveries ready in memory.", {{"lane", "a/b/c"}}).set(7);
  r.gauge_fn("evrouter_up", "1 while running.", {}, [] { return 1.0; });
  auto& h = r.histogram("evrouter_commit_seconds", "Store commit latency.", {}, {0.001, 0.01});
  h.observe(0.0005);
  h.observe(0.005);
  h.observe(5);
  const std::string text = r.render();
  EXPECT_NE(
      text.find("# HELP evrouter_webhooks_total Webhooks received.\n# TYPE evrouter_webhooks_total counter\n"
                "evrouter_webhooks_total{flow=\"orders\",result=\"accepted\"} 4\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE evrouter_lane_ready gauge\nevrouter_lane_ready{lane=\"a/b/c\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("evrouter_up 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE evrouter_commit_seconds histogram\n"
                      "evrouter_commit_seconds_bucket{le=\"0.001\"} 1\n"
                      "evrouter_commit_seconds_bucket{le=\"0.01\"} 2\n"
                      "evrouter_commit_seconds_bucket{le=\"+Inf\"} 3\n"
                      "evrouter_commit_seconds_sum 5.0055\n"
                      "evrouter_commit_seconds_count 3\n"),
            std::string::npos)
      << text;
  // Families come sorted by name.
  EXPECT_LT(text.find("evrouter_commit_seconds"), text.find("evrouter_lane_ready"));
}

TEST(Metrics, EscapesLabelValuesAndRejectsBadNames) {
  Registry r;
  r.counter("x_total", "Help with \\ and\nnewline.", {{"path", "a\"b\\c\nd"}}).inc();
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP x_total Help with \\\\ and\\nnewline.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
  EXPECT_THROW(r.counter("9bad", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.gauge("x_total", "same name, other type"), std::invalid_argument);
}

TEST(Metrics, HistogramQuantilesInterpolateWithinBuckets) {
  evr::metrics::Histogram h({1, 2, 4});
  EXPECT_EQ(h.quantile(0.5), 0);
  for (int i = 0; i < 50; ++i) h.observe(0.5);  // bucket (0, 1]
  for (int i = 0; i < 50; ++i) h.observe(3);    // bucket (2, 4]
  EXPECT_NEAR(h.quantile(0.5), 1.0, 1e-9);
  EXPECT_NEAR(h.quantile(0.75), 3.0, 1e-9);
  EXPECT_NEAR(h.quantile(1.0), 4.0, 1e-9);
  h.observe(100);  // beyond the last bound: reported as the last bound
  EXPECT_NEAR(h.quantile(1.0), 4.0, 1e-9);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& c = r.counter("hits_total", "Hits.");
  auto& h = r.histogram("lat_seconds", "Latency.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        h.observe(0.002);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 400000U);
  EXPECT_EQ(h.snapshot().count, 400000U);
  EXPECT_NEAR(h.snapshot().sum, 800.0, 1e-6);
  // The same series is returned for the same name and labels.
  EXPECT_EQ(&r.counter("hits_total", "Hits."), &c);
}

TEST(Metrics, ManySeriesAreFoundAgainByLabelsAndRenderInCreationOrder) {
  Registry r;
  constexpr int n = 5000;  // one series per lane: 1,000 flows make thousands (lookups are not a linear scan)
  std::vector<evr::metrics::Counter*> made;
  for (int i = n - 1; i >= 0; --i) {
    made.push_back(&r.counter("evrouter_lane_sent_total", "Sent.", {{"lane", "l" + std::to_string(i)}}));
  }
  for (int i = 0; i < n; ++i) {
    auto& again = r.counter("evrouter_lane_sent_total", "Sent.", {{"lane", "l" + std::to_string(i)}});
    EXPECT_EQ(&again, made[static_cast<std::size_t>(n - 1 - i)]);
    again.inc(static_cast<std::uint64_t>(i));
  }
  const std::string text = r.render();
  const auto last = text.find("evrouter_lane_sent_total{lane=\"l4999\"} 4999\n");
  const auto first = text.find("evrouter_lane_sent_total{lane=\"l0\"} 0\n");
  ASSERT_NE(last, std::string::npos);
  ASSERT_NE(first, std::string::npos);
  EXPECT_LT(last, first);  // creation order, not label order
}

// Series are looked up by a hash of their labels: labels that differ only in how the text is split between
// name and value, or in their order, are other series, each found again as itself.
TEST(Metrics, SeriesWithLookAlikeLabelsStayApart) {
  Registry r;
  auto& ab = r.counter("parts_total", "Parts.", {{"a", "bc"}});
  auto& abc = r.counter("parts_total", "Parts.", {{"ab", "c"}});
  auto& xy = r.counter("parts_total", "Parts.", {{"x", "1"}, {"y", "2"}});
  auto& yx = r.counter("parts_total", "Parts.", {{"y", "2"}, {"x", "1"}});
  EXPECT_NE(&ab, &abc);
  EXPECT_NE(&xy, &yx);
  EXPECT_EQ(&r.counter("parts_total", "Parts.", {{"a", "bc"}}), &ab);
  EXPECT_EQ(&r.counter("parts_total", "Parts.", {{"ab", "c"}}), &abc);
  EXPECT_EQ(&r.counter("parts_total", "Parts.", {{"y", "2"}, {"x", "1"}}), &yx);
  abc.inc(2);
  const std::string text = r.render();
  EXPECT_NE(text.find("parts_total{a=\"bc\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("parts_total{ab=\"c\"} 2\n"), std::string::npos) << text;
  EXPECT_THROW(r.gauge("parts_total", "Parts."), std::invalid_argument);  // another type
  EXPECT_THROW(r.counter("bad name", "Bad."), std::invalid_argument);
}
