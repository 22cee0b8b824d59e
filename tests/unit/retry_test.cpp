#include "evrouter/destination/retry.h"

#include <gtest/gtest.h>

#include "evrouter/connection/token_bucket.h"

using namespace evr;

namespace {
http::Result status(int s) {
  http::Result r;
  r.response.status = s;
  return r;
}
}  // namespace

TEST(Classify, StatusClasses) {
  using destination::Verdict;
  EXPECT_EQ(destination::classify(status(200)), Verdict::success);
  EXPECT_EQ(destination::classify(status(204)), Verdict::success);
  EXPECT_EQ(destination::classify(status(500)), Verdict::retry);
  EXPECT_EQ(destination::classify(status(503)), Verdict::retry);
  EXPECT_EQ(destination::classify(status(408)), Verdict::retry);
  EXPECT_EQ(destination::classify(status(429)), Verdict::retry);
  EXPECT_EQ(destination::classify(status(400)), Verdict::fail);
  EXPECT_EQ(destination::classify(status(404)), Verdict::fail);
  EXPECT_EQ(destination::classify(status(301)), Verdict::fail);
  http::Result err;
  err.error = "connect: Connection refused";
  EXPECT_EQ(destination::classify(err), Verdict::retry);
}

TEST(RetryAfter, SecondsAndHttpDate) {
  EXPECT_EQ(destination::parse_retry_after("3", 0), 3000);
  EXPECT_EQ(destination::parse_retry_after(" 0 ", 0), 0);
  EXPECT_FALSE(destination::parse_retry_after("soon", 0).has_value());
  EXPECT_FALSE(destination::parse_retry_after("", 0).has_value());
  // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(destination::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000 - 5000), 5000);
  EXPECT_EQ(destination::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000 + 5000), 0);
}

TEST(Backoff, ExponentialCappedWithJitter) {
  config::RetryPolicy p;
  p.backoff_base = std::chrono::milliseconds(100);
  p.backoff_cap = std::chrono::milliseconds(1000);
  p.jitter = 0;
  EXPECT_EQ(destination::backoff_ms(p, 1, 0.5), 100);
  EXPECT_EQ(destination::backoff_ms(p, 2, 0.5), 200);
  EXPECT_EQ(destination::backoff_ms(p, 4, 0.5), 800);
  EXPECT_EQ(destination::backoff_ms(p, 5, 0.5), 1000);
  EXPECT_EQ(destination::backoff_ms(p, 60, 0.5), 1000);
  p.jitter = 0.5;
  EXPECT_EQ(destination::backoff_ms(p, 1, 0.0), 50);
  EXPECT_EQ(destination::backoff_ms(p, 1, 0.999999), 149);
}

TEST(TokenBucket, BurstThenRate) {
  using Clock = connection::TokenBucket::Clock;
  const auto t0 = Clock::now();
  connection::TokenBucket b(10, 3, t0);
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_TRUE(b.try_take(t0));
  EXPECT_FALSE(b.try_take(t0));
  EXPECT_GT(b.wait(t0), std::chrono::milliseconds(90));
  EXPECT_TRUE(b.try_take(t0 + std::chrono::milliseconds(101)));
  EXPECT_FALSE(b.try_take(t0 + std::chrono::milliseconds(101)));
  // Over 10 s at most burst + rate * T tokens.
  int taken = 0;
  for (int ms = 0; ms <= 10000; ++ms) {
    while (b.try_take(t0 + std::chrono::milliseconds(101 + ms))) ++taken;
  }
  EXPECT_LE(taken, 3 + 100);
  EXPECT_GE(taken, 99);
  connection::TokenBucket unlimited(0, 1, t0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.try_take(t0));
}
