// The `reload:` section of the main configuration.
#include <gtest/gtest.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

using test::TempDir;
using test::write_file;

LoadResult load_text(const TempDir& dir, const std::string& yaml) {
  write_file(dir / "evrouter.yaml", yaml);
  return config::load(dir / "evrouter.yaml");
}

TEST(ReloadConfig, DefaultsToNoWatchAndHalfASecond) {
  TempDir dir;
  auto r = load_text(dir, "flows: []\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->reload.watch);
  EXPECT_EQ(r.config->reload.debounce, std::chrono::milliseconds(500));
}

TEST(ReloadConfig, ReadsWatchAndDebounce) {
  TempDir dir;
  auto r = load_text(dir, "reload:\n  watch: true\n  debounce: 2s\nflows: []\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config->reload.watch);
  EXPECT_EQ(r.config->reload.debounce, std::chrono::seconds(2));
}

TEST(ReloadConfig, ReportsBadValuesWithTheirPosition) {
  TempDir dir;
  const std::string file = (dir / "evrouter.yaml").string();
  auto r = load_text(dir, "reload:\n  watch: yes\n  debounce: 10\n  wacth: true\nflows: []\n");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> lines;
  for (const auto& d : r.diagnostics) lines.push_back(d.str());
  EXPECT_EQ(lines,
            (std::vector<std::string>{
                file + ":2:10: error: reload.watch: expected true or false, found 'yes'",
                file + ":3:13: error: reload.debounce: expected a duration with a unit (ms, s, m, h, d), "
                       "e.g. 500ms, 10s, 48h, found '10'",
                file + ":4:3: error: reload.wacth: unknown key 'wacth' (did you mean 'watch'?)",
            }));
}

}  // namespace
}  // namespace evr::config
