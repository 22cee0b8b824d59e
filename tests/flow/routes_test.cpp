// Routing: first/all modes, branches with several destinations (one lane each), the default branch.
#include "evrouter/flow/routes.h"

#include <gtest/gtest.h>

namespace evr::flow {
namespace {

config::Branch branch(const std::string& name, const char* match, std::vector<std::string> destinations) {
  config::Branch b;
  b.name = name;
  if (match != nullptr) b.match = nlohmann::json::parse(match);
  for (auto& d : destinations) {
    config::Destination dest;
    dest.name = d;
    dest.connection = "c";
    b.destinations.push_back(dest);
  }
  return b;
}

// Flow "f": big (total > 100) -> a, b; create (orders/create) -> c; default -> d.
std::vector<std::string> route(config::Flow::Mode mode, const char* type, int total,
                               bool with_default = true) {
  config::Config cfg;
  config::Flow f;
  f.name = "f";
  f.mode = mode;
  f.branches.push_back(branch("big", R"({"detail": {"total": [{"numeric": [">", 100]}]}})", {"a", "b"}));
  f.branches.push_back(branch("create", R"({"detail-type": ["orders/create"]})", {"c"}));
  if (with_default) {
    auto d = branch("default", nullptr, {"d"});
    d.is_default = true;
    f.branches.push_back(d);
  }
  cfg.flows.push_back(f);
  auto routes = Routes::build(cfg, [](const config::Flow&) { return std::string("listener"); });
  std::vector<std::string> lanes;
  routes->flows().at(0).route(nlohmann::json{{"detail-type", type}, {"detail", {{"total", total}}}}, lanes);
  return lanes;
}

using V = std::vector<std::string>;

TEST(Routes, ModeFirstTakesTheFirstMatchingBranchWithAllItsDestinations) {
  EXPECT_EQ(route(config::Flow::Mode::first, "orders/create", 150), (V{"f/big/a", "f/big/b"}));
  EXPECT_EQ(route(config::Flow::Mode::first, "orders/create", 50), (V{"f/create/c"}));
}

TEST(Routes, ModeAllTakesEveryMatchingBranch) {
  EXPECT_EQ(route(config::Flow::Mode::all, "orders/create", 150), (V{"f/big/a", "f/big/b", "f/create/c"}));
  EXPECT_EQ(route(config::Flow::Mode::all, "orders/updated", 150), (V{"f/big/a", "f/big/b"}));
}

TEST(Routes, DefaultBranchOnlyWhenNothingMatchedInBothModes) {
  EXPECT_EQ(route(config::Flow::Mode::first, "orders/updated", 50), (V{"f/default/d"}));
  EXPECT_EQ(route(config::Flow::Mode::all, "orders/updated", 50), (V{"f/default/d"}));
  EXPECT_EQ(route(config::Flow::Mode::all, "orders/create", 50), (V{"f/create/c"}));
  EXPECT_EQ(route(config::Flow::Mode::first, "orders/updated", 50, false), V{});
  EXPECT_EQ(route(config::Flow::Mode::all, "orders/updated", 50, false), V{});
}

}  // namespace
}  // namespace evr::flow
