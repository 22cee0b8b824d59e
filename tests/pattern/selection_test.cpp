// Selective parsing (pattern::Selection, parse_selected): an event reduced to the fields a pattern reads
// must match exactly as the whole event does, and the parser must still reject invalid JSON.
#include "evrouter/pattern/selection.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

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
  EXPECT_EQ(parsed(R"([1, {"b": 2}])", none), json::parse(R"([1, {}])"));  // arrays: element by element
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

// The scanner must accept exactly what nlohmann's parser accepts (the listener answers 400 for the rest)
// and, for what it keeps whole, produce the same values.
TEST(PatternSelection, ValidatesExactlyLikeNlohmann) {
  const std::vector<std::string> texts = {
      R"({"a":1})",
      R"( {"a" : [1, -2.5e3, 0, -0, 1E+2, 1e-2, true, false, null, "x"]} )",
      "{}",
      "[]",
      "0",
      "-",
      "01",
      "1.",
      ".5",
      "1e",
      "1e+",
      "-01",
      "1.5e400",
      "-1e400",
      "1e-400",
      "123456789012345678901234567890",
      R"({"a":1,})",
      R"([1,])",
      R"({"a" 1})",
      R"({a:1})",
      R"({"a":1}})",
      R"([1 2])",
      R"(["\u00e9\n\t\"\\\/"])",
      R"(["\ud83d\ude00"])",
      R"(["\ud83d"])",
      R"(["\ude00"])",
      R"(["\ud83dx"])",
      R"(["\u12G4"])",
      R"(["\x"])",
      "[\"\x01\"]",
      "[\"\xc3\xa9\"]",
      "[\"\xc3\"]",
      "[\"\xe2\x82\xac\"]",
      "[\"\xed\xa0\x80\"]",
      "[\"\xf0\x9f\x98\x80\"]",
      "[\"\xf4\x90\x80\x80\"]",
      "[\"\xc0\xaf\"]",
      "[\"\xff\"]",
      "\xef\xbb\xbf{}",
      "\xef\xbb{}",
      "[tru]",
      "[nul]",
      "[true false]",
      R"({"a":{"b":[{"c":{}}]}})",
      "[[[[[[[[[[]]]]]]]]]]",
      "[[[[[[[[[[]]]]]]]]]",
      R"({"k\u0041y": 1, "k.y": 2})",
      "",
      " ",
      R"("a")",
      R"({"a":1} 2)"};
  Selection none;
  Selection all;
  all.all = true;
  Selection some;
  some.keep("a");
  some.fields["k"].keep("y");
  for (const auto& text : texts) {
    const bool expected = json::accept(text);
    for (const Selection* s : {&none, &all, &some}) {
      json out;
      EXPECT_EQ(parse_selected(text, *s, out), expected) << "[" << text << "]";
    }
    if (expected) {
      json out;
      ASSERT_TRUE(parse_selected(text, all, out));
      EXPECT_EQ(out, json::parse(text)) << text;
    }
  }
  // Every truncation and single-byte change of a real payload.
  const std::string order = evr::test::test_data("shopify/orders-create.json");
  ASSERT_TRUE(json::accept(order));
  const Selection pattern_fields = selection_of(R"({"total_price": [{"numeric-string": [">", 1]}],
                                                   "line_items": {"sku": [{"prefix": "A"}]}})");
  std::size_t checked = 0;
  for (std::size_t i = 0; i < order.size(); i += 7) {
    for (const char c :
         {'"', '{', ']', ',', '1', '\\', 'x', ' ', '\x01', '\x1f', '\x7f', '\x80', '\xc3', '\xff'}) {
      std::string mutated = order;
      mutated[i] = c;
      json out;
      EXPECT_EQ(parse_selected(mutated, pattern_fields, out), json::accept(mutated))
          << "byte " << i << " " << c;
      ++checked;
    }
    json out;
    EXPECT_FALSE(parse_selected(std::string_view(order).substr(0, i), pattern_fields, out)) << "prefix " << i;
  }
  EXPECT_GT(checked, 1000U);
  // Strings are skipped 8 bytes at a time: a byte that needs a look (quote, backslash, control, not
  // ASCII) at every offset of a long string, beside each possible neighbour.
  for (const char* special :
       {"\"", "\\n", "\\u00e9", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xc3", "\xff", "\\"}) {
    for (std::size_t at = 0; at <= 20; ++at) {
      std::string text = R"({"a":")" + std::string(20, 'y') + R"(","b":1})";
      text.insert(6 + at, special);
      json out;
      EXPECT_EQ(parse_selected(text, all, out), json::accept(text)) << "[" << text << "]";
      if (json::accept(text)) {
        EXPECT_EQ(out, json::parse(text)) << text;
      }
    }
  }
  // Two such bytes in one 8-byte word: the scan stops at the first (a stop too early only costs time).
  for (const char* first : {"\\n", "\x01", "\xc3\xa9", "\xff", "\""}) {
    for (const char* second : {"\\t", "\x1f", "\xe2\x82\xac", "\""}) {
      for (std::size_t at = 0; at <= 9; ++at) {
        for (std::size_t gap = 0; gap <= 7; ++gap) {
          std::string text = R"({"a":")" + std::string(20, 'y') + R"(","b":1})";
          text.insert(6 + at + gap, second);
          text.insert(6 + at, first);
          json out;
          EXPECT_EQ(parse_selected(text, all, out), json::accept(text)) << "[" << text << "]";
          if (json::accept(text)) {
            EXPECT_EQ(out, json::parse(text)) << text;
          }
        }
      }
    }
  }
  json full;
  json reduced;
  ASSERT_TRUE(parse_selected(order, pattern_fields, reduced));
  full = json::parse(order);
  EXPECT_EQ(reduced.at("total_price"), full.at("total_price"));
  EXPECT_EQ(reduced.at("line_items").size(), full.at("line_items").size());
  EXPECT_FALSE(reduced.contains("customer"));
}

TEST(PatternSelection, DeepNestingDoesNotExhaustTheStack) {
  Selection s;
  s.fields["a"];  // a path whose arrays recurse
  const std::string deep = R"({"a":)" + std::string(200000, '[') + std::string(200000, ']') + "}";
  json out;
  EXPECT_FALSE(parse_selected(deep, s, out));  // refused (deeper than kMaxNesting), without a crash
  const std::string broken = R"({"a":)" + std::string(200000, '[') + "}";
  EXPECT_FALSE(parse_selected(broken, s, out));
  EXPECT_FALSE(parse_selected(std::string(200000, '{'), Selection{}, out));
}

TEST(PatternSelection, NestingBeyondTheLimitIsRefused) {
  using evr::pattern::kMaxNesting;
  auto nested = [](std::size_t n) {
    return "{\"detail\":" + std::string(n - 1, '[') + "1" + std::string(n - 1, ']') + "}";
  };
  evr::pattern::Selection all;
  all.all = true;
  evr::pattern::Selection some;
  some.fields["detail"];
  for (const auto* sel : {&all, &some}) {
    nlohmann::json out;
    EXPECT_TRUE(evr::pattern::parse_selected(nested(kMaxNesting), *sel, out));
    EXPECT_FALSE(evr::pattern::parse_selected(nested(kMaxNesting + 1), *sel, out));
    EXPECT_FALSE(evr::pattern::parse_selected(nested(100000), *sel, out));
  }
  // Brackets inside strings are text, not nesting.
  nlohmann::json out;
  EXPECT_TRUE(evr::pattern::parse_selected("{\"s\":\"" + std::string(100000, '[') + "\"}", all, out));
}
