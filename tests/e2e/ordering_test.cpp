// Ordered delivery end to end (destination ordering_key): per key one delivery in flight at most and
// successful arrivals in commit order, across retries and a restart; a retrying key never holds up others.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "pipeline_fixture.h"
#include "support/slowdown.h"

namespace evr::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What the sink saw, per key: overlapping requests and the sequence numbers it answered 200 to.
struct Tracker {
  std::mutex mu;
  std::map<int64_t, Clock::time_point> busy_until;  // key -> when its last request is answered
  std::map<int64_t, std::vector<int>> delivered;    // key -> seq of 2xx answers, in arrival order
  std::map<int64_t, std::vector<Clock::time_point>> delivered_at;
  int overlaps = 0;

  // Distinct sequence numbers delivered for `key`, and whether their first arrivals were in order.
  std::size_t distinct(int64_t key) {
    std::lock_guard lk(mu);
    std::set<int> s(delivered[key].begin(), delivered[key].end());
    return s.size();
  }
};

class OrderingTest : public PipelineTest {
 protected:
  // One branch, one destination ordered by the order id.
  config::Config ordered_config(int max_attempts = 30) {
    auto cfg = make_config();
    auto& f = cfg.flows.at(0);
    auto d = f.branches.at(1).destinations.at(0);
    d.ordering_key = "$.detail.id";
    f.branches = {f.branches.at(1)};
    f.branches[0].destinations = {d};
    cfg.connections["sink"].retry.max_attempts = max_attempts;
    cfg.connections["sink"].concurrency = 8;
    return cfg;
  }

  std::string event(int64_t key, int seq) {
    auto j = nlohmann::json::parse(order_);
    j["id"] = key;
    j["seq"] = seq;
    return j.dump();
  }

  void record(Tracker& t, const Recorded& r, Reply& reply, bool ok) {
    const auto j = nlohmann::json::parse(r.body);
    const int64_t key = j["id"].get<int64_t>();
    const auto now = Clock::now();
    std::lock_guard lk(t.mu);
    auto it = t.busy_until.find(key);
    if (it != t.busy_until.end() && now < it->second) ++t.overlaps;
    t.busy_until[key] = now + reply.delay;
    if (ok) {
      t.delivered[key].push_back(j["seq"].get<int>());
      t.delivered_at[key].push_back(now);
    } else {
      reply.status = 500;
    }
  }

  bool wait_delivered(Tracker& t, const std::vector<int64_t>& keys, std::size_t per_key,
                      std::chrono::milliseconds timeout = 30s) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      bool done = true;
      for (auto k : keys) done = done && t.distinct(k) >= per_key;
      if (done) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Successful arrivals per key, repeats of the same event (at-least-once) folded, are 1..n in order.
  static void expect_in_commit_order(Tracker& t, const std::vector<int64_t>& keys, int n) {
    std::lock_guard lk(t.mu);
    for (auto k : keys) {
      std::vector<int> firsts;
      for (int s : t.delivered[k]) {
        if (firsts.empty() || firsts.back() != s) firsts.push_back(s);
      }
      std::vector<int> expected;
      for (int i = 1; i <= n; ++i) expected.push_back(i);
      EXPECT_EQ(firsts, expected) << "key " << k;
    }
  }
};

TEST_F(OrderingTest, PerKeyOneInFlightAndCommitOrderDespiteErrors) {
  Tracker t;
  std::mt19937 rng(7);
  std::mutex rng_mu;
  sink_.set_handler([&](const Recorded& r) {
    Reply reply;
    bool ok = true;
    {
      std::lock_guard lk(rng_mu);
      reply.delay = std::chrono::milliseconds(rng() % 12);
      ok = rng() % 8 != 0;  // one in eight answered 500
    }
    record(t, r, reply, ok);
    return reply;
  });
  start(ordered_config());
  const std::vector<int64_t> keys{101, 202, 303};
  constexpr int kPerKey = 20;
  for (int seq = 1; seq <= kPerKey; ++seq) {
    for (auto k : keys) ASSERT_EQ(post(event(k, seq)).status, 200);
  }
  ASSERT_TRUE(wait_delivered(t, keys, kPerKey)) << "not everything was delivered";
  {
    std::lock_guard lk(t.mu);
    EXPECT_EQ(t.overlaps, 0) << "two deliveries of one key were in flight at once";
  }
  expect_in_commit_order(t, keys, kPerKey);
}

TEST_F(OrderingTest, ARetryingKeyDoesNotHoldUpOtherKeys) {
  Tracker t;
  std::atomic<int> a1_attempts{0};
  sink_.set_handler([&](const Recorded& r) {
    Reply reply;
    const auto j = nlohmann::json::parse(r.body);
    bool ok = true;
    if (j["id"] == 1 && j["seq"] == 1 && ++a1_attempts <= 2) {
      ok = false;
      reply.headers = {{"Retry-After", "1"}};  // key 1's head waits on disk for a second, twice
    }
    record(t, r, reply, ok);
    return reply;
  });
  start(ordered_config());
  ASSERT_EQ(post(event(1, 1)).status, 200);
  ASSERT_EQ(post(event(1, 2)).status, 200);
  for (int seq = 1; seq <= 5; ++seq) {
    ASSERT_EQ(post(event(2, seq)).status, 200);
    ASSERT_EQ(post(event(3, seq)).status, 200);
  }
  ASSERT_TRUE(wait_delivered(t, {2, 3}, 5, 10s)) << "other keys were held up";
  ASSERT_TRUE(wait_delivered(t, {1}, 2, 20s));
  std::lock_guard lk(t.mu);
  EXPECT_EQ(t.overlaps, 0);
  EXPECT_EQ(a1_attempts.load(), 3);
  EXPECT_EQ(t.delivered[1], (std::vector<int>{1, 2}));
  // Keys 2 and 3 were all delivered while key 1's head was still retrying.
  const auto a1_done = t.delivered_at[1].at(0);
  EXPECT_LT(t.delivered_at[2].back(), a1_done);
  EXPECT_LT(t.delivered_at[3].back(), a1_done);
  EXPECT_EQ(t.delivered[2], (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(t.delivered[3], (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST_F(OrderingTest, OrderHoldsAcrossARestart) {
  Tracker t;
  std::atomic<int> n{0};
  sink_.set_handler([&](const Recorded& r) {
    Reply reply;
    // Slow enough that the posts below end long before the deliveries do (sanitizer builds post slower).
    reply.delay = scaled(15ms);
    record(t, r, reply, ++n % 6 != 0);
    return reply;
  });
  const auto cfg = ordered_config();
  start(cfg);
  const std::vector<int64_t> keys{7, 8, 9};
  constexpr int kPerKey = 15;
  for (int seq = 1; seq <= kPerKey; ++seq) {
    for (auto k : keys) ASSERT_EQ(post(event(k, seq)).status, 200);
  }
  // Stop mid-way: part delivered, the rest pending (some blocked behind their key's head) on disk.
  ASSERT_TRUE(sink_.wait_for(6, 10s));
  daemon_->stop();
  daemon_.reset();
  {
    std::lock_guard lk(t.mu);
    std::size_t delivered = 0;
    for (auto k : keys) delivered += t.delivered[k].size();
    EXPECT_LT(delivered, keys.size() * kPerKey) << "the restart came too late to test anything";
  }
  start(cfg);
  ASSERT_TRUE(wait_delivered(t, keys, kPerKey)) << "events were lost across the restart";
  {
    std::lock_guard lk(t.mu);
    EXPECT_EQ(t.overlaps, 0);
  }
  expect_in_commit_order(t, keys, kPerKey);
}

TEST_F(OrderingTest, EventsWithoutTheKeyGoUnordered) {
  std::atomic<int> n{0};
  sink_.set_handler([&](const Recorded&) {
    ++n;
    return Reply{};
  });
  start(ordered_config());
  for (int i = 0; i < 5; ++i) {
    auto j = nlohmann::json::parse(order_);
    j.erase("id");
    j["seq"] = i;
    ASSERT_EQ(post(j.dump()).status, 200);
  }
  ASSERT_TRUE(sink_.wait_for(5, 10s));
  EXPECT_EQ(n.load(), 5);
}

}  // namespace
}  // namespace evr::test
