// EventBridge pattern conformance: every case of the corpus in tests/data/eventbridge (see its README for
// provenance) must come out as recorded, and every invalid pattern must be rejected at compile time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "evrouter/pattern/pattern.h"
#include "support/harness.h"

using evr::pattern::Pattern;
using evr::pattern::PatternError;
using json = nlohmann::json;

namespace {

std::vector<json> read_jsonl(const std::string& name) {
  std::istringstream in(evr::test::test_data("eventbridge/" + name));
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

}  // namespace

TEST(PatternConformance, EveryCaseMatchesAsRecorded) {
  const auto cases = read_jsonl("cases.jsonl");
  ASSERT_GE(cases.size(), 900U);
  std::size_t checked = 0;
  std::size_t ext_checked = 0;
  std::vector<std::string> failures;
  for (const auto& c : cases) {
    const bool ext = c.value("ext", false);
    const std::string id = c.at("id").get<std::string>();
    bool got = false;
    try {
      got = Pattern::compile(c.at("pattern")).matches(c.at("event"));
    } catch (const PatternError& e) {
      failures.push_back(id + ": rejected: " + e.what());
      continue;
    }
    ++checked;
    if (ext) ++ext_checked;
    if (got != c.at("match").get<bool>()) {
      failures.push_back(id + (ext ? " (ext)" : "") + ": expected " + (got ? "no match" : "match") +
                         "\n  pattern " + c.at("pattern").dump() + "\n  event   " + c.at("event").dump());
    }
  }
  std::string report;
  for (const auto& f : failures) report += f + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << cases.size() << " cases wrong:\n" << report;
  // Every case, including those marked ext (array consistency, numbers beyond EventBridge's documented
  // range), is checked: evrouter implements both.
  EXPECT_EQ(checked, cases.size());
  EXPECT_GT(ext_checked, 0U);
}

TEST(PatternConformance, EveryInvalidPatternIsRejected) {
  const auto patterns = read_jsonl("invalid-patterns.jsonl");
  ASSERT_GE(patterns.size(), 150U);
  std::vector<std::string> accepted;
  for (const auto& p : patterns) {
    if (p.value("ext", false)) continue;  // AWS-only complexity limit; see docs/patterns.md
    try {
      (void)Pattern::compile(p.at("pattern"));
      accepted.push_back(p.at("id").get<std::string>() + ": " + p.at("pattern").dump());
    } catch (const PatternError& e) {
      EXPECT_GT(std::string(e.what()).size(), 10U) << "message too terse for " << p.at("pattern").dump();
    }
  }
  std::string report;
  for (const auto& a : accepted) report += a + "\n";
  EXPECT_TRUE(accepted.empty()) << accepted.size() << " invalid patterns were accepted:\n" << report;
}
