// Ordering keys at routing: the value a destination's ordering_key path selects, per lane, and what the
// listener's selective parse keeps so the path finds it.
#include <gtest/gtest.h>

#include "evrouter/flow/routes.h"

namespace evr::flow {
namespace {

TEST(OrderingKey, StringsAsTheyAreOtherValuesAsJsonNothingWhenMissing) {
  const auto doc = nlohmann::json::parse(
      R"({"source":"shop","detail":{"id":42,"name":"a b","customer":{"id":"c-1"},"tags":["x"],"gone":null}})");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.id"), doc), "42");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.name"), doc), "a b");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.customer.id"), doc), "c-1");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.tags"), doc), R"(["x"])");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.source"), doc), "shop");
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.missing"), doc), std::nullopt);
  EXPECT_EQ(ordering_key(mapping::Path::parse("$.detail.gone"), doc), std::nullopt);
}

TEST(OrderingKey, RouteGivesEachLaneItsKeyAndTheListenerKeepsTheField) {
  config::Config cfg;
  config::Flow f;
  f.name = "f";
  f.source.type = "shopify";
  f.source.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_ORDERING_SECRET", {}});
  ::setenv("EVR_TEST_ORDERING_SECRET", "s", 1);
  config::Branch b;
  b.name = "all";
  config::Destination ordered, plain;
  ordered.name = "ordered";
  ordered.connection = "c";
  ordered.ordering_key = "$.detail.customer.id";
  plain.name = "plain";
  plain.connection = "c";
  b.destinations = {ordered, plain};
  f.branches.push_back(b);
  cfg.flows.push_back(f);
  auto routes = Routes::build(cfg, [](const config::Flow&) { return std::string("listener"); });
  const Flow& flow = routes->flows().at(0);

  // The listener materialises detail.customer.id (and nothing else of the body is needed here).
  const auto& customer = flow.detail_fields.fields.at("customer");
  EXPECT_TRUE(customer.fields.at("id").all);

  std::vector<std::string> lanes;
  std::vector<std::optional<std::string>> keys;
  flow.route(nlohmann::json::parse(R"({"detail":{"customer":{"id":7}}})"), lanes, &keys);
  EXPECT_EQ(lanes, (std::vector<std::string>{"f/all/ordered", "f/all/plain"}));
  EXPECT_EQ(keys, (std::vector<std::optional<std::string>>{"7", std::nullopt}));
}

}  // namespace
}  // namespace evr::flow
