#pragma once
// An in-process daemon on 127.0.0.1 (ephemeral port, real SQLite file) delivering to a recording sink.
// StorePipelineTest runs the same tests on each store: SQLite, and JetStream against a real nats-server.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>

#include "evrouter/config/config.h"
#include "evrouter/daemon/daemon.h"
#include "support/harness.h"
#include "support/nats_server.h"
#include "support/sink.h"

namespace evr::test {

inline constexpr const char* kSecret = "shpss_test_secret_0123456789";
inline constexpr const char* kListener = "test-listener-000000000000001";

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("EVR_TEST_SHOPIFY_SECRET", kSecret, 1);
    ::setenv("EVR_TEST_SINK_TOKEN", "sink-token", 1);
    order_ = test_data("shopify/orders-create.json");
  }

  void TearDown() override {
    if (daemon_) daemon_->stop();
    daemon_.reset();
    nats_.reset();
  }

  // A config with one connection "sink" and one flow "orders" (priority above 100, standard otherwise).
  config::Config make_config() {
    config::Config cfg;
    cfg.server.listen = "127.0.0.1";
    cfg.server.port = 0;
    cfg.server.workers = 2;
    cfg.server.max_body_bytes = 64 * 1024;
    cfg.server.shutdown_grace = std::chrono::seconds(2);
    cfg.store.state_dir = (dir_ / "state").string();
    if (nats_) {
      cfg.store.type = "jetstream";
      cfg.store.servers = {nats_->url()};
      cfg.store.stream = "evrpipe";
      cfg.store.timeout = std::chrono::seconds(3);
      cfg.store.dedup_window = std::chrono::minutes(10);
    }
    config::Connection c;
    c.name = "sink";
    c.base_uri = sink_.url() + "/api";
    c.auth.type = config::Auth::Type::bearer;
    c.auth.secret = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_SINK_TOKEN", {}};
    c.concurrency = 4;
    c.retry.backoff_base = std::chrono::milliseconds(20);
    c.retry.backoff_cap = std::chrono::milliseconds(200);
    c.retry.max_attempts = 5;
    c.request_timeout = std::chrono::seconds(5);
    c.breaker.cooldown = std::chrono::milliseconds(200);  // on, as by default, but quick to probe again
    cfg.connections["sink"] = c;

    config::Flow f;
    f.name = "orders";
    f.source.type = "shopify";
    f.source.listener_id = kListener;
    f.source.secrets.push_back({config::SecretRef::Kind::env, "EVR_TEST_SHOPIFY_SECRET", {}});
    f.source.topics = {"orders/create", "orders/updated"};
    config::Branch priority;
    priority.name = "priority";
    priority.match = nlohmann::json::parse(
        R"({"detail-type":["orders/create"],"detail":{"total_price":[{"numeric-string":[">",100]}]}})");
    config::Destination d1;
    d1.name = "sink";
    d1.connection = "sink";
    d1.path = "/orders/priority";
    d1.headers = {{"X-Route", "priority"}};
    priority.destinations.push_back(d1);
    config::Branch standard;
    standard.name = "standard";
    config::Destination d2 = d1;
    d2.path = "/orders";
    d2.headers = {{"X-Route", "standard"}};
    standard.destinations.push_back(d2);
    f.branches = {priority, standard};
    cfg.flows.push_back(f);
    return cfg;
  }

  void start(config::Config cfg) {
    daemon_ = std::make_unique<daemon::Daemon>(std::move(cfg));
    daemon_->start();
  }

  PostResult post(const std::string& body, std::vector<std::pair<std::string, std::string>> extra = {},
                  const std::string& topic = "orders/create", const std::string& secret = kSecret) {
    std::vector<std::pair<std::string, std::string>> h{
        {"Content-Type", "application/json"},
        {"X-Shopify-Topic", topic},
        {"X-Shopify-Hmac-Sha256", shopify_hmac(secret, body)},
        {"X-Shopify-Shop-Domain", "evrouter-test.myshopify.com"},
        {"X-Shopify-Webhook-Id", "wh-" + std::to_string(++webhook_seq_)},
        {"X-Shopify-API-Version", "2025-07"},
        {"X-Shopify-Triggered-At", "2026-11-22T10:00:00Z"}};
    for (auto& e : extra) {
      bool replaced = false;
      for (auto& x : h) {
        if (x.first == e.first) {
          x.second = e.second;
          replaced = true;
        }
      }
      if (!replaced) h.push_back(e);
    }
    return http_request(daemon_->port(), "POST", std::string("/hooks/") + kListener, h, body);
  }

  // The order fixture with another total_price and id.
  std::string order(const std::string& total_price, int64_t id = 450789469) {
    auto j = nlohmann::json::parse(order_);
    j["total_price"] = total_price;
    j["id"] = id;
    return j.dump();
  }

  TempDir dir_;
  Sink sink_;
  std::unique_ptr<daemon::Daemon> daemon_;
  std::string order_;
  std::atomic<int> webhook_seq_{0};   // post() is called from several threads by some tests
  std::unique_ptr<NatsServer> nats_;  // set: the daemon's store is JetStream on this server
};

// The same tests on each store ("sqlite", "jetstream"); the JetStream runs skip when nats-server is not
// installed. Instantiate with INSTANTIATE_TEST_SUITE_P(Stores, <fixture>, kStores, store_name).
class StorePipelineTest : public PipelineTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (jetstream()) {
      if (!NatsServer::available()) GTEST_SKIP() << "nats-server is not installed";
      nats_ = std::make_unique<NatsServer>(dir_ / "nats");
    }
  }
  bool jetstream() const { return GetParam() == "jetstream"; }
};

inline const auto kStores = ::testing::Values(std::string("sqlite"), std::string("jetstream"));
inline std::string store_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace evr::test
