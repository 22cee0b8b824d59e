// The live tail (GET /v1/tail, server-sent events) of a running daemon: accepted events and delivery
// outcomes as they happen, filtered by flow, kind and event pattern; slow watchers are dropped, never waited
// for.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/tail/hub.h"
#include "evrouter/tail/stream.h"

namespace evr::test {
namespace {

using namespace std::chrono_literals;

// A raw SSE client: sends the GET, then collects what arrives.
class Watcher {
 public:
  Watcher(uint16_t port, const std::string& target) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    (void)::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  }
  ~Watcher() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Reads until `needle` has arrived `times` times, the peer closes, or the timeout.
  bool wait_for(const std::string& needle, int times, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (count(needle) >= times) return true;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed_) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
      } else {
        text_.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  int count(const std::string& needle) const {
    int n = 0;
    for (auto at = text_.find(needle); at != std::string::npos; at = text_.find(needle, at + 1)) ++n;
    return n;
  }
  const std::string& text() const { return text_; }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  std::string text_;
  bool closed_ = false;
};

class TailTest : public PipelineTest {
 protected:
  uint16_t start_with_admin() {
    auto cfg = make_config();
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    start(std::move(cfg));
    return daemon_->admin_port();
  }
};

TEST_F(TailTest, StreamsAcceptedEventsAndDeliveryOutcomes) {
  const uint16_t admin = start_with_admin();
  Watcher w(admin, "/v1/tail");
  ASSERT_TRUE(w.wait_for(": evrouter live tail", 1, 5s)) << w.text();
  EXPECT_NE(w.text().find("Content-Type: text/event-stream"), std::string::npos) << w.text();

  ASSERT_EQ(post(order("250.00")).status, 200);
  ASSERT_TRUE(w.wait_for("event: delivery", 1, 10s)) << w.text();
  ASSERT_TRUE(w.wait_for("event: event", 1, 1s)) << w.text();
  // The event frame: its envelope, payload and lanes.
  const auto at = w.text().find("event: event\ndata: ");
  const auto line = w.text().substr(at + 19, w.text().find('\n', at + 19) - at - 19);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["kind"], "event");
  EXPECT_EQ(j["flow"], "orders");
  EXPECT_EQ(j["type"], "orders/create");
  EXPECT_EQ(j["lanes"][0], "orders/priority/sink");
  EXPECT_EQ(j["event"]["detail"]["total_price"], "250.00");
  EXPECT_NE(w.text().find(R"("outcome":"delivered")"), std::string::npos) << w.text();
  EXPECT_NE(w.text().find(R"("status":200)"), std::string::npos) << w.text();
}

TEST_F(TailTest, FiltersByPatternKindAndFlow) {
  const uint16_t admin = start_with_admin();
  // Only events (no deliveries) with total_price above 100, without the payload.
  Watcher big(
      admin,
      "/v1/tail?kinds=event&payload=false&pattern=" +
          std::string(
              R"(%7B%22detail%22%3A%7B%22total_price%22%3A%5B%7B%22numeric-string%22%3A%5B%22%3E%22%2C100%5D%7D%5D%7D%7D)"));
  Watcher other_flow(admin, "/v1/tail?flow=not-this-one");
  ASSERT_TRUE(big.wait_for(": evrouter live tail", 1, 5s)) << big.text();
  ASSERT_TRUE(other_flow.wait_for(": evrouter live tail", 1, 5s)) << other_flow.text();

  ASSERT_EQ(post(order("50.00", 1)).status, 200);
  ASSERT_EQ(post(order("500.00", 2)).status, 200);
  ASSERT_TRUE(sink_.wait_for(2, 10s));
  ASSERT_TRUE(big.wait_for("event: event", 1, 5s)) << big.text();
  std::this_thread::sleep_for(300ms);  // anything else that was coming has come
  big.wait_for("never", 1, 10ms);
  EXPECT_EQ(big.count("event: event"), 1) << big.text();
  EXPECT_EQ(big.count("event: delivery"), 0) << big.text();
  EXPECT_EQ(big.count("\"detail\""), 0) << "payload=false: " << big.text();
  EXPECT_NE(big.text().find("\"lanes\":[\"orders/priority/sink\"]"), std::string::npos) << big.text();
  other_flow.wait_for("never", 1, 10ms);
  EXPECT_EQ(other_flow.count("event: "), 0) << other_flow.text();
}

TEST_F(TailTest, BadFiltersAreRefusedWithAReason) {
  const uint16_t admin = start_with_admin();
  auto r = http_request(admin, "GET", "/v1/tail?pattern=%7Bnot-json", {}, "");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("bad_pattern"), std::string::npos) << r.body;
  r = http_request(admin, "GET", "/v1/tail?pattern=%7B%22detail%22%3A5%7D", {}, "");
  EXPECT_EQ(r.status, 400) << r.body;
  r = http_request(admin, "GET", "/v1/tail?kinds=bogus", {}, "");
  EXPECT_EQ(r.status, 400);
}

// A watcher that never reads is dropped once its queue is full; publishing never waits for it.
TEST(TailHub, SlowWatcherIsDroppedNotWaitedFor) {
  tail::Hub hub;
  int wakes = 0;
  auto slow = hub.subscribe(8, [&] { ++wakes; });
  ASSERT_TRUE(slow);
  EXPECT_TRUE(hub.active());
  auto e = std::make_shared<event::Event>();
  e->id = "01TEST";
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) {
    auto r = std::make_shared<tail::Record>();
    r->event = e;
    hub.publish(std::move(r));
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s) << "publishing must not wait for watchers";
  EXPECT_TRUE(slow->dropped());
  EXPECT_FALSE(hub.active()) << "the dropped watcher is gone";
  EXPECT_EQ(hub.dropped_total(), 1u);
  EXPECT_GE(wakes, 1);
  std::vector<tail::RecordPtr> got;
  EXPECT_FALSE(slow->take(got) && got.empty());
  EXPECT_EQ(got.size(), 8u) << "what was queued before the drop is still handed over";
  got.clear();
  EXPECT_FALSE(slow->take(got));  // and then the end
}

TEST(TailHub, WatchersAreCapped) {
  tail::Hub hub;
  auto a = hub.subscribe(
      8, [] {}, 2);
  auto b = hub.subscribe(
      8, [] {}, 2);
  auto c = hub.subscribe(
      8, [] {}, 2);
  EXPECT_TRUE(a && b);
  EXPECT_FALSE(c);
  hub.unsubscribe(a);
  EXPECT_TRUE(hub.subscribe(
      8, [] {}, 2));
}

}  // namespace
}  // namespace evr::test

namespace evr::test {
namespace {

// `evrouter tail` (the built binary) against a daemon whose admin API wants a token.
class TailCliTest : public TailTest {
 protected:
  uint16_t start_with_token() {
    ::setenv("EVR_TEST_TAIL_TOKEN", "tail-token-for-tests", 1);
    auto cfg = make_config();
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    cfg.admin.token = config::SecretRef{config::SecretRef::Kind::env, "EVR_TEST_TAIL_TOKEN", {}};
    start(std::move(cfg));
    return daemon_->admin_port();
  }
  static bool wait_log(const DaemonProcess& p, const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (read_file(p.log_path()).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

TEST_F(TailCliTest, PrintsEventsAndOutcomesAsJsonLines) {
  const uint16_t admin = start_with_token();
  const std::string url = "http://127.0.0.1:" + std::to_string(admin);
  DaemonProcess tail({"tail", "--output", "json", "--flow", "orders"},
                     {"EVROUTER_ADMIN_URL=" + url, "EVROUTER_ADMIN_TOKEN=tail-token-for-tests"});
  // The stream is open once the hub has a watcher.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!tail::Hub::global().active() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(tail::Hub::global().active()) << read_file(tail.log_path());
  ASSERT_EQ(post(order("250.00")).status, 200);
  ASSERT_TRUE(wait_log(tail, R"("outcome":"delivered")", 10s)) << read_file(tail.log_path());
  const std::string out = read_file(tail.log_path());
  const auto first = out.substr(0, out.find('\n'));
  const auto j = nlohmann::json::parse(first);  // each line is one JSON object
  EXPECT_EQ(j["kind"], "event");
  EXPECT_EQ(j["event"]["detail"]["total_price"], "250.00");
}

TEST_F(TailCliTest, TextOutputAndHelpfulErrors) {
  const uint16_t admin = start_with_token();
  const std::string url = "http://127.0.0.1:" + std::to_string(admin);

  DaemonProcess wrong({"tail", "--admin-url", url, "--token", "nope"});
  EXPECT_EQ(wrong.wait(10s), 1);
  EXPECT_NE(read_file(wrong.log_path()).find("refused the token"), std::string::npos)
      << read_file(wrong.log_path());

  DaemonProcess nowhere({"tail", "--admin-url", "http://127.0.0.1:" + std::to_string(free_port())});
  EXPECT_EQ(nowhere.wait(10s), 1);
  EXPECT_NE(read_file(nowhere.log_path()).find("cannot reach the admin API at http://127.0.0.1:"),
            std::string::npos)
      << read_file(nowhere.log_path());

  DaemonProcess text({"tail", "--admin-url", url, "--token", "tail-token-for-tests"});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!tail::Hub::global().active() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(post(order("250.00")).status, 200);
  EXPECT_TRUE(wait_log(text, "orders -> orders/priority/sink", 10s)) << read_file(text.log_path());
  ASSERT_TRUE(wait_log(text, "delivered orders/create", 10s)) << read_file(text.log_path());
}

}  // namespace
}  // namespace evr::test
