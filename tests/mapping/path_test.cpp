// Input paths: the supported JSONPath subset, what it selects, and what is rejected (with messages).
#include "evrouter/mapping/path.h"

#include <gtest/gtest.h>

namespace evr::mapping {
namespace {

const nlohmann::json kDoc = nlohmann::json::parse(R"({
  "id": "01J",
  "detail-type": "orders/create",
  "detail": {
    "id": 6012345678901,
    "name": "#1042",
    "key with.dots": "dotted",
    "quote'd": "q",
    "empty": null,
    "line_items": [
      {"sku": "A", "quantity": 1, "tags": ["x", "y"]},
      {"sku": "B", "quantity": 2},
      {"quantity": 3, "tags": ["z"]}
    ]
  }
})");

nlohmann::json find(const std::string& path) {
  const nlohmann::json* v = Path::parse(path).find(kDoc);
  return v == nullptr ? nlohmann::json("<nothing>") : *v;
}

std::string error_of(const std::string& path) {
  try {
    (void)Path::parse(path);
  } catch (const MappingError& e) {
    return e.what();
  }
  return "<accepted>";
}

TEST(Path, SelectsMembersIndexesAndQuotedNames) {
  EXPECT_EQ(find("$"), kDoc);
  EXPECT_EQ(find("$.detail.id"), 6012345678901);
  EXPECT_EQ(find("$.detail-type"), "orders/create");
  EXPECT_EQ(find("$['detail-type']"), "orders/create");
  EXPECT_EQ(find("$.detail['key with.dots']"), "dotted");
  EXPECT_EQ(find(R"($["detail"]["key with.dots"])"), "dotted");
  EXPECT_EQ(find(R"($.detail['quote\'d'])"), "q");
  EXPECT_EQ(find("$.detail.line_items[0].sku"), "A");
  EXPECT_EQ(find("$.detail.line_items[-1].quantity"), 3);
  EXPECT_EQ(find("$.detail.line_items[-3].sku"), "A");
  EXPECT_EQ(find("$.detail.line_items[1]"), kDoc["detail"]["line_items"][1]);
  EXPECT_TRUE(find("$.detail.empty").is_null());  // present and null: selected
}

TEST(Path, SelectsNothingWhenAbsentOrOfAnotherType) {
  EXPECT_EQ(find("$.detail.nope"), "<nothing>");
  EXPECT_EQ(find("$.detail.line_items[3]"), "<nothing>");
  EXPECT_EQ(find("$.detail.line_items[-4]"), "<nothing>");
  EXPECT_EQ(find("$.detail.line_items[2].sku"), "<nothing>");
  EXPECT_EQ(find("$.detail.name.first"), "<nothing>");  // member of a string
  EXPECT_EQ(find("$.detail[0]"), "<nothing>");          // index of an object
  EXPECT_EQ(find("$.id[0]"), "<nothing>");              // index of a string
}

TEST(Path, WildcardsAlwaysSelectAnArray) {
  const Path skus = Path::parse("$.detail.line_items[*].sku");
  EXPECT_TRUE(skus.wildcard());
  EXPECT_EQ(skus.collect(kDoc), nlohmann::json::parse(R"(["A", "B"])"));  // the item without sku is skipped
  EXPECT_EQ(Path::parse("$.detail.line_items.*.quantity").collect(kDoc), nlohmann::json::parse("[1, 2, 3]"));
  // Nested wildcards flatten into one array.
  EXPECT_EQ(Path::parse("$.detail.line_items[*].tags[*]").collect(kDoc),
            nlohmann::json::parse(R"(["x", "y", "z"])"));
  EXPECT_EQ(Path::parse("$.detail.missing[*].sku").collect(kDoc), nlohmann::json::array());
  EXPECT_EQ(Path::parse("$.detail.name[*]").collect(kDoc), nlohmann::json::array());
  // On an object: the member values, by key order.
  EXPECT_EQ(Path::parse("$.detail.line_items[0].*").collect(kDoc),
            nlohmann::json::parse(R"([1, "A", ["x", "y"]])"));
  // A path without a wildcard collects its one value (or nothing).
  EXPECT_FALSE(Path::parse("$.detail.id").wildcard());
  EXPECT_EQ(Path::parse("$.detail.id").collect(kDoc), nlohmann::json::parse("[6012345678901]"));
  EXPECT_EQ(Path::parse("$.detail.nope").collect(kDoc), nlohmann::json::array());
}

TEST(Path, RejectsWhatIsNotSupportedWithThePositionAndReason) {
  EXPECT_EQ(error_of(""),
            "invalid path '' at character 1: a path starts with $ (the event envelope), e.g. $.detail.id");
  EXPECT_EQ(
      error_of("detail.id"),
      "invalid path 'detail.id' at character 1: a path starts with $ (the event envelope), e.g. $.detail.id");
  EXPECT_EQ(error_of("$..id"),
            "invalid path '$..id' at character 2: recursive descent (..) is not supported");
  EXPECT_EQ(error_of("$.items[?(@.price > 10)]"),
            "invalid path '$.items[?(@.price > 10)]' at character 9: filter expressions ([?...]) are not "
            "supported");
  EXPECT_EQ(
      error_of("$.items[(@.length-1)]"),
      "invalid path '$.items[(@.length-1)]' at character 9: script expressions ([(...)]) are not supported");
  EXPECT_EQ(error_of("$.items[0:2]"),
            "invalid path '$.items[0:2]' at character 10: array slices ([start:end]) are not supported");
  EXPECT_EQ(error_of("$.items[:2]"),
            "invalid path '$.items[:2]' at character 9: array slices ([start:end]) are not supported");
  EXPECT_EQ(error_of("$.items[0,1]"),
            "invalid path '$.items[0,1]' at character 10: unions ([a,b]) are not supported");
  EXPECT_EQ(error_of("$['a','b']"),
            "invalid path '$['a','b']' at character 6: unions ([a,b]) are not supported");
  EXPECT_EQ(error_of("$.detail."), "invalid path '$.detail.' at character 9: expected a name after '.'");
  EXPECT_EQ(error_of("$.total price"),
            "invalid path '$.total price' at character 8: unexpected ' ' (expected .name, [index], ['name'] "
            "or [*])");
  EXPECT_EQ(error_of("$.a/b"),
            "invalid path '$.a/b' at character 4: unexpected '/' (expected .name, [index], ['name'] or [*])");
  EXPECT_EQ(error_of("$.@x"),
            "invalid path '$.@x' at character 3: unexpected '@' in a name (use $['...'] for names with other "
            "characters)");
  EXPECT_EQ(error_of("$['open"),
            "invalid path '$['open' at character 3: unterminated quoted name (missing ')");
  EXPECT_EQ(error_of("$[0"), "invalid path '$[0' at character 2: unterminated '[' (missing ])");
  EXPECT_EQ(error_of("$["), "invalid path '$[' at character 2: unterminated '[' (missing ])");
  EXPECT_EQ(error_of("$[0)"), "invalid path '$[0)' at character 4: expected ']', found ')'");
  EXPECT_EQ(
      error_of("$.items[x]"),
      "invalid path '$.items[x]' at character 9: expected an index, '*' or a quoted name inside [...], e.g. "
      "[0] or ['key']");
  EXPECT_EQ(error_of("$[-]"), "invalid path '$[-]' at character 4: expected an array index");
  EXPECT_EQ(error_of("$[99999999999999999999]"),
            "invalid path '$[99999999999999999999]' at character 3: array index out of range");
  EXPECT_EQ(
      error_of(R"($['a\n'])"),
      R"(invalid path '$['a\n']' at character 5: unknown escape in a quoted name (only \\, \' and \" are allowed))");
  EXPECT_EQ(error_of("$x"),
            "invalid path '$x' at character 2: unexpected 'x' (expected .name, [index], ['name'] or [*])");
}

}  // namespace
}  // namespace evr::mapping
