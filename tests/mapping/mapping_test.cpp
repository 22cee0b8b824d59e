// A destination's whole mapping (body, URI, headers) rendered from a stored event, the example flow in
// flows/examples, and the loader's diagnostics for mappings and default branches.
#include "evrouter/mapping/mapping.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "evrouter/config/loader.h"
#include "evrouter/flow/routes.h"
#include "support/harness.h"

namespace evr::mapping {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

event::Event order_event() {
  event::Event e;
  e.id = "01JTESTEVENT0000000000000A";
  e.flow = "orders";
  e.source = "shopify";
  e.type = "orders/create";
  e.time_ms = 1700000000123;
  e.shop_domain = "demo.myshopify.com";
  e.webhook_id = "wh-1";
  e.correlation_id = "corr-1";
  e.payload = test::test_data("shopify/orders-create.json");
  return e;
}

config::Destination destination() {
  config::Destination d;
  d.name = "os";
  d.connection = "outsystems";
  d.method = "PUT";
  d.path = "/orders/{order_id}";
  d.headers = {{"X-Order", "{name} ({evrouter.event-type})"}, {"X-Static", "yes"}};
  d.input_paths = {{"order_id", "$.detail.id", config::InputPath::As::value, {}},
                   {"name", "$.detail.name", config::InputPath::As::value, {}},
                   {"total", "$.detail.total_price", config::InputPath::As::number, {}},
                   {"skus", "$.detail.line_items[*].sku", config::InputPath::As::value, {}}};
  d.input_template = ojson::parse(R"({"OrderId": "<order_id>", "Total": "<total>", "Skus": "<skus>",
                                      "Label": "<name> @ <evrouter.event-id>"})");
  return d;
}

TEST(Mapping, RendersBodyPathAndHeadersFromTheStoredEvent) {
  auto m = Mapping::compile(destination());
  ASSERT_TRUE(m.has_value());
  Mapping::Request r;
  std::string error;
  ASSERT_TRUE(m->render(order_event(), 42, r, error)) << error;
  EXPECT_EQ(r.path, "/orders/6012345678901");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], std::make_pair(std::string("X-Order"), std::string("#1042 (orders/create)")));
  EXPECT_EQ(r.headers[1], std::make_pair(std::string("X-Static"), std::string("yes")));
  ASSERT_TRUE(r.body.has_value());
  EXPECT_EQ(*r.body, R"({"OrderId":6012345678901,"Total":193.86,"Skus":["MCS-CHR-M","WCT-OLV","WCB-01"],)"
                     R"("Label":"#1042 @ 01JTESTEVENT0000000000000A"})");
}

TEST(Mapping, WithoutTemplateTheBodyIsThePayload) {
  auto d = destination();
  d.input_template.reset();
  auto m = Mapping::compile(d);
  ASSERT_TRUE(m.has_value());  // the path still uses a variable
  Mapping::Request r;
  std::string error;
  ASSERT_TRUE(m->render(order_event(), 1, r, error));
  EXPECT_FALSE(r.body.has_value());
  EXPECT_EQ(r.path, "/orders/6012345678901");
}

TEST(Mapping, NothingToMapCompilesToNothing) {
  config::Destination d;
  d.path = "/orders";
  d.headers = {{"X-A", "b"}};
  d.input_paths = {{"unused", "$.detail.id", config::InputPath::As::value, {}}};
  EXPECT_FALSE(Mapping::compile(d).has_value());
}

TEST(Mapping, MissingPathVariableIsAnErrorNotAWrongUri) {
  auto d = destination();
  d.input_paths[0].path = "$.detail.no_such_field";
  auto m = Mapping::compile(d);
  ASSERT_TRUE(m.has_value());
  Mapping::Request r;
  std::string error;
  EXPECT_FALSE(m->render(order_event(), 1, r, error));
  EXPECT_EQ(error, "mapping: path variable {order_id} has no value for this event");
}

TEST(Mapping, CompileNamesThePartAtFault) {
  auto bad_path = destination();
  bad_path.input_paths[1].path = "$..name";
  EXPECT_THROW(
      {
        try {
          (void)Mapping::compile(bad_path);
        } catch (const MappingError& e) {
          EXPECT_STREQ(
              e.what(),
              "input_paths.name: invalid path '$..name' at character 2: recursive descent (..) is not "
              "supported");
          throw;
        }
      },
      MappingError);
  auto bad_header = destination();
  bad_header.headers.emplace_back("X-Bad", "{nope}");
  try {
    (void)Mapping::compile(bad_header);
    FAIL() << "accepted";
  } catch (const MappingError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("headers.X-Bad: unknown variable {nope}", 0), 0u) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------
// The example flow: loads without a diagnostic against the sample config and maps the fixture order.

class ChangeDir {
 public:
  explicit ChangeDir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ChangeDir() { fs::current_path(old_); }

 private:
  fs::path old_;
};

TEST(ExampleFlow, ShopifyToOutSystemsLoadsAndMapsTheFixtureOrder) {
  ChangeDir cd(EVROUTER_SOURCE_DIR);
  ::setenv("SHOPIFY_WEBHOOK_SECRET", "shpss_example", 1);
  config::LoadOptions o;
  o.flow_files = std::vector<fs::path>{"flows/examples/shopify-to-outsystems.yaml"};
  const auto result = config::load("config/evrouter.yaml", o);
  std::string diags;
  for (const auto& d : result.diagnostics) diags += d.str() + "\n";
  ASSERT_TRUE(result.ok()) << diags;
  EXPECT_TRUE(result.diagnostics.empty()) << diags;
  const config::Flow& f = result.config->flows.at(0);
  EXPECT_EQ(f.name, "shopify-to-outsystems");
  ASSERT_EQ(f.branches.size(), 2u);
  EXPECT_TRUE(f.branches[1].is_default);
  const config::Destination& d = f.branches[0].destinations.at(0);

  auto m = Mapping::compile(d);
  ASSERT_TRUE(m.has_value());
  Mapping::Request r;
  std::string error;
  const event::Event e = order_event();
  ASSERT_TRUE(m->render(e, 9, r, error)) << error;
  EXPECT_EQ(r.path, "/orders/6012345678901");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].second, "demo.myshopify.com");
  EXPECT_EQ(r.headers[1].second, e.id);
  ASSERT_TRUE(r.body.has_value());
  const auto body = nlohmann::json::parse(*r.body);
  const auto order = nlohmann::json::parse(e.payload);
  EXPECT_EQ(body["OrderId"], 6012345678901);
  EXPECT_EQ(body["OrderNumber"], 1042);
  EXPECT_EQ(body["Name"], "#1042");
  EXPECT_EQ(body["CustomerEmail"], "mira.holt@example.com");
  EXPECT_EQ(body["CustomerName"], "Mira Holt");
  EXPECT_EQ(body["Total"], 193.86);
  EXPECT_TRUE(body["Total"].is_number());
  EXPECT_EQ(body["Currency"], "USD");
  EXPECT_EQ(body["ShipTo"], nlohmann::json::parse(R"({"City": "Brooklyn", "CountryCode": "US"})"));
  EXPECT_EQ(body["Skus"].size(), order["line_items"].size());
  EXPECT_EQ(body["Quantities"][0], order["line_items"][0]["quantity"]);
  EXPECT_EQ(body["Lines"], order["line_items"]);
  EXPECT_EQ(body["Source"], "shopify:demo.myshopify.com/orders/create");
  EXPECT_EQ(body["EvrouterEventId"], e.id);
  // Keys arrive in the order the template lists them.
  EXPECT_EQ(r.body->rfind(R"({"OrderId":6012345678901,"OrderNumber":1042,"Name":"#1042",)", 0), 0u)
      << *r.body;
}

TEST(ExampleFlow, IsNotLoadedByTheSampleConfig) {
  ChangeDir cd(EVROUTER_SOURCE_DIR);
  ::setenv("SHOPIFY_WEBHOOK_SECRET", "shpss_example", 1);
  const auto result = config::load("config/evrouter.yaml");
  ASSERT_TRUE(result.ok());
  for (const auto& f : result.config->flows) EXPECT_NE(f.name, "shopify-to-outsystems");
}

}  // namespace
}  // namespace evr::mapping
