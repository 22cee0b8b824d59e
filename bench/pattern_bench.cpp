// Pattern matching cost against a realistic Shopify order, beside the cost of parsing that order's JSON.
// Target (flow-language issue): matching 100 patterns costs less than parsing the event once.
//   build/bench/pattern_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "evrouter/pattern/pattern.h"
#include "evrouter/pattern/selection.h"

namespace {

using json = nlohmann::json;

const std::string& order_body() {
  static const std::string body = [] {
    std::ifstream in(std::string(EVROUTER_SOURCE_DIR) + "/tests/data/shopify/orders-create.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  return body;
}

json order_envelope() {
  return json{{"version", "0"},
              {"id", "01JD0000000000000000000000"},
              {"source", "shopify"},
              {"detail-type", "orders/create"},
              {"time", "2026-11-22T10:00:00.000Z"},
              {"shop", "example.myshopify.com"},
              {"detail", json::parse(order_body())}};
}

// A mix of the patterns users write for order routing; `i` varies the constants so that few match.
json make_pattern(int i) {
  const std::string n = std::to_string(i);
  switch (i % 8) {
    case 0:
      return json::parse(
          R"({"detail-type":["orders/create"],"detail":{"total_price":[{"numeric-string":[">",)" +
          std::to_string(100 + i) + "]}]}}");
    case 1:
      return json::parse(R"({"shop":["shop-)" + n + R"(.myshopify.com"]})");
    case 2:
      return json::parse(R"({"detail":{"email":[{"suffix":"@corp-)" + n + R"(.example"}]}})");
    case 3:
      return json::parse(
          R"({"detail":{"financial_status":[{"anything-but":["paid","pending"]}],"currency":["EUR"]}})");
    case 4:
      return json::parse(R"({"detail":{"line_items":{"sku":[{"prefix":"SKU-)" + n + R"("}]}}})");
    case 5:
      return json::parse(R"({"detail":{"shipping_address":{"country_code":["C)" + n + R"("]}}})");
    case 6:
      return json::parse(R"({"$or":[{"detail":{"tags":[{"wildcard":"*vip-)" + n +
                         R"(*"}]}},{"detail":{"customer":{"id":[)" + n + "]}}}]}");
    default:
      return json::parse(R"({"detail-type":["orders/)" + n + R"("],"detail":{"test":[false]}})");
  }
}

void BM_ParseOrderJson(benchmark::State& state) {
  const std::string& body = order_body();
  for (auto _ : state) {
    auto j = json::parse(body);
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseOrderJson);

// What the listener does with each webhook body: validate all of it and keep only the fields the flow's
// patterns read (the sample flow reads total_price). Arg 0: validate only, nothing kept.
void BM_ParseSelected(benchmark::State& state) {
  const std::string& body = order_body();
  evr::pattern::Selection selection;
  if (state.range(0) != 0) selection.keep("total_price");
  json out;
  for (auto _ : state) {
    const bool ok = evr::pattern::parse_selected(body, selection, out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseSelected)->Arg(0)->Arg(1);

void BM_MatchPatterns(benchmark::State& state) {
  const auto event = order_envelope();
  std::vector<evr::pattern::Pattern> patterns;
  for (int i = 0; i < state.range(0); ++i)
    patterns.push_back(evr::pattern::Pattern::compile(make_pattern(i)));
  int64_t matched = 0;
  for (auto _ : state) {
    for (const auto& p : patterns) matched += p.matches(event) ? 1 : 0;
    benchmark::DoNotOptimize(matched);
  }
  state.counters["patterns"] = static_cast<double>(patterns.size());
  state.counters["matched_per_event"] =
      static_cast<double>(matched) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_MatchPatterns)->Arg(1)->Arg(100)->Arg(1000);

void BM_CompilePattern(benchmark::State& state) {
  const auto p = make_pattern(6);
  for (auto _ : state) benchmark::DoNotOptimize(evr::pattern::Pattern::compile(p));
}
BENCHMARK(BM_CompilePattern);

}  // namespace

BENCHMARK_MAIN();
