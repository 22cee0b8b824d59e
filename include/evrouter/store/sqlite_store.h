#pragma once
// The embedded store: one SQLite database in WAL mode under the state directory.
// Writes go through one writer thread that groups everything queued into one transaction (group commit):
// one fsync covers many webhooks. Reads run on a separate reader connection and thread.

#include <cstdint>
#include <memory>
#include <string>

#include "evrouter/config/config.h"
#include "evrouter/store/store.h"

namespace evr::store {

std::unique_ptr<Store> make_sqlite_store(const config::Store& options);

// A consistent copy of the store in `state_dir`, written to `output` (a new file) while the daemon may be
// running: what the copy holds, checked (PRAGMA quick_check) and synced before it takes its name.
// Throws std::runtime_error with the reason (no store, the file exists, a failed write).
struct BackupResult {
  Counts counts;
  uint64_t bytes = 0;
};
BackupResult backup_sqlite(const std::string& state_dir, const std::string& output);

// Puts a backup in place as the store of `state_dir`: checks it, refuses while anything has the store open
// (evrouter running), keeps the store it replaces beside it (`kept`), and syncs the new one in place.
struct RestoreResult {
  Counts counts;
  std::string kept;  // the previous store's file, or "" when there was none
};
RestoreResult restore_sqlite(const std::string& state_dir, const std::string& from);

}  // namespace evr::store
