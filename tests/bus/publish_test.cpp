// The publish API's pieces: source filters, keys and policies, entries, answers.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "evrouter/bus/batch.h"
#include "evrouter/bus/publisher.h"
#include "evrouter/event/event.h"
#include "evrouter/flow/routes.h"

using namespace evr;
using json = nlohmann::json;

TEST(SourceFilter, GlobMatching) {
  EXPECT_TRUE(bus::glob_match("app.orders", "app.orders"));
  EXPECT_FALSE(bus::glob_match("app.orders", "app.orders2"));
  EXPECT_TRUE(bus::glob_match("app.*", "app.orders"));
  EXPECT_TRUE(bus::glob_match("app.*", "app."));
  EXPECT_FALSE(bus::glob_match("app.*", "app"));
  EXPECT_TRUE(bus::glob_match("*", "anything"));
  EXPECT_TRUE(bus::glob_match("*.orders", "shop.eu.orders"));
  EXPECT_TRUE(bus::glob_match("a*b*c", "a-x-b-y-c"));
  EXPECT_FALSE(bus::glob_match("a*b*c", "a-x-c-y-b"));
  EXPECT_TRUE(bus::SourceFilter().allows("x"));
  bus::SourceFilter f({"app.orders", "billing.*"});
  EXPECT_TRUE(f.allows("billing.invoices"));
  EXPECT_FALSE(f.allows("app.users"));
}

TEST(EventTime, ParsesRfc3339) {
  EXPECT_EQ(event::parse_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(event::parse_time("2026-11-22T10:00:00.250Z"), 1795341600250);
  EXPECT_EQ(event::parse_time("2026-11-22T11:00:00.250+01:00"), 1795341600250);
  EXPECT_EQ(event::parse_time("2026-11-22T09:30:00.2504-00:30"), 1795341600250);
  EXPECT_EQ(event::format_time(*event::parse_time("2024-02-29T23:59:59.999Z")), "2024-02-29T23:59:59.999Z");
  EXPECT_FALSE(event::parse_time("2026-11-22 10:00:00Z"));
  EXPECT_FALSE(event::parse_time("2026-11-22T10:00:00"));
  EXPECT_FALSE(event::parse_time("2025-02-29T10:00:00Z"));
  EXPECT_FALSE(event::parse_time("2026-13-01T10:00:00Z"));
  EXPECT_FALSE(event::parse_time("2026-11-22T10:00:00.Z"));
  EXPECT_FALSE(event::parse_time("2026-11-22T10:00:00Zjunk"));
}

namespace {

config::Publish publish_config() {
  ::setenv("EVR_TEST_KEY_ORDERS", "key-orders-0001", 1);
  ::setenv("EVR_TEST_KEY_ALL", "key-all-0002", 1);
  config::Publish p;
  p.max_entries = 3;
  p.keys.push_back(
      {"orders-service", {config::SecretRef::Kind::env, "EVR_TEST_KEY_ORDERS", {}}, {"app.orders"}, {}});
  p.keys.push_back({"platform", {config::SecretRef::Kind::env, "EVR_TEST_KEY_ALL", {}}, {"app.*"}, {}});
  return p;
}

std::shared_ptr<const flow::Routes> bus_routes() {
  config::Config cfg;
  cfg.publish = publish_config();
  config::Flow f;
  f.name = "orders-bus";
  f.source.type = "bus";
  f.source.sources = {"app.orders"};
  config::Branch big;
  big.name = "big";
  big.match = json::parse(R"({"detail-type":["order.placed"],"detail":{"total":[{"numeric":[">",100]}]}})");
  config::Destination d;
  d.name = "sink";
  d.connection = "sink";
  d.path = "/big";
  big.destinations.push_back(d);
  f.branches.push_back(big);
  cfg.flows.push_back(f);
  return flow::Routes::build(cfg, [](const config::Flow&) -> std::string {
    ADD_FAILURE() << "bus flows have no listener id";
    return "";
  });
}

}  // namespace

TEST(Publisher, AuthenticatesKeysAndAppliesTheirPolicy) {
  auto p = bus::Publisher::build(publish_config());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->max_entries(), 3);
  const bus::Key* k = p->authenticate("key-orders-0001");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->name, "orders-service");
  EXPECT_TRUE(k->sources.allows("app.orders"));
  EXPECT_FALSE(k->sources.allows("app.users"));
  EXPECT_EQ(p->authenticate("key-all-0002")->name, "platform");
  EXPECT_EQ(p->authenticate("key-orders-000"), nullptr);
  EXPECT_EQ(p->authenticate(""), nullptr);
  EXPECT_EQ(bus::Publisher::build({}), nullptr);  // no key: the API is off
}

TEST(Publisher, SameValueForTwoKeysOrUnsetKeyIsAConfigError) {
  auto cfg = publish_config();
  cfg.keys[1].key.name = "EVR_TEST_KEY_ORDERS";
  EXPECT_THROW(bus::Publisher::build(cfg), config::ConfigError);
  cfg = publish_config();
  cfg.keys[0].key.name = "EVR_TEST_KEY_NOT_SET";
  EXPECT_THROW(bus::Publisher::build(cfg), config::ConfigError);
}

TEST(PublishBatch, EntriesAreCheckedOneByOneAndRoutedToBusFlows) {
  auto routes = bus_routes();
  const bus::Key* key = routes->publisher()->authenticate("key-all-0002");
  ASSERT_NE(key, nullptr);
  const std::string body = R"({"entries":[
    {"source":"app.orders","detail-type":"order.placed","detail":{"total":250},"id":"o-1",
     "time":"2026-11-22T10:00:00Z","resources":["order/1"],"correlation_id":"c-1"},
    {"source":"app.orders","detail-type":"order.placed","detail":"not an object"},
    {"source":"app.users","detail-type":"user.created","detail":"{\"id\":7}"}
  ]})";
  auto read = bus::read_batch(body, *key, 3, *routes, 1000, "req-corr");
  ASSERT_TRUE(std::holds_alternative<bus::Batch>(read));
  auto& batch = std::get<bus::Batch>(read);
  ASSERT_EQ(batch.slots.size(), 3u);
  ASSERT_EQ(batch.ingests.size(), 2u);
  EXPECT_EQ(batch.slots[1].error_code, "invalid_entry");
  const auto& e0 = *batch.ingests[0].event;
  EXPECT_EQ(e0.source, "app.orders");
  EXPECT_EQ(e0.type, "order.placed");
  EXPECT_EQ(e0.payload, R"({"total":250})");
  EXPECT_EQ(e0.dedup_key, "app.orders o-1");
  EXPECT_EQ(e0.listener_id, "bus");
  EXPECT_EQ(e0.correlation_id, "c-1");
  EXPECT_EQ(e0.occurred_ms, 1795341600000);
  EXPECT_EQ(e0.resources, std::vector<std::string>{"order/1"});
  EXPECT_EQ(batch.ingests[0].lanes, std::vector<std::string>{"orders-bus/big/sink"});
  // app.users is not a source the flow takes; the event is still stored, routed nowhere.
  const auto& e2 = *batch.ingests[1].event;
  EXPECT_EQ(e2.payload, R"({"id":7})");
  EXPECT_EQ(e2.correlation_id, "req-corr");
  EXPECT_TRUE(e2.dedup_key.empty());
  EXPECT_TRUE(batch.ingests[1].lanes.empty());

  std::vector<store::CommitResult> results(2);
  results[0].status = store::CommitResult::Status::accepted;
  results[0].event_id = e0.id;
  results[1].status = store::CommitResult::Status::duplicate;
  results[1].event_id = "01FIRST";
  auto a = bus::answer(batch, results);
  EXPECT_EQ(a.status, 200u);
  auto j = json::parse(a.body);
  EXPECT_EQ(j["failed_entry_count"], 1);
  EXPECT_EQ(j["entries"][0]["event_id"], e0.id);
  EXPECT_EQ(j["entries"][1]["error_code"], "invalid_entry");
  EXPECT_EQ(j["entries"][2]["event_id"], "01FIRST");
  EXPECT_EQ(j["entries"][2]["duplicate"], true);
}

TEST(PublishBatch, ShapesAndRequestLevelRefusals) {
  auto routes = bus_routes();
  const bus::Key& key = *routes->publisher()->authenticate("key-orders-0001");
  auto refusal = [&](const std::string& body) {
    auto r = bus::read_batch(body, key, 3, *routes, 1000, "");
    return std::holds_alternative<bus::Refusal>(r) ? std::get<bus::Refusal>(r) : bus::Refusal{0, "", ""};
  };
  EXPECT_EQ(refusal("{nope").code, "malformed_json");
  EXPECT_EQ(refusal("[]").code, "no_entries");
  EXPECT_EQ(refusal(R"({"entries":{}})").code, "malformed_request");
  EXPECT_EQ(refusal(R"({"entries":[],"x":1})").code, "malformed_request");
  EXPECT_EQ(refusal("42").code, "malformed_request");
  const std::string e = R"({"source":"app.orders","detail-type":"t","detail":{}})";
  auto over = refusal("[" + e + "," + e + "," + e + "," + e + "]");
  EXPECT_EQ(over.status, 413u);
  EXPECT_EQ(over.code, "too_many_entries");
  // A single object and a bare array are fine.
  EXPECT_TRUE(std::holds_alternative<bus::Batch>(bus::read_batch(e, key, 3, *routes, 1000, "")));
  EXPECT_TRUE(std::holds_alternative<bus::Batch>(bus::read_batch("[" + e + "]", key, 3, *routes, 1000, "")));
}

TEST(PublishBatch, EntryErrorsAndForbiddenOnly) {
  auto routes = bus_routes();
  const bus::Key& key = *routes->publisher()->authenticate("key-orders-0001");
  auto codes = [&](const std::string& entry) {
    auto r = bus::read_batch(entry, key, 3, *routes, 1000, "");
    return std::get<bus::Batch>(r).slots.at(0).error_code;
  };
  EXPECT_EQ(codes(R"({"detail-type":"t","detail":{}})"), "missing_field");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail":{}})"), "missing_field");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail-type":"t"})"), "missing_field");
  EXPECT_EQ(codes(R"({"source":"app orders","detail-type":"t","detail":{}})"), "invalid_entry");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail-type":"t","detail":{},"detailType":"x"})"),
            "invalid_entry");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail-type":"t","detail":{},"time":"yesterday"})"),
            "invalid_entry");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail-type":"t","detail":{},"resources":[1]})"),
            "invalid_entry");
  EXPECT_EQ(codes(R"({"source":"app.orders","detail-type":"","detail":{}})"), "invalid_entry");
  // The policy is checked before anything else.
  EXPECT_EQ(codes(R"({"source":"app.users","detail-type":"t"})"), "forbidden_source");

  auto read =
      bus::read_batch(R"([{"source":"app.users","detail-type":"t","detail":{}}])", key, 3, *routes, 1, "");
  auto a = bus::answer(std::get<bus::Batch>(read), {});
  EXPECT_EQ(a.status, 403u);
  EXPECT_EQ(json::parse(a.body)["error"], "forbidden");
  read = bus::read_batch(
      R"([{"source":"app.users","detail-type":"t","detail":{}},{"source":"app.orders","detail-type":"t"}])",
      key, 3, *routes, 1, "");
  a = bus::answer(std::get<bus::Batch>(read), {});
  EXPECT_EQ(a.status, 400u);
  EXPECT_EQ(json::parse(a.body)["failed_entry_count"], 2);
}
