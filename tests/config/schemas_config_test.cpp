// The `schemas:` section of the main configuration (schema discovery).
#include <gtest/gtest.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

using test::TempDir;
using test::write_file;

LoadResult load_schemas_yaml(const TempDir& dir, const std::string& yaml) {
  write_file(dir / "evrouter.yaml", yaml);
  return config::load(dir / "evrouter.yaml");
}

TEST(SchemasConfig, DefaultsToOnWithBoundedMemory) {
  TempDir dir;
  auto r = load_schemas_yaml(dir, "flows: []\n");
  ASSERT_TRUE(r.ok());
  const auto& s = r.config->schemas;
  EXPECT_TRUE(s.enabled);
  EXPECT_TRUE(s.redact.empty());
  EXPECT_TRUE(s.redact_defaults);
  EXPECT_EQ(s.max_fields, 2000);
  EXPECT_EQ(s.max_schemas, 1000);
  EXPECT_EQ(s.max_array_items, 20);
  EXPECT_EQ(s.sample_rate, 1.0);
  EXPECT_EQ(s.max_rate, 10);
  EXPECT_EQ(s.queue, 10000);
  EXPECT_EQ(s.flush_interval, std::chrono::seconds(5));
}

TEST(SchemasConfig, ReadsEveryKey) {
  TempDir dir;
  auto r = load_schemas_yaml(
      dir,
      "schemas:\n  enabled: false\n  redact: [note, customer.tags]\n  redact_defaults: false\n"
      "  max_fields: 100\n  max_schemas: 5\n  max_array_items: 3\n  sample_rate: 0.25\n"
      "  max_rate: 0\n  queue: 50\n  flush_interval: 30s\nflows: []\n");
  ASSERT_TRUE(r.ok());
  const auto& s = r.config->schemas;
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.redact, (std::vector<std::string>{"note", "customer.tags"}));
  EXPECT_FALSE(s.redact_defaults);
  EXPECT_EQ(s.max_fields, 100);
  EXPECT_EQ(s.max_schemas, 5);
  EXPECT_EQ(s.max_array_items, 3);
  EXPECT_EQ(s.sample_rate, 0.25);
  EXPECT_EQ(s.max_rate, 0);
  EXPECT_EQ(s.queue, 50);
  EXPECT_EQ(s.flush_interval, std::chrono::seconds(30));
}

TEST(SchemasConfig, ReportsBadValuesWithTheirPosition) {
  TempDir dir;
  const std::string file = (dir / "evrouter.yaml").string();
  auto r = load_schemas_yaml(
      dir, "schemas:\n  sample_rate: 2\n  max_fields: 0\n  redact: {a: 1}\n  maxfields: 3\nflows: []\n");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> lines;
  for (const auto& d : r.diagnostics) lines.push_back(d.str());
  ASSERT_EQ(lines.size(), 4U) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], file + ":2:16: error: schemas.sample_rate: expected a number between 0 and 1, found 2");
  EXPECT_NE(lines[1].find(file + ":3:15: error: schemas.max_fields:"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(file + ":4:11: error: schemas.redact: expected a sequence of key names or paths"),
            std::string::npos)
      << lines[2];
  EXPECT_NE(lines[3].find(file + ":5:3: error: schemas.maxfields: unknown key 'maxfields'"),
            std::string::npos)
      << lines[3];
}

}  // namespace
}  // namespace evr::config
