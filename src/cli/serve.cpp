// evrouter serve / listeners / version.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "evrouter/common/log.h"
#include "evrouter/config/loader.h"
#include "evrouter/daemon/daemon.h"
#include "evrouter/store/sqlite_store.h"

namespace evr::cli {
namespace {

struct Options {
  std::string config = "config/evrouter.yaml";
  std::string log_format;  // overrides config
  bool ok = true;
};

Options parse(const Args& args, const char* command) {
  Options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--config" || a == "-c") && i + 1 < args.size()) {
      o.config = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      o.config = a.substr(9);
    } else if (a == "--log-format" && i + 1 < args.size()) {
      o.log_format = args[++i];
    } else if (a == "--log-json") {
      o.log_format = "json";
    } else {
      std::fprintf(stderr, "evrouter %s: unknown argument '%s'\n", command, a.c_str());
      o.ok = false;
    }
  }
  return o;
}

std::optional<config::Config> load_or_report(const std::string& path) {
  auto result = config::load(path);
  for (const auto& d : result.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!result.ok()) {
    std::fprintf(stderr, "evrouter: configuration has errors; not starting\n");
    return std::nullopt;
  }
  return std::move(result.config);
}

}  // namespace

int serve(const Args& args) {
  Options o = parse(args, "serve");
  if (!o.ok) return 2;
  const auto t0 = std::chrono::steady_clock::now();
  auto cfg = load_or_report(o.config);
  if (!cfg) return 1;
  const auto read_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  log::setup(cfg->log.level, o.log_format.empty() ? cfg->log.format : o.log_format);
  log::info("configuration read",
            {{"file", o.config},
             {"flows", std::to_string(cfg->flows.size())},
             {"took", std::to_string(read_us / 1000) + "." + std::to_string(read_us / 100 % 10) + "ms"}});

  // Block the signals in every thread; this one waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file-size limit reached (RLIMIT_FSIZE) is a failed write, answered 503 like a full disk, not a crash.
  signal(SIGXFSZ, SIG_IGN);

  daemon::Daemon d(std::move(*cfg));
  // The store failed for good: wake the wait below (signals are blocked in every thread, so this SIGTERM
  // stays pending for sigwait), which stops with status 1.
  d.on_fatal([] { ::kill(::getpid(), SIGTERM); });
  try {
    d.start();
  } catch (const config::ConfigError& e) {
    for (const auto& diag : e.diagnostics()) std::fprintf(stderr, "%s\n", diag.str().c_str());
    std::fprintf(stderr, "evrouter: not starting\n");
    return 1;
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    return 1;
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log::info("SIGHUP received");
      d.reload();  // logs what changed, or every problem and keeps the running configuration
      continue;
    }
    if (!d.failure().empty()) break;
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    break;
  }
  d.stop();
  if (const std::string failure = d.failure(); !failure.empty()) {
    log::error("evrouter stopped because its store failed; restart it", {{"error", failure}});
    return 1;
  }
  return 0;
}

int listeners(const Args& args) {
  Options o = parse(args, "listeners");
  if (!o.ok) return 2;
  auto cfg = load_or_report(o.config);
  if (!cfg) return 1;
  log::setup("warn", "text");
  if (cfg->server.public_base_url.empty()) {
    cfg->server.public_base_url = "http://localhost:" + std::to_string(cfg->server.port);
  }
  try {
    auto store = store::make_sqlite_store(cfg->store);
    store->open();
    auto routes = daemon::resolve_routes(*cfg, *store);
    store->close();
    for (const auto& f : routes->flows()) std::cout << f.name << '\t' << routes->listener_url(f) << '\n';
  } catch (const config::ConfigError& e) {
    for (const auto& diag : e.diagnostics()) std::fprintf(stderr, "%s\n", diag.str().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter listeners: %s\n", e.what());
    return 1;
  }
  return 0;
}

int version(const Args&) {
  std::printf("evrouter 0.1.0\n");
  return 0;
}

}  // namespace evr::cli
