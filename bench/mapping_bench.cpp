// Cost of rendering a mapped delivery (dispatcher thread, per attempt): the example flow's OutSystems
// mapping on the Shopify order fixture, against the parts it is made of.
//   build/bench/mapping_bench
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "evrouter/config/loader.h"
#include "evrouter/mapping/mapping.h"

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

evr::event::Event order() {
  evr::event::Event e;
  e.id = "01JTESTEVENT0000000000000A";
  e.flow = "shopify-to-outsystems";
  e.source = "shopify";
  e.type = "orders/create";
  e.time_ms = 1700000000123;
  e.shop_domain = "demo.myshopify.com";
  e.payload = read(std::string(EVROUTER_SOURCE_DIR) + "/tests/data/shopify/orders-create.json");
  return e;
}

evr::config::Destination example_destination() {
  std::vector<evr::config::Diagnostic> diags;
  auto flow =
      evr::config::load_flow(std::string(EVROUTER_SOURCE_DIR) + "/flows/examples/shopify-to-outsystems.yaml",
                             diags, nullptr, {.require_secrets = false});
  if (!flow) throw std::runtime_error("example flow does not load");
  return flow->branches.at(0).destinations.at(0);
}

void BM_ParsePayload(benchmark::State& state) {
  const auto e = order();
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann::json::parse(e.payload));
}
BENCHMARK(BM_ParsePayload);

void BM_RenderExampleMapping(benchmark::State& state) {
  const auto e = order();
  const auto m = evr::mapping::Mapping::compile(example_destination());
  evr::mapping::Mapping::Request r;
  std::string error;
  for (auto _ : state) {
    if (!m->render(e, 1, r, error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(r.body);
  }
  state.counters["body_bytes"] = static_cast<double>(r.body->size());
}
BENCHMARK(BM_RenderExampleMapping);

void BM_RenderPathOnly(benchmark::State& state) {
  const auto e = order();
  evr::config::Destination d;
  d.path = "/orders/{id}";
  d.input_paths = {{"id", "$.detail.id", evr::config::InputPath::As::value, {}}};
  const auto m = evr::mapping::Mapping::compile(d);
  evr::mapping::Mapping::Request r;
  std::string error;
  for (auto _ : state) {
    m->render(e, 1, r, error);
    benchmark::DoNotOptimize(r.path);
  }
}
BENCHMARK(BM_RenderPathOnly);

}  // namespace

BENCHMARK_MAIN();
