#pragma once
// The daemon: wires the store, the compiled flows, the ingest server and the dispatcher together.
//   ingest (listener) -> verify, match (flow) -> commit (store) -> 2xx -> dispatcher -> lanes -> connections

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/admin/router.h"
#include "evrouter/admin/server.h"
#include "evrouter/config/config.h"
#include "evrouter/dispatcher/dispatcher.h"
#include "evrouter/flow/replay.h"
#include "evrouter/flow/routes.h"
#include "evrouter/listener/server.h"
#include "evrouter/schema/registry.h"
#include "evrouter/store/store.h"

namespace evr::daemon {

class Watcher;

// What a configuration reload did, or why it was refused.
struct ReloadResult {
  bool ok = false;
  std::vector<config::Diagnostic> diagnostics;  // from loading the files (every error when refused)
  std::string error;                            // when refused for another reason
  std::vector<std::string> flows_added, flows_removed, flows_changed;
  dispatcher::Changes changes;              // lanes and connections
  std::vector<std::string> restart_needed;  // settings that changed but apply at the next start
};

// What a runtime flow change did.
enum class FlowChange { done, unknown_flow, not_rotatable };

class Daemon final : public listener::Pipeline {
 public:
  explicit Daemon(config::Config config);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the store, assigns listener ids, compiles flows, starts delivering and then listening, and
  // watches the configuration files when reload.watch is set.
  // Throws (config::ConfigError or std::runtime_error) with a clear message when something is wrong.
  void start();
  // Graceful stop within server.shutdown_grace; safe to call twice.
  void stop();

  // Why this process can take no more webhooks until it restarts (the store failed for good, see
  // Store::on_failure); empty while it can. /healthz and /readyz answer 503 with it from then on.
  std::string failure() const;
  // Runs once, on a store thread, when failure() becomes set (after it is logged): `evrouter serve` stops
  // the process with a non-zero status there, so that a supervisor restarts it. Set before start().
  void on_fatal(std::function<void()> fatal) { fatal_ = std::move(fatal); }

  // Reads config().file and its flows again and applies them (see apply). Blocking: call it from a
  // thread that is not an event loop (the signal thread, the file watcher). A configuration with an
  // error is refused: every diagnostic is logged and the running configuration stays.
  ReloadResult reload();
  // Applies a loaded configuration: routes are swapped atomically for the listener (requests in
  // progress finish with the routes they started with) and the dispatcher is reconfigured (see
  // Dispatcher::reconfigure). Settings that need a restart (server listen, port, public_base_url,
  // workers, limits and timeouts; store; log.format; reload) keep their running values and are logged.
  ReloadResult apply(config::Config next);

  uint16_t port() const;
  // Names this process among the instances sharing a store: "<hostname>/<pid>" (a container's hostname
  // under Docker). Logged at start and sent as X-Evrouter-Instance on every admin answer.
  const std::string& instance_id() const { return instance_id_; }
  // The admin API's port; 0 when it is disabled.
  uint16_t admin_port() const;
  // The running configuration (not thread-safe against a concurrent reload).
  const config::Config& config() const { return config_; }
  store::Store& store() { return *store_; }
  // Schema discovery; null when schemas.enabled is false.
  schema::Registry* schemas() { return schemas_.get(); }
  // The connections' run-time state (breaker, limits); blocking: not from an event loop of the daemon's.
  std::vector<connection::ConnectionState> connections();
  // The running settings of one connection (consistent with a concurrent reload); nullopt when unknown.
  std::optional<config::Connection> connection_config(const std::string& name);

  // Operations (admin API). Blocking: call them from the admin thread, never from an event loop.
  // Enables or disables a flow at run time (none: the files' `enabled` applies again). Kept in the store,
  // so it survives restarts and reloads; takes effect for the next request.
  FlowChange set_flow_enabled(const std::string& name, std::optional<bool> enabled);
  // Gives a flow a new random listener id; the old URL stops working at once. Not for flows whose id is
  // pinned in the files (source.listener_id) or bus flows.
  FlowChange rotate_listener_id(const std::string& name);
  // Replays `flow`'s archived events of a time window through its current definition (flow/replay.h):
  // wakes the lanes that got deliveries, shows the events in the live tail, counts the deliveries in
  // metrics and the flow's stats (as replayed). The caller checks the flow (known, enabled).
  flow::ReplayResult replay_window(const flow::Flow& flow, const flow::ReplayRequest& request);
  // Makes lanes read the store again (after a dead-letter replay).
  void wake_lanes(std::vector<std::string> lanes);

  // listener::Pipeline
  std::shared_ptr<const flow::Routes> routes() const override;
  void commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) override;
  void commit_batch(std::vector<store::Ingest> ingests,
                    std::function<void(std::vector<store::CommitResult>)> done) override;
  bool ready() const override { return ready_ && !failed_; }
  bool healthy() const override { return !failed_; }

 private:
  std::string instance_id_;
  void start_admin();
  std::vector<std::string> keep_restart_settings(config::Config& next) const;
  const config::Flow* configured_flow(const std::string& name) const;

  config::Config config_;
  // As given at start, without the flows: what restart-only settings are compared against.
  config::Config baseline_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<schema::Registry> schemas_;
  std::shared_ptr<const flow::Routes> routes_;
  std::unique_ptr<dispatcher::Dispatcher> dispatcher_;
  std::unique_ptr<listener::Server> server_;
  std::unique_ptr<admin::Router> admin_router_;
  std::unique_ptr<admin::Server> admin_;
  std::unique_ptr<Watcher> watcher_;
  std::mutex reload_mu_;  // one reload at a time, and none during stop
  std::mutex routes_mu_;  // routes rebuilt by one reload or flow change at a time (after reload_mu_)
  std::atomic<bool> ready_ = false;
  std::atomic<bool> failed_ = false;
  mutable std::mutex failure_mu_;
  std::string failure_;  // see failure()
  std::function<void()> fatal_;
  bool stopped_ = false;
};

// Opens the state store just long enough to print/compute listener ids (for `evrouter listeners`).
std::shared_ptr<const flow::Routes> resolve_routes(const config::Config& config, store::Store& store);

}  // namespace evr::daemon
