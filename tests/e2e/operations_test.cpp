// Operators' tools on a running daemon: dead letters (list, history, replay by id / lane / time range,
// discard), event lookup and listing, runtime flow enable/disable across restarts, and the CLI commands.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "support/stored_event.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* kToken = "ops-admin-token-for-tests";

class Operations : public PipelineTest {
 protected:
  config::Config ops_config(const std::string& flow_name) {
    ::setenv("EVR_TEST_OPS_TOKEN", kToken, 1);
    auto cfg = make_config();
    cfg.flows[0].name = flow_name;  // series of its own in the process-wide metrics registry
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    cfg.admin.token = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_OPS_TOKEN", {}};
    return cfg;
  }

  PostResult admin(const std::string& method, const std::string& target, const std::string& body = "") {
    return http_request(
        daemon_->admin_port(), method, target,
        {{"Authorization", std::string("Bearer ") + kToken}, {"Content-Type", "application/json"}}, body);
  }

  json get(const std::string& target) {
    auto r = admin("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  // Waits until GET `target` satisfies `ok`.
  template <typename F>
  json wait_json(const std::string& target, F ok) {
    json j;
    for (int i = 0; i < 500; ++i) {
      j = get(target);
      if (ok(j)) return j;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "timed out waiting on " << target << ": " << j.dump();
    return j;
  }

  std::string accepted_id(const PostResult& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("event_id", "");
  }
};

}  // namespace

TEST_F(Operations, DeadLetterHistoryReplayById) {
  start(ops_config("ops-dlq"));
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 400;
    r.body = R"({"error":"bad order"})";
    return r;
  });
  const std::string event_id = accepted_id(post(order("150.00")));
  auto page = wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 1; });
  const auto& dl = page["dead_letters"][0];
  EXPECT_EQ(dl["lane"], "ops-dlq/priority/sink");
  EXPECT_EQ(dl["state"], "dead");
  EXPECT_EQ(dl["event"]["id"], event_id);
  EXPECT_EQ(dl["last_error"], "HTTP 400");
  const int64_t id = dl["id"].get<int64_t>();

  auto one = get("/v1/dlq/" + std::to_string(id));
  ASSERT_EQ(one["history"].size(), 1U) << one.dump();
  EXPECT_EQ(one["history"][0]["status"], 400);
  EXPECT_EQ(one["history"][0]["response"], R"({"error":"bad order"})");
  EXPECT_EQ(one["event"]["payload"]["total_price"], "150.00");
  EXPECT_EQ(admin("GET", "/v1/dlq/999999").status, 404);
  EXPECT_EQ(admin("GET", "/v1/dlq/abc").status, 404);

  // The destination is fixed: the replay delivers it, with its history kept and the replay counted.
  sink_.set_handler([](const Recorded&) { return Reply{}; });
  sink_.clear();
  auto replay = admin("POST", "/v1/dlq/" + std::to_string(id) + "/replay");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(json::parse(replay.body)["count"], 1);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  EXPECT_EQ(sink_.requests()[0].header("x-evrouter-attempt"), "2");
  auto after =
      wait_json("/v1/dlq/" + std::to_string(id), [](const json& j) { return j["state"] == "delivered"; });
  EXPECT_EQ(after["replays"], 1);
  EXPECT_EQ(after["history"].size(), 2U);
  EXPECT_EQ(get("/v1/dlq")["dead_letters"].size(), 0U);
  // Only dead letters can be replayed or discarded.
  EXPECT_EQ(admin("POST", "/v1/dlq/" + std::to_string(id) + "/replay").status, 409);
}

TEST_F(Operations, ReplayStartsTheRetryPolicyOver) {
  auto cfg = ops_config("ops-budget");
  cfg.connections["sink"].retry.max_attempts = 2;
  start(cfg);
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 503;
    return r;
  });
  ASSERT_EQ(post(order("150.00")).status, 200);
  auto page = wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 1; });
  const std::string id = std::to_string(page["dead_letters"][0]["id"].get<int64_t>());
  EXPECT_EQ(sink_.count(), 2U);
  ASSERT_EQ(admin("POST", "/v1/dlq/" + id + "/replay").status, 200);
  // Two more attempts (numbered 3 and 4), not one: max_attempts counts from the replay.
  auto again = wait_json("/v1/dlq/" + id, [](const json& j) { return j["state"] == "dead"; });
  EXPECT_EQ(sink_.count(), 4U);
  ASSERT_EQ(again["history"].size(), 4U) << again.dump();
  EXPECT_EQ(again["history"][3]["number"], 4);
  EXPECT_EQ(again["replays"], 1);
}

TEST_F(Operations, BulkReplayByLaneAndTimeRangeThenDiscard) {
  start(ops_config("ops-bulk"));
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 422;
    return r;
  });
  for (const char* price : {"150.00", "250.00", "10.00", "20.00"}) ASSERT_EQ(post(order(price)).status, 200);
  wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 4; });
  EXPECT_EQ(get("/v1/dlq?lane=ops-bulk/standard/sink")["dead_letters"].size(), 2U);
  EXPECT_EQ(get("/v1/dlq?flow=ops-bulk")["dead_letters"].size(), 4U);
  EXPECT_EQ(get("/v1/dlq?flow=other")["dead_letters"].size(), 0U);
  // Pagination, newest first.
  auto p1 = get("/v1/dlq?limit=3");
  ASSERT_EQ(p1["dead_letters"].size(), 3U);
  ASSERT_TRUE(p1["next_cursor"].is_string());
  auto p2 = get("/v1/dlq?limit=3&cursor=" + p1["next_cursor"].get<std::string>());
  ASSERT_EQ(p2["dead_letters"].size(), 1U);
  EXPECT_TRUE(p2["next_cursor"].is_null());
  EXPECT_EQ(admin("GET", "/v1/dlq?cursor=nonsense").status, 400);
  EXPECT_EQ(admin("GET", "/v1/dlq?since=yesterday-ish").status, 400);
  EXPECT_EQ(admin("GET", "/v1/dlq?limit=0").status, 400);
  EXPECT_EQ(admin("GET", "/v1/dlq?colour=red").status, 400);

  // A time range in the past matches nothing; the last minute matches the lane's two.
  sink_.set_handler([](const Recorded&) { return Reply{}; });
  auto none =
      admin("POST", "/v1/dlq/replay", R"({"lane":"ops-bulk/priority/sink","until":"2020-01-01T00:00:00Z"})");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(json::parse(none.body)["count"], 0);
  auto lane = admin("POST", "/v1/dlq/replay", R"({"lane":"ops-bulk/priority/sink","since":"1m"})");
  ASSERT_EQ(lane.status, 200) << lane.body;
  EXPECT_EQ(json::parse(lane.body)["count"], 2);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  wait_json("/v1/stats", [](const json& j) { return j["deliveries"]["delivered"] == 2; });

  EXPECT_EQ(admin("POST", "/v1/dlq/discard", R"({"lane": 5})").status, 400);
  EXPECT_EQ(admin("POST", "/v1/dlq/discard", "not json").status, 400);
  auto discard = admin("POST", "/v1/dlq/discard", R"({"flow":"ops-bulk"})");
  ASSERT_EQ(discard.status, 200) << discard.body;
  EXPECT_EQ(json::parse(discard.body)["count"], 2);
  EXPECT_EQ(get("/v1/dlq")["dead_letters"].size(), 0U);
  EXPECT_EQ(get("/v1/events?status=discarded")["events"].size(), 2U);
  EXPECT_EQ(sink_.count(), 4U + 2U);  // nothing sent for the discarded ones
}

TEST_F(Operations, EventLookupAndListing) {
  start(ops_config("ops-events"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(accepted_id(post(order("150.00", 1000 + i))));
  ids.push_back(accepted_id(post(order("5.00", 2000), {}, "orders/updated")));
  wait_json("/v1/stats", [](const json& j) { return j["deliveries"]["delivered"] == 4; });

  auto by_id = get("/v1/events/" + ids[1]);
  EXPECT_EQ(by_id["id"], ids[1]);
  EXPECT_EQ(by_id["webhook_id"], "wh-2");
  EXPECT_EQ(by_id["payload"]["id"], 1001);
  ASSERT_EQ(by_id["deliveries"].size(), 1U);
  EXPECT_EQ(by_id["deliveries"][0]["state"], "delivered");
  EXPECT_EQ(by_id["deliveries"][0]["history"][0]["status"], 200);
  EXPECT_EQ(get("/v1/events/wh-3")["id"], ids[2]);  // by webhook id
  EXPECT_EQ(admin("GET", "/v1/events/nope").status, 404);

  auto all = get("/v1/events");
  ASSERT_EQ(all["events"].size(), 4U);
  EXPECT_EQ(all["events"][0]["id"], ids[3]);  // newest first
  EXPECT_EQ(get("/v1/events?type=orders/updated")["events"].size(), 1U);
  EXPECT_EQ(get("/v1/events?flow=ops-events&status=delivered")["events"].size(), 4U);
  EXPECT_EQ(get("/v1/events?status=dead")["events"].size(), 0U);
  EXPECT_EQ(get("/v1/events?until=2020-01-01T00:00:00Z")["events"].size(), 0U);
  EXPECT_EQ(admin("GET", "/v1/events?status=lost").status, 400);

  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 4; ++page) {
    auto j = get("/v1/events?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor));
    for (const auto& e : j["events"]) seen.push_back(e["id"]);
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{ids[3], ids[2], ids[1], ids[0]}));
}

TEST_F(Operations, FlowDisabledAtRunTimeStaysDisabledAcrossRestartAndReload) {
  const auto cfg = ops_config("ops-toggle");
  start(cfg);
  ASSERT_EQ(post(order("150.00")).status, 200);
  auto off = admin("POST", "/v1/flows/ops-toggle/disable");
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(json::parse(off.body)["enabled"], false);
  EXPECT_EQ(json::parse(off.body)["enabled_override"], false);
  auto refused = post(order("150.00"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("flow_disabled"), std::string::npos);
  EXPECT_EQ(admin("POST", "/v1/flows/nope/disable").status, 404);

  ASSERT_TRUE(daemon_->apply(cfg).ok);  // a reload keeps the override
  EXPECT_EQ(post(order("150.00")).status, 503);

  daemon_->stop();
  daemon_.reset();
  start(cfg);
  EXPECT_EQ(post(order("150.00")).status, 503);
  EXPECT_EQ(get("/v1/flows/ops-toggle")["enabled"], false);

  ASSERT_EQ(admin("POST", "/v1/flows/ops-toggle/enable").status, 200);
  EXPECT_EQ(post(order("150.00")).status, 200);
  auto reset = admin("POST", "/v1/flows/ops-toggle/reset");
  ASSERT_EQ(reset.status, 200);
  EXPECT_TRUE(json::parse(reset.body)["enabled_override"].is_null());
  EXPECT_EQ(post(order("150.00")).status, 200);
  // The listener id is pinned in this configuration: it cannot be rotated.
  EXPECT_EQ(admin("POST", "/v1/flows/ops-toggle/rotate-listener").status, 409);
}

TEST_F(Operations, RotatedListenerIdReplacesTheOldUrl) {
  auto cfg = ops_config("ops-rotate");
  cfg.flows[0].source.listener_id.reset();
  start(cfg);
  auto path_of = [](const json& flow) {
    const std::string url = flow["listener_url"];
    return url.substr(url.find("/hooks/"));
  };
  const std::string before = path_of(get("/v1/flows/ops-rotate"));
  const std::string body = order("150.00");
  auto send = [&](const std::string& path) {
    return http_request(daemon_->port(), "POST", path,
                        {{"X-Shopify-Topic", "orders/create"},
                         {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                         {"X-Shopify-Webhook-Id", "wh-r" + std::to_string(++webhook_seq_)},
                         {"Content-Type", "application/json"}},
                        body);
  };
  ASSERT_EQ(send(before).status, 200);
  auto rotated = admin("POST", "/v1/flows/ops-rotate/rotate-listener");
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string after = path_of(json::parse(rotated.body));
  EXPECT_NE(after, before);
  EXPECT_EQ(send(before).status, 404);
  EXPECT_EQ(send(after).status, 200);
  daemon_->stop();
  daemon_.reset();
  start(cfg);
  EXPECT_EQ(path_of(get("/v1/flows/ops-rotate")), after);
}

TEST_F(Operations, CliTalksToTheAdminApi) {
  start(ops_config("ops-cli"));
  sink_.set_handler([](const Recorded&) {
    Reply r;
    r.status = 400;
    return r;
  });
  const std::string event_id = accepted_id(post(order("150.00")));
  wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 1; });
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon_->admin_port());
  const std::vector<std::string> env{std::string("EVROUTER_ADMIN_URL=") + url,
                                     std::string("EVROUTER_ADMIN_TOKEN=") + kToken};

  auto flows = run_cli({"flows", "list"}, env);
  EXPECT_EQ(flows.status, 0) << flows.output;
  EXPECT_NE(flows.output.find("NAME"), std::string::npos) << flows.output;
  EXPECT_NE(flows.output.find("ops-cli"), std::string::npos) << flows.output;

  auto dlq = run_cli({"dlq", "list", "--output", "json"}, env);
  ASSERT_EQ(dlq.status, 0) << dlq.output;
  const auto j = json::parse(dlq.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << dlq.output;
  ASSERT_EQ(j["dead_letters"].size(), 1U);
  const std::string delivery = std::to_string(j["dead_letters"][0]["id"].get<int64_t>());

  auto table = run_cli({"dlq", "list"}, env);
  EXPECT_EQ(table.status, 0);
  EXPECT_NE(table.output.find("HTTP 400"), std::string::npos) << table.output;

  auto ev = run_cli({"events", "get", "wh-1", "--admin-url", url, "--token", kToken});
  EXPECT_EQ(ev.status, 0) << ev.output;
  EXPECT_NE(ev.output.find(event_id), std::string::npos) << ev.output;
  EXPECT_NE(ev.output.find("status 400"), std::string::npos) << ev.output;

  auto list = run_cli({"events", "list", "--status", "dead", "--limit", "5"}, env);
  EXPECT_EQ(list.status, 0) << list.output;
  EXPECT_NE(list.output.find(event_id), std::string::npos) << list.output;

  sink_.set_handler([](const Recorded&) { return Reply{}; });
  auto replay = run_cli({"dlq", "replay", delivery}, env);
  EXPECT_EQ(replay.status, 0) << replay.output;
  EXPECT_NE(replay.output.find("replayed 1 dead letter"), std::string::npos) << replay.output;
  EXPECT_TRUE(sink_.wait_for(2, 10s));

  auto none = run_cli({"dlq", "discard"}, env);  // no filter: refused, nothing discarded by accident
  EXPECT_EQ(none.status, 2) << none.output;

  auto disable = run_cli({"flows", "disable", "ops-cli"}, env);
  EXPECT_EQ(disable.status, 0) << disable.output;
  EXPECT_NE(disable.output.find("disabled"), std::string::npos);
  EXPECT_EQ(post(order("150.00")).status, 503);
  auto unknown = run_cli({"flows", "enable", "nope"}, env);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("404"), std::string::npos) << unknown.output;

  auto wrong = run_cli({"flows", "list", "--token", "wrong"}, {std::string("EVROUTER_ADMIN_URL=") + url});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.output.find("refused the token"), std::string::npos) << wrong.output;
  auto missing = run_cli({"flows", "list"}, {std::string("EVROUTER_ADMIN_URL=") + url});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("needs a token"), std::string::npos) << missing.output;

  const std::string dead_url = "http://127.0.0.1:" + std::to_string(free_port());
  auto unreachable = run_cli({"events", "list", "--admin-url", dead_url});
  EXPECT_EQ(unreachable.status, 1);
  EXPECT_NE(unreachable.output.find("cannot reach the admin API at " + dead_url), std::string::npos)
      << unreachable.output;
}

// A store larger than a page's scan budget: the API answers an empty page with a cursor for a type found
// only at the bottom, and the CLI follows the cursors to it.
TEST_F(Operations, CliFollowsShortPagesToARareMatch) {
  start(ops_config("ops-pages"));
  auto commit = [this](int n, const std::string& type, int& serial) {
    std::vector<store::Ingest> batch;
    for (int i = 0; i < n; ++i) {
      auto e = stored_event("bulk-" + std::to_string(++serial));
      e->type = type;
      batch.push_back({std::move(e), {}});
    }
    std::promise<std::vector<store::CommitResult>> p;
    daemon_->store().commit_batch(std::move(batch),
                                  [&p](std::vector<store::CommitResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  int serial = 0;
  const std::string rare = commit(1, "orders/rare", serial).at(0).event_id;
  for (int i = 0; i < 6; ++i) ASSERT_EQ(commit(2000, "orders/create", serial).size(), 2000U);

  const auto first = get("/v1/events?type=orders/rare");
  EXPECT_TRUE(first["events"].empty()) << first.dump();
  ASSERT_TRUE(first["next_cursor"].is_string()) << first.dump();

  const std::string url = "http://127.0.0.1:" + std::to_string(daemon_->admin_port());
  const std::vector<std::string> env{std::string("EVROUTER_ADMIN_URL=") + url,
                                     std::string("EVROUTER_ADMIN_TOKEN=") + kToken};
  auto list = run_cli({"events", "list", "--type", "orders/rare"}, env);
  EXPECT_EQ(list.status, 0) << list.output;
  EXPECT_NE(list.output.find(rare), std::string::npos) << list.output;
  EXPECT_EQ(list.output.find("(more:"), std::string::npos) << list.output;

  auto json_out =
      run_cli({"events", "list", "--type", "orders/create", "--limit", "3", "--output", "json"}, env);
  ASSERT_EQ(json_out.status, 0) << json_out.output;
  const auto j = json::parse(json_out.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << json_out.output;
  EXPECT_EQ(j["events"].size(), 3U);
  EXPECT_TRUE(j["next_cursor"].is_string());
}

// A destination's answer is kept (its first KiB) with each attempt and shown by the admin API as JSON: a body
// that is not UTF-8 (Latin-1, binary) or whose first KiB ends inside a multi-byte character is kept as
// valid UTF-8 (invalid bytes replaced by U+FFFD, the cut made at a character boundary), so the dead letter
// and the event stay readable.
TEST_F(Operations, DestinationAnswersThatAreNotUtf8StayReadable) {
  start(ops_config("ops-bytes"));
  std::string long_body = "x" + std::string(600, 'y');
  for (int i = 0; i < 400; ++i) long_body += "\xc3\xa9";  // é: its 212th starts at byte 1,023
  sink_.set_handler([&long_body](const Recorded& req) {
    Reply r;
    r.status = 400;
    r.body =
        req.target.find("priority") != std::string::npos ? std::string("caf\xe9 \xff\xfe error") : long_body;
    return r;
  });
  accepted_id(post(order("150.00")));  // priority: Latin-1 answer
  accepted_id(post(order("50.00")));   // standard: 1 + 600 + 800 bytes of UTF-8, cut at 1,024
  auto page = wait_json("/v1/dlq", [](const json& j) { return j["dead_letters"].size() == 2; });
  ASSERT_EQ(page["dead_letters"].size(), 2U) << page.dump();
  for (const auto& dl : page["dead_letters"]) {
    const auto one = get("/v1/dlq/" + std::to_string(dl["id"].get<int64_t>()));
    ASSERT_EQ(one["history"].size(), 1U) << one.dump();
    const std::string response = one["history"][0]["response"];
    if (dl["lane"] == "ops-bytes/priority/sink") {
      EXPECT_EQ(response, "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd error");
    } else {
      EXPECT_EQ(response.size(), 1023U);
      EXPECT_EQ(response.substr(response.size() - 2), "\xc3\xa9");  // whole characters only
    }
    const auto event = get("/v1/events/" + one["event"]["id"].get<std::string>());
    EXPECT_EQ(event["deliveries"].size(), 1U) << event.dump();
  }
}
