// store.type jetstream and its keys: defaults, values and file:line:column diagnostics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

struct JetStreamFiles {
  test::TempDir dir;
  JetStreamFiles() { ::setenv("EVR_TEST_SECRET", "s3cret", 1); }
  LoadResult load(const std::string& store) {
    test::write_file(dir / "evrouter.yaml",
                     "store:\n" + store +
                         "connections:\n  crm:\n    base_uri: http://127.0.0.1:9000/api\n"
                         "flows: [" +
                         (dir / "flows").string() + "]\n");
    test::write_file(dir / "flows" / "orders.yaml",
                     "name: orders\nsource: {secret: {env: EVR_TEST_SECRET}}\nbranches:\n  - destinations:\n"
                     "      - connection: crm\n");
    return config::load(dir / "evrouter.yaml", {});
  }
};

std::string jetstream_diagnostics(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

TEST(JetStreamConfig, DefaultsAndValues) {
  JetStreamFiles f;
  auto r = f.load("  type: jetstream\n");
  ASSERT_TRUE(r.ok()) << jetstream_diagnostics(r);
  EXPECT_EQ(r.config->store.type, "jetstream");
  EXPECT_EQ(r.config->store.servers, std::vector<std::string>{"nats://127.0.0.1:4222"});
  EXPECT_EQ(r.config->store.stream, "evrouter");
  EXPECT_EQ(r.config->store.replicas, 1);
  EXPECT_EQ(r.config->store.timeout, std::chrono::seconds(5));
  EXPECT_EQ(r.config->store.ack_wait, std::chrono::seconds(30));

  r = f.load(
      "  type: jetstream\n  servers: [nats://10.0.0.1:4222, tls://10.0.0.2:4222]\n  stream: events_prod\n"
      "  replicas: 3\n  timeout: 2s\n  ack_wait: 4s\n");
  ASSERT_TRUE(r.ok()) << jetstream_diagnostics(r);
  EXPECT_EQ(r.config->store.servers,
            (std::vector<std::string>{"nats://10.0.0.1:4222", "tls://10.0.0.2:4222"}));
  EXPECT_EQ(r.config->store.stream, "events_prod");
  EXPECT_EQ(r.config->store.replicas, 3);
  EXPECT_EQ(r.config->store.timeout, std::chrono::seconds(2));
  EXPECT_EQ(r.config->store.ack_wait, std::chrono::seconds(4));
}

TEST(JetStreamConfig, BadValuesHaveTheirPosition) {
  JetStreamFiles f;
  const auto r =
      f.load("  type: jetstrem\n  servers: [nats://ok:4222, http://x:4222]\n  stream: a.b\n  replicas: 7\n");
  EXPECT_FALSE(r.ok());
  const std::string text = jetstream_diagnostics(r);
  EXPECT_NE(
      text.find("evrouter.yaml:2:9: error: store.type: expected one of sqlite, jetstream, found 'jetstrem'"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("evrouter.yaml:3:29: error: store.servers[1]: expected a NATS URL"), std::string::npos)
      << text;
  EXPECT_NE(text.find("evrouter.yaml:4:11: error: store.stream: expected a stream name"), std::string::npos)
      << text;
  EXPECT_NE(
      text.find("evrouter.yaml:5:13: error: store.replicas: expected an integer between 1 and 5, found 7"),
      std::string::npos)
      << text;
}

TEST(JetStreamConfig, AckWaitBelowOneSecondIsRefused) {
  JetStreamFiles f;
  const auto r = f.load("  type: jetstream\n  ack_wait: 200ms\n");
  EXPECT_FALSE(r.ok());
  const std::string text = jetstream_diagnostics(r);
  EXPECT_NE(text.find("evrouter.yaml:3:13: error: store.ack_wait: expected a duration of at least 1s"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace evr::config
