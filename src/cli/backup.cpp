// evrouter backup --config FILE --output PATH: a consistent copy of the SQLite store, while the daemon runs.
// evrouter restore --config FILE --from PATH: that copy put back in place, while the daemon is stopped.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "evrouter/config/loader.h"
#include "evrouter/store/sqlite_store.h"

namespace evr::cli {

namespace {

// The store settings of --config, for `command` with its file option `file_flag` (--output, --from): 0 and
// the settings, or the exit code (2 usage, 1 a config error or a store that is not SQLite).
struct StoreArgs {
  int code = 0;
  config::Store store;
  std::string file;
};

StoreArgs parse_store_args(const Args& args, const char* command, const std::string& file_flag) {
  StoreArgs out;
  std::string config_path = "config/evrouter.yaml";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--config" || a == "-c") && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (a == file_flag && i + 1 < args.size()) {
      out.file = args[++i];
    } else {
      std::fprintf(stderr, "evrouter %s: unknown argument '%s'\n", command, a.c_str());
      out.code = 2;
      return out;
    }
  }
  if (out.file.empty()) {
    std::fprintf(stderr, "usage: evrouter %s [--config FILE] %s PATH\n", command, file_flag.c_str());
    out.code = 2;
    return out;
  }
  // Only the store settings matter here: secrets the flows name need not be set (their warnings are not
  // printed either), so a backup can run from any shell with the daemon's config file.
  config::LoadOptions options;
  options.require_secrets = false;
  auto loaded = config::load(config_path, options);
  for (const auto& d : loaded.diagnostics)
    if (d.severity == config::Diagnostic::Severity::error) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!loaded.ok()) {
    out.code = 1;
    return out;
  }
  out.store = loaded.config->store;
  if (out.store.type != "sqlite") {
    std::fprintf(stderr,
                 "evrouter %s: store.type is %s: back up and restore its streams with the NATS tools (nats "
                 "stream backup / restore, docs/operations.md#backups)\n",
                 command, out.store.type.c_str());
    out.code = 1;
  }
  return out;
}

}  // namespace

int backup(const Args& args) {
  const StoreArgs a = parse_store_args(args, "backup", "--output");
  if (a.code != 0) return a.code;
  const config::Store& store = a.store;
  const std::string& output = a.file;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const store::BackupResult r = store::backup_sqlite(store.state_dir, output);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("backup: %s: %lld events, %lld deliveries pending, %lld dead; %.1f MiB in %.1f s\n",
                output.c_str(), static_cast<long long>(r.counts.events),
                static_cast<long long>(r.counts.pending), static_cast<long long>(r.counts.dead),
                static_cast<double>(r.bytes) / (1024.0 * 1024.0), took);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter backup: %s\n", e.what());
    return 1;
  }
  return 0;
}

int restore(const Args& args) {
  const StoreArgs a = parse_store_args(args, "restore", "--from");
  if (a.code != 0) return a.code;
  try {
    const store::RestoreResult r = store::restore_sqlite(a.store.state_dir, a.file);
    std::printf("restore: %s/evrouter.db from %s: %lld events, %lld deliveries pending, %lld dead\n",
                a.store.state_dir.c_str(), a.file.c_str(), static_cast<long long>(r.counts.events),
                static_cast<long long>(r.counts.pending), static_cast<long long>(r.counts.dead));
    if (!r.kept.empty()) std::printf("restore: the store it replaces is kept as %s\n", r.kept.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter restore: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace evr::cli
