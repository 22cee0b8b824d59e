#pragma once
// A small blocking HTTP client for the CLI commands that talk to a running daemon's admin API: one request
// per connection, explicit connect and request timeouts, the bearer token when one is given.

#include <chrono>
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

// Percent-encodes a query value or path segment.
std::string url_encode(const std::string& text);

}  // namespace evr::cli
