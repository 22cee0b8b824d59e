// server.tls: the ingest listener speaks HTTPS itself. A webhook over TLS is verified, stored and delivered
// like any other, on keep-alive connections; a plain-HTTP client, a client that never finishes its
// handshake and one that does not trust the certificate get nothing, are counted, and do not disturb the
// others.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/http/client.h"
#include "evrouter/metrics/metrics.h"
#include "support/tls.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

class TlsListener : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    certs_ = make_test_certs(dir_ / "tls");
  }

  config::Config tls_config() {
    auto cfg = make_config();
    cfg.server.tls = config::ServerTls{certs_.server_cert, certs_.server_key, "1.2"};
    cfg.server.request_timeout = 500ms;
    return cfg;
  }

  std::unique_ptr<http::Client> client(bool trust = true) {
    auto ep = http::Endpoint::parse("https://localhost:" + std::to_string(daemon_->port()));
    EXPECT_TRUE(ep);
    http::ClientOptions o;
    if (trust) o.ca_file = certs_.ca_cert;
    return http::make_client(ioc_, ep ? std::move(*ep) : http::Endpoint{}, o);
  }

  // A signed webhook over `c`, waiting for its result.
  http::Result send(http::Client& c, const std::string& body) {
    http::Request r;
    r.target = std::string("/hooks/") + kListener;
    r.body = body;
    r.headers = {{"Content-Type", "application/json"},
                 {"X-Shopify-Topic", "orders/create"},
                 {"X-Shopify-Hmac-Sha256", shopify_hmac(kSecret, body)},
                 {"X-Shopify-Shop-Domain", "evrouter-test.myshopify.com"},
                 {"X-Shopify-Webhook-Id", "tls-" + std::to_string(++webhook_seq_)}};
    std::optional<http::Result> out;
    c.send(std::move(r), [&out](http::Result res) { out = std::move(res); });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    ioc_.restart();
    while (!out && std::chrono::steady_clock::now() < deadline) ioc_.run_one_for(10ms);
    return out ? std::move(*out) : http::Result{"test: no answer", {}, {}};
  }

  static double failures() {
    return static_cast<double>(
        metrics::Registry::global()
            .counter("evrouter_ingest_tls_handshake_failures_total",
                     "Client connections to the ingest server closed because their TLS "
                     "handshake failed or timed out.")
            .value());
  }

  TlsFiles certs_;
  boost::asio::io_context ioc_;
};

std::string order_body(int id, const std::string& total) {
  return R"({"id":)" + std::to_string(id) + R"(,"total_price":")" + total + R"("})";
}

}  // namespace

TEST_F(TlsListener, WebhooksOverHttpsAreStoredAndDelivered) {
  start(tls_config());
  auto c = client();
  for (int i = 1; i <= 3; ++i) {
    auto r = send(*c, order_body(i, i == 2 ? "150.00" : "20.00"));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.status, 200) << r.response.body;
    EXPECT_NE(r.response.body.find("\"accepted\""), std::string::npos) << r.response.body;
  }
  ASSERT_TRUE(sink_.wait_for(3, 10s));
  EXPECT_EQ(sink_.requests().size(), 3U);
  int priority = 0;
  for (const auto& rec : sink_.requests()) priority += rec.target == "/api/orders/priority" ? 1 : 0;
  EXPECT_EQ(priority, 1);

  // A bad signature over TLS is refused like over plain HTTP.
  http::Request forged;
  forged.target = std::string("/hooks/") + kListener;
  forged.body = order_body(9, "1.00");
  forged.headers = {{"X-Shopify-Topic", "orders/create"}, {"X-Shopify-Hmac-Sha256", "AAAA"}};
  std::optional<http::Result> out;
  c->send(std::move(forged), [&out](http::Result res) { out = std::move(res); });
  ioc_.restart();
  for (int i = 0; i < 1000 && !out; ++i) ioc_.run_one_for(10ms);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->response.status, 401);
}

TEST_F(TlsListener, PlainSilentAndDistrustingClientsGetNothingAndOthersGoOn) {
  start(tls_config());
  const double before = failures();

  // Plain HTTP to the TLS port: no HTTP answer.
  auto plain = post(order_body(1, "20.00"));
  EXPECT_NE(plain.status, 200);

  // A client that does not trust the certificate: its handshake fails on its side.
  auto distrusting = client(false);
  auto r = send(*distrusting, order_body(2, "20.00"));
  EXPECT_EQ(r.error.rfind("tls: certificate verify failed", 0), 0U) << r.error;

  // A connection that never starts its handshake is closed after server.request_timeout (500 ms).
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(daemon_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto opened = std::chrono::steady_clock::now();
  char byte = 0;
  EXPECT_LE(::recv(fd, &byte, 1, 0), 0);  // closed by the server, not by our 5 s timeout
  const auto held = std::chrono::steady_clock::now() - opened;
  ::close(fd);
  EXPECT_GE(held, 400ms);
  EXPECT_LT(held, 4s);

  // All three counted (each when the server's side of it ends, which may follow the client's); a trusting
  // client is served throughout.
  const auto counted_by = std::chrono::steady_clock::now() + 3s;
  while (failures() - before < 3.0 && std::chrono::steady_clock::now() < counted_by)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(failures() - before, 3.0);
  auto c = client();
  auto ok = send(*c, order_body(3, "20.00"));
  ASSERT_TRUE(ok.ok()) << ok.error;
  EXPECT_EQ(ok.response.status, 200);
  ASSERT_TRUE(sink_.wait_for(1, 10s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sink_.requests().size(), 1U);
}

TEST_F(TlsListener, ARenewedCertificateIsServedAfterAReload) {
  auto cfg = tls_config();
  start(cfg);
  auto old_trust = client();
  auto r = send(*old_trust, order_body(1, "20.00"));
  ASSERT_TRUE(r.ok()) << r.error;

  // Renewed in place (another CA here, so that the two are told apart), then a reload.
  const auto renewed = make_test_certs(dir_ / "tls", {"DNS:localhost", "IP:127.0.0.1"}, "renewed-");
  std::filesystem::copy_file(renewed.server_cert, certs_.server_cert,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renewed.server_key, certs_.server_key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(daemon_->apply(cfg).ok);

  auto ep = http::Endpoint::parse("https://localhost:" + std::to_string(daemon_->port()));
  ASSERT_TRUE(ep);
  http::ClientOptions o;
  o.ca_file = renewed.ca_cert;
  auto new_trust = http::make_client(ioc_, *ep, o);
  r = send(*new_trust, order_body(2, "20.00"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.status, 200);
  // A new connection trusting only the old CA no longer gets through.
  auto stale = client();
  r = send(*stale, order_body(3, "20.00"));
  EXPECT_EQ(r.error.rfind("tls: certificate verify failed", 0), 0U) << r.error;

  // A key that does not match keeps the running certificate.
  const auto other = make_test_certs(dir_ / "tls", {"DNS:localhost"}, "other-");
  std::filesystem::copy_file(other.server_key, certs_.server_key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(daemon_->apply(cfg).ok);
  auto still = http::make_client(ioc_, *ep, o);
  r = send(*still, order_body(4, "20.00"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.status, 200);
  ASSERT_TRUE(sink_.wait_for(3, 10s));
}
