#pragma once
// The ingest HTTP server: `workers` threads, each with its own event loop and its own SO_REUSEPORT acceptor.
// Each connection is one async session: read headers (with a deadline), route to a listener, refuse what
// is wrong early (404, 405, 413 before the body is read), read the body, verify, parse, route, commit, and
// only then answer.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/flow/routes.h"
#include "evrouter/store/store.h"

namespace evr::listener {

// What the server hands accepted webhooks to (the daemon): the current routes and a durable commit.
class Pipeline {
 public:
  virtual ~Pipeline() = default;
  virtual std::shared_ptr<const flow::Routes> routes() const = 0;
  // `done` may run on any thread.
  virtual void commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) = 0;
  // Several at once, atomically (published batches); `done` may run on any thread.
  virtual void commit_batch(std::vector<store::Ingest> ingests,
                            std::function<void(std::vector<store::CommitResult>)> done) = 0;
  // Readiness for /readyz.
  virtual bool ready() const = 0;
  // Liveness for /healthz: false once the process must restart to take webhooks again.
  virtual bool healthy() const { return true; }
};

class Server {
 public:
  virtual ~Server() = default;
  // Binds and starts the workers; throws std::runtime_error when the address cannot be bound.
  virtual void start() = 0;
  virtual uint16_t port() const = 0;
  // Stops accepting; requests in progress finish (their answers carry Connection: close) until `grace`
  // runs out, then remaining connections are closed.
  virtual void stop(std::chrono::milliseconds grace) = 0;
  // server.tls: reads the certificate and key files again (renewed) for the connections accepted from
  // now on. Empty on success (or without TLS), else why the running certificate stays.
  virtual std::string reload_tls() { return {}; }
};

std::unique_ptr<Server> make_server(const config::Server& config, Pipeline& pipeline);

}  // namespace evr::listener
