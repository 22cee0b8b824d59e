// evrouter-loadgen: sends POST requests at a constant rate over keep-alive connections and prints one
// line of key=value results (latency percentiles measured from each request's scheduled send time).
//
//   evrouter-loadgen --port 8080 --path /hooks/ID --body-file order.json --rate 2000 --duration 10
//                    --connections 64 --header 'X-Shopify-Topic: orders/create'
//                    --id-header X-Shopify-Webhook-Id --id-prefix run1
//
// With --sink-port N it also serves a delivery sink on 127.0.0.1:N (200 to everything) and reports the
// latency added between each 2xx answer and the sink's first arrival of the same id (sent in an
// --id-header, e.g. X-Correlation-Id, which evrouter forwards on its deliveries; --sink-id-header names the
// header the sink reads).
//
// Only 127.0.0.1-style numeric addresses are accepted (no name resolution).

#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "loadgen/open_loop.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: evrouter-loadgen --port N [--host 127.0.0.1] [--path /] [--body-file FILE]\n"
               "         [--header 'Name: value']... [--id-header NAME]... [--id-prefix P]\n"
               "         [--rate PER_SECOND] [--duration SECONDS] [--connections N] [--drain SECONDS]\n"
               "         [--sink-port N] [--sink-id-header NAME] [--sink-wait SECONDS]\n");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::chrono::milliseconds seconds_arg(const std::string& v) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::stod(v) * 1000));
}

}  // namespace

int main(int argc, char** argv) {
  evr::bench::Target target;
  evr::bench::Plan plan;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (i + 1 >= argc) {
        usage();
        return 2;
      }
      const std::string v = argv[++i];
      if (a == "--host") {
        target.host = v;
      } else if (a == "--port") {
        target.port = static_cast<uint16_t>(std::stoi(v));
      } else if (a == "--path") {
        target.path = v;
      } else if (a == "--body-file") {
        target.body = read_file(v);
      } else if (a == "--header") {
        const auto colon = v.find(':');
        if (colon == std::string::npos) throw std::invalid_argument("--header needs 'Name: value'");
        const auto start = v.find_first_not_of(' ', colon + 1);
        target.headers.emplace_back(v.substr(0, colon), start == std::string::npos ? "" : v.substr(start));
      } else if (a == "--id-header") {
        target.id_headers.push_back(v);
      } else if (a == "--id-prefix") {
        target.id_prefix = v;
      } else if (a == "--rate") {
        plan.rate = std::stod(v);
      } else if (a == "--duration") {
        plan.duration = seconds_arg(v);
      } else if (a == "--connections") {
        plan.connections = std::stoi(v);
      } else if (a == "--drain") {
        plan.drain = seconds_arg(v);
      } else if (a == "--sink-port") {
        target.sink_port = static_cast<uint16_t>(std::stoi(v));
      } else if (a == "--sink-id-header") {
        target.sink_id_header = v;
      } else if (a == "--sink-wait") {
        plan.sink_wait = seconds_arg(v);
      } else {
        usage();
        return 2;
      }
    }
    if (target.port == 0) {
      usage();
      return 2;
    }
    auto r = evr::bench::run_open_loop(target, plan);
    const double achieved = r.elapsed_s > 0 ? static_cast<double>(r.ok) / r.elapsed_s : 0;
    std::printf(
        "LOADGEN rate=%.0f connections=%d scheduled=%llu ok=%llu non2xx=%llu errors=%llu unfinished=%llu "
        "elapsed_s=%.3f achieved_rps=%.0f p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u "
        "send_lag_p99_us=%u\n",
        plan.rate, plan.connections, static_cast<unsigned long long>(r.scheduled),
        static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.non2xx),
        static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(r.unfinished), r.elapsed_s,
        achieved, r.latency.percentile(50), r.latency.percentile(90), r.latency.percentile(99),
        r.latency.percentile(99.9), r.latency.percentile(100), r.send_lag.percentile(99));
    if (target.sink_port != 0) {
      std::printf(
          "SINK requests=%llu matched=%llu repeated=%llu missing=%llu added_p50_us=%u added_p90_us=%u "
          "added_p99_us=%u added_p999_us=%u added_max_us=%u\n",
          static_cast<unsigned long long>(r.sink_requests), static_cast<unsigned long long>(r.sink_matched),
          static_cast<unsigned long long>(r.sink_repeated),
          static_cast<unsigned long long>(r.ok > r.sink_matched ? r.ok - r.sink_matched : 0),
          r.added.percentile(50), r.added.percentile(90), r.added.percentile(99), r.added.percentile(99.9),
          r.added.percentile(100));
    }
    return r.errors == 0 && r.non2xx == 0 && r.unfinished == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter-loadgen: %s\n", e.what());
    return 2;
  }
}
