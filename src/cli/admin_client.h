#pragma once
// A small blocking HTTP client for the CLI commands that talk to a running daemon's admin API: one request
// per connection, explicit connect and request timeouts, the bearer token when one is given, over TLS for
// an https:// admin URL (admin.tls).

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace evr::cli {

struct AdminTarget {
  std::string url = "http://127.0.0.1:8081";  // --admin-url, else EVROUTER_ADMIN_URL
  std::string token;                          // --token, else EVROUTER_ADMIN_TOKEN ("" = none)
  std::chrono::milliseconds timeout{10000};
};

// The target from the environment: EVROUTER_ADMIN_URL (else the default above) and EVROUTER_ADMIN_TOKEN.
// Commands then apply --admin-url / --token over it.
AdminTarget admin_target_from_env();

struct AdminReply {
  int status = 0;
  std::string body;
};

// Sends one request. Returns the reply (any status), or nullopt with `error` set ("cannot reach the admin
// API at http://...: Connection refused") when the daemon could not be asked.
std::optional<AdminReply> admin_request(const AdminTarget& target, const std::string& method,
                                        const std::string& target_path, const std::string& body,
                                        std::string& error);

// For an https:// admin URL: a client TLS context that verifies the daemon's certificate against the PEM
// file in EVROUTER_ADMIN_CA_FILE when set, else the system's trusted roots. None, with `error`, when that
// file does not load.
std::unique_ptr<boost::asio::ssl::context> admin_tls_context(std::string& error);
// Before the handshake (`ssl`: the stream's native handle): SNI for a name, and the check that the
// certificate is for `host` (a name or an IP address). False when OpenSSL refuses them.
bool prepare_admin_tls(SSL* ssl, const std::string& host);

// Percent-encodes a query value or path segment.
std::string url_encode(const std::string& text);

}  // namespace evr::cli
