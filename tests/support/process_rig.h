#pragma once
// A daemon run as a process by tests (crash, signals, faults): see ProcessRig.

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/harness.h"
#include "support/sink.h"

namespace evr::test {

inline constexpr const char* kProcessSecret = "process-test-secret";
inline constexpr const char* kProcessListener = "process-listener-00000000001";

// The process tests' flow: "orders", a Shopify source on kProcessListener (secret from
// EVR_PROCESS_TEST_SECRET), every event to the connection "sink" at /orders.
inline void write_orders_flow(const TempDir& dir) {
  write_file(dir / "flows" / "orders.yaml", std::string("name: orders\n"
                                                        "source:\n"
                                                        "  type: shopify\n"
                                                        "  listener_id: ") +
                                                kProcessListener +
                                                "\n"
                                                "  secret: {env: EVR_PROCESS_TEST_SECRET}\n"
                                                "branches:\n"
                                                "  - name: all\n"
                                                "    destinations:\n"
                                                "      - connection: sink\n"
                                                "        path: /orders\n");
}

// The evrouter binary's setting for process-level tests: a config on free ports (listener, sink), state in
// a temp dir, one Shopify flow "orders" delivering to the sink connection (which tests start when they
// want), and a helper that posts signed webhooks with id n.
struct ProcessRig {
  TempDir dir;
  uint16_t port = free_port();
  uint16_t sink_port = free_port();
  std::string config_path;

  // `server_extra`: more YAML lines for the server section (indented two spaces, each ending in "\n").
  explicit ProcessRig(const std::string& server_extra = "") {
    DaemonConfig c;
    c.port = port;
    c.sink_base_uri = "http://127.0.0.1:" + std::to_string(sink_port);
    c.server_extra = "  workers: 2\n  shutdown_grace: 3s\n" + server_extra;
    c.store_extra = "  durability: fsync\n";
    c.sink_extra =
        "    concurrency: 4\n"
        "    connect_timeout: 1s\n"
        "    retry: {max_attempts: 1000, backoff_base: 50ms, backoff_cap: 300ms}\n"
        "    breaker: {failures: 5, cooldown: 300ms}\n";
    c.top_extra = "log:\n  level: info\n";
    config_path = write_daemon_config(dir, c);
    write_orders_flow(dir);
  }

  std::vector<std::string> env() const { return {std::string("EVR_PROCESS_TEST_SECRET=") + kProcessSecret}; }

  // Posts the order with id n (webhook id "wh-<n>"), its body padded with `pad` bytes when asked (to make
  // the store's files grow quickly).
  PostResult post(int n, std::size_t pad = 0) const {
    std::string body = R"({"id":)" + std::to_string(n) + R"(,"total_price":"10.00")";
    if (pad > 0) body += R"(,"pad":")" + std::string(pad, 'p') + "\"";
    body += "}";
    return http_request(port, "POST", std::string("/hooks/") + kProcessListener,
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kProcessSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-" + std::to_string(n)},
                         {"Content-Type", "application/json"}},
                        body);
  }
};

// How many times each order id (ProcessRig::post's "id") reached the sink.
inline std::map<int, int> arrivals(const Sink& sink) {
  std::map<int, int> out;
  for (const auto& r : sink.requests()) ++out[nlohmann::json::parse(r.body)["id"].get<int>()];
  return out;
}

// The order ids that reached the sink.
inline std::set<int> delivered_ids(const Sink& sink) {
  std::set<int> out;
  for (const auto& [id, times] : arrivals(sink)) out.insert(id);
  return out;
}

// The last 4 KB of a log file, for failure messages.
inline std::string log_tail(const std::string& path) {
  try {
    auto s = read_file(path);
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  } catch (...) {
    return {};
  }
}

}  // namespace evr::test
