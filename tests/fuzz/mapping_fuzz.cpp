// libFuzzer target: the mapping engine. The input is split at the first two NUL bytes into an input path,
// a body template and a payload (missing parts get fixed defaults). The path and template are compiled as
// a destination's mapping would be (rejections are fine, crashes are not); a compiled mapping is then
// rendered against the payload, and against a fixed Shopify-like order. Checked: a rendered body is always
// valid JSON, and a rendered path never carries a raw space or control byte.
//   scripts/fuzz.sh mapping [seconds]
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "evrouter/event/event.h"
#include "evrouter/mapping/mapping.h"

namespace {

using nlohmann::json;

std::string_view next_part(std::string_view& rest) {
  const auto nul = rest.find('\0');
  const std::string_view part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  return part;
}

void render_checked(const evr::mapping::Mapping& m, const std::string& payload) {
  evr::event::Event e;
  e.id = "01J00000000000000000000000";
  e.flow = "orders";
  e.source = "shopify";
  e.type = "orders/create";
  e.time_ms = 1795000000000;
  e.payload = payload;
  evr::mapping::Mapping::Request out;
  std::string error;
  if (!m.render(e, 42, out, error)) return;
  if (out.body && json::accept(*out.body) == false) std::abort();  // a template always renders JSON
  for (unsigned char c : out.path) {
    if (c <= 0x20 || c == 0x7f) std::abort();  // path variables are percent-encoded
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view path = next_part(rest);
  const std::string_view tmpl = next_part(rest);
  const std::string_view payload = rest;

  evr::config::Destination d;
  d.connection = "sink";
  evr::config::InputPath a;
  a.name = "a";
  a.path = std::string(path.empty() ? "$.detail.id" : path);
  evr::config::InputPath b;
  b.name = "b";
  b.path = "$.detail.line_items[*].sku";
  b.as = evr::config::InputPath::As::string;
  d.input_paths = {a, b};
  d.path = "/orders/{a}";
  d.headers = {{"X-Key", "k-{a}"}};
  const auto t = json::parse(tmpl.empty() ? std::string_view(R"({"id":"{a}","skus":"{b}","n":"<a>"})") : tmpl,
                             nullptr, false);
  if (!t.is_discarded()) d.input_template = nlohmann::ordered_json::parse(t.dump());

  std::optional<evr::mapping::Mapping> m;
  try {
    m = evr::mapping::Mapping::compile(d);
  } catch (const evr::mapping::MappingError&) {
    return 0;
  }
  if (!m) return 0;
  static const std::string order =
      R"({"id":450789469,"total_price":"149.90","email":"a@b.example","line_items":[{"sku":"SKU-1"},{"sku":"SKU 2/x"}]})";
  render_checked(*m, order);
  if (json::accept(payload)) render_checked(*m, std::string(payload));
  return 0;
}
