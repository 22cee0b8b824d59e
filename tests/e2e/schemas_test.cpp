// Schema discovery end to end: Shopify order webhooks in, the inferred schema out of the admin API
// (fields and JSON Schema), redacted samples, persistence across a restart, and the CLI.
#include <gtest/gtest.h>

#include <thread>

#include "e2e/pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

class Schemas : public PipelineTest {
 protected:
  config::Config schema_config(const std::string& flow_name) {
    auto cfg = make_config();
    cfg.flows[0].name = flow_name;  // series of its own in the process-wide metrics registry
    cfg.admin.enabled = true;
    cfg.admin.port = 0;  // loopback, no token
    cfg.schemas.flush_interval = 100ms;
    return cfg;
  }

  PostResult admin(const std::string& target) {
    return http_request(daemon_->admin_port(), "GET", target, {}, "");
  }

  json get(const std::string& target) {
    auto r = admin(target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  template <typename F>
  json wait_json(const std::string& target, F ok) {
    json j;
    for (int i = 0; i < 500; ++i) {
      auto r = admin(target);
      j = json::parse(r.body, nullptr, false);
      if (r.status == 200 && ok(j)) return j;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "timed out waiting on " << target << ": " << j.dump();
    return j;
  }

  // Three orders; the second without "note".
  void post_orders() {
    for (int i = 0; i < 3; ++i) {
      auto j = json::parse(order_);
      j["id"] = 1000 + i;
      if (i == 1) j.erase("note");
      EXPECT_EQ(post(j.dump()).status, 200);
    }
  }

  static const json* field(const json& schema, const std::string& path) {
    for (const auto& f : schema["fields"]) {
      if (f["path"] == path) return &f;
    }
    return nullptr;
  }

  static bool has_type(const json& type, const std::string& t) {
    if (type.is_string()) return type == t || (t == "integer" && type == "number");
    for (const auto& x : type) {
      if (x == t || (t == "integer" && x == "number")) return true;
    }
    return false;
  }

  static std::string json_type(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer()) return "integer";
    if (v.is_number()) return "number";
    if (v.is_string()) return "string";
    if (v.is_object()) return "object";
    return "array";
  }
};

}  // namespace

TEST_F(Schemas, InfersShopifyOrdersAndKeepsThemAcrossRestarts) {
  start(schema_config("schemas-e2e"));
  post_orders();
  const std::string target = "/v1/schemas/shopify/orders/create";
  auto s = wait_json(target, [](const json& j) { return j.value("events", 0) == 3; });
  EXPECT_EQ(s["source"], "shopify");
  EXPECT_EQ(s["type"], "orders/create");
  ASSERT_NE(field(s, "id"), nullptr);
  EXPECT_EQ((*field(s, "id"))["types"], json({"integer"}));
  EXPECT_EQ((*field(s, "id"))["required"], true);
  ASSERT_NE(field(s, "note"), nullptr);
  EXPECT_EQ((*field(s, "note"))["required"], false);  // removed from one order
  EXPECT_EQ((*field(s, "note"))["seen"], 2);
  EXPECT_EQ((*field(s, "phone"))["types"], json({"null"}));
  EXPECT_EQ((*field(s, "line_items"))["types"], json({"array"}));
  EXPECT_EQ((*field(s, "line_items[].sku"))["types"], json({"string"}));
  EXPECT_EQ((*field(s, "customer"))["types"], json({"object"}));
  ASSERT_NE(field(s, "customer.email"), nullptr);
  EXPECT_EQ((*field(s, "customer.email"))["sample"], "[redacted]");
  EXPECT_EQ((*field(s, "email"))["sample"], "[redacted]");
  EXPECT_EQ((*field(s, "currency"))["sample"], "USD");
  EXPECT_EQ(s.dump().find("mira.holt@example.com"), std::string::npos);

  // The same schema by the encoded type and by ?type=.
  EXPECT_EQ(get("/v1/schemas/shopify/orders%2Fcreate")["events"], 3);
  EXPECT_EQ(get("/v1/schemas/shopify?type=orders%2Fcreate")["events"], 3);
  EXPECT_EQ(admin("/v1/schemas/shopify/orders/delete").status, 404);
  EXPECT_EQ(admin(target + "?format=xml").status, 400);

  auto list = get("/v1/schemas");
  ASSERT_EQ(list["schemas"].size(), 1U);
  EXPECT_EQ(list["schemas"][0]["source"], "shopify");
  EXPECT_EQ(list["schemas"][0]["type"], "orders/create");
  EXPECT_EQ(list["schemas"][0]["events"], 3);
  EXPECT_GT(list["schemas"][0]["fields"].get<int>(), 50);
  EXPECT_TRUE(list["schemas"][0]["first_seen"].is_string());
  EXPECT_EQ(list["stats"]["dropped"], 0);

  // The JSON Schema accepts the fixture at the top level: every required key is there and every
  // property's type allows the fixture's value.
  auto js_reply = admin(target + "?format=json-schema");
  ASSERT_EQ(js_reply.status, 200);
  const json js = json::parse(js_reply.body);
  EXPECT_EQ(js["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(js["type"], "object");
  const json fixture = json::parse(order_);
  for (const auto& k : js["required"]) EXPECT_TRUE(fixture.contains(k.get<std::string>())) << k;
  for (auto it = fixture.begin(); it != fixture.end(); ++it) {
    ASSERT_TRUE(js["properties"].contains(it.key())) << it.key();
    EXPECT_TRUE(has_type(js["properties"][it.key()]["type"], json_type(it.value()))) << it.key();
  }
  EXPECT_EQ(js["properties"]["total_price"]["type"], "string");
  EXPECT_EQ(js["properties"]["line_items"]["items"]["type"], "object");
  EXPECT_EQ(js["properties"]["customer"]["properties"]["email"]["examples"], json({"[redacted]"}));
  bool note_required = false;
  for (const auto& k : js["required"]) note_required = note_required || k == "note";
  EXPECT_FALSE(note_required);

  // Kept across a restart.
  daemon_->stop();
  daemon_.reset();
  start(schema_config("schemas-e2e"));
  auto again = get(target);
  EXPECT_EQ(again["events"], 3);
  EXPECT_EQ((*field(again, "note"))["required"], false);
  EXPECT_EQ(again["fields"], s["fields"]);
  EXPECT_EQ(post(order("5.00", 77)).status, 200);
  wait_json(target, [](const json& j) { return j.value("events", 0) == 4; });
}

TEST_F(Schemas, DisabledAnswers404) {
  auto cfg = schema_config("schemas-off");
  cfg.schemas.enabled = false;
  start(cfg);
  EXPECT_EQ(post(order("5.00")).status, 200);
  auto r = admin("/v1/schemas");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("schemas_disabled"), std::string::npos);
}

TEST_F(Schemas, Cli) {
  start(schema_config("schemas-cli"));
  post_orders();
  wait_json("/v1/schemas/shopify/orders/create", [](const json& j) { return j.value("events", 0) == 3; });
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon_->admin_port());
  auto run = [&](std::vector<std::string> args) {
    args.push_back("--admin-url");
    args.push_back(url);
    DaemonProcess p(std::move(args));
    const int status = p.wait(20s);
    const std::string out = read_file(p.log_path());
    std::filesystem::remove(p.log_path());
    return std::make_pair(status, out);
  };
  auto [ls, list] = run({"schemas", "list"});
  EXPECT_EQ(ls, 0) << list;
  EXPECT_NE(list.find("orders/create"), std::string::npos) << list;
  auto [gs, fields] = run({"schemas", "get", "shopify", "orders/create"});
  EXPECT_EQ(gs, 0) << fields;
  EXPECT_NE(fields.find("customer.email"), std::string::npos) << fields;
  EXPECT_NE(fields.find("optional"), std::string::npos) << fields;
  EXPECT_EQ(fields.find("mira.holt"), std::string::npos) << fields;
  auto [js, schema] = run({"schemas", "get", "shopify", "orders/create", "--format", "json-schema"});
  EXPECT_EQ(js, 0) << schema;
  EXPECT_NE(schema.find("draft/2020-12"), std::string::npos) << schema;
  auto [us, unknown] = run({"schemas", "get", "shopify", "nope/nope"});
  EXPECT_EQ(us, 1) << unknown;
  EXPECT_NE(unknown.find("404"), std::string::npos) << unknown;
}
