// docs/openapi.json against the daemon's real admin router: the same (method, path) set both ways, the
// document served by GET /v1/openapi, and real answers of GET routes valid against their documented schemas.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "daemon/admin_api.h"
#include "e2e/pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

json load_document() {
  std::ifstream in(std::string(EVROUTER_SOURCE_DIR) + "/docs/openapi.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

const json& resolve(const json& doc, const json& schema) {
  if (!schema.contains("$ref")) return schema;
  const std::string ref = schema["$ref"];
  const std::string prefix = "#/components/schemas/";
  EXPECT_EQ(ref.rfind(prefix, 0), 0U) << ref;
  return doc["components"]["schemas"].at(ref.substr(prefix.size()));
}

// Checks `value` against the subset of JSON Schema the document uses: type, nullable, enum, required,
// properties, additionalProperties, items, allOf. Appends one line per mismatch to `errors`.
void validate(const json& doc, const json& schema_in, const json& value, const std::string& where,
              std::vector<std::string>& errors) {
  const json& schema = resolve(doc, schema_in);
  if (schema.contains("allOf")) {
    for (const auto& s : schema["allOf"]) validate(doc, s, value, where, errors);
  }
  if (value.is_null()) {
    if (schema.contains("type") && !schema.value("nullable", false)) errors.push_back(where + ": null");
    return;
  }
  if (schema.contains("type")) {
    const std::string t = schema["type"];
    const bool ok = (t == "object" && value.is_object()) || (t == "array" && value.is_array()) ||
                    (t == "string" && value.is_string()) || (t == "integer" && value.is_number_integer()) ||
                    (t == "number" && value.is_number()) || (t == "boolean" && value.is_boolean());
    if (!ok) {
      errors.push_back(where + ": expected " + t + ", got " + value.dump());
      return;
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == value;
    if (!found) errors.push_back(where + ": " + value.dump() + " not in enum");
  }
  if (value.is_object()) {
    for (const auto& r : schema.value("required", json::array())) {
      if (!value.contains(r.get<std::string>()))
        errors.push_back(where + ": missing " + r.get<std::string>());
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (schema.contains("properties") && schema["properties"].contains(it.key())) {
        validate(doc, schema["properties"][it.key()], it.value(), where + "." + it.key(), errors);
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
        validate(doc, schema["additionalProperties"], it.value(), where + "." + it.key(), errors);
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      validate(doc, schema["items"], value[i], where + "[" + std::to_string(i) + "]", errors);
    }
  }
}

}  // namespace

TEST_F(PipelineTest, OpenApiDocumentMatchesTheRouterAndItsAnswers) {
  auto cfg = make_config();
  cfg.flows[0].name = "openapi-orders";
  start(cfg);
  const admin::Router router = daemon::make_admin_router(*daemon_);
  const json doc = load_document();
  ASSERT_EQ(doc["openapi"].get<std::string>().rfind("3.0", 0), 0U);
  ASSERT_TRUE(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer");
  ASSERT_TRUE(doc["components"]["schemas"].contains("Error"));

  std::set<std::pair<std::string, std::string>> documented;
  for (auto p = doc["paths"].begin(); p != doc["paths"].end(); ++p) {
    for (auto m = p.value().begin(); m != p.value().end(); ++m) {
      std::string method = m.key();
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.emplace(method, p.key());
      // Every operation answers JSON errors with the documented error body, and documents a 2xx/3xx answer.
      bool has_success = false;
      for (auto r = m.value()["responses"].begin(); r != m.value()["responses"].end(); ++r) {
        has_success = has_success || r.key()[0] == '2' || r.key()[0] == '3';
      }
      EXPECT_TRUE(has_success) << method << " " << p.key();
      // Each {param} of the path is declared as a required path parameter, and nothing else is.
      std::set<std::string> in_path;
      for (std::size_t at = p.key().find('{'); at != std::string::npos; at = p.key().find('{', at + 1)) {
        in_path.insert(p.key().substr(at + 1, p.key().find('}', at) - at - 1));
      }
      std::set<std::string> declared;
      for (const auto& param : m.value().value("parameters", json::array())) {
        if (param["in"] != "path") continue;
        declared.insert(param["name"].get<std::string>());
        EXPECT_TRUE(param.value("required", false)) << p.key() << " " << param["name"];
      }
      EXPECT_EQ(in_path, declared) << method << " " << p.key();
      // Routes behind the token say so (401); the open ones have an empty security list.
      const bool open = m.value().contains("security") && m.value()["security"].empty();
      EXPECT_NE(open, m.value()["responses"].contains("401")) << method << " " << p.key();
    }
  }
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& r : router.routes()) routed.emplace(r.method, r.path);
  for (const auto& r : routed) {
    EXPECT_TRUE(documented.count(r)) << "not in docs/openapi.json: " << r.first << " " << r.second;
  }
  for (const auto& d : documented) {
    EXPECT_TRUE(routed.count(d)) << "documented but not routed: " << d.first << " " << d.second;
  }

  // Traffic so the lists are not empty: one delivered, one dead (the sink refuses the standard lane).
  sink_.set_handler([](const Recorded& r) {
    Reply reply;
    if (r.target.find("/api/orders/priority") == std::string::npos) reply.status = 400;
    return reply;
  });
  ASSERT_EQ(post(order("150.00")).status, 200);
  ASSERT_EQ(post(order("5.00")).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  admin::Request stats_req{"GET", "/v1/stats", {}, {}, ""};
  for (int i = 0; i < 250; ++i) {
    auto j = json::parse(router.route_now(stats_req).body);
    if (j["deliveries"]["dead"] == 1 && j["deliveries"]["delivered"] == 1) break;
    std::this_thread::sleep_for(20ms);
  }

  auto check = [&](const std::string& path_template, const std::string& path,
                   std::map<std::string, std::string> query = {}) {
    admin::Request req{"GET", path, std::move(query), {}, ""};
    const auto resp = router.route_now(req);
    ASSERT_EQ(resp.status, 200U) << path << ": " << resp.body;
    const auto& op = doc["paths"][path_template]["get"];
    const auto& schema = op["responses"]["200"]["content"]["application/json"]["schema"];
    std::vector<std::string> errors;
    validate(doc, schema, json::parse(resp.body), path, errors);
    EXPECT_TRUE(errors.empty()) << path << ":\n" << ::testing::PrintToString(errors) << "\n" << resp.body;
  };
  check("/healthz", "/healthz");
  check("/readyz", "/readyz");
  check("/v1/flows", "/v1/flows");
  check("/v1/flows/{name}", "/v1/flows/openapi-orders");
  check("/v1/flows/{name}/stats", "/v1/flows/openapi-orders/stats", {{"window", "1m"}});
  check("/v1/connections", "/v1/connections");
  check("/v1/stats", "/v1/stats");
  check("/v1/events", "/v1/events");
  check("/v1/dlq", "/v1/dlq");
  admin::Request list{"GET", "/v1/dlq", {}, {}, ""};
  const auto dead = json::parse(router.route_now(list).body);
  ASSERT_EQ(dead["dead_letters"].size(), 1U);
  check("/v1/dlq/{delivery_id}", "/v1/dlq/" + std::to_string(dead["dead_letters"][0]["id"].get<int64_t>()));
  check("/v1/events/{id}", "/v1/events/" + dead["dead_letters"][0]["event"]["id"].get<std::string>());

  // A window replay's answer (POST, dry run) has its documented shape.
  {
    admin::Request req{"POST",
                       "/v1/flows/openapi-orders/replay",
                       {},
                       {},
                       R"({"from":"2020-01-01T00:00:00Z","to":"2099-01-01T00:00:00Z","dry_run":true})"};
    const auto resp = router.route_now(req);
    ASSERT_EQ(resp.status, 200U) << resp.body;
    const auto& schema = doc["paths"]["/v1/flows/{name}/replay"]["post"]["responses"]["200"]["content"]
                            ["application/json"]["schema"];
    std::vector<std::string> replay_errors;
    validate(doc, schema, json::parse(resp.body), "replay", replay_errors);
    EXPECT_TRUE(replay_errors.empty()) << ::testing::PrintToString(replay_errors) << "\n" << resp.body;
    EXPECT_EQ(json::parse(resp.body)["events_scanned"], 2);
  }

  // An error answer has the documented error body.
  admin::Request missing{"GET", "/v1/flows/nope", {}, {}, ""};
  std::vector<std::string> errors;
  validate(doc, doc["components"]["schemas"]["Error"], json::parse(router.route_now(missing).body), "error",
           errors);
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);

  // GET /v1/openapi serves this very document.
  admin::Request openapi{"GET", "/v1/openapi", {}, {}, ""};
  const auto served = router.route_now(openapi);
  ASSERT_EQ(served.status, 200U);
  EXPECT_EQ(served.content_type, "application/json");
  EXPECT_TRUE(json::parse(served.body) == doc) << "GET /v1/openapi differs from docs/openapi.json: rebuild";
}
