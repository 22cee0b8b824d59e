// Replay of a time window: webhooks are received and delivered, the flow is changed (new branch, new
// destinations, a mapping), and the window is replayed through the new definition: the sink gets the
// new-shape deliveries marked as replays; dry runs only count; bad requests get clear errors. Also the
// `evrouter replay` command and the operations metrics (queue age, replay counters). Each on both stores.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/tail/hub.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

template <typename F>
bool poll_until(F f, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

class Replay : public StorePipelineTest {
 protected:
  config::Config replay_config(const std::string& flow_name) {
    auto cfg = make_config();
    cfg.flows[0].name =
        flow_name + "-" + GetParam();  // series of its own in the process-wide metrics registry
    cfg.store.durability = config::Store::Durability::none;
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    return cfg;
  }

  // The flow after the change: one branch taking every order, to a mapped destination and a plain one.
  static config::Config changed(config::Config cfg) {
    config::Destination v2;
    v2.name = "v2";
    v2.connection = "sink";
    v2.method = "PUT";
    v2.path = "/v2/orders/{order_id}";
    v2.input_paths = {{"order_id", "$.detail.id", config::InputPath::As::value, {}},
                      {"total", "$.detail.total_price", config::InputPath::As::number, {}}};
    v2.input_template = nlohmann::ordered_json::parse(R"({"order": "<order_id>", "total": "<total>"})");
    config::Destination audit;
    audit.name = "audit";
    audit.connection = "sink";
    audit.path = "/audit";
    config::Branch all;
    all.name = "all";
    all.destinations = {v2, audit};
    cfg.flows[0].branches = {all};
    return cfg;
  }

  PostResult admin(const std::string& method, const std::string& target, const std::string& body = "") {
    return http_request(daemon_->admin_port(), method, target, {{"Content-Type", "application/json"}}, body);
  }

  json replay(const std::string& flow, const json& body, int expect = 200) {
    auto r = admin("POST", "/v1/flows/" + flow + "/replay", body.dump());
    EXPECT_EQ(r.status, expect) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.body;
    return j;
  }
};

std::vector<Recorded> at(const Sink& sink, const std::string& prefix) {
  std::vector<Recorded> out;
  for (const auto& r : sink.requests()) {
    if (r.target.rfind(prefix, 0) == 0) out.push_back(r);
  }
  return out;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Stores, Replay, kStores, store_name);

TEST_P(Replay, WindowGoesThroughTheCurrentDefinitionMarkedAsReplays) {
  auto cfg = replay_config("replay-e2e");
  const std::string flow = cfg.flows[0].name;
  start(cfg);
  const std::string from = event::format_time(event::now_ms() - 1000);
  ASSERT_EQ(post(order("150.00", 1)).status, 200);  // priority
  ASSERT_EQ(post(order("50.00", 2)).status, 200);   // standard
  ASSERT_EQ(post(order("200.00", 3)).status, 200);  // priority
  ASSERT_TRUE(sink_.wait_for(3, 10s));
  ASSERT_TRUE(poll_until([&] { return daemon_->store().counts().pending == 0; }));
  const std::string to = event::format_time(event::now_ms() + 1);
  for (const auto& r : sink_.requests()) EXPECT_EQ(r.header("x-evrouter-replay"), "");

  const auto result = daemon_->apply(changed(cfg));
  ASSERT_TRUE(result.ok) << result.error;

  // Dry run: counts only, nothing is sent.
  auto dry = replay(flow, {{"from", from}, {"to", to}, {"dry_run", true}});
  EXPECT_EQ(dry["events_scanned"], 3);
  EXPECT_EQ(dry["events_matched"], 3);
  EXPECT_EQ(dry["deliveries_would_create"], 6);
  EXPECT_EQ(dry["deliveries_created"], 0);
  EXPECT_EQ(dry["lanes"], json({flow + "/all/audit", flow + "/all/v2"}));
  // A window before the events: nothing.
  auto empty = replay(flow, {{"from", "2020-01-01T00:00:00Z"}, {"to", from}, {"dry_run", true}});
  EXPECT_EQ(empty["events_scanned"], 0);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sink_.count(), 3U);

  // Bad requests.
  EXPECT_EQ(replay(flow, {{"from", "yesterday"}, {"to", to}}, 400)["error"], "bad_request");
  EXPECT_EQ(replay(flow, {{"to", to}}, 400)["error"], "bad_request");
  EXPECT_EQ(replay(flow, {{"from", to}, {"to", from}}, 400)["error"], "bad_request");
  EXPECT_EQ(replay(flow, {{"from", from}, {"to", to}, {"extra", 1}}, 400)["error"], "bad_request");
  EXPECT_EQ(replay(flow, {{"from", from}, {"to", to}, {"destination", "nope"}}, 400)["error"],
            "unknown_destination");
  EXPECT_EQ(replay("no-such-flow", {{"from", from}, {"to", to}}, 404)["error"], "unknown_flow");
  EXPECT_EQ(admin("POST", "/v1/flows/" + flow + "/replay", "not json").status, 400);

  // The real thing, to one destination; the live tail sees the replayed events.
  auto& hub = tail::Hub::global();
  auto watcher = hub.subscribe(1000, [] {});
  ASSERT_TRUE(watcher);
  auto done = replay(flow, {{"from", from}, {"to", to}, {"destination", "v2"}});
  EXPECT_EQ(done["events_scanned"], 3);
  EXPECT_EQ(done["events_matched"], 3);
  EXPECT_EQ(done["deliveries_created"], 3);
  EXPECT_EQ(done["lanes"], json({flow + "/all/v2"}));
  ASSERT_TRUE(sink_.wait_for(6, 10s));
  const auto replayed = at(sink_, "/api/v2/orders/");
  ASSERT_EQ(replayed.size(), 3U);
  std::set<std::string> bodies;
  for (const auto& r : replayed) {
    EXPECT_EQ(r.method, "PUT");
    EXPECT_EQ(r.header("x-evrouter-replay"), "true");
    bodies.insert(r.body);
  }
  EXPECT_EQ(bodies, (std::set<std::string>{R"({"order":1,"total":150.0})", R"({"order":2,"total":50.0})",
                                           R"({"order":3,"total":200.0})"}));
  EXPECT_TRUE(at(sink_, "/api/audit").empty());
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sink_.count(), 6U);

  std::vector<tail::RecordPtr> records;
  ASSERT_TRUE(poll_until([&] {
    watcher->take(records);
    return std::count_if(records.begin(), records.end(), [](const tail::RecordPtr& r) {
             return r->kind == tail::Record::Kind::delivery && r->replay && r->outcome == "delivered";
           }) == 3;
  }));
  hub.unsubscribe(watcher);
  EXPECT_EQ(std::count_if(
                records.begin(), records.end(),
                [](const tail::RecordPtr& r) { return r->kind == tail::Record::Kind::event && r->replay; }),
            3);

  // The event shows its first delivery and the replay's.
  const std::string event_id = replayed[0].header("x-evrouter-event-id");
  json evj;
  ASSERT_TRUE(poll_until([&] {
    auto ev = admin("GET", "/v1/events/" + event_id);
    evj = json::parse(ev.body, nullptr, false);
    return ev.status == 200 && evj["deliveries"].size() == 2 && evj["deliveries"][1]["state"] == "delivered";
  })) << evj.dump();
  EXPECT_EQ(evj["deliveries"][0]["replay"], false);
  EXPECT_EQ(evj["deliveries"][1]["replay"], true);
  EXPECT_EQ(evj["deliveries"][1]["lane"], flow + "/all/v2");
  EXPECT_EQ(evj["deliveries"][1]["state"], "delivered");
  EXPECT_TRUE(evj["deliveries"][1]["replay_at"].is_string());

  // Counted apart: flow stats and Prometheus.
  auto stats = json::parse(admin("GET", "/v1/flows/" + flow + "/stats?window=1h").body);
  EXPECT_EQ(stats["replayed"], 3);
  EXPECT_EQ(stats["lanes"][flow + "/all/v2"]["replayed"], 3);
  EXPECT_EQ(stats["matched"], 3);  // the ingest's, not the replay's
  EXPECT_EQ(stats["unmatched"], 0);
  const auto metrics = admin("GET", "/metrics").body;
  EXPECT_NE(metrics.find("evrouter_replayed_deliveries_total{flow=\"" + flow + "\",lane=\"" + flow +
                         "/all/v2\"} 3"),
            std::string::npos);
  EXPECT_NE(
      metrics.find("evrouter_lane_queue_age_seconds{flow=\"" + flow + "\",lane=\"" + flow + "/all/v2\"} 0"),
      std::string::npos)
      << metrics;

  // A disabled flow is not replayed.
  ASSERT_EQ(admin("POST", "/v1/flows/" + flow + "/disable").status, 200);
  EXPECT_EQ(replay(flow, {{"from", from}, {"to", to}}, 409)["error"], "flow_disabled");
}

TEST_P(Replay, QueueAgeShowsHowLongTheOldestPendingDeliveryWaited) {
  auto cfg = replay_config("replay-age");
  const std::string flow = cfg.flows[0].name;
  cfg.connections["sink"].retry.backoff_base = 60s;  // a failed attempt waits long
  cfg.connections["sink"].retry.backoff_cap = 60s;
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 503;
    return r;
  });
  start(cfg);
  ASSERT_EQ(post(order("50.00", 7)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  std::this_thread::sleep_for(1100ms);
  const std::string lane = flow + "/standard/sink";
  const std::string series = "evrouter_lane_queue_age_seconds{flow=\"" + flow + "\",lane=\"" + lane + "\"} ";
  const auto metrics = admin("GET", "/metrics").body;
  const auto at_series = metrics.find(series);
  ASSERT_NE(at_series, std::string::npos) << metrics;
  EXPECT_GE(std::stoll(metrics.substr(at_series + series.size())), 1);
  EXPECT_NE(metrics.find("evrouter_lane_queue_age_seconds{flow=\"" + flow + "\",lane=\"" + flow +
                         "/priority/sink\"} 0"),
            std::string::npos);
}

TEST_P(Replay, CliReplaysAWindow) {
  auto cfg = replay_config("replay-cli");
  const std::string flow = cfg.flows[0].name;
  start(cfg);
  ASSERT_EQ(post(order("150.00", 11)).status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon_->admin_port());
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "replay");
    DaemonProcess p(std::move(args), {std::string("EVROUTER_ADMIN_URL=") + url});
    const int status = p.wait(20s);
    const std::string output = read_file(p.log_path());
    std::filesystem::remove(p.log_path());
    return std::make_pair(status, output);
  };
  auto [dry_status, dry] =
      run({"--flow", flow, "--from", "1h", "--to", "2099-01-01T00:00:00Z", "--dry-run", "--output", "json"});
  EXPECT_EQ(dry_status, 0) << dry;
  auto j = json::parse(dry.substr(dry.find('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << dry;
  EXPECT_EQ(j["events_matched"], 1);
  EXPECT_EQ(j["deliveries_would_create"], 1);

  auto [status, text] = run({"--flow", flow, "--from", "1h", "--to", "2099-01-01T00:00:00Z"});
  EXPECT_EQ(status, 0) << text;
  EXPECT_NE(text.find("deliveries created: 1"), std::string::npos) << text;
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  EXPECT_EQ(sink_.requests().back().header("x-evrouter-replay"), "true");

  auto [bad_status, bad] = run({"--flow", flow, "--from", "nonsense", "--to", "1h"});
  EXPECT_EQ(bad_status, 1) << bad;
  EXPECT_NE(bad.find("400"), std::string::npos) << bad;
  auto [usage_status, usage] = run({"--flow", flow});
  EXPECT_EQ(usage_status, 2) << usage;
}
