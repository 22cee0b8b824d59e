// The bus index (which bus flows a published event may match): it must never leave out a flow that would
// route the event, whatever the patterns and the event look like, and it must leave out the flows whose
// required field holds another value.
#include "evrouter/flow/bus_index.h"

#include <gtest/gtest.h>

#include <random>

#include "evrouter/flow/routes.h"

namespace evr::flow {
namespace {

using json = nlohmann::json;

config::Branch bus_branch(const std::string& name, std::optional<json> match, bool is_default = false) {
  config::Branch b;
  b.name = name;
  b.match = std::move(match);
  b.is_default = is_default;
  config::Destination d;
  d.name = "d";
  d.connection = "c";
  b.destinations.push_back(d);
  return b;
}

config::Flow bus_flow(const std::string& name, std::vector<config::Branch> branches) {
  config::Flow f;
  f.name = name;
  f.source.type = "bus";
  f.source.sources = {"app.*"};
  f.branches = std::move(branches);
  return f;
}

std::shared_ptr<const Routes> build(const std::vector<config::Flow>& flows) {
  config::Config cfg;
  cfg.flows = flows;
  return Routes::build(cfg, [](const config::Flow&) { return std::string("listener"); });
}

json envelope(json detail, const std::string& source = "app.orders") {
  return json{{"source", source}, {"detail-type", "order.created"}, {"detail", std::move(detail)}};
}

// The positions of the flows that route `env` (the router sets "flow" before matching, as the publish path
// does).
std::vector<std::size_t> routed(const Routes& routes, json env) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < routes.flows().size(); ++i) {
    const auto& f = routes.flows()[i];
    if (!f.is_bus()) continue;
    env["flow"] = f.name;
    std::vector<std::string> lanes;
    f.route(env, lanes);
    if (!lanes.empty()) out.push_back(i);
  }
  return out;
}

}  // namespace

TEST(BusIndex, OneFlowPerShopIsMatchedOnlyAgainstItsOwnShop) {
  std::vector<config::Flow> flows;
  for (int i = 0; i < 100; ++i) {
    flows.push_back(bus_flow(
        "shop" + std::to_string(i),
        {bus_branch("mine", json::parse(R"({"detail":{"shop":["shop-)" + std::to_string(i) + R"("]}})"))}));
  }
  flows.push_back(bus_flow("audit", {bus_branch("all", std::nullopt)}));  // every event: not filed
  const auto routes = build(flows);
  std::vector<std::size_t> c;
  routes->bus_candidates(envelope({{"shop", "shop-42"}}), c);
  EXPECT_EQ(c, (std::vector<std::size_t>{42, 100}));
  routes->bus_candidates(envelope({{"shop", "unknown"}}), c);
  EXPECT_EQ(c, (std::vector<std::size_t>{100}));
  // Read plainly or not at all: an array, a missing field, a dotted key leave every filed flow a candidate.
  routes->bus_candidates(envelope({{"shop", json::array({"shop-1", "shop-2"})}}), c);
  EXPECT_EQ(c.size(), 101u);
  routes->bus_candidates(envelope(json::object()), c);
  EXPECT_EQ(c.size(), 101u);
  auto dotted = envelope(json::object());
  dotted["detail.shop"] = "shop-7";
  routes->bus_candidates(dotted, c);
  EXPECT_EQ(c.size(), 101u);
  EXPECT_EQ(routed(*routes, dotted), (std::vector<std::size_t>{7, 100}));
}

TEST(BusIndex, FlowsThatCannotBeFiledAreAlwaysCandidates) {
  const auto routes = build({
      // a default branch: routes every event
      bus_flow("with-default", {bus_branch("a", json::parse(R"({"detail":{"shop":["x"]}})")),
                                bus_branch("rest", std::nullopt, true)}),
      // the branches require different fields
      bus_flow("different", {bus_branch("a", json::parse(R"({"detail":{"shop":["x"]}})")),
                             bus_branch("b", json::parse(R"({"detail":{"region":["eu"]}})"))}),
      // not only exact strings
      bus_flow("prefix", {bus_branch("a", json::parse(R"({"detail":{"shop":[{"prefix":"x"}]}})"))}),
      bus_flow("mixed", {bus_branch("a", json::parse(R"({"detail":{"shop":["x", 5]}})"))}),
      // the envelope's "flow" differs per flow: never a filing key
      bus_flow("by-flow", {bus_branch("a", json::parse(R"({"flow":["by-flow"]})"))}),
      // $or only
      bus_flow("or",
               {bus_branch("a", json::parse(R"({"$or":[{"detail":{"shop":["x"]}},{"detail":{"n":[1]}}]})"))}),
  });
  std::vector<std::size_t> c;
  routes->bus_candidates(envelope({{"shop", "nothing-matches-this"}}), c);
  EXPECT_EQ(c, (std::vector<std::size_t>{0, 1, 2, 3, 4, 5}));
}

TEST(BusIndex, BranchesSharingAFieldAreFiledUnderEveryValue) {
  const auto routes = build({
      bus_flow("two",
               {bus_branch("a", json::parse(R"({"detail":{"shop":["a1","a2"]},"detail-type":["x"]})")),
                bus_branch("b", json::parse(R"({"detail":{"shop":["b1"],"total":[{"numeric":[">",1]}]}})"))}),
  });
  std::vector<std::size_t> c;
  for (const char* shop : {"a1", "a2", "b1"}) {
    routes->bus_candidates(envelope({{"shop", shop}}), c);
    EXPECT_EQ(c, (std::vector<std::size_t>{0})) << shop;
  }
  routes->bus_candidates(envelope({{"shop", "c"}}), c);
  EXPECT_TRUE(c.empty());
}

// Random flows and events: every flow that routes an event is among its candidates.
TEST(BusIndex, NeverLeavesOutAFlowThatRoutesTheEvent) {
  std::mt19937 rng(20261124);
  auto pick = [&rng](auto&& options) { return options[rng() % options.size()]; };
  const std::vector<std::string> values{"a", "b", "c", "d"};
  const std::vector<std::string> fields{"shop", "region", "tier"};
  auto leaf = [&]() -> json {
    switch (rng() % 8) {
      case 0:
        return json::array({json{{"prefix", pick(values)}}});
      case 1:
        return json::array({json{{"anything-but", pick(values)}}});
      case 2:
        return json::array({json{{"exists", rng() % 2 == 0}}});
      case 3:
        return json::array({pick(values), 1});
      default: {
        json a = json::array();
        for (std::size_t n = 1 + rng() % 2; n > 0; --n) a.push_back(pick(values));
        return a;
      }
    }
  };
  auto pattern = [&]() -> json {
    json detail = json::object();
    for (std::size_t n = 1 + rng() % 2; n > 0; --n) detail[pick(fields)] = leaf();
    json p{{"detail", detail}};
    if (rng() % 5 == 0)
      p["$or"] = json::array(
          {json{{"detail-type", json::array({"x"})}}, json{{"source", json::array({"app.orders"})}}});
    if (rng() % 7 == 0) p["flow"] = json::array({"f" + std::to_string(rng() % 30)});
    return p;
  };
  std::vector<config::Flow> flows;
  for (int i = 0; i < 30; ++i) {
    std::vector<config::Branch> branches;
    for (std::size_t b = 1 + rng() % 3; b > 0; --b) {
      branches.push_back(bus_branch("b" + std::to_string(b), pattern()));
    }
    if (rng() % 10 == 0) branches.push_back(bus_branch("rest", std::nullopt, true));
    auto f = bus_flow("f" + std::to_string(i), std::move(branches));
    if (rng() % 4 == 0) f.mode = config::Flow::Mode::all;
    flows.push_back(std::move(f));
  }
  const auto routes = build(flows);
  auto value = [&]() -> json {
    switch (rng() % 7) {
      case 0:
        return json::array({pick(values), pick(values)});
      case 1:
        return 1;
      case 2:
        return json::array({json{{"x", 1}}});
      default:
        return pick(values);
    }
  };
  std::size_t pruned = 0;
  for (int n = 0; n < 5000; ++n) {
    json detail = json::object();
    for (const auto& f : fields) {
      if (rng() % 4 != 0) detail[f] = value();
    }
    json env = envelope(detail);
    if (rng() % 10 == 0) env["detail." + pick(fields)] = pick(values);
    if (rng() % 10 == 0) env["detail"] = json::array({detail});
    std::vector<std::size_t> c;
    routes->bus_candidates(env, c);
    ASSERT_TRUE(std::is_sorted(c.begin(), c.end()));
    for (std::size_t i : routed(*routes, env)) {
      ASSERT_TRUE(std::binary_search(c.begin(), c.end(), i))
          << "flow " << i << " routes " << env.dump() << " but is not a candidate";
    }
    pruned += routes->flows().size() - c.size();
  }
  EXPECT_GT(pruned, 0u) << "the index never left a flow out";
}

}  // namespace evr::flow
