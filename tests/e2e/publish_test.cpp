// The event-bus publish API end to end: POST /v1/events, keys and policies, batches, dedup, delivery.
#include <map>
#include <thread>

#include "evrouter/metrics/flow_stats.h"
#include "evrouter/metrics/metrics.h"
#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;

namespace {

using json = nlohmann::json;

class PublishTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    ::setenv("EVR_TEST_PUBLISH_ORDERS", "orders-key-0123456789", 1);
    ::setenv("EVR_TEST_PUBLISH_BILLING", "billing-key-0123456789", 1);
  }

  // The fixture's config plus publish keys and a bus flow "app-bus" taking app.* sources.
  config::Config with_bus(int max_entries = 100) {
    auto cfg = make_config();
    cfg.publish.max_entries = max_entries;
    cfg.publish.keys.push_back({"orders-service",
                                {config::SecretRef::Kind::env, "EVR_TEST_PUBLISH_ORDERS", {}},
                                {"app.orders"},
                                {}});
    cfg.publish.keys.push_back(
        {"billing", {config::SecretRef::Kind::env, "EVR_TEST_PUBLISH_BILLING", {}}, {"app.billing.*"}, {}});
    config::Flow f;
    f.name = "app-bus";
    f.source.type = "bus";
    f.source.sources = {"app.*"};
    config::Branch placed;
    placed.name = "placed";
    placed.match = json::parse(R"({"source":["app.orders"],"detail-type":["order.placed"]})");
    config::Destination d;
    d.name = "sink";
    d.connection = "sink";
    d.path = "/bus/placed";
    placed.destinations.push_back(d);
    config::Branch other;
    other.name = "other";
    d.path = "/bus/other";
    other.destinations.push_back(d);
    f.branches = {placed, other};
    cfg.flows.push_back(f);
    return cfg;
  }

  PostResult publish(const std::string& body, const std::string& key = "orders-key-0123456789",
                     std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    if (!key.empty()) h.emplace_back("Authorization", "Bearer " + key);
    h.insert(h.end(), extra.begin(), extra.end());
    return http_request(daemon_->port(), "POST", "/v1/events", h, body);
  }

  static std::string entry(const std::string& source, const std::string& type, const json& detail,
                           const std::string& id = "") {
    json e{{"source", source}, {"detail-type", type}, {"detail", detail}};
    if (!id.empty()) e["id"] = id;
    return e.dump();
  }
};

}  // namespace

TEST_F(PublishTest, BatchWithOneBadEntryCommitsAndDeliversTheOthers) {
  start(with_bus());
  const std::string body = R"({"entries":[)" + entry("app.orders", "order.placed", {{"order", 1}}) + "," +
                           R"({"source":"app.orders","detail-type":"order.placed"})" + "," +
                           entry("app.orders", "order.cancelled", {{"order", 2}}) + "]}";
  auto r = publish(body, "orders-key-0123456789", {{"X-Correlation-Id", "corr-42"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["failed_entry_count"], 1);
  ASSERT_EQ(j["entries"].size(), 3u);
  EXPECT_TRUE(j["entries"][0].contains("event_id"));
  EXPECT_EQ(j["entries"][1]["error_code"], "missing_field");
  EXPECT_EQ(j["entries"][1]["error_message"], "\"detail\" is required");
  EXPECT_TRUE(j["entries"][2].contains("event_id"));
  // Durable before the answer: the two events are in the store now.
  EXPECT_EQ(daemon_->store().counts().events, 2);

  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(5)));
  std::map<std::string, Recorded> by_target;
  for (const auto& req : sink_.requests()) by_target[req.target] = req;
  ASSERT_EQ(by_target.count("/api/bus/placed"), 1u);
  ASSERT_EQ(by_target.count("/api/bus/other"), 1u);
  const auto& placed = by_target["/api/bus/placed"];
  EXPECT_EQ(placed.body, R"({"order":1})");
  EXPECT_EQ(placed.header("x-evrouter-event-type"), "order.placed");
  EXPECT_EQ(placed.header("x-evrouter-flow"), "app-bus");
  EXPECT_EQ(placed.header("x-evrouter-event-id"), j["entries"][0]["event_id"].get<std::string>());
  EXPECT_EQ(placed.header("x-correlation-id"), "corr-42");
  EXPECT_EQ(by_target["/api/bus/other"].body, R"({"order":2})");
}

TEST_F(PublishTest, MissingOrUnknownKeyIs401) {
  start(with_bus());
  const std::string body = entry("app.orders", "order.placed", {{"order", 1}});
  auto none = publish(body, "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(json::parse(none.body)["error"], "missing_api_key");
  auto unknown = publish(body, "orders-key-012345678");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(json::parse(unknown.body)["error"], "invalid_api_key");
  // X-Api-Key works as well as Authorization: Bearer.
  auto api_key = publish(body, "", {{"X-Api-Key", "orders-key-0123456789"}});
  EXPECT_EQ(api_key.status, 200) << api_key.body;
  EXPECT_EQ(daemon_->store().counts().events, 1);
}

TEST_F(PublishTest, KeyNotAllowedForTheSourceIs403) {
  start(with_bus());
  auto single = publish(entry("app.billing.invoices", "invoice.paid", {{"id", 1}}));
  EXPECT_EQ(single.status, 403) << single.body;
  auto j = json::parse(single.body);
  EXPECT_EQ(j["error"], "forbidden");
  EXPECT_EQ(j["entries"][0]["error_code"], "forbidden_source");
  // The billing key may publish it, but not orders.
  EXPECT_EQ(
      publish(entry("app.billing.invoices", "invoice.paid", {{"id", 1}}), "billing-key-0123456789").status,
      200);
  auto mixed = publish("[" + entry("app.orders", "order.placed", {{"order", 1}}) + "," +
                           entry("app.billing.x", "y", json::object()) + "]",
                       "billing-key-0123456789");
  EXPECT_EQ(mixed.status, 200);
  EXPECT_EQ(json::parse(mixed.body)["entries"][0]["error_code"], "forbidden_source");
  EXPECT_EQ(daemon_->store().counts().events, 2);
}

TEST_F(PublishTest, OverTheEntryLimitIs413AndNothingIsStored) {
  start(with_bus(2));
  const std::string e = entry("app.orders", "order.placed", {{"order", 1}});
  auto r = publish("[" + e + "," + e + "," + e + "]");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["error"], "too_many_entries");
  EXPECT_EQ(publish("[" + e + "," + e + "]").status, 200);
  EXPECT_EQ(daemon_->store().counts().events, 2);
}

TEST_F(PublishTest, EntriesWithTheSameIdAreDeduplicated) {
  start(with_bus());
  const std::string e = entry("app.orders", "order.placed", {{"order", 7}}, "order-7-placed");
  auto first = publish(e);
  ASSERT_EQ(first.status, 200);
  const auto id = json::parse(first.body)["entries"][0]["event_id"];
  auto second = publish("[" + e + "," + e + "]");
  ASSERT_EQ(second.status, 200);
  auto j = json::parse(second.body);
  EXPECT_EQ(j["entries"][0]["event_id"], id);
  EXPECT_EQ(j["entries"][0]["duplicate"], true);
  EXPECT_EQ(j["entries"][1]["event_id"], id);
  EXPECT_EQ(j["failed_entry_count"], 0);
  ASSERT_TRUE(sink_.wait_for(1, std::chrono::seconds(5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(sink_.count(), 1u);
  EXPECT_EQ(daemon_->store().counts().events, 1);
}

TEST_F(PublishTest, PublishApiIsOffWithoutKeysAndOnlyTakesPost) {
  start(make_config());
  auto off = publish(entry("app.orders", "order.placed", {{"order", 1}}));
  EXPECT_EQ(off.status, 404);
  EXPECT_EQ(json::parse(off.body)["error"], "not_found");
  daemon_->stop();
  daemon_.reset();
  start(with_bus());
  auto get = http_request(daemon_->port(), "GET", "/v1/events", {}, "");
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(get.headers["allow"], "POST");
  auto malformed = publish("{not json");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(json::parse(malformed.body)["error"], "malformed_json");
}

// A source that more bus flows take than listener::kPublishedCountsNow: each event's counts are summed on
// the listener's thread and recorded shortly after (kPublishedCountsDelayMs), every one of them, for every
// flow: the windowed stats and evrouter_webhooks_total alike.
TEST_F(PublishTest, ASourceThatManyBusFlowsTakeCountsEveryEventForEachShortlyAfter) {
  auto cfg = with_bus();
  const config::Flow base = cfg.flows.back();
  cfg.flows.pop_back();
  constexpr int kFlows = 40;
  for (int i = 0; i < kFlows; ++i) {
    config::Flow f = base;
    f.name = "app-fan-" + std::to_string(i);
    cfg.flows.push_back(f);
  }
  start(cfg);
  const std::string placed = entry("app.orders", "order.placed", {{"order", 1}}, "fan-order-1-placed");
  ASSERT_EQ(publish("[" + placed + "," + entry("app.orders", "order.cancelled", {{"order", 2}}) + "]").status,
            200);
  ASSERT_EQ(publish(placed).status, 200);  // a duplicate
  ASSERT_EQ(publish(entry("app.orders", "order.placed", {{"order", 3}})).status, 200);

  using C = metrics::FlowStats::Count;
  auto counts = [](const std::string& flow) {
    std::map<std::pair<C, std::string>, uint64_t> out;
    for (const auto& c : metrics::FlowStats::of(flow).report(metrics::FlowStats::Window::hour).counts)
      out[{c.kind, c.label}] += c.value;
    return out;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (counts("app-fan-" + std::to_string(kFlows - 1))[{C::received, ""}] < 4 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < kFlows; ++i) {
    const std::string name = "app-fan-" + std::to_string(i);
    auto n = counts(name);
    EXPECT_EQ((n[{C::received, ""}]), 4u) << name;
    EXPECT_EQ((n[{C::accepted, ""}]), 3u) << name;
    EXPECT_EQ((n[{C::duplicate, ""}]), 1u) << name;
    EXPECT_EQ((n[{C::matched, "placed"}]), 2u) << name;
    EXPECT_EQ((n[{C::matched, "other"}]), 1u) << name;
    EXPECT_EQ((n[{C::unmatched, ""}]), 0u) << name;
    auto& accepted = metrics::Registry::global().counter("evrouter_webhooks_total", "",
                                                         {{"flow", name}, {"result", "accepted"}});
    auto& duplicate = metrics::Registry::global().counter("evrouter_webhooks_total", "",
                                                          {{"flow", name}, {"result", "duplicate"}});
    EXPECT_EQ(accepted.value(), 3u) << name;
    EXPECT_EQ(duplicate.value(), 1u) << name;
  }
}

TEST_F(PublishTest, PublishedEventsCountInFlowStatsAndReplayThroughTheBusFlow) {
  auto cfg = with_bus();
  cfg.flows.back().name = "app-bus-stats";  // stats of its own in the process-wide registry
  start(cfg);
  const std::string e = entry("app.orders", "order.placed", {{"order", 8}}, "order-8-placed");
  ASSERT_EQ(publish("[" + e + "," + entry("app.orders", "order.cancelled", {{"order", 9}}) + "]").status,
            200);
  ASSERT_EQ(publish(e).status, 200);  // a duplicate
  ASSERT_TRUE(sink_.wait_for(2, std::chrono::seconds(5)));

  std::map<std::string, uint64_t> counts;
  for (const auto& c :
       metrics::FlowStats::of("app-bus-stats").report(metrics::FlowStats::Window::hour).counts) {
    counts[std::to_string(static_cast<int>(c.kind)) + ":" + c.label] += c.value;
  }
  using C = metrics::FlowStats::Count;
  auto n = [&counts](C kind, const std::string& label = "") {
    return counts[std::to_string(static_cast<int>(kind)) + ":" + label];
  };
  EXPECT_EQ(n(C::received), 3u);
  EXPECT_EQ(n(C::accepted), 2u);
  EXPECT_EQ(n(C::duplicate), 1u);
  EXPECT_EQ(n(C::matched, "placed"), 1u);
  EXPECT_EQ(n(C::matched, "other"), 1u);
  // Published events replay through the bus flow (its sources and branches).
  const auto routes = daemon_->routes();
  const flow::Flow* bus = nullptr;
  for (const auto& f : routes->flows()) {
    if (f.name == "app-bus-stats") bus = &f;
  }
  ASSERT_NE(bus, nullptr);
  flow::ReplayRequest req;
  req.from_ms = event::now_ms() - 60'000;
  req.to_ms = event::now_ms() + 1;
  const auto r = daemon_->replay_window(*bus, req);
  EXPECT_EQ(r.scanned, 2);
  EXPECT_EQ(r.matched, 2);
  EXPECT_EQ(r.deliveries, 2);
  ASSERT_TRUE(sink_.wait_for(4, std::chrono::seconds(5)));
  EXPECT_EQ(sink_.requests().back().header("x-evrouter-replay"), "true");
}
