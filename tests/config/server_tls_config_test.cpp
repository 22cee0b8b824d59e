// The `server.tls:` section: both PEM files checked when the configuration is read (readable, a key that
// belongs to the certificate), each problem reported at its line.
#include <gtest/gtest.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"
#include "support/tls.h"

namespace evr::config {
namespace {

using test::TempDir;
using test::write_file;

LoadResult load_text(const TempDir& dir, const std::string& yaml) {
  write_file(dir / "evrouter.yaml", yaml);
  return config::load(dir / "evrouter.yaml");
}

std::string messages(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

TEST(ServerTlsConfig, OffByDefaultWithAnHttpBaseUrl) {
  TempDir dir;
  auto r = load_text(dir, "server:\n  port: 8443\nflows: []\n");
  ASSERT_TRUE(r.ok()) << messages(r);
  EXPECT_FALSE(r.config->server.tls);
  EXPECT_EQ(r.config->server.public_base_url, "http://localhost:8443");
}

TEST(ServerTlsConfig, ReadsBothFilesAndTheMinimumVersion) {
  TempDir dir;
  const auto certs = test::make_test_certs(dir.path() / "tls");
  auto r =
      load_text(dir, "server:\n  port: 8443\n  tls:\n    cert_file: " + certs.server_cert +
                         "\n    key_file: " + certs.server_key + "\n    min_version: \"1.3\"\nflows: []\n");
  ASSERT_TRUE(r.ok()) << messages(r);
  ASSERT_TRUE(r.config->server.tls);
  EXPECT_EQ(r.config->server.tls->cert_file, certs.server_cert);
  EXPECT_EQ(r.config->server.tls->key_file, certs.server_key);
  EXPECT_EQ(r.config->server.tls->min_version, "1.3");
  EXPECT_EQ(r.config->server.public_base_url, "https://localhost:8443");
}

TEST(ServerTlsConfig, ReportsEachProblemAtItsLine) {
  TempDir dir;
  const auto certs = test::make_test_certs(dir.path() / "tls");
  const auto other = test::make_test_certs(dir.path() / "tls", {"DNS:localhost"}, "other-");
  const std::string file = (dir / "evrouter.yaml").string();

  auto missing = load_text(dir, "server:\n  tls:\n    cert_file: " + certs.server_cert + "\nflows: []\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(messages(missing).find(file + ":3:5: error: server.tls.key_file: expected a PEM file path"),
            std::string::npos)
      << messages(missing);

  auto absent = load_text(dir, "server:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: " +
                                   certs.server_key + "\nflows: []\n");
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(
      messages(absent).find(file + ":3:16: error: server.tls.cert_file: expected a readable PEM file, found "
                                   "'/nonexistent/cert.pem' (No such file or directory)"),
      std::string::npos)
      << messages(absent);

  // A key where the certificate should be, and the other way round.
  auto swapped = load_text(dir, "server:\n  tls:\n    cert_file: " + certs.server_key +
                                    "\n    key_file: " + certs.server_cert + "\nflows: []\n");
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(messages(swapped).find("server.tls.cert_file: expected a readable PEM file"), std::string::npos);
  EXPECT_NE(messages(swapped).find("(no PEM certificate"), std::string::npos) << messages(swapped);
  EXPECT_NE(messages(swapped).find("server.tls.key_file: expected a readable PEM file"), std::string::npos);
  EXPECT_NE(messages(swapped).find("(no unencrypted PEM private key"), std::string::npos)
      << messages(swapped);

  auto mismatch = load_text(dir, "server:\n  tls:\n    cert_file: " + certs.server_cert +
                                     "\n    key_file: " + other.server_key + "\nflows: []\n");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(messages(mismatch).find(file + ":4:15: error: server.tls.key_file: expected the private key of " +
                                    certs.server_cert + ", found one that does not match it"),
            std::string::npos)
      << messages(mismatch);

  auto version = load_text(dir, "server:\n  tls:\n    cert_file: " + certs.server_cert +
                                    "\n    key_file: " + certs.server_key +
                                    "\n    min_version: \"1.1\"\n    ciphers: x\nflows: []\n");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(
      messages(version).find(file + ":5:18: error: server.tls.min_version: expected \"1.2\" or \"1.3\""),
      std::string::npos)
      << messages(version);
  EXPECT_NE(messages(version).find("server.tls.ciphers"), std::string::npos) << messages(version);
}

TEST(ServerTlsConfig, TheAdminPortTakesTheSameBlock) {
  TempDir dir;
  const auto certs = test::make_test_certs(dir.path() / "tls");
  const auto other = test::make_test_certs(dir.path() / "tls", {"DNS:localhost"}, "other-");
  auto r = load_text(dir, "admin:\n  port: 9443\n  tls:\n    cert_file: " + certs.server_cert +
                              "\n    key_file: " + certs.server_key + "\nflows: []\n");
  ASSERT_TRUE(r.ok()) << messages(r);
  ASSERT_TRUE(r.config->admin.tls);
  EXPECT_EQ(r.config->admin.tls->cert_file, certs.server_cert);
  EXPECT_EQ(r.config->admin.tls->min_version, "1.2");
  EXPECT_FALSE(r.config->server.tls);

  auto bad = load_text(dir, "admin:\n  tls:\n    cert_file: " + certs.server_cert +
                                "\n    key_file: " + other.server_key + "\nflows: []\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(messages(bad).find(":4:15: error: admin.tls.key_file: expected the private key of"),
            std::string::npos)
      << messages(bad);
}

}  // namespace
}  // namespace evr::config
