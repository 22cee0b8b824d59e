#pragma once
// The admin HTTP server: its own port and its own event-loop thread, so nothing an operator does can slow
// ingest or delivery. Every path but /healthz and /readyz needs `Authorization: Bearer <token>` when a
// token is configured (compared in constant time); without a token the server only binds to loopback.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "evrouter/admin/router.h"
#include "evrouter/config/config.h"

namespace evr::admin {

struct Options {
  std::string listen = "127.0.0.1";
  uint16_t port = 8081;               // 0 = ephemeral (tests)
  std::optional<std::string> token;   // resolved secret; none = loopback only, no auth
  uint64_t max_body_bytes = 1 << 20;  // request bodies (replay filters, flow toggles) are small
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  // Open connections at most (live tails included): past it the server stops accepting until one closes,
  // so new connections wait in the kernel's backlog and the admin port cannot take the descriptors the
  // listener needs.
  int max_connections = 64;
  // HTTPS: the certificate and key files (admin.tls); none = plain HTTP.
  std::optional<config::ServerTls> tls;
};

class Server {
 public:
  virtual ~Server() = default;
  // Binds and starts the thread; throws std::runtime_error when the address cannot be bound or a
  // non-loopback address is asked for without a token.
  virtual void start() = 0;
  virtual uint16_t port() const = 0;
  virtual void stop() = 0;
  // admin.tls: reads the certificate and key files again for the connections accepted from now on.
  // Empty on success (or without TLS), else why the running certificate stays.
  virtual std::string reload_tls() { return {}; }
};

// `router` must outlive the server; handlers run on the server's thread.
std::unique_ptr<Server> make_server(Options options, const Router& router);

}  // namespace evr::admin
