// Loading webhook and bus sources and the publish section: the model and the diagnostics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "evrouter/common/crypto.h"
#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;

const char* kMainWithPublish = R"(publish:
  max_entries: 50
  keys:
    - name: orders-service
      key: {env: EVR_TEST_PUBLISH_KEY}
      sources: [app.orders, "app.billing.*"]
connections:
  sink:
    base_uri: http://127.0.0.1:9000
flows: [flows]
)";

struct SourcesFixture {
  test::TempDir dir;
  SourcesFixture() {
    ::setenv("EVR_TEST_GH_SECRET", "gh", 1);
    ::setenv("EVR_TEST_PUBLISH_KEY", "pk", 1);
    ::setenv("EVR_TEST_SW", ("whsec_" + crypto::base64_encode("key")).c_str(), 1);
    ::setenv("EVR_TEST_SW_BAD", "whsec_not base64!", 1);
  }
  void main(const std::string& text) { test::write_file(dir / "evrouter.yaml", text); }
  void flow(const std::string& name, const std::string& text) {
    test::write_file(dir / "flows" / name, text);
  }
  LoadResult load() {
    const fs::path old = fs::current_path();
    fs::current_path(dir.path());
    auto r = config::load("evrouter.yaml");
    fs::current_path(old);
    return r;
  }
};

std::string all(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

bool has(const LoadResult& r, const std::string& line) {
  for (const auto& d : r.diagnostics) {
    if (d.str() == line) return true;
  }
  return false;
}

constexpr const char* kBranches = R"(branches:
  - destinations: [{connection: sink}]
)";

TEST(SourcesConfig, GitHubWebhookSource) {
  SourcesFixture fx;
  fx.main(kMainWithPublish);
  fx.flow("github.yaml", std::string(R"(name: github
source:
  type: webhook
  name: github
  verify:
    type: hmac
    header: X-Hub-Signature-256
    algorithm: sha256
    encoding: hex
    prefix: "sha256="
    secrets: [{env: EVR_TEST_GH_SECRET}]
  type_header: X-GitHub-Event
  id_header: X-GitHub-Delivery
  keep_headers: [X-GitHub-Hook-ID]
  topics: [push, pull_request]
)") + kBranches);
  fx.flow("bus.yaml", std::string(R"(name: app-bus
source: {type: bus, sources: ["app.*"]}
)") + kBranches);
  auto r = fx.load();
  ASSERT_TRUE(r.ok()) << all(r);
  EXPECT_TRUE(r.diagnostics.empty()) << all(r);
  const Config& c = *r.config;
  const Source& gh = c.flows.at(1).source;
  EXPECT_EQ(gh.type, "webhook");
  EXPECT_EQ(gh.name, "github");
  EXPECT_EQ(gh.verify.type, Verify::Type::hmac);
  EXPECT_EQ(gh.verify.header, "X-Hub-Signature-256");
  EXPECT_EQ(gh.verify.prefix, "sha256=");
  EXPECT_EQ(gh.verify.encoding, Verify::Encoding::hex);
  ASSERT_EQ(gh.verify.secrets.size(), 1u);
  EXPECT_EQ(gh.type_header, "X-GitHub-Event");
  EXPECT_EQ(gh.id_header, "X-GitHub-Delivery");
  EXPECT_EQ(gh.keep_headers, std::vector<std::string>{"X-GitHub-Hook-ID"});
  const Source& bus = c.flows.at(0).source;
  EXPECT_EQ(bus.type, "bus");
  EXPECT_EQ(bus.sources, std::vector<std::string>{"app.*"});
  EXPECT_EQ(c.publish.max_entries, 50);
  ASSERT_EQ(c.publish.keys.size(), 1u);
  EXPECT_EQ(c.publish.keys[0].name, "orders-service");
  EXPECT_EQ(c.publish.keys[0].sources, (std::vector<std::string>{"app.orders", "app.billing.*"}));
}

TEST(SourcesConfig, VerifyKindsAndTheirDefaults) {
  SourcesFixture fx;
  fx.main(kMainWithPublish);
  fx.flow("a.yaml", std::string(R"(name: a
source:
  type: webhook
  verify: {type: standard-webhooks, secret: {env: EVR_TEST_SW}, tolerance: 2m}
)") + kBranches);
  fx.flow("b.yaml", std::string(R"(name: b
source:
  type: webhook
  verify: {type: basic, username: producer, password: {env: EVR_TEST_GH_SECRET}}
  event_type: record.changed
)") + kBranches);
  fx.flow("c.yaml", std::string(R"(name: c
source:
  type: webhook
  verify: none
)") + kBranches);
  auto r = fx.load();
  ASSERT_TRUE(r.ok()) << all(r);
  const auto& flows = r.config->flows;
  EXPECT_EQ(flows[0].source.verify.type, Verify::Type::standard_webhooks);
  EXPECT_EQ(flows[0].source.verify.tolerance, std::chrono::minutes(2));
  EXPECT_EQ(flows[0].source.name, "webhook");
  EXPECT_EQ(flows[1].source.verify.type, Verify::Type::basic);
  EXPECT_EQ(flows[1].source.verify.username, "producer");
  EXPECT_EQ(flows[1].source.event_type, "record.changed");
  EXPECT_EQ(flows[2].source.verify.type, Verify::Type::none);
  EXPECT_TRUE(has(r,
                  "flows/c.yaml:4:11: warning: source.verify: verify type none accepts every request that "
                  "reaches the listener URL; use it only on a private network or behind a proxy that "
                  "authenticates producers"))
      << all(r);
}

TEST(SourcesConfig, WebhookSourceErrors) {
  SourcesFixture fx;
  fx.main(kMainWithPublish);
  fx.flow("a.yaml", std::string(R"(name: a
source:
  type: webhook
  verify: {type: hmac, algorithm: md5, encoding: hex, secret: {env: EVR_TEST_GH_SECRET}}
  type_header: X-Event
  event_type: fixed
  keep_headers: [Authorization]
  secret: {env: EVR_TEST_GH_SECRET}
)") + kBranches);
  fx.flow("b.yaml", std::string(R"(name: b
source:
  type: webhook
  verify: {type: standard-webhooks, secret: {env: EVR_TEST_SW_BAD}}
)") + kBranches);
  fx.flow("c.yaml", std::string(R"(name: c
source:
  type: webhook
)") + kBranches);
  fx.flow("d.yaml", std::string(R"(name: d
source: {type: bus, listener_id: aaaaaaaaaaaaaaaaaaaaaaaa, sources: ["bad source"]}
)") + kBranches);
  auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(
      has(r,
          "flows/a.yaml:4:11: error: source.verify.header: required key 'header' is missing (expected "
          "the header carrying the signature, e.g. X-Hub-Signature-256)"))
      << all(r);
  EXPECT_TRUE(
      has(r, "flows/a.yaml:4:35: error: source.verify.algorithm: expected one of sha256, sha1, found 'md5'"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "flows/a.yaml:6:3: error: source.event_type: use one of event_type, type_header or "
                  "type_field, not both type_header and event_type"))
      << all(r);
  EXPECT_TRUE(
      has(r,
          "flows/a.yaml:7:18: error: source.keep_headers[0]: header Authorization carries credentials "
          "and is never stored"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "flows/a.yaml:8:3: error: source.secret: unknown key 'secret' (expected one of: type, "
                  "listener_id, verify, name, event_type, type_header, type_field, id_header, keep_headers, "
                  "topics)"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "flows/b.yaml:4:45: error: source.verify.secret: env EVR_TEST_SW_BAD is not a Standard "
                  "Webhooks secret (whsec_ followed by base64)"))
      << all(r);
  EXPECT_TRUE(
      has(r,
          "flows/c.yaml:3:3: error: source.verify: required key 'verify' is missing (expected how "
          "requests are authenticated: {type: hmac | standard-webhooks | basic | bearer | none, ...})"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "flows/d.yaml:2:21: error: source.listener_id: unknown key 'listener_id' (expected one of: "
                  "type, sources)"))
      << all(r);
}

TEST(SourcesConfig, PublishErrorsAndBusFlowWithoutKeys) {
  SourcesFixture fx;
  fx.main(R"(publish:
  max_entries: 0
  keys:
    - name: a
      key: plain-text
      sources: []
    - name: a
      sources: ["x y"]
connections:
  sink:
    base_uri: http://127.0.0.1:9000
flows: [flows]
)");
  fx.flow("bus.yaml", std::string("name: bus\nsource: {type: bus}\n") + kBranches);
  auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(r,
                  "evrouter.yaml:2:16: error: publish.max_entries: expected an integer between 1 and 1000, "
                  "found 0"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "evrouter.yaml:5:12: error: publish.keys[0].key: secrets are referenced, never inline: use "
                  "{env: NAME} or {file: PATH}"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "evrouter.yaml:6:16: error: publish.keys[0].sources: expected at least one source, e.g. "
                  "[app.orders]"))
      << all(r);
  EXPECT_TRUE(
      has(r, "evrouter.yaml:7:13: error: publish.keys[1].name: duplicate key name 'a' (first at line 4)"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "evrouter.yaml:7:7: error: publish.keys[1].key: required key 'key' is missing (expected a "
                  "secret reference {env: NAME} or {file: PATH})"))
      << all(r);
  EXPECT_TRUE(has(r,
                  "evrouter.yaml:8:17: error: publish.keys[1].sources[0]: expected a source such as "
                  "app.orders or app.* (1 to 256 characters from A-Z a-z 0-9 . _ / : -, and * for any run of "
                  "characters), found 'x y'"))
      << all(r);

  SourcesFixture quiet;
  quiet.main("connections:\n  sink:\n    base_uri: http://127.0.0.1:9000\nflows: [flows]\n");
  quiet.flow("bus.yaml", std::string("name: bus\nsource: {type: bus}\n") + kBranches);
  auto w = quiet.load();
  ASSERT_TRUE(w.ok()) << all(w);
  EXPECT_TRUE(
      has(w,
          "flows/bus.yaml:2:9: warning: source: flow 'bus' takes published events, but no publish key "
          "is configured (publish.keys in evrouter.yaml)"))
      << all(w);
}

}  // namespace
}  // namespace evr::config
