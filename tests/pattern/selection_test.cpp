// Selective parsing (pattern::Selection, parse_selected): an event reduced to the fields a pattern reads
// must match exactly as the whole event does, and the parser must still reject invalid JSON.
#include "evrouter/pattern/selection.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "evrouter/pattern/pattern.h"
#include "support/harness.h"

using evr::pattern::parse_selected;
using evr::pattern::Pattern;
using evr::pattern::Selection;
using json = nlohmann::json;

namespace {

Selection selection_of(const char* pattern) {
  Selection s;
  Pattern::compile(json::parse(pattern)).select(s);
  return s;
}

json parsed(std::string_view text, const Selection& s) {
  json out;
  EXPECT_TRUE(parse_selected(text, s, out)) << text;
  return out;
}

}  // namespace

TEST(PatternSelection, EveryConformanceCaseMatchesTheSameOnTheSelectedEvent) {
  std::istringstream in(evr::test::test_data("eventbridge/cases.jsonl"));
  std::size_t checked = 0;
  std::string failures;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json c = json::parse(line);
    const Pattern p = Pattern::compile(c.at("pattern"));
    Selection s;
    p.select(s);
    json reduced;
    ASSERT_TRUE(parse_selected(c.at("event").dump(), s, reduced));
    if (p.matches(reduced) != p.matches(c.at("event"))) {
      failures += c.at("id").get<std::string>() + ": reduced " + reduced.dump() + "\n";
    }
    ++checked;
  }
  EXPECT_GE(checked, 900U);
  EXPECT_TRUE(failures.empty()) << failures;
}

TEST(PatternSelection, KeepsOnlyTheFieldsAPatternReads) {
  const Selection s = selection_of(R"({"detail": {"total_price": [{"numeric-string": [">", 100]}],
                                       "customer": {"tags": [{"prefix": "vip"}]}}})");
  const json reduced = parsed(R"({"detail": {"total_price": "120.00", "note": "x",
      "customer": {"tags": ["vip", "b"], "email": "a@b"}, "line_items": [{"sku": 1}]}, "id": "1"})",
                              s);
  EXPECT_EQ(reduced,
            json::parse(R"({"detail": {"total_price": "120.00", "customer": {"tags": ["vip", "b"]}}})"));
}

TEST(PatternSelection, LeafValuesAreKeptWholeAndArraysElementByElement) {
  const Selection s = selection_of(R"({"items": {"sku": ["a"]}, "meta": [{"exists": true}]})");
  const json reduced = parsed(
      R"({"items": [{"sku": "a", "qty": 1}, 7, {"qty": 2}], "meta": {"deep": [1, {"x": null}]}, "z": 1})", s);
  EXPECT_EQ(reduced, json::parse(R"({"items": [{"sku": "a"}, 7, {}], "meta": {"deep": [1, {"x": null}]}})"));
}

TEST(PatternSelection, DottedKeysAndOrAlternativesAreKept) {
  const Selection s = selection_of(R"({"$or": [{"a": {"b": [1]}}, {"c": [2]}]})");
  const json reduced = parsed(R"({"a.b": 1, "a": {"b": 1, "x": 0}, "c": 2, "d": 3})", s);
  EXPECT_EQ(reduced, json::parse(R"({"a.b": 1, "a": {"b": 1}, "c": 2})"));
}

TEST(PatternSelection, NothingSelectedStillValidatesAndKeepsTheRootType) {
  const Selection none;
  EXPECT_EQ(parsed(R"({"a": [1, 2, {"b": "c"}], "d": null})", none), json::object());
  EXPECT_EQ(parsed(R"([1, 2])", none), json::array());
  EXPECT_EQ(parsed(R"("text")", none), json("text"));
  json out;
  EXPECT_FALSE(parse_selected(R"({"a": [1, 2})", none, out));
  EXPECT_FALSE(parse_selected(R"({"a": 1} trailing)", none, out));
  EXPECT_FALSE(parse_selected("", none, out));
  EXPECT_FALSE(parse_selected(R"({"a": tru})", none, out));
}

TEST(PatternSelection, AllKeepsTheWholeDocument) {
  Selection all;
  all.all = true;
  const std::string text = R"({"a": [1, {"b": 2.5}], "c": {"d": "e"}, "f": true})";
  EXPECT_EQ(parsed(text, all), json::parse(text));
  Selection merged;
  merged.keep("a");
  merged.merge(all);
  EXPECT_TRUE(merged.all);
  EXPECT_EQ(parsed(text, merged), json::parse(text));
}
