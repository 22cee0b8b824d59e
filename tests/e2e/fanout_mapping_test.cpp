// Fan-out to several destinations, the default branch, and mapped deliveries, through the whole daemon.
#include <functional>

#include "pipeline_fixture.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

config::Destination to(const std::string& connection, const std::string& path) {
  config::Destination d;
  d.name = connection;
  d.connection = connection;
  d.path = path;
  return d;
}

class FlowPipelineTest : public PipelineTest {
 protected:
  // make_config() plus a connection "other" to a second sink.
  config::Config with_other() {
    auto cfg = make_config();
    config::Connection c = cfg.connections.at("sink");
    c.name = "other";
    c.base_uri = other_.url() + "/hook";
    cfg.connections["other"] = c;
    return cfg;
  }

  // The target of every request the sink received, by order id in the body (mapped bodies too: "Id").
  static std::map<int64_t, std::vector<std::string>> targets(const Sink& sink) {
    std::map<int64_t, std::vector<std::string>> out;
    for (const auto& r : sink.requests()) {
      const auto body = nlohmann::json::parse(r.body);
      out[body.contains("id") ? body["id"].get<int64_t>() : body["Id"].get<int64_t>()].push_back(r.target);
    }
    return out;
  }

  Sink other_;
};

TEST_F(FlowPipelineTest, FanOutToTwoSinksDeliveredAndRetriedIndependently) {
  auto cfg = with_other();
  auto& standard = cfg.flows[0].branches[1];
  standard.destinations = {to("sink", "/orders"), to("other", "/orders-copy")};
  // The first sink fails twice; the second must not wait for it nor see a retry.
  std::atomic<int> calls{0};
  sink_.set_handler([&calls](const Recorded&) {
    Reply r;
    r.status = ++calls <= 2 ? 503 : 200;
    return r;
  });
  start(cfg);
  ASSERT_EQ(post(order("50.00", 7)).status, 200);
  ASSERT_TRUE(other_.wait_for(1, 5s));
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  ASSERT_TRUE(wait_until([&] { return daemon_->store().counts().delivered == 2; }));
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(other_.count(), 1u);
  ASSERT_EQ(sink_.count(), 3u);
  const auto a = sink_.requests();
  const auto b = other_.requests();
  EXPECT_EQ(a[0].target, "/api/orders");
  EXPECT_EQ(b[0].target, "/hook/orders-copy");
  EXPECT_EQ(a[2].header("x-evrouter-attempt"), "3");
  EXPECT_EQ(b[0].header("x-evrouter-attempt"), "1");
  // One event, two deliveries (two lanes).
  EXPECT_EQ(a[0].header("x-evrouter-event-id"), b[0].header("x-evrouter-event-id"));
  EXPECT_NE(a[0].header("x-evrouter-delivery-id"), b[0].header("x-evrouter-delivery-id"));
  EXPECT_EQ(a[2].body, b[0].body);
  auto c = daemon_->store().counts();
  EXPECT_EQ(c.events, 1);
  EXPECT_EQ(c.pending, 0);
}

// priority (total > 100) -> /orders/priority; default -> /orders/default (and, in mode all, a second
// matching branch create -> other:/created).
config::Config default_config(config::Config cfg, config::Flow::Mode mode) {
  auto& f = cfg.flows[0];
  f.mode = mode;
  config::Branch fallback;
  fallback.name = "default";
  fallback.is_default = true;
  fallback.destinations = {to("sink", "/orders/default")};
  f.branches.resize(1);  // priority only
  if (mode == config::Flow::Mode::all) {
    config::Branch create;
    create.name = "create";
    create.match = nlohmann::json::parse(R"({"detail-type": ["orders/create"]})");
    create.destinations = {to("other", "/created")};
    f.branches.push_back(create);
  }
  f.branches.push_back(fallback);
  return cfg;
}

TEST_F(FlowPipelineTest, DefaultBranchTakesWhatNothingMatchedInModeFirst) {
  start(default_config(with_other(), config::Flow::Mode::first));
  ASSERT_EQ(post(order("150.00", 1)).status, 200);
  ASSERT_EQ(post(order("50.00", 2)).status, 200);
  ASSERT_EQ(post(order("500.00", 3), {}, "orders/updated").status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 5s));
  std::this_thread::sleep_for(200ms);
  auto t = targets(sink_);
  EXPECT_EQ(t[1], std::vector<std::string>{"/api/orders/priority"});
  EXPECT_EQ(t[2], std::vector<std::string>{"/api/orders/default"});
  EXPECT_EQ(t[3], std::vector<std::string>{"/api/orders/default"});
  EXPECT_EQ(sink_.count(), 3u);
}

TEST_F(FlowPipelineTest, DefaultBranchTakesWhatNothingMatchedInModeAll) {
  start(default_config(with_other(), config::Flow::Mode::all));
  ASSERT_EQ(post(order("150.00", 1)).status, 200);                       // priority and create
  ASSERT_EQ(post(order("50.00", 2)).status, 200);                        // create
  ASSERT_EQ(post(order("50.00", 3), {}, "orders/updated").status, 200);  // nothing: default
  ASSERT_TRUE(sink_.wait_for(2, 5s));
  ASSERT_TRUE(other_.wait_for(2, 5s));
  std::this_thread::sleep_for(200ms);
  auto t = targets(sink_);
  auto o = targets(other_);
  EXPECT_EQ(t[1], std::vector<std::string>{"/api/orders/priority"});
  EXPECT_EQ(o[1], std::vector<std::string>{"/hook/created"});
  EXPECT_EQ(t.count(2), 0u);
  EXPECT_EQ(o[2], std::vector<std::string>{"/hook/created"});
  EXPECT_EQ(t[3], std::vector<std::string>{"/api/orders/default"});
  EXPECT_EQ(o.count(3), 0u);
  EXPECT_EQ(sink_.count(), 2u);
  EXPECT_EQ(other_.count(), 2u);
}

TEST_F(FlowPipelineTest, MappedBodyUriAndHeaderArriveExactly) {
  auto cfg = make_config();
  auto& d = cfg.flows[0].branches[0].destinations[0];  // priority
  d.method = "PUT";
  d.path = "/orders/{order_id}?shop={shop}";
  d.headers = {{"X-Order-Name", "Order {name}"}, {"X-Route", "priority"}};
  d.input_paths = {{"order_id", "$.detail.id", config::InputPath::As::value, {}},
                   {"name", "$.detail.name", config::InputPath::As::value, {}},
                   {"total", "$.detail.total_price", config::InputPath::As::number, {}},
                   {"email", "$.detail.email", config::InputPath::As::value, {}},
                   {"skus", "$.detail.line_items[*].sku", config::InputPath::As::value, {}},
                   {"shop", "$.shop", config::InputPath::As::value, {}},
                   {"missing", "$.detail.no_such_field", config::InputPath::As::value, {}}};
  d.input_template = nlohmann::ordered_json::parse(R"({
    "Id": "<order_id>", "Number": "<name>", "Total": "<total>", "Customer": {"Email": "<email>"},
    "Skus": "<skus>", "Missing": "<missing>", "Note": "<name> via <evrouter.event-type>"})");
  start(cfg);
  ASSERT_EQ(post(order("150.00", 42)).status, 200);  // priority: mapped
  ASSERT_EQ(post(order("50.00", 43)).status, 200);   // standard: raw payload
  ASSERT_TRUE(sink_.wait_for(2, 5s));
  Recorded mapped, raw;
  for (const auto& r : sink_.requests()) (r.method == "PUT" ? mapped : raw) = r;
  EXPECT_EQ(mapped.method, "PUT");
  EXPECT_EQ(mapped.target, "/api/orders/42?shop=evrouter-test.myshopify.com");
  EXPECT_EQ(mapped.header("x-order-name"), "Order #1042");
  EXPECT_EQ(mapped.header("x-route"), "priority");
  EXPECT_EQ(mapped.header("content-type"), "application/json");
  EXPECT_EQ(mapped.body,
            R"({"Id":42,"Number":"#1042","Total":150.0,"Customer":{"Email":"mira.holt@example.com"},)"
            R"("Skus":["MCS-CHR-M","WCT-OLV","WCB-01"],"Missing":null,"Note":"#1042 via orders/create"})");
  // The other branch's destination maps nothing: the payload exactly as received.
  EXPECT_EQ(raw.method, "POST");
  EXPECT_EQ(raw.target, "/api/orders");
  EXPECT_EQ(raw.body, order("50.00", 43));
}

TEST_F(FlowPipelineTest, PathVariableWithoutValueIsDeadWithoutARequest) {
  auto cfg = make_config();
  auto& d = cfg.flows[0].branches[1].destinations[0];  // standard
  d.path = "/orders/{ref}";
  d.input_paths = {{"ref", "$.detail.reference", config::InputPath::As::value, {}}};
  start(cfg);
  ASSERT_EQ(post(order("50.00", 1)).status, 200);  // no "reference": dead
  auto j = nlohmann::json::parse(order("50.00", 2));
  j["reference"] = "R/2";
  ASSERT_EQ(post(j.dump()).status, 200);  // delivered; the lane is not blocked by the dead one
  ASSERT_TRUE(sink_.wait_for(1, 5s));
  ASSERT_TRUE(wait_until([&] {
    auto c = daemon_->store().counts();
    return c.dead == 1 && c.delivered == 1;
  }));
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(sink_.count(), 1u);
  EXPECT_EQ(sink_.requests()[0].target, "/api/orders/R%2F2");
  EXPECT_EQ(daemon_->store().counts().pending, 0);
}

}  // namespace
