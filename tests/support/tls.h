#pragma once
// Test certificates made at test time: a self-signed CA and a server certificate it signs.

#include <filesystem>
#include <string>
#include <vector>

namespace evr::test {

struct TlsFiles {
  std::string ca_cert;      // PEM: give to the client as ClientOptions::ca_file
  std::string server_cert;  // PEM: the server certificate (SinkOptions::tls_cert)
  std::string server_key;   // PEM: its private key (SinkOptions::tls_key)
};

// Writes ca.pem, server.pem and server-key.pem into `dir` (created if needed). `names` become the
// certificate's subjectAltName entries: "DNS:localhost", "IP:127.0.0.1", ... The first one also serves as
// the subject CN. `prefix` lets one directory hold several sets. Throws std::runtime_error on failure.
TlsFiles make_test_certs(const std::filesystem::path& dir,
                         const std::vector<std::string>& names = {"DNS:localhost", "IP:127.0.0.1"},
                         const std::string& prefix = "");

}  // namespace evr::test
