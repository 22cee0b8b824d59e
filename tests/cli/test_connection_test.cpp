// `evrouter test-connection`: the built binary checks connections against real servers on 127.0.0.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/harness.h"
#include "support/sink.h"
#include "support/tls.h"

namespace evr::test {
namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout, and stderr unless --output json
};

Run run(const std::string& args) {
  Run r;
  const bool json = args.find("--output json") != std::string::npos;
  const std::string cmd =
      std::string(EVROUTER_BINARY) + " test-connection " + args + (json ? " 2>/dev/null" : " 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class TestConnection : public ::testing::Test {
 protected:
  // A config whose connection "sink" points at `base_uri`, with `extra` keys for it.
  std::string config(const std::string& base_uri, const std::string& extra = "") {
    std::filesystem::create_directories(dir_ / "flows");
    DaemonConfig c;
    c.port = free_port();
    c.sink_base_uri = base_uri;
    c.sink_extra = extra;
    return write_daemon_config(dir_, c);
  }
  TempDir dir_;
};

TEST_F(TestConnection, ReachableHttpWithProbeReportsEachPhase) {
  Sink sink;
  const auto cfg = config(sink.url() + "/api");
  const auto r = run("sink --config " + cfg + " --probe /health --output json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  ASSERT_EQ(j["phases"].size(), 3u) << r.out;  // dns, connect, probe (no tls on http)
  EXPECT_EQ(j["phases"][0]["name"], "dns");
  EXPECT_EQ(j["phases"][1]["name"], "connect");
  EXPECT_EQ(j["phases"][2]["name"], "probe");
  EXPECT_EQ(j["probe_status"], 200);
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.requests()[0].method, "GET");
  EXPECT_EQ(sink.requests()[0].target, "/api/health");
}

TEST_F(TestConnection, ProbeCarriesTheConnectionsAuthAndReportsRejectedCredentials) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply r;
    r.status = 401;
    return r;
  });
  const auto cfg =
      config(sink.url(), "    auth:\n      type: bearer\n      token: {env: EVR_TESTCONN_TOKEN}\n");
  const auto direct = run("sink --config " + cfg + " --probe /");
  EXPECT_EQ(direct.status, 2) << direct.out;  // the token is not set: a configuration problem
  EXPECT_NE(direct.out.find("EVR_TESTCONN_TOKEN"), std::string::npos) << direct.out;

  ::setenv("EVR_TESTCONN_TOKEN", "s3cret-token", 1);
  const auto rejected = run("sink --config " + cfg + " --probe /");
  ::unsetenv("EVR_TESTCONN_TOKEN");
  EXPECT_EQ(rejected.status, 1) << rejected.out;
  EXPECT_NE(rejected.out.find("rejected the credentials"), std::string::npos) << rejected.out;
  EXPECT_EQ(rejected.out.find("s3cret-token"), std::string::npos) << "the secret must never be printed";
  ASSERT_GE(sink.count(), 1u);
  EXPECT_EQ(sink.requests().back().header("authorization"), "Bearer s3cret-token");
}

TEST_F(TestConnection, RefusedConnectionFailsAtConnect) {
  const uint16_t port = free_port();  // nothing listens there
  const auto cfg = config("http://127.0.0.1:" + std::to_string(port));
  const auto r = run("sink --config " + cfg);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("connect  FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAILED: cannot connect"), std::string::npos) << r.out;
}

TEST_F(TestConnection, TlsShowsTheCertificateAndChecksTrust) {
  const auto certs = make_test_certs(dir_ / "tls");
  SinkOptions o;
  o.tls_cert = certs.server_cert;
  o.tls_key = certs.server_key;
  Sink sink(o);
  const std::string uri = "https://localhost:" + std::to_string(sink.port());

  // Trusted through ca_file: the certificate's details are shown.
  auto r = run("sink --config " + config(uri, "    ca_file: " + certs.ca_cert + "\n") + " --output json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["phases"].size(), 3u) << r.out;
  EXPECT_EQ(j["phases"][2]["name"], "tls");
  EXPECT_TRUE(j["phases"][2]["ok"].get<bool>());
  const auto names = j["certificate"]["names"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(names.begin(), names.end(), "DNS:localhost"), names.end()) << r.out;
  EXPECT_GT(j["certificate"]["days_left"].get<int>(), 0);
  EXPECT_NE(j["certificate"]["protocol"].get<std::string>().find("TLS"), std::string::npos);

  // Not trusted without the CA: the verdict says why, and still shows who answered.
  r = run("sink --config " + config(uri) + " --output json");
  EXPECT_EQ(r.status, 1) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["verdict"].get<std::string>().find("certificate not trusted"), std::string::npos) << r.out;
  EXPECT_TRUE(j.contains("certificate"));
}

TEST_F(TestConnection, UnknownConnectionIsAUsageError) {
  const auto r = run("nope --config " + config("http://127.0.0.1:9"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("no connection named 'nope' (known: sink)"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace evr::test
