#include "evrouter/daemon/daemon.h"

#include "daemon/admin_api.h"
#include "evrouter/common/log.h"
#include "evrouter/store/sqlite_store.h"

namespace evr::daemon {

std::shared_ptr<const flow::Routes> resolve_routes(const config::Config& config, store::Store& store) {
  return flow::Routes::build(
      config, [&store](const config::Flow& f) { return store.listener_id(f.name, f.source.listener_id); });
}

Daemon::Daemon(config::Config config) : config_(std::move(config)) {
  if (config_.server.public_base_url.empty()) {
    config_.server.public_base_url = "http://localhost:" + std::to_string(config_.server.port);
  }
}

Daemon::~Daemon() {
  stop();
}

void Daemon::start() {
  if (config_.store.type != "sqlite") {
    throw std::runtime_error("store.type " + config_.store.type + " is not available in this build");
  }
  store_ = store::make_sqlite_store(config_.store);
  store_->open();
  routes_ = resolve_routes(config_, *store_);
  dispatcher_ = dispatcher::make_dispatcher(config_, *store_);
  dispatcher_->start();
  server_ = listener::make_server(config_.server, *this);
  server_->start();
  if (config_.server.port == 0) {
    // An ephemeral port (tests): the URLs must carry the real one.
    config_.server.public_base_url = "http://127.0.0.1:" + std::to_string(server_->port());
    std::atomic_store(&routes_, resolve_routes(config_, *store_));
  }
  start_admin();
  ready_ = true;
  log::info("evrouter listening", {{"address", config_.server.listen},
                                   {"port", std::to_string(server_->port())},
                                   {"flows", std::to_string(routes_->flows().size())}});
  for (const auto& f : routes_->flows()) {
    log::info(
        "listener",
        {{"flow", f.name}, {"url", routes_->listener_url(f)}, {"enabled", f.enabled ? "true" : "false"}});
  }
}

void Daemon::stop() {
  if (stopped_ || !store_) return;
  stopped_ = true;
  ready_ = false;
  const auto grace = config_.server.shutdown_grace;
  const auto t0 = std::chrono::steady_clock::now();
  if (admin_) admin_->stop();
  // 1. Stop taking webhooks; answers in progress are completed (their commits are awaited).
  if (server_) server_->stop(grace);
  // 2. Stop delivering; requests in flight get what is left of the grace period.
  const auto spent =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (dispatcher_) dispatcher_->stop(std::max(std::chrono::milliseconds(0), grace - spent));
  // 3. Flush every queued write. The server and dispatcher objects outlive this: the store's last
  //    callbacks post to their (stopped) event loops.
  store_->close();
  dispatcher_.reset();
  server_.reset();
  log::info("evrouter stopped");
}

void Daemon::start_admin() {
  const auto& a = config_.admin;
  if (!a.enabled) {
    log::info("admin API disabled (admin.enabled: false)");
    return;
  }
  admin::Options o;
  o.listen = a.listen;
  o.port = a.port;
  if (a.token) o.token = a.token->resolve();
  if (!o.token && o.listen != "127.0.0.1" && o.listen != "::1") {
    log::warn(
        "admin API has no token: listening on loopback only",
        {{"asked", a.listen}, {"token", a.token ? a.token->describe() + " (not set)" : "none configured"}});
    o.listen = "127.0.0.1";
  }
  admin_router_ = std::make_unique<admin::Router>(make_admin_router(*this));
  admin_ = admin::make_server(o, *admin_router_);
  admin_->start();
  log::info("admin API listening", {{"address", o.listen},
                                    {"port", std::to_string(admin_->port())},
                                    {"auth", o.token ? "bearer token" : "none (loopback only)"}});
}

uint16_t Daemon::admin_port() const {
  return admin_ ? admin_->port() : 0;
}

uint16_t Daemon::port() const {
  return server_ ? server_->port() : 0;
}

std::shared_ptr<const flow::Routes> Daemon::routes() const {
  return std::atomic_load(&routes_);
}

void Daemon::commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) {
  store_->commit(std::move(ingest), [this, done = std::move(done)](store::CommitResult r) mutable {
    if (r.status == store::CommitResult::Status::accepted && !r.deliveries.empty()) {
      dispatcher_->offer(r.deliveries);
    }
    done(std::move(r));
  });
}

void Daemon::commit_batch(std::vector<store::Ingest> ingests,
                          std::function<void(std::vector<store::CommitResult>)> done) {
  store_->commit_batch(std::move(ingests),
                       [this, done = std::move(done)](std::vector<store::CommitResult> results) mutable {
                         std::vector<store::Delivery> deliveries;
                         for (auto& r : results) {
                           if (r.status != store::CommitResult::Status::accepted) continue;
                           deliveries.insert(deliveries.end(), std::make_move_iterator(r.deliveries.begin()),
                                             std::make_move_iterator(r.deliveries.end()));
                           r.deliveries.clear();
                         }
                         if (!deliveries.empty()) dispatcher_->offer(std::move(deliveries));
                         done(std::move(results));
                       });
}

}  // namespace evr::daemon
