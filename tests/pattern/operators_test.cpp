// evrouter-specific pattern behaviour beyond the conformance corpus: the numeric-string extension, error
// messages that name the field, and matching on the envelope shape flows use.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "evrouter/pattern/pattern.h"
#include "support/harness.h"

using evr::pattern::Pattern;
using evr::pattern::PatternError;
using json = nlohmann::json;

namespace {

bool match(const char* pattern, const char* event) {
  return Pattern::compile(json::parse(pattern)).matches(json::parse(event));
}

std::string error_of(const char* pattern) {
  try {
    (void)Pattern::compile(json::parse(pattern));
  } catch (const PatternError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PatternOperators, NumericStringComparesDecimalStringsAndNumbers) {
  const char* p = R"({"total_price": [{"numeric-string": [">", 100, "<=", 500]}]})";
  EXPECT_TRUE(match(p, R"({"total_price": "149.90"})"));
  EXPECT_TRUE(match(p, R"({"total_price": 500})"));
  EXPECT_FALSE(match(p, R"({"total_price": "100.00"})"));
  EXPECT_FALSE(match(p, R"({"total_price": "500.01"})"));
  EXPECT_FALSE(match(p, R"({"total_price": "12abc"})"));
  EXPECT_FALSE(match(p, R"({"total_price": ""})"));
  EXPECT_FALSE(match(p, R"({"total_price": null})"));
  EXPECT_FALSE(match(p, R"({})"));
  // Plain numeric stays strict, as in EventBridge.
  EXPECT_FALSE(match(R"({"total_price": [{"numeric": [">", 100]}]})", R"({"total_price": "149.90"})"));
}

TEST(PatternOperators, ErrorsNameTheFieldAndTheProblem) {
  EXPECT_EQ(error_of(R"({"detail": {"total_price": [{"numeric": [">", "100"]}]}})"),
            "detail.total_price: numeric: \">\" must be followed by a number");
  EXPECT_EQ(error_of(R"({"detail-type": "orders/create"})"),
            "detail-type: expected an array of values or a nested object, found a string");
  EXPECT_NE(error_of(R"({"a": [{"Prefix": "x"}]})").find("unknown operator \"Prefix\""), std::string::npos);
  EXPECT_NE(error_of(R"({"a": [{"wildcard": "a**b"}]})").find("consecutive wildcard"), std::string::npos);
  EXPECT_NE(error_of(R"({"ip": [{"cidr": "10.0.0.0/33"}]})").find("at most 32"), std::string::npos);
  EXPECT_NE(error_of(R"(["not", "an", "object"])").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"$or": [{"a": ["x"]}]})").find("at least two"), std::string::npos);
}

TEST(PatternOperators, ShopifyEnvelope) {
  const json order = json::parse(evr::test::test_data("shopify/orders-create.json"));
  const json envelope{{"source", "shopify"}, {"detail-type", "orders/create"}, {"detail", order}};
  auto p = [&](const char* text) { return Pattern::compile(json::parse(text)).matches(envelope); };
  EXPECT_TRUE(p(
      R"({"detail-type": ["orders/create"], "detail": {"line_items": {"quantity": [{"numeric": [">", 0]}]}}})"));
  EXPECT_TRUE(p(R"({"detail": {"customer": {"email": [{"exists": true}]}}})"));
  EXPECT_TRUE(p(R"({"detail.customer.email": [{"exists": true}]})"));
  EXPECT_FALSE(p(R"({"detail-type": ["orders/updated"]})"));
  EXPECT_FALSE(p(R"({"detail": {"no_such_field": [{"exists": true}]}})"));
}

TEST(PatternOperators, CompiledPatternIsSharedAndReusable) {
  const auto p = Pattern::compile(json::parse(R"({"a": [{"prefix": "x"}]})"));
  const auto copy = p;  // cheap: the compiled tree is shared
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(copy.matches(json{{"a", "xy" + std::to_string(i)}}));
    EXPECT_FALSE(p.matches(json{{"a", "y" + std::to_string(i)}}));
  }
}
