// The circuit breaker and the adaptive concurrency limit as plain logic, with the time passed in.
#include <gtest/gtest.h>

#include "connection/adaptive_limit.h"
#include "connection/breaker.h"

namespace evr::connection {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Breaker, OpensAfterConsecutiveFailuresAndSuccessResets) {
  Breaker b("test", {3, 1s});
  const auto t0 = Clock::now();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.may_send(t0));
    b.complete(b.grant(), Breaker::Result::failure, t0);
  }
  b.complete(b.grant(), Breaker::Result::success, t0);  // resets
  EXPECT_EQ(b.consecutive_failures(), 0);
  b.complete(b.grant(), Breaker::Result::other, t0);  // a non-retryable answer resets too
  for (int i = 0; i < 3; ++i) b.complete(b.grant(), Breaker::Result::failure, t0);
  EXPECT_EQ(b.state(), BreakerState::open);
  EXPECT_FALSE(b.may_send(t0 + 999ms));
  EXPECT_GT(b.next_probe_ms(t0), 0);
}

TEST(Breaker, OneProbeThenClosesOrReopensWithDoubledCooldown) {
  Breaker b("test", {1, 100ms});
  const auto t0 = Clock::now();
  const auto before = b.grant();  // in flight when it opens
  b.complete(b.grant(), Breaker::Result::failure, t0);
  ASSERT_EQ(b.state(), BreakerState::open);
  b.complete(before, Breaker::Result::success, t0);  // sent before it opened: ignored
  EXPECT_EQ(b.state(), BreakerState::open);

  ASSERT_TRUE(b.may_send(t0 + 100ms));
  EXPECT_EQ(b.state(), BreakerState::half_open);
  const auto probe = b.grant();
  EXPECT_TRUE(probe.probe);
  EXPECT_FALSE(b.may_send(t0 + 100ms));  // exactly one probe
  b.complete(probe, Breaker::Result::failure, t0 + 110ms);
  EXPECT_EQ(b.state(), BreakerState::open);
  EXPECT_FALSE(b.may_send(t0 + 300ms));  // cooldown doubled: 200 ms
  ASSERT_TRUE(b.may_send(t0 + 310ms));
  b.complete(b.grant(), Breaker::Result::success, t0 + 320ms);
  EXPECT_EQ(b.state(), BreakerState::closed);
  EXPECT_EQ(b.next_probe_ms(t0), 0);
}

TEST(Breaker, CooldownCappedAtTenTimes) {
  Breaker b("test", {1, 100ms});
  auto t = Clock::now();
  b.complete(b.grant(), Breaker::Result::failure, t);
  for (int i = 0; i < 8; ++i) {
    t = b.next_probe();
    ASSERT_TRUE(b.may_send(t));
    b.complete(b.grant(), Breaker::Result::failure, t);
  }
  EXPECT_EQ(b.next_probe() - t, std::chrono::duration_cast<Clock::duration>(1000ms));
}

TEST(Breaker, CancelledProbeGivesTheSlotBackAndZeroFailuresIsOff) {
  Breaker b("test", {1, 10ms});
  const auto t0 = Clock::now();
  b.complete(b.grant(), Breaker::Result::failure, t0);
  ASSERT_TRUE(b.may_send(t0 + 10ms));
  b.complete(b.grant(), Breaker::Result::cancelled, t0 + 10ms);
  EXPECT_TRUE(b.may_send(t0 + 10ms));

  Breaker off("off", {0, 10ms});
  for (int i = 0; i < 100; ++i) off.complete(off.grant(), Breaker::Result::failure, t0);
  EXPECT_EQ(off.state(), BreakerState::closed);
}

TEST(AdaptiveLimit, FixedIgnoresRoundTrips) {
  AdaptiveLimit l(false, 8, 2);
  const auto t0 = Clock::now();
  for (int i = 0; i < 100; ++i) l.observe(t0 + i * 30ms, 500ms, true);
  EXPECT_EQ(l.limit(), 8);
}

TEST(AdaptiveLimit, GrowsWhenLimitedAndHealthyShrinksOnSlowOrOverload) {
  AdaptiveLimit l(true, 10, 2);
  auto t = Clock::now();
  for (int i = 0; i < 30; ++i) {
    l.limited();
    t += 25ms;
    l.observe(t, 20ms, false);
  }
  EXPECT_EQ(l.limit(), 10);  // capped at max
  t += 25ms;
  l.observe(t, 200ms, false);  // RTT far above the baseline
  EXPECT_EQ(l.limit(), 9);
  for (int i = 0; i < 5; ++i) {
    t += 25ms;
    l.observe(t, 20ms, true);  // 429/503/timeout
  }
  EXPECT_LE(l.limit(), 6);
  for (int i = 0; i < 100; ++i) {
    t += 25ms;
    l.observe(t, 20ms, true);
  }
  EXPECT_EQ(l.limit(), 1);  // floor
  // Not limited: no growth, however healthy.
  for (int i = 0; i < 10; ++i) {
    t += 25ms;
    l.observe(t, 20ms, false);
  }
  EXPECT_EQ(l.limit(), 1);
}

TEST(AdaptiveLimit, ReconfigureKeepsOrRestarts) {
  AdaptiveLimit l(true, 10, 2);
  auto t = Clock::now();
  for (int i = 0; i < 5; ++i) {
    l.limited();
    t += 25ms;
    l.observe(t, 20ms, false);
  }
  const int grown = l.limit();
  EXPECT_GT(grown, 2);
  l.reconfigure(true, 4, 2);
  EXPECT_EQ(l.limit(), std::min(grown, 4));
  l.reconfigure(false, 6, 2);
  EXPECT_EQ(l.limit(), 6);
  l.reconfigure(true, 6, 3);
  EXPECT_EQ(l.limit(), 3);
}

}  // namespace
}  // namespace evr::connection
