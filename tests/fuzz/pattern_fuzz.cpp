// libFuzzer target: the EventBridge pattern compiler and matcher. The input is JSON; if it is an object it
// is compiled as a pattern (rejections are fine, crashes are not) and matched against a fixed Shopify-like
// envelope and against itself; the input is also used as an event for a fixed set of patterns.
//   scripts/fuzz.sh pattern [seconds]
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "evrouter/pattern/pattern.h"

namespace {

using nlohmann::json;
using evr::pattern::Pattern;
using evr::pattern::PatternError;

const json& envelope() {
  static const json e = json::parse(R"({"source":"shopify","detail-type":"orders/create","shop":"s.myshopify.com",
    "detail":{"id":1,"total_price":"149.90","email":"a@b.example","tags":"vip, repeat","ip":"10.0.0.7",
    "line_items":[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}],"customer":{"id":7,"note":null},
    "a.b":true}})");
  return e;
}

const std::vector<Pattern>& fixed_patterns() {
  static const std::vector<Pattern> p = [] {
    std::vector<Pattern> v;
    for (const char* text : {
             R"({"detail":{"total_price":[{"numeric-string":[">",100]}]}})",
             R"({"detail":{"line_items":{"sku":[{"prefix":"SKU"}],"quantity":[{"numeric":[">=",2]}]}}})",
             R"({"$or":[{"detail":{"tags":[{"wildcard":"*vip*"}]}},{"detail":{"ip":[{"cidr":"10.0.0.0/8"}]}}]})",
             R"({"detail":{"email":[{"anything-but":{"suffix":".example"}}],"missing":[{"exists":false}]}})",
             R"({"detail.a.b":[true],"detail":{"customer":{"note":[null]}}})",
             R"({"detail-type":[{"equals-ignore-case":"ORDERS/CREATE"}]})"}) {
      v.push_back(Pattern::compile(json::parse(text)));
    }
    return v;
  }();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json input = json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (input.is_discarded()) return 0;
  for (const auto& p : fixed_patterns()) (void)p.matches(input);
  try {
    const Pattern p = Pattern::compile(input);
    (void)p.matches(envelope());
    (void)p.matches(input);
  } catch (const PatternError&) {
  }
  return 0;
}
