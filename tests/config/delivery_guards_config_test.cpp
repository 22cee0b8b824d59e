// Loader: responses (classification), breaker and concurrency (fixed, adaptive) keys.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "evrouter/config/loader.h"
#include "evrouter/destination/retry.h"
#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;

struct GuardFixture {
  test::TempDir dir;

  GuardFixture() { ::setenv("EVR_TEST_SECRET", "s3cret", 1); }
  LoadResult load(const std::string& connection_keys, const std::string& destination_keys = "") {
    test::write_file(dir / "evrouter.yaml",
                     "connections:\n  sink:\n    base_uri: http://127.0.0.1:9000/api\n" + connection_keys +
                         "flows: [" + (dir / "flows").string() + "]\n");
    test::write_file(dir / "flows" / "orders.yaml", R"(name: orders
source:
  type: shopify
  secret: {env: EVR_TEST_SECRET}
branches:
  - name: all
    destinations:
      - connection: sink
        path: /orders
)" + destination_keys);
    LoadOptions o;
    return config::load(dir / "evrouter.yaml", o);
  }
};

std::string diags(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

TEST(DeliveryGuardsConfig, Defaults) {
  GuardFixture fx;
  const auto r = fx.load("");
  ASSERT_TRUE(r.ok()) << diags(r);
  const auto& c = r.config->connections.at("sink");
  EXPECT_EQ(c.concurrency, 8);
  EXPECT_FALSE(c.adaptive.enabled);
  EXPECT_EQ(c.breaker.failures, 5);
  EXPECT_EQ(c.breaker.cooldown, std::chrono::seconds(30));
  EXPECT_TRUE(c.responses.success.empty());
  EXPECT_FALSE(r.config->flows.at(0).branches.at(0).destinations.at(0).responses.has_value());
}

TEST(DeliveryGuardsConfig, ParsesEveryShape) {
  GuardFixture fx;
  const auto r = fx.load(R"(    concurrency: {adaptive: true, max: 32, initial: 2}
    breaker: {failures: 0, cooldown: 200ms}
    responses: {success: [2xx, 409], retry: ["404"], fail: [5XX]}
)",
                         "        responses: {success: [409]}\n");
  ASSERT_TRUE(r.ok()) << diags(r);
  const auto& c = r.config->connections.at("sink");
  EXPECT_TRUE(c.adaptive.enabled);
  EXPECT_EQ(c.concurrency, 32);
  EXPECT_EQ(c.adaptive.initial, 2);
  EXPECT_EQ(c.breaker.failures, 0);
  EXPECT_EQ(c.breaker.cooldown, std::chrono::milliseconds(200));
  EXPECT_EQ(c.responses.success, (std::vector<std::string>{"2xx", "409"}));
  EXPECT_EQ(c.responses.retry, (std::vector<std::string>{"404"}));
  EXPECT_EQ(c.responses.fail, (std::vector<std::string>{"5xx"}));
  const auto& d = r.config->flows.at(0).branches.at(0).destinations.at(0);
  ASSERT_TRUE(d.responses.has_value());
  EXPECT_EQ(d.responses->success, (std::vector<std::string>{"409"}));

  GuardFixture fx2;
  const auto r2 = fx2.load("    concurrency: adaptive\n");
  ASSERT_TRUE(r2.ok()) << diags(r2);
  EXPECT_TRUE(r2.config->connections.at("sink").adaptive.enabled);
  EXPECT_EQ(r2.config->connections.at("sink").concurrency, 64);

  GuardFixture fx3;
  const auto r3 = fx3.load("    concurrency: 3\n");
  ASSERT_TRUE(r3.ok()) << diags(r3);
  EXPECT_FALSE(r3.config->connections.at("sink").adaptive.enabled);
  EXPECT_EQ(r3.config->connections.at("sink").concurrency, 3);
}

TEST(DeliveryGuardsConfig, PreciseErrors) {
  GuardFixture fx;
  const auto r = fx.load(R"(    concurrency: {adaptive: true, max: 4, initial: 9, step: 2}
    breaker: {failures: -1, cooldown: soon}
    responses: {success: [2xx, 6xx, 409], retry: [409, 2xx], fail: nope, later: [500]}
)");
  EXPECT_FALSE(r.ok());
  const std::string d = diags(r);
  EXPECT_NE(d.find("evrouter.yaml:4:52: error: connections.sink.concurrency.initial: expected an integer "
                   "between 1 and max (4), found 9"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("connections.sink.concurrency.step: unknown key 'step'"), std::string::npos) << d;
  EXPECT_NE(
      d.find("evrouter.yaml:5:25: error: connections.sink.breaker.failures: expected an integer between "
             "0 and 1000000, found -1"),
      std::string::npos)
      << d;
  EXPECT_NE(d.find("connections.sink.breaker.cooldown: expected a duration"), std::string::npos) << d;
  EXPECT_NE(d.find("evrouter.yaml:6:32: error: connections.sink.responses.success[1]: expected a status code "
                   "between 100 and 599 (e.g. 409) or a class 1xx..5xx, found '6xx'"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("evrouter.yaml:6:51: error: connections.sink.responses.retry[0]: 409 is already listed in "
                   "success (line 6); a status may be in one list only"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("connections.sink.responses.retry[1]: 2xx is already listed in success"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("connections.sink.responses.fail: expected a sequence of status codes"), std::string::npos)
      << d;
  EXPECT_NE(d.find("connections.sink.responses.later: unknown key 'later'"), std::string::npos) << d;
}

TEST(DeliveryGuardsConfig, InitialNeedsAdaptive) {
  GuardFixture fx;
  const auto r = fx.load("    concurrency: {max: 4, initial: 2}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(diags(r).find("concurrency.initial: initial applies to adaptive concurrency only"),
            std::string::npos)
      << diags(r);
}

TEST(Classifier, BuiltInAndConfigured) {
  using destination::Verdict;
  const destination::Classifier builtin;
  EXPECT_EQ(builtin.status(200), Verdict::success);
  EXPECT_EQ(builtin.status(204), Verdict::success);
  EXPECT_EQ(builtin.status(408), Verdict::retry);
  EXPECT_EQ(builtin.status(425), Verdict::retry);
  EXPECT_EQ(builtin.status(429), Verdict::retry);
  EXPECT_EQ(builtin.status(503), Verdict::retry);
  EXPECT_EQ(builtin.status(404), Verdict::fail);
  EXPECT_EQ(builtin.status(301), Verdict::fail);
  http::Result network;
  network.error = "connect: Connection refused";
  EXPECT_EQ(builtin(network), Verdict::retry);

  Responses r;
  r.success = {"409"};
  r.retry = {"4xx"};
  r.fail = {"503", "2xx"};
  const destination::Classifier c(r);
  EXPECT_EQ(c.status(409), Verdict::success);  // a code wins over a class
  EXPECT_EQ(c.status(404), Verdict::retry);
  EXPECT_EQ(c.status(503), Verdict::fail);
  EXPECT_EQ(c.status(500), Verdict::retry);  // not named: built-in
  EXPECT_EQ(c.status(200), Verdict::fail);
  EXPECT_EQ(c(network), Verdict::retry);
}

}  // namespace
}  // namespace evr::config
