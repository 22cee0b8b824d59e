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

namespace evr::flow {
namespace {

// The listener builds only the envelope members a flow reads (Flow::envelope_members): routing on that
// envelope must give the same lanes and ordering keys as on the whole one, for patterns on envelope
// members (including "exists": false, which an absent member would satisfy) and ordering keys on them.
TEST(Routes, TheEnvelopeMembersAFlowReadsRouteAsTheWholeEnvelope) {
  config::Config cfg;
  config::Flow f;
  f.name = "f";
  f.mode = config::Flow::Mode::all;
  f.branches.push_back(
      branch("shop", R"({"shop": ["a.myshopify.com"], "detail": {"n": [{"numeric": [">", 1]}]}})", {"a"}));
  f.branches.push_back(branch("no-webhook", R"({"webhook-id": [{"exists": false}]})", {"b"}));
  f.branches.push_back(branch("header", R"({"headers": {"x-shopify-api-version": ["2025-01"]}})", {"c"}));
  auto ordered = branch("ordered", R"({"detail-type": [{"prefix": "orders/"}]})", {"d"});
  ordered.destinations.at(0).ordering_key = "$.correlation-id";
  f.branches.push_back(ordered);
  cfg.flows.push_back(f);
  auto routes = Routes::build(cfg, [](const config::Flow&) { return std::string("listener"); });
  const Flow& flow = routes->flows().at(0);
  const uint32_t expected = event::envelope_member("shop") | event::envelope_member("webhook-id") |
                            event::envelope_member("headers") | event::envelope_member("detail-type") |
                            event::envelope_member("correlation-id");
  EXPECT_EQ(flow.envelope_members, expected);

  std::size_t routed = 0;
  for (const char* shop : {"a.myshopify.com", "b.myshopify.com"}) {
    for (const char* webhook_id : {"", "w-1"}) {
      for (const char* version : {"2025-01", "2024-10"}) {
        event::Event e;
        e.id = "01JD0000000000000000000000";
        e.source = "shopify";
        e.type = "orders/create";
        e.time_ms = 1764000000000;
        e.flow = "f";
        e.shop_domain = shop;
        e.webhook_id = webhook_id;
        e.correlation_id = "corr-1";
        e.headers = {{"x-shopify-api-version", version}};
        const nlohmann::json detail = {{"n", 2}};
        std::vector<std::string> whole_lanes, reduced_lanes;
        std::vector<std::optional<std::string>> whole_keys, reduced_keys;
        nlohmann::json whole = event::envelope(e, detail);
        if (std::string_view(webhook_id).empty()) whole.erase("webhook-id");  // as a source without one
        nlohmann::json reduced = event::envelope(e, detail, flow.envelope_members);
        if (std::string_view(webhook_id).empty()) reduced.erase("webhook-id");
        EXPECT_FALSE(reduced.contains("version"));
        EXPECT_FALSE(reduced.contains("time"));
        flow.route(whole, whole_lanes, &whole_keys);
        flow.route(reduced, reduced_lanes, &reduced_keys);
        EXPECT_EQ(reduced_lanes, whole_lanes) << shop << " " << webhook_id << " " << version;
        EXPECT_EQ(reduced_keys, whole_keys);
        routed += whole_lanes.size();
      }
    }
  }
  EXPECT_GT(routed, 8U);
}

TEST(Routes, AnOrderingKeyOnTheWholeEnvelopeBuildsEveryMember) {
  config::Config cfg;
  config::Flow f;
  f.name = "f";
  auto b = branch("all", nullptr, {"a"});
  b.destinations.at(0).ordering_key = "$";
  f.branches.push_back(b);
  cfg.flows.push_back(f);
  auto routes = Routes::build(cfg, [](const config::Flow&) { return std::string("listener"); });
  EXPECT_EQ(routes->flows().at(0).envelope_members, event::kAllEnvelopeMembers);
  EXPECT_EQ(event::envelope(event::Event{}, nlohmann::json::object()).size(), 12U);
}

}  // namespace
}  // namespace evr::flow
