// evrouter backup --config FILE --output PATH: a consistent copy of the SQLite store, while the daemon runs.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "evrouter/config/loader.h"
#include "evrouter/store/sqlite_store.h"

namespace evr::cli {

int backup(const Args& args) {
  std::string config_path = "config/evrouter.yaml";
  std::string output;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--config" || a == "-c") && i + 1 < args.size()) {
      config_path = args[++i];
    } else if ((a == "--output" || a == "-o") && i + 1 < args.size()) {
      output = args[++i];
    } else {
      std::fprintf(stderr, "evrouter backup: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (output.empty()) {
    std::fprintf(stderr, "usage: evrouter backup [--config FILE] --output PATH   (PATH: a new file)\n");
    return 2;
  }
  auto loaded = config::load(config_path);
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!loaded.ok()) return 1;
  const config::Store& store = loaded.config->store;
  if (store.type != "sqlite") {
    std::fprintf(stderr,
                 "evrouter backup: store.type is %s: back up its streams with the NATS tools (nats stream "
                 "backup, docs/operations.md#backups)\n",
                 store.type.c_str());
    return 1;
  }
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

}  // namespace evr::cli
