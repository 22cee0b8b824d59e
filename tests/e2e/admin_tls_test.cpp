// admin.tls: the admin API (and the dashboard) over HTTPS, and the CLI reaching it with an https:// admin
// URL, verifying the daemon's certificate against EVROUTER_ADMIN_CA_FILE.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <optional>
#include <thread>

#include "e2e/pipeline_fixture.h"
#include "evrouter/http/client.h"
#include "evrouter/tail/hub.h"
#include "support/tls.h"

using namespace evr;
using namespace evr::test;
using namespace std::chrono_literals;

namespace {

class AdminTls : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    certs_ = make_test_certs(dir_ / "tls");
    auto cfg = make_config();
    cfg.admin.enabled = true;
    cfg.admin.port = 0;
    cfg.admin.tls = config::ServerTls{certs_.server_cert, certs_.server_key, "1.2"};
    start(cfg);
  }

  std::string url() const { return "https://localhost:" + std::to_string(daemon_->admin_port()); }

  http::Result get(const std::string& base, const std::string& path, bool trust = true) {
    auto ep = http::Endpoint::parse(base);
    EXPECT_TRUE(ep);
    http::ClientOptions o;
    if (trust) o.ca_file = certs_.ca_cert;
    auto c = http::make_client(ioc_, ep ? std::move(*ep) : http::Endpoint{}, o);
    http::Request r;
    r.method = "GET";
    r.target = path;
    std::optional<http::Result> out;
    c->send(std::move(r), [&out](http::Result res) { out = std::move(res); });
    ioc_.restart();
    for (int i = 0; i < 1000 && !out; ++i) ioc_.run_one_for(10ms);
    return out ? std::move(*out) : http::Result{"test: no answer", {}, {}};
  }

  // `evrouter <args>` against this daemon's admin API; its exit status and output.
  std::pair<int, std::string> cli(std::vector<std::string> args, std::vector<std::string> env) {
    env.push_back("EVROUTER_ADMIN_URL=" + url());
    DaemonProcess p(std::move(args), std::move(env));
    const int status = p.wait(20s);
    std::string output = read_file(p.log_path());
    std::filesystem::remove(p.log_path());
    return {status, output};
  }

  TlsFiles certs_;
  boost::asio::io_context ioc_;
};

}  // namespace

TEST_F(AdminTls, ApiAndDashboardOverHttps) {
  auto health = get(url(), "/healthz");
  ASSERT_TRUE(health.ok()) << health.error;
  EXPECT_EQ(health.response.status, 200);
  auto flows = get(url(), "/v1/flows");
  ASSERT_TRUE(flows.ok()) << flows.error;
  EXPECT_EQ(flows.response.status, 200);
  EXPECT_NE(flows.response.body.find("\"orders\""), std::string::npos) << flows.response.body;
  auto page = get(url(), "/dashboard");
  ASSERT_TRUE(page.ok()) << page.error;
  EXPECT_EQ(page.response.status, 200);

  // Not without trusting the certificate, and not over plain HTTP.
  auto distrusted = get(url(), "/healthz", false);
  EXPECT_EQ(distrusted.error.rfind("tls: certificate verify failed", 0), 0U) << distrusted.error;
  auto plain = http_request(daemon_->admin_port(), "GET", "/healthz", {}, "");
  EXPECT_NE(plain.status, 200);
}

TEST_F(AdminTls, CliVerifiesTheDaemonsCertificate) {
  auto [status, out] = cli({"flows", "list"}, {"EVROUTER_ADMIN_CA_FILE=" + certs_.ca_cert});
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("orders"), std::string::npos) << out;

  // Without the CA the system roots do not know the test CA: refused, and said so.
  auto [refused, why] = cli({"flows", "list"}, {"EVROUTER_ADMIN_CA_FILE="});
  EXPECT_NE(refused, 0) << why;
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;

  auto [missing, said] = cli({"flows", "list"}, {"EVROUTER_ADMIN_CA_FILE=/nonexistent/ca.pem"});
  EXPECT_NE(missing, 0) << said;
  EXPECT_NE(said.find("cannot load EVROUTER_ADMIN_CA_FILE /nonexistent/ca.pem"), std::string::npos) << said;
}

TEST_F(AdminTls, LiveTailOverHttps) {
  DaemonProcess tail({"tail", "--output", "json", "--flow", "orders"},
                     {"EVROUTER_ADMIN_URL=" + url(), "EVROUTER_ADMIN_CA_FILE=" + certs_.ca_cert});
  // The stream is open once the hub has a watcher.
  const auto opened_by = std::chrono::steady_clock::now() + 10s;
  while (!tail::Hub::global().active() && std::chrono::steady_clock::now() < opened_by)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(tail::Hub::global().active()) << read_file(tail.log_path());
  // Frames go out over TLS while the server also reads from the same connection (to see the client go).
  for (int i = 0; i < 5; ++i) ASSERT_EQ(post(order("250.00", i)).status, 200);
  const auto until = std::chrono::steady_clock::now() + 10s;
  auto delivered = [&] {
    const std::string out = read_file(tail.log_path());
    std::size_t n = 0;
    for (auto at = out.find(R"("outcome":"delivered")"); at != std::string::npos;
         at = out.find(R"("outcome":"delivered")", at + 1))
      ++n;
    return n;
  };
  while (delivered() < 5 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(delivered(), 5U) << read_file(tail.log_path());
  tail.kill(SIGTERM);
  tail.wait(5s);
}
