// Batching end to end (destination batch): one request per max_events deliveries, a JSON array of the
// bodies; max_wait flushes a partial batch; a failed batch is retried whole; max_bytes bounds a request.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "pipeline_fixture.h"

namespace evr::test {
namespace {

using namespace std::chrono_literals;

class BatchTest : public PipelineTest {
 protected:
  config::Config batched(config::Batch batch) {
    auto cfg = make_config();
    auto& f = cfg.flows.at(0);
    auto d = f.branches.at(1).destinations.at(0);
    d.batch = batch;
    f.branches = {f.branches.at(1)};
    f.branches[0].destinations = {d};
    return cfg;
  }

  // Posts orders with ids first..first+n-1.
  void post_orders(int first, int n) {
    for (int i = first; i < first + n; ++i) ASSERT_EQ(post(order("10.00", i)).status, 200);
  }

  // The order ids in a batch request's body (a JSON array of the payloads).
  static std::vector<int64_t> ids(const Recorded& r) {
    std::vector<int64_t> out;
    const auto body = nlohmann::json::parse(r.body);
    EXPECT_TRUE(body.is_array()) << r.body.substr(0, 200);
    for (const auto& e : body) out.push_back(e.at("id").get<int64_t>());
    return out;
  }

  // Waits until the sink answered 2xx for `n` events in all.
  std::vector<Recorded> wait_events(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto reqs = sink_.requests();
      std::size_t got = 0;
      for (const auto& r : reqs) got += nlohmann::json::parse(r.body).size();
      if (got >= n || std::chrono::steady_clock::now() > until) return reqs;
      std::this_thread::sleep_for(20ms);
    }
  }
};

TEST_F(BatchTest, FullBatchesOfMaxEvents) {
  start(batched({100, 1024 * 1024, 60s}));  // max_wait far away: only full batches go
  post_orders(1, 300);
  auto reqs = wait_events(300);
  ASSERT_EQ(reqs.size(), 3u);
  std::set<int64_t> seen;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.target, "/api/orders");
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("authorization"), "Bearer sink-token");
    EXPECT_EQ(r.header("x-route"), "standard");
    EXPECT_EQ(r.header("x-evrouter-batch-size"), "100");
    EXPECT_EQ(r.header("x-evrouter-event-id"), "");
    const auto batch = ids(r);
    EXPECT_EQ(batch.size(), 100u);
    seen.insert(batch.begin(), batch.end());
  }
  EXPECT_EQ(seen.size(), 300u);
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), 300);
  // The elements are the payloads as received.
  const auto first = nlohmann::json::parse(reqs[0].body).at(0);
  EXPECT_EQ(first.at("total_price"), "10.00");
  EXPECT_EQ(first.at("email"), nlohmann::json::parse(order_).at("email"));
}

TEST_F(BatchTest, MaxWaitFlushesAPartialBatch) {
  start(batched({100, 1024 * 1024, 700ms}));
  const auto before = std::chrono::steady_clock::now();
  post_orders(1, 7);
  auto reqs = wait_events(7);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(ids(reqs[0]), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(reqs[0].header("x-evrouter-batch-size"), "7");
  // Sent once the oldest had waited max_wait, not before (the clock started before the first commit).
  EXPECT_GE(reqs[0].arrived - before, 650ms);
}

TEST_F(BatchTest, AFailedBatchIsRetriedWhole) {
  std::atomic<int> n{0};
  sink_.set_handler([&](const Recorded&) {
    Reply r;
    if (++n == 1) r.status = 500;
    return r;
  });
  start(batched({5, 1024 * 1024, 500ms}));
  post_orders(1, 5);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  auto reqs = wait_events(10);  // the failed five, then the five again
  ASSERT_GE(reqs.size(), 2u);
  EXPECT_EQ(ids(reqs[0]), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  std::multiset<int64_t> retried;
  for (std::size_t i = 1; i < reqs.size(); ++i) {
    for (auto id : ids(reqs[i])) retried.insert(id);
  }
  EXPECT_EQ(retried, (std::multiset<int64_t>{1, 2, 3, 4, 5}));
  // Each delivery recorded both attempts.
  const auto ids_header = reqs[0].header("x-evrouter-delivery-ids");
  ASSERT_FALSE(ids_header.empty());
  const int64_t first_delivery = std::stoll(ids_header.substr(0, ids_header.find(',')));
  for (int i = 0; i < 50 && daemon_->store().attempts(first_delivery).size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  const auto attempts = daemon_->store().attempts(first_delivery);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].status, 500);
  EXPECT_EQ(attempts[1].status, 200);
}

TEST_F(BatchTest, MaxBytesBoundsARequest) {
  const uint64_t max_bytes = 8 * 1024;  // two orders (3.6 KB each) fit, three do not
  start(batched({100, max_bytes, 200ms}));
  post_orders(1, 9);
  auto reqs = wait_events(9);
  std::size_t events = 0;
  for (const auto& r : reqs) {
    EXPECT_LE(r.body.size(), max_bytes);
    const auto batch = ids(r);
    EXPECT_LE(batch.size(), 2u);
    events += batch.size();
  }
  EXPECT_EQ(events, 9u);
}

TEST_F(BatchTest, WithAnOrderingKeyABatchCarriesAKeyOnceAndKeysStayInOrder) {
  auto cfg = batched({100, 1024 * 1024, 50ms});
  cfg.flows[0].branches[0].destinations[0].ordering_key = "$.detail.customer.id";
  start(cfg);
  constexpr int kPerKey = 8;
  for (int seq = 1; seq <= kPerKey; ++seq) {
    for (int64_t customer : {1, 2, 3}) {
      auto j = nlohmann::json::parse(order_);
      j["id"] = customer * 100 + seq;
      j["customer"]["id"] = customer;
      ASSERT_EQ(post(j.dump()).status, 200);
    }
  }
  auto reqs = wait_events(3 * kPerKey);
  std::map<int64_t, std::vector<int64_t>> arrived;  // customer -> order ids, in arrival order
  for (const auto& r : reqs) {
    std::set<int64_t> customers;
    for (const auto& e : nlohmann::json::parse(r.body)) {
      const int64_t customer = e.at("customer").at("id").get<int64_t>();
      EXPECT_TRUE(customers.insert(customer).second) << "customer " << customer << " twice in one batch";
      arrived[customer].push_back(e.at("id").get<int64_t>());
    }
  }
  for (int64_t customer : {1, 2, 3}) {
    std::vector<int64_t> expected;
    for (int seq = 1; seq <= kPerKey; ++seq) expected.push_back(customer * 100 + seq);
    EXPECT_EQ(arrived[customer], expected) << "customer " << customer;
  }
}

}  // namespace
}  // namespace evr::test
