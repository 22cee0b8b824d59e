// Destination keys ordering_key and batch: defaults, values and file:line:column diagnostics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;

struct OrderingBatchFiles {
  test::TempDir dir;
  OrderingBatchFiles() { ::setenv("EVR_TEST_SECRET", "s3cret", 1); }
  LoadResult load(const std::string& destination) {
    test::write_file(dir / "evrouter.yaml",
                     "connections:\n  crm:\n    base_uri: http://127.0.0.1:9000/api\nflows: [" +
                         (dir / "flows").string() + "]\n");
    test::write_file(dir / "flows" / "orders.yaml",
                     "name: orders\nsource: {secret: {env: EVR_TEST_SECRET}}\nbranches:\n  - destinations:\n"
                     "      - connection: crm\n" +
                         destination);
    return config::load(dir / "evrouter.yaml", {});
  }
};

std::string ordering_batch_diagnostics(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

const Destination& destination(const LoadResult& r) {
  return r.config->flows.at(0).branches.at(0).destinations.at(0);
}

TEST(OrderingBatchConfig, DefaultsAreUnorderedAndUnbatched) {
  OrderingBatchFiles f;
  const auto r = f.load("");
  ASSERT_TRUE(r.ok()) << ordering_batch_diagnostics(r);
  EXPECT_EQ(destination(r).ordering_key, "");
  EXPECT_FALSE(destination(r).batch);
}

TEST(OrderingBatchConfig, ValuesAreRead) {
  OrderingBatchFiles f;
  const auto r = f.load(
      "        ordering_key: $.detail.customer.id\n"
      "        batch: {max_events: 50, max_bytes: 64KiB, max_wait: 1s}\n");
  ASSERT_TRUE(r.ok()) << ordering_batch_diagnostics(r);
  EXPECT_EQ(destination(r).ordering_key, "$.detail.customer.id");
  ASSERT_TRUE(destination(r).batch);
  EXPECT_EQ(destination(r).batch->max_events, 50);
  EXPECT_EQ(destination(r).batch->max_bytes, 64u * 1024);
  EXPECT_EQ(destination(r).batch->max_wait, std::chrono::seconds(1));

  const auto d = f.load("        batch: {}\n");
  ASSERT_TRUE(d.ok()) << ordering_batch_diagnostics(d);
  ASSERT_TRUE(destination(d).batch);
  EXPECT_EQ(*destination(d).batch, Batch{});
  EXPECT_EQ(destination(d).batch->max_events, 100);
  EXPECT_EQ(destination(d).batch->max_bytes, 1024u * 1024);
  EXPECT_EQ(destination(d).batch->max_wait, std::chrono::milliseconds(200));
}

TEST(OrderingBatchConfig, ProblemsArePinpointed) {
  OrderingBatchFiles f;
  auto r = f.load("        ordering_key: $.detail.lines[*].id\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(ordering_batch_diagnostics(r).find(
                "orders.yaml:6:23: error: branches[0].destinations[0].ordering_key: expected a path "
                "that selects one value, found a wildcard in '$.detail.lines[*].id'"),
            std::string::npos)
      << ordering_batch_diagnostics(r);

  r = f.load("        ordering_key: detail.id\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(ordering_batch_diagnostics(r).find(
                "orders.yaml:6:23: error: branches[0].destinations[0].ordering_key: invalid path"),
            std::string::npos)
      << ordering_batch_diagnostics(r);

  r = f.load("        batch: {max_events: 1000, max_bytes: 0, max_wait: 5, max_event: 1}\n");
  EXPECT_FALSE(r.ok());
  const std::string text = ordering_batch_diagnostics(r);
  EXPECT_NE(text.find("batch.max_events: expected an integer between 1 and 256, found 1000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("batch.max_bytes: expected a size greater than zero"), std::string::npos) << text;
  EXPECT_NE(text.find("batch.max_wait: expected a duration with a unit"), std::string::npos) << text;
  EXPECT_NE(text.find("batch.max_event: unknown key 'max_event' (did you mean 'max_events'?)"),
            std::string::npos)
      << text;

  r = f.load(
      "        path: /orders/{id}\n"
      "        input_paths: {id: $.detail.id}\n"
      "        batch: {max_events: 10}\n");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(ordering_batch_diagnostics(r).find(
                "orders.yaml:8:16: error: branches[0].destinations[0].batch: a batched destination sends "
                "many events in one request: its path cannot use {variables} (found '/orders/{id}')"),
            std::string::npos)
      << ordering_batch_diagnostics(r);
}

}  // namespace
}  // namespace evr::config
