#pragma once
// The daemon: wires the store, the compiled flows, the ingest server and the dispatcher together.
//   ingest (listener) -> verify, match (flow) -> commit (store) -> 2xx -> dispatcher -> lanes -> connections

#include <cstdint>
#include <memory>

#include "evrouter/admin/router.h"
#include "evrouter/admin/server.h"
#include "evrouter/config/config.h"
#include "evrouter/dispatcher/dispatcher.h"
#include "evrouter/flow/routes.h"
#include "evrouter/listener/server.h"
#include "evrouter/store/store.h"

namespace evr::daemon {

class Daemon final : public listener::Pipeline {
 public:
  explicit Daemon(config::Config config);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the store, assigns listener ids, compiles flows, starts delivering and then listening.
  // Throws (config::ConfigError or std::runtime_error) with a clear message when something is wrong.
  void start();
  // Graceful stop within server.shutdown_grace; safe to call twice.
  void stop();

  uint16_t port() const;
  // The admin API's port; 0 when it is disabled.
  uint16_t admin_port() const;
  const config::Config& config() const { return config_; }
  store::Store& store() { return *store_; }

  // listener::Pipeline
  std::shared_ptr<const flow::Routes> routes() const override;
  void commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) override;
  void commit_batch(std::vector<store::Ingest> ingests,
                    std::function<void(std::vector<store::CommitResult>)> done) override;
  bool ready() const override { return ready_; }

 private:
  void start_admin();

  config::Config config_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const flow::Routes> routes_;
  std::unique_ptr<dispatcher::Dispatcher> dispatcher_;
  std::unique_ptr<listener::Server> server_;
  std::unique_ptr<admin::Router> admin_router_;
  std::unique_ptr<admin::Server> admin_;
  bool ready_ = false;
  bool stopped_ = false;
};

// Opens the state store just long enough to print/compute listener ids (for `evrouter listeners`).
std::shared_ptr<const flow::Routes> resolve_routes(const config::Config& config, store::Store& store);

}  // namespace evr::daemon
