// Configuration reload while webhooks keep arriving: the real binary with SIGHUP (a good and a broken
// flow file), and the in-process daemon for what a reload does to lanes and connections.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/config/loader.h"
#include "support/harness.h"
#include "support/sink.h"

using namespace evr::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Polls `f` until it is true or `timeout` passes.
template <typename F>
bool eventually_within(F f, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

// The id of an order body ({"id": n, ...}).
int64_t body_id(const std::string& body) {
  try {
    return nlohmann::json::parse(body).at("id").get<int64_t>();
  } catch (...) {
    return -1;
  }
}

// A client that keeps posting signed webhooks (one connection each) until stopped, remembering what
// was answered. Bounded: at most 5000 posts or 60 seconds.
class Traffic {
 public:
  struct Sent {
    int64_t id;
    Clock::time_point started;
    int status;
    std::string error;
  };

  Traffic(uint16_t port, std::string target, std::string secret)
      : port_(port), target_(std::move(target)), secret_(std::move(secret)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Traffic() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::vector<Sent> sent() const {
    std::lock_guard lk(mu_);
    return sent_;
  }
  std::size_t acked_after(Clock::time_point t) const {
    std::lock_guard lk(mu_);
    return static_cast<std::size_t>(std::count_if(
        sent_.begin(), sent_.end(), [&](const Sent& s) { return s.status == 200 && s.started > t; }));
  }

 private:
  void run() {
    const auto deadline = Clock::now() + 60s;
    for (int64_t n = 1; !stop_ && n <= 5000 && Clock::now() < deadline; ++n) {
      const std::string body = R"({"id":)" + std::to_string(n) + R"(,"total_price":"10.00"})";
      const auto started = Clock::now();
      auto r = http_request(port_, "POST", target_,
                            {{"X-Shopify-Topic", "orders/create"},
                             {"X-Shopify-Hmac-Sha256", shopify_hmac(secret_, body)},
                             {"X-Shopify-Webhook-Id", "wh-" + std::to_string(n)},
                             {"Content-Type", "application/json"}},
                            body);
      {
        std::lock_guard lk(mu_);
        sent_.push_back({n, started, r.status, r.error + r.body});
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  uint16_t port_;
  std::string target_;
  std::string secret_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Sent> sent_;
  std::thread thread_;
};

// ------------------------------------------------------------------------------------------------
// The real binary, reloaded with SIGHUP.

constexpr const char* kProcessSecret = "reload-test-secret";

struct ReloadRig {
  TempDir dir;
  uint16_t port = free_port();
  Sink sink;
  std::string config_path = (dir / "evrouter.yaml").string();
  std::string flow_path = (dir / "flows" / "orders.yaml").string();

  ReloadRig() {
    DaemonConfig c;
    c.port = port;
    c.sink_base_uri = sink.url();
    c.server_extra = "  workers: 2\n  shutdown_grace: 3s\n";
    c.store_extra = "  durability: none\n";
    c.sink_extra =
        "    concurrency: 4\n"
        "    retry: {max_attempts: 1000, backoff_base: 50ms, backoff_cap: 300ms}\n"
        "    breaker: {failures: 5, cooldown: 300ms}\n";
    write_daemon_config(dir, c);
    write_flow("/orders");
  }

  // No pinned listener_id: the generated one must survive reloads.
  void write_flow(const std::string& path) const {
    write_file(flow_path,
               "name: orders\n"
               "source:\n"
               "  type: shopify\n"
               "  secret: {env: EVR_RELOAD_TEST_SECRET}\n"
               "branches:\n"
               "  - name: all\n"
               "    destinations:\n"
               "      - connection: sink\n"
               "        path: " +
                   path + "\n");
  }

  std::vector<std::string> env() const { return {std::string("EVR_RELOAD_TEST_SECRET=") + kProcessSecret}; }

  // `evrouter listeners`: the "<flow>\t<url>" lines, or what went wrong.
  std::string listeners() const {
    DaemonProcess p({"listeners", "--config", config_path}, env());
    const int code = p.wait(30s);
    std::string out = read_file(p.log_path());
    std::error_code ec;
    std::filesystem::remove(p.log_path(), ec);
    return code == 0 ? out : "exit " + std::to_string(code) + ": " + out;
  }

  // Every id the sink received, by request target.
  std::map<int64_t, std::set<std::string>> delivered() const {
    std::map<int64_t, std::set<std::string>> out;
    for (const auto& r : sink.requests()) out[body_id(r.body)].insert(r.target);
    return out;
  }
};

std::string log_of(const DaemonProcess& d) {
  try {
    return read_file(d.log_path());
  } catch (...) {
    return {};
  }
}

// "orders\thttp://127.0.0.1:<port>/hooks/<id>\n" -> "/hooks/<id>"
std::string hook_target(const std::string& listeners_output) {
  const auto at = listeners_output.find("/hooks/");
  if (at == std::string::npos) return {};
  const auto end = listeners_output.find_first_of("\r\n", at);
  return listeners_output.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// Every webhook was answered 200, and every one is at the sink.
void expect_all_acked_and_delivered(const ReloadRig& rig, const Traffic& traffic, const std::string& log) {
  const auto sent = traffic.sent();
  ASSERT_FALSE(sent.empty());
  for (const auto& s : sent) ASSERT_EQ(s.status, 200) << "webhook " << s.id << ": " << s.error;
  EXPECT_TRUE(eventually_within([&] {
    const auto got = rig.delivered();
    return std::all_of(sent.begin(), sent.end(), [&](const auto& s) { return got.count(s.id) != 0; });
  })) << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
}

TEST(Reload, SighupWithAGoodFlowFileWhileTrafficFlows) {
  ReloadRig rig;
  const std::string before = rig.listeners();
  const std::string target = hook_target(before);
  ASSERT_FALSE(target.empty()) << before;
  DaemonProcess d({"serve", "--config", rig.config_path}, rig.env());
  ASSERT_TRUE(wait_port(rig.port, 10s)) << log_of(d);

  Traffic traffic(rig.port, target, kProcessSecret);
  ASSERT_TRUE(rig.sink.wait_for(20, 20s)) << log_of(d);
  rig.write_flow("/orders-v2");
  d.kill(SIGHUP);
  ASSERT_TRUE(eventually_within([&] { return has(log_of(d), "configuration reloaded"); })) << log_of(d);
  const auto applied = Clock::now();
  ASSERT_TRUE(eventually_within([&] { return traffic.acked_after(applied) >= 20; })) << log_of(d);
  traffic.stop();

  const std::string log = log_of(d);
  EXPECT_TRUE(has(log, "flows_changed=orders")) << log;
  expect_all_acked_and_delivered(rig, traffic, log);
  // What was posted once the reload was applied went the new way only.
  const auto got = rig.delivered();
  for (const auto& s : traffic.sent()) {
    if (s.started <= applied) continue;
    auto it = got.find(s.id);
    ASSERT_NE(it, got.end()) << s.id;
    EXPECT_EQ(it->second, std::set<std::string>{"/orders-v2"}) << "webhook " << s.id;
  }
  EXPECT_EQ(rig.listeners(), before);
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_of(d);
  std::error_code ec;
  std::filesystem::remove(d.log_path(), ec);
}

TEST(Reload, SighupWithABrokenFlowFileKeepsTheRunningConfiguration) {
  ReloadRig rig;
  const std::string before = rig.listeners();
  const std::string target = hook_target(before);
  ASSERT_FALSE(target.empty()) << before;
  DaemonProcess d({"serve", "--config", rig.config_path}, rig.env());
  ASSERT_TRUE(wait_port(rig.port, 10s)) << log_of(d);

  Traffic traffic(rig.port, target, kProcessSecret);
  ASSERT_TRUE(rig.sink.wait_for(20, 20s)) << log_of(d);
  write_file(rig.flow_path,
             "name: orders\n"
             "source:\n"
             "  type: shopify\n"
             "  secret: {env: EVR_RELOAD_TEST_SECRET}\n"
             "branches:\n"
             "  - name: all\n"
             "    destinations:\n"
             "      - connection: nowhere\n"
             "        path: /elsewhere\n");
  d.kill(SIGHUP);
  ASSERT_TRUE(eventually_within([&] { return has(log_of(d), "configuration reload refused"); })) << log_of(d);
  const auto refused = Clock::now();
  ASSERT_TRUE(eventually_within([&] { return traffic.acked_after(refused) >= 20; })) << log_of(d);

  // Fixed again: the next SIGHUP applies it (with no change to report).
  rig.write_flow("/orders");
  d.kill(SIGHUP);
  ASSERT_TRUE(eventually_within([&] { return has(log_of(d), "configuration reloaded"); })) << log_of(d);
  traffic.stop();

  const std::string log = log_of(d);
  EXPECT_TRUE(has(log,
                  "orders.yaml:8:21: error: branches[0].destinations[0].connection: unknown connection "
                  "'nowhere'"))
      << log;
  EXPECT_FALSE(has(log, "configuration has errors; not starting")) << log;
  expect_all_acked_and_delivered(rig, traffic, log);
  for (const auto& [id, targets] : rig.delivered()) {
    EXPECT_EQ(targets, std::set<std::string>{"/orders"}) << "webhook " << id;
  }
  EXPECT_EQ(rig.listeners(), before);
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_of(d);
  std::error_code ec;
  std::filesystem::remove(d.log_path(), ec);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// The in-process daemon: what a reload does to lanes and connections.

namespace evr::test {
namespace {

std::set<std::string> targets_of(const Sink& sink) {
  std::set<std::string> out;
  for (const auto& r : sink.requests()) out.insert(r.target);
  return out;
}

TEST_F(PipelineTest, RemovedLaneDeliversWhatIsPendingForIt) {
  auto cfg = make_config();
  cfg.connections["sink"].retry.max_attempts = 1000;
  std::atomic<bool> down{true};
  sink_.set_handler([&](const Recorded& r) {
    Reply reply;
    if (down && r.target == "/api/orders") reply.status = 503;
    return reply;
  });
  start(cfg);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(post(order("10.00", 100 + i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(5, 10s));  // first attempts, answered 503: now waiting to retry

  // The standard branch is renamed: its lane is removed and a new one added.
  auto next = cfg;
  next.flows[0].branches[1].name = "regular";
  next.flows[0].branches[1].destinations[0].path = "/orders-regular";
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.changes.lanes_removed, std::vector<std::string>{"orders/standard/sink"});
  EXPECT_EQ(result.changes.lanes_added, std::vector<std::string>{"orders/regular/sink"});
  EXPECT_EQ(result.flows_changed, std::vector<std::string>{"orders"});
  for (int i = 0; i < 5; ++i) ASSERT_EQ(post(order("10.00", 200 + i)).status, 200);
  down = false;

  EXPECT_TRUE(eventually_within([&] { return daemon_->store().counts().pending == 0; }));
  std::map<int64_t, std::set<std::string>> delivered;
  for (const auto& r : sink_.requests()) delivered[body_id(r.body)].insert(r.target);
  // Acknowledged before the reload: delivered by the removed lane, with its last settings.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(delivered[100 + i], std::set<std::string>{"/api/orders"}) << i;
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(delivered[200 + i], std::set<std::string>{"/api/orders-regular"}) << i;
  EXPECT_EQ(daemon_->store().counts().dead, 0);
}

TEST_F(PipelineTest, ChangedDestinationSendsTheBacklogWithTheNewSettings) {
  auto cfg = make_config();
  cfg.connections["sink"].retry.max_attempts = 1000;
  std::atomic<bool> down{true};
  sink_.set_handler([&](const Recorded&) {
    Reply reply;
    if (down) reply.status = 503;
    return reply;
  });
  start(cfg);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post(order("10.00", 100 + i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 10s));

  // Same lane (flow, branch and destination names), new path: the lane keeps its queue.
  auto next = cfg;
  next.flows[0].branches[1].destinations[0].path = "/orders-v2";
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.changes.lanes_changed, std::vector<std::string>{"orders/standard/sink"});
  EXPECT_TRUE(result.changes.lanes_added.empty());
  EXPECT_TRUE(result.changes.lanes_removed.empty());
  sink_.clear();
  down = false;
  ASSERT_TRUE(eventually_within([&] { return daemon_->store().counts().pending == 0; }));
  EXPECT_EQ(targets_of(sink_), std::set<std::string>{"/api/orders-v2"});
}

TEST_F(PipelineTest, ChangedConnectionLimitsApplyToNewRequests) {
  auto cfg = make_config();
  start(cfg);
  auto next = cfg;
  next.connections["sink"].concurrency = 1;
  next.connections["sink"].rate_limit = {50, 1};
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.changes.connections_changed, std::vector<std::string>{"sink"});
  EXPECT_TRUE(result.changes.lanes_changed.empty());  // the retry policy did not change

  sink_.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 50ms;
    return reply;
  });
  constexpr int kN = 8;
  for (int i = 0; i < kN; ++i) ASSERT_EQ(post(order(i % 2 ? "10.00" : "500.00", i)).status, 200);
  ASSERT_TRUE(sink_.wait_for(kN, 20s));
  EXPECT_EQ(sink_.max_in_flight(), 1);
}

TEST_F(PipelineTest, NewBaseUriSendsToTheNewPlace) {
  auto cfg = make_config();
  start(cfg);
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));

  Sink second;
  auto next = cfg;
  next.connections["sink"].base_uri = second.url() + "/v2";
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.changes.connections_changed, std::vector<std::string>{"sink"});
  ASSERT_EQ(post(order("10.00", 2)).status, 200);
  ASSERT_TRUE(second.wait_for(1, 10s));
  EXPECT_EQ(second.requests()[0].target, "/v2/orders");
  EXPECT_EQ(body_id(second.requests()[0].body), 2);
  EXPECT_EQ(sink_.count(), 1u);
}

TEST_F(PipelineTest, RestartOnlySettingsKeepTheirRunningValues) {
  auto cfg = make_config();
  start(cfg);
  const uint16_t port = daemon_->port();
  auto next = cfg;
  next.server.port = 1;
  next.server.max_body_bytes = 10;
  next.store.dedup_window = std::chrono::hours(1);
  next.server.shutdown_grace = std::chrono::seconds(1);  // applied at once
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  // The default public_base_url follows the port.
  EXPECT_EQ(result.restart_needed, (std::vector<std::string>{"server.port", "server.public_base_url",
                                                             "server.max_body_bytes", "store.dedup_window"}));
  EXPECT_EQ(daemon_->port(), port);
  EXPECT_EQ(daemon_->config().server.max_body_bytes, cfg.server.max_body_bytes);
  EXPECT_EQ(daemon_->config().server.shutdown_grace, std::chrono::seconds(1));
  EXPECT_EQ(post(order("10.00", 1)).status, 200);  // still accepts bodies over 10 bytes
}

TEST_F(PipelineTest, RefusedReloadKeepsTheRunningConfiguration) {
  auto cfg = make_config();
  start(cfg);
  auto next = cfg;
  next.flows[0].source.secrets = {{config::SecretRef::Kind::env, "EVR_TEST_UNSET_SECRET_FOR_RELOAD", {}}};
  next.flows[0].branches[1].destinations[0].path = "/elsewhere";
  ::unsetenv("EVR_TEST_UNSET_SECRET_FOR_RELOAD");
  const auto result = daemon_->apply(next);
  EXPECT_FALSE(result.ok);
  ASSERT_FALSE(result.diagnostics.empty());
  EXPECT_TRUE(has(result.diagnostics[0].message, "EVR_TEST_UNSET_SECRET_FOR_RELOAD"));
  ASSERT_EQ(post(order("10.00", 1)).status, 200);  // verified with the old secret
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  EXPECT_EQ(sink_.requests()[0].target, "/api/orders");
}

TEST_F(PipelineTest, RemovedFlowStopsListeningAndAddedFlowGetsAStableUrl) {
  auto cfg = make_config();
  start(cfg);
  auto next = cfg;
  next.flows[0].name = "orders-renamed";
  next.flows[0].source.listener_id.reset();
  const auto result = daemon_->apply(next);
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.flows_added, std::vector<std::string>{"orders-renamed"});
  EXPECT_EQ(result.flows_removed, std::vector<std::string>{"orders"});
  EXPECT_EQ(post(order("10.00", 1)).status, 404);  // the old listener is gone
  const auto routes = daemon_->routes();
  ASSERT_EQ(routes->flows().size(), 1u);
  const std::string url = routes->listener_url(routes->flows()[0]);
  // Applying the same configuration again keeps the generated id.
  ASSERT_TRUE(daemon_->apply(next).ok);
  EXPECT_EQ(daemon_->routes()->listener_url(daemon_->routes()->flows()[0]), url);
}

TEST_F(PipelineTest, FileWatchReloadsAChangedFlowFile) {
  write_file(dir_ / "evrouter.yaml",
             "server: {listen: 127.0.0.1, port: 0, workers: 1}\n"
             "store: {state_dir: " +
                 (dir_ / "state").string() +
                 ", durability: none}\n"
                 "reload: {watch: true, debounce: 100ms}\n"
                 "flows: [" +
                 (dir_ / "flows").string() +
                 "]\n"
                 "connections:\n"
                 "  sink: {base_uri: '" +
                 sink_.url() + "/api'}\n");
  auto flow = [&](const std::string& path) {
    return std::string(
               "name: orders\n"
               "source:\n"
               "  listener_id: ") +
           kListener +
           "\n"
           "  secret: {env: EVR_TEST_SHOPIFY_SECRET}\n"
           "default:\n"
           "  destinations: [{connection: sink, path: " +
           path + "}]\n";
  };
  write_file(dir_ / "flows" / "orders.yaml", flow("/before"));
  auto loaded = config::load(dir_ / "evrouter.yaml");
  ASSERT_TRUE(loaded.ok()) << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].str());
  ASSERT_TRUE(loaded.config->reload.watch);
  start(std::move(*loaded.config));
  ASSERT_EQ(post(order("10.00", 1)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));

  // Written the way editors save: a new file renamed over the old one.
  write_file(dir_ / "flows" / "orders.yaml.tmp", flow("/after"));
  std::filesystem::rename(dir_ / "flows" / "orders.yaml.tmp", dir_ / "flows" / "orders.yaml");
  int64_t id = 2;
  EXPECT_TRUE(eventually_within([&] {
    sink_.clear();
    if (post(order("10.00", id++)).status != 200 || !sink_.wait_for(1, 5s)) return false;
    return sink_.requests()[0].target == "/api/after";
  }));
}

}  // namespace
}  // namespace evr::test
