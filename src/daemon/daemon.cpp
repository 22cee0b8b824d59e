#include "evrouter/daemon/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "daemon/admin_api.h"
#include "evrouter/common/log.h"
#include "evrouter/config/compare.h"
#include "evrouter/config/loader.h"
#include "evrouter/daemon/watcher.h"
#include "evrouter/metrics/metrics.h"
#include "evrouter/store/jetstream_store.h"
#include "evrouter/store/sqlite_store.h"
#include "evrouter/tail/hub.h"

namespace evr::daemon {
namespace {

std::string names(const std::vector<std::string>& items) {
  if (items.empty()) return "-";
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ',';
    out += i;
  }
  return out;
}

void log_diagnostics(const std::vector<config::Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics) {
    if (d.severity == config::Diagnostic::Severity::error) {
      log::error(d.str());
    } else {
      log::warn(d.str());
    }
  }
}

// How long each step of a start took, for the "evrouter listening" line: where a slow start goes.
class Laps {
 public:
  void lap(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - last_).count();
    total_us_ += us;
    last_ = now;
    if (!text_.empty()) text_ += ' ';
    text_.append(step).append("=").append(millis(us));
  }
  std::string text() const { return text_; }
  std::string total() const { return millis(total_us_); }

 private:
  static std::string millis(int64_t us) {
    std::array<char, 32> b{};
    std::snprintf(b.data(), b.size(), "%.1fms", static_cast<double>(us) / 1000.0);
    return b.data();
  }
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  int64_t total_us_ = 0;
  std::string text_;
};

}  // namespace

std::shared_ptr<const flow::Routes> resolve_routes(const config::Config& config, store::Store& store) {
  std::vector<std::pair<std::string, std::optional<std::string>>> wanted;
  wanted.reserve(config.flows.size());
  for (const auto& f : config.flows) wanted.emplace_back(f.name, f.source.listener_id);
  const auto ids = store.listener_ids(wanted);
  auto listener_id = [&store, &ids](const config::Flow& f) {
    const auto it = ids.find(f.name);
    return it != ids.end() ? it->second : store.listener_id(f.name, f.source.listener_id);
  };
  // Runtime enable/disable (admin API) overrides the files' `enabled` until cleared.
  const auto states = store.flow_states();
  const bool overridden = std::any_of(config.flows.begin(), config.flows.end(), [&](const config::Flow& f) {
    auto it = states.find(f.name);
    return it != states.end() && it->second.enabled && *it->second.enabled != f.enabled;
  });
  if (!overridden) return flow::Routes::build(config, listener_id);
  config::Config effective = config;
  for (auto& f : effective.flows) {
    auto it = states.find(f.name);
    if (it != states.end() && it->second.enabled) f.enabled = *it->second.enabled;
  }
  return flow::Routes::build(effective, listener_id);
}

Daemon::Daemon(config::Config config) : config_(std::move(config)) {
  if (config_.server.public_base_url.empty()) {
    config_.server.public_base_url = "http://localhost:" + std::to_string(config_.server.port);
  }
  // Only the restart-only settings are compared against it: the flows (1,000 of them cost milliseconds to
  // copy) are left out.
  auto flows = std::move(config_.flows);
  baseline_ = config_;
  config_.flows = std::move(flows);
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  instance_id_ = std::string(host[0] != '\0' ? host.data() : "localhost") + "/" + std::to_string(::getpid());
}

Daemon::~Daemon() {
  stop();
}

void Daemon::start() {
  Laps laps;
  if (config_.store.type == "jetstream") {
    store_ = store::make_jetstream_store(config_.store);
  } else {
    store_ = store::make_sqlite_store(config_.store);
  }
  static metrics::Gauge& failed_gauge = metrics::Registry::global().gauge(
      "evrouter_store_failed",
      "1 once the store failed for good (a write it had made visible could not be synced): the process "
      "takes no more webhooks and stops, to be restarted.");
  failed_gauge.set(0);
  store_->on_failure([this](const std::string& reason) {
    {
      std::lock_guard lk(failure_mu_);
      failure_ = reason;
    }
    failed_ = true;
    failed_gauge.set(1);
    log::error(
        "the store failed: no more webhooks are taken; evrouter stops so that it can be restarted "
        "and recover its store from disk",
        {{"error", reason}});
    if (fatal_) fatal_();
  });
  store_->open();
  laps.lap("store");
  if (config_.schemas.enabled) {
    schemas_ = std::make_unique<schema::Registry>(config_.schemas, *store_);
    schemas_->start();
  }
  routes_ = resolve_routes(config_, *store_);
  laps.lap("routes");
  dispatcher_ = dispatcher::make_dispatcher(config_, *store_);
  dispatcher_->start();
  laps.lap("lanes");
  server_ = listener::make_server(config_.server, *this);
  server_->start();
  if (config_.server.port == 0) {
    // An ephemeral port (tests): the URLs must carry the real one.
    config_.server.public_base_url =
        (config_.server.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(server_->port());
    std::atomic_store(&routes_, resolve_routes(config_, *store_));
  }
  // Listener ids and flow states changed by another instance sharing the store (JetStream) apply here too.
  store_->watch_shared_state([this] {
    std::lock_guard lk(routes_mu_);
    std::atomic_store(&routes_, resolve_routes(config_, *store_));
  });
  start_admin();
  laps.lap("listeners");
  ready_ = true;
  log::info("evrouter listening", {{"instance", instance_id_},
                                   {"address", config_.server.listen},
                                   {"port", std::to_string(server_->port())},
                                   {"flows", std::to_string(routes_->flows().size())},
                                   {"started_in", laps.total()},
                                   {"steps", laps.text()}});
  for (const auto& f : routes_->flows()) {
    log::info(
        "listener",
        {{"flow", f.name}, {"url", routes_->listener_url(f)}, {"enabled", f.enabled ? "true" : "false"}});
  }
  if (config_.reload.watch) {
    watcher_ = std::make_unique<Watcher>(config_.reload.debounce, [this] { reload(); });
    watcher_->watch(watched_paths(config_));
    log::info("watching the configuration files for changes",
              {{"debounce_ms", std::to_string(config_.reload.debounce.count())}});
  }
}

std::optional<config::Connection> Daemon::connection_config(const std::string& name) {
  std::lock_guard lk(reload_mu_);
  auto it = config_.connections.find(name);
  if (it == config_.connections.end()) return std::nullopt;
  return it->second;
}

std::vector<connection::ConnectionState> Daemon::connections() {
  return dispatcher_ ? dispatcher_->connections() : std::vector<connection::ConnectionState>{};
}

std::string Daemon::failure() const {
  std::lock_guard lk(failure_mu_);
  return failure_;
}

void Daemon::stop() {
  if (watcher_) watcher_->stop();  // waits for a reload it is running
  std::lock_guard lk(reload_mu_);
  watcher_.reset();
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
  // 3. Write the inferred schemas, then flush every queued write. The server and dispatcher objects
  //    outlive this: the store's last callbacks post to their (stopped) event loops.
  if (schemas_) schemas_->stop();
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
  o.max_connections = a.max_connections;
  o.tls = a.tls;
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
                                    {"auth", o.token ? "bearer token" : "none (loopback only)"},
                                    {"tls", o.tls ? "on" : "off"}});
}

uint16_t Daemon::admin_port() const {
  return admin_ ? admin_->port() : 0;
}

ReloadResult Daemon::reload() {
  ReloadResult result;
  const std::string file = config_.file;  // never changes
  if (file.empty()) {
    result.error = "the configuration was not loaded from a file";
    log::error("configuration reload refused", {{"error", result.error}});
    return result;
  }
  log::info("reloading the configuration", {{"file", file}});
  auto loaded = config::load(file);
  log_diagnostics(loaded.diagnostics);
  if (!loaded.ok()) {
    result.diagnostics = std::move(loaded.diagnostics);
    log::error("configuration reload refused: the files have errors; the running configuration stays",
               {{"errors", std::to_string(loaded.errors())}});
    return result;
  }
  result = apply(std::move(*loaded.config));
  result.diagnostics = std::move(loaded.diagnostics);
  return result;
}

std::vector<std::string> Daemon::keep_restart_settings(config::Config& next) const {
  std::vector<std::string> changed;
  if (next.server.public_base_url.empty()) {
    next.server.public_base_url = "http://localhost:" + std::to_string(next.server.port);
  }
  auto note = [&](bool differs, const char* key) {
    if (differs) changed.emplace_back(key);
  };
  const config::Config& b = baseline_;
  note(next.server.listen != b.server.listen, "server.listen");
  note(next.server.port != b.server.port, "server.port");
  note(next.server.public_base_url != b.server.public_base_url, "server.public_base_url");
  note(next.server.workers != b.server.workers, "server.workers");
  note(next.server.max_body_bytes != b.server.max_body_bytes, "server.max_body_bytes");
  note(next.server.max_body_memory != b.server.max_body_memory, "server.max_body_memory");
  note(next.server.max_connections != b.server.max_connections, "server.max_connections");
  note(next.server.request_timeout != b.server.request_timeout, "server.request_timeout");
  note(next.server.idle_timeout != b.server.idle_timeout, "server.idle_timeout");
  note(next.server.tls != b.server.tls, "server.tls");
  note(next.store.type != b.store.type, "store.type");
  note(next.store.state_dir != b.store.state_dir, "store.state_dir");
  note(next.store.durability != b.store.durability, "store.durability");
  note(next.store.dedup_window != b.store.dedup_window, "store.dedup_window");
  note(next.store.commit_max_batch != b.store.commit_max_batch, "store.commit_max_batch");
  note(next.store.retention != b.store.retention, "store.retention");
  note(next.store.servers != b.store.servers, "store.servers");
  note(next.store.stream != b.store.stream, "store.stream");
  note(next.store.replicas != b.store.replicas, "store.replicas");
  note(next.store.timeout != b.store.timeout, "store.timeout");
  note(next.log.format != b.log.format, "log.format");
  note(next.reload.watch != b.reload.watch, "reload.watch");
  note(next.reload.debounce != b.reload.debounce, "reload.debounce");
  note(next.schemas != b.schemas, "schemas");
  // The admin server keeps the settings (and the token) it was started with.
  const auto& na = next.admin;
  const auto& ba = b.admin;
  const auto token = [](const config::Admin& a) {
    return a.token ? a.token->describe() : std::string();  // where it is read from, not its line
  };
  note(na.enabled != ba.enabled || na.listen != ba.listen || na.port != ba.port || token(na) != token(ba) ||
           na.max_connections != ba.max_connections || na.tls != ba.tls,
       "admin");
  // Applied at once: server.shutdown_grace, log.level, connections and flows.
  const auto grace = next.server.shutdown_grace;
  next.server = config_.server;
  next.server.shutdown_grace = grace;
  next.store = config_.store;
  next.log.format = config_.log.format;
  next.reload = config_.reload;
  next.schemas = config_.schemas;
  next.admin = config_.admin;
  next.file = config_.file;
  return changed;
}

ReloadResult Daemon::apply(config::Config next) {
  std::lock_guard lk(reload_mu_);
  std::lock_guard routes_lk(routes_mu_);
  ReloadResult result;
  if (stopped_ || !ready_) {
    result.error = "the daemon is not running";
    log::error("configuration reload refused", {{"error", result.error}});
    return result;
  }
  result.restart_needed = keep_restart_settings(next);
  std::shared_ptr<const flow::Routes> routes;
  try {
    // Listener ids: kept in the store per flow name, so URLs do not change; a pinned id wins.
    routes = resolve_routes(next, *store_);
    // New lanes exist before any route leads to them; removed ones drain what the old routes sent.
    result.changes = dispatcher_->reconfigure(next, std::weak_ptr<const void>(this->routes()));
  } catch (const config::ConfigError& e) {
    result.diagnostics = e.diagnostics();
    log_diagnostics(result.diagnostics);
    log::error("configuration reload refused; the running configuration stays", {{"error", e.what()}});
    return result;
  } catch (const std::exception& e) {
    result.error = e.what();
    log::error("configuration reload refused; the running configuration stays", {{"error", result.error}});
    return result;
  }
  const auto previous = std::atomic_exchange(&routes_, routes);

  // What changed, for the log.
  std::map<std::string, const config::Flow*> before;
  for (const auto& f : config_.flows) before.emplace(f.name, &f);
  std::map<std::string, std::string> old_urls;
  for (const auto& f : previous->flows()) old_urls.emplace(f.name, previous->listener_url(f));
  for (const auto& f : next.flows) {
    auto it = before.find(f.name);
    if (it == before.end()) {
      result.flows_added.push_back(f.name);
    } else {
      if (!config::same_settings(*it->second, f)) result.flows_changed.push_back(f.name);
      before.erase(it);
    }
  }
  for (const auto& [name, _] : before) result.flows_removed.push_back(name);
  for (const auto& f : routes->flows()) {
    auto it = old_urls.find(f.name);
    const std::string url = routes->listener_url(f);
    if (it == old_urls.end() || it->second != url) {
      log::info("listener", {{"flow", f.name}, {"url", url}, {"enabled", f.enabled ? "true" : "false"}});
    }
  }
  for (const auto& key : result.restart_needed) {
    log::warn("setting changed; it takes effect at the next restart", {{"key", key}});
  }
  if (next.log.level != config_.log.level) log::set_level(next.log.level);
  config_ = std::move(next);
  if (watcher_) watcher_->watch(watched_paths(config_));
  if (config_.server.tls) {
    // Certificates are renewed in place: every reload reads them again, for new connections.
    if (const std::string error = server_->reload_tls(); error.empty()) {
      log::info("TLS certificate read again", {{"cert_file", config_.server.tls->cert_file}});
    } else {
      log::error("TLS certificate not reloaded; the running one stays", {{"error", error}});
    }
  }
  if (admin_ && config_.admin.tls) {
    if (const std::string error = admin_->reload_tls(); error.empty()) {
      log::info("admin TLS certificate read again", {{"cert_file", config_.admin.tls->cert_file}});
    } else {
      log::error("admin TLS certificate not reloaded; the running one stays", {{"error", error}});
    }
  }
  result.ok = true;
  const auto& c = result.changes;
  log::info("configuration reloaded", {{"flows_added", names(result.flows_added)},
                                       {"flows_removed", names(result.flows_removed)},
                                       {"flows_changed", names(result.flows_changed)},
                                       {"lanes_added", names(c.lanes_added)},
                                       {"lanes_removed", names(c.lanes_removed)},
                                       {"lanes_changed", names(c.lanes_changed)},
                                       {"connections_added", names(c.connections_added)},
                                       {"connections_removed", names(c.connections_removed)},
                                       {"connections_changed", names(c.connections_changed)}});
  return result;
}

FlowChange Daemon::set_flow_enabled(const std::string& name, std::optional<bool> enabled) {
  std::lock_guard lk(routes_mu_);
  const auto* f = configured_flow(name);
  if (f == nullptr) return FlowChange::unknown_flow;
  store_->set_flow_enabled(name, enabled);
  std::atomic_store(&routes_, resolve_routes(config_, *store_));
  log::info("flow state changed",
            {{"flow", name}, {"enabled", enabled ? (*enabled ? "true" : "false") : "from the files"}});
  return FlowChange::done;
}

FlowChange Daemon::rotate_listener_id(const std::string& name) {
  std::lock_guard lk(routes_mu_);
  const auto* f = configured_flow(name);
  if (f == nullptr) return FlowChange::unknown_flow;
  if (f->source.type == "bus" || f->source.listener_id) return FlowChange::not_rotatable;
  store_->rotate_listener_id(name);
  auto routes = resolve_routes(config_, *store_);
  for (const auto& rf : routes->flows()) {
    if (rf.name == name)
      log::info("listener id rotated", {{"flow", name}, {"url", routes->listener_url(rf)}});
  }
  std::atomic_store(&routes_, std::move(routes));
  return FlowChange::done;
}

void Daemon::wake_lanes(std::vector<std::string> lanes) {
  if (dispatcher_ && !lanes.empty()) dispatcher_->wake(std::move(lanes));
}

const config::Flow* Daemon::configured_flow(const std::string& name) const {
  for (const auto& f : config_.flows) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

uint16_t Daemon::port() const {
  return server_ ? server_->port() : 0;
}

std::shared_ptr<const flow::Routes> Daemon::routes() const {
  return std::atomic_load(&routes_);
}

namespace {

// An accepted event for the live tail (only built while someone watches).
void tail_accepted(const event::EventPtr& event, const std::vector<std::string>& lanes) {
  auto r = std::make_shared<tail::Record>();
  r->kind = tail::Record::Kind::event;
  r->event = event;
  r->at_ms = event->time_ms;
  r->lanes = lanes;
  tail::Hub::global().publish(std::move(r));
}

}  // namespace

void Daemon::commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) {
  // Kept only while someone tails: the ingest moves into the store.
  std::optional<store::Ingest> watched;
  if (tail::Hub::global().active()) watched = store::Ingest{ingest.event, ingest.lanes};
  event::EventPtr inferred = schemas_ ? ingest.event : nullptr;
  store_->commit(std::move(ingest), [this, done = std::move(done), watched = std::move(watched),
                                     inferred = std::move(inferred)](store::CommitResult r) mutable {
    // The tail shows the event before any outcome of its deliveries.
    if (watched && r.status == store::CommitResult::Status::accepted) {
      tail_accepted(watched->event, watched->lanes);
    }
    if (inferred && r.status == store::CommitResult::Status::accepted) schemas_->offer(inferred);
    if (r.status == store::CommitResult::Status::accepted && !r.deliveries.empty()) {
      dispatcher_->offer(r.deliveries);
    }
    if (!r.lanes_to_read.empty()) dispatcher_->notify(std::move(r.lanes_to_read));
    done(std::move(r));
  });
}

void Daemon::commit_batch(std::vector<store::Ingest> ingests,
                          std::function<void(std::vector<store::CommitResult>)> done) {
  std::vector<store::Ingest> watched;
  if (tail::Hub::global().active()) {
    for (const auto& i : ingests) watched.push_back({i.event, i.lanes});
  }
  std::vector<event::EventPtr> inferred;
  if (schemas_) {
    inferred.reserve(ingests.size());
    for (const auto& i : ingests) inferred.push_back(i.event);
  }
  store_->commit_batch(
      std::move(ingests), [this, done = std::move(done), watched = std::move(watched),
                           inferred = std::move(inferred)](std::vector<store::CommitResult> results) mutable {
        std::vector<store::Delivery> deliveries;
        std::vector<std::string> lanes_to_read;
        for (std::size_t i = 0; i < results.size(); ++i) {
          auto& r = results[i];
          for (auto& lane : r.lanes_to_read) {
            if (std::find(lanes_to_read.begin(), lanes_to_read.end(), lane) == lanes_to_read.end())
              lanes_to_read.push_back(std::move(lane));
          }
          r.lanes_to_read.clear();
          if (r.status != store::CommitResult::Status::accepted) continue;
          if (i < watched.size()) tail_accepted(watched[i].event, watched[i].lanes);
          if (i < inferred.size()) schemas_->offer(inferred[i]);
          deliveries.insert(deliveries.end(), std::make_move_iterator(r.deliveries.begin()),
                            std::make_move_iterator(r.deliveries.end()));
          r.deliveries.clear();
        }
        if (!deliveries.empty()) dispatcher_->offer(std::move(deliveries));
        if (!lanes_to_read.empty()) dispatcher_->notify(std::move(lanes_to_read));
        done(std::move(results));
      });
}

}  // namespace evr::daemon
