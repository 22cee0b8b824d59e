// store.retention: default, values (0s = forever) and file:line:column diagnostics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

LoadResult load(const test::TempDir& dir, const std::string& store) {
  ::setenv("EVR_TEST_SECRET", "s3cret", 1);
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

std::string retention_diagnostics(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

TEST(RetentionConfig, DefaultValuesAndErrors) {
  test::TempDir dir;
  auto r = load(dir, "  type: sqlite\n");
  ASSERT_TRUE(r.ok()) << retention_diagnostics(r);
  EXPECT_EQ(r.config->store.retention, std::chrono::hours(24 * 7));
  r = load(dir, "  retention: 36h\n");
  ASSERT_TRUE(r.ok()) << retention_diagnostics(r);
  EXPECT_EQ(r.config->store.retention, std::chrono::hours(36));
  r = load(dir, "  retention: 0s\n");
  ASSERT_TRUE(r.ok()) << retention_diagnostics(r);
  EXPECT_EQ(r.config->store.retention.count(), 0);
  r = load(dir, "  type: sqlite\n  retention: 7\n");
  EXPECT_FALSE(r.ok());
  const std::string text = retention_diagnostics(r);
  EXPECT_NE(text.find("evrouter.yaml:3:14: error: store.retention: expected a duration with a unit"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace evr::config
