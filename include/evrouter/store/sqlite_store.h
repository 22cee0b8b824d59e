#pragma once
// The embedded store: one SQLite database in WAL mode under the state directory.
// Writes go through one writer thread that groups everything queued into one transaction (group commit):
// one fsync covers many webhooks. Reads run on a separate reader connection and thread.

#include <memory>

#include "evrouter/config/config.h"
#include "evrouter/store/store.h"

namespace evr::store {

std::unique_ptr<Store> make_sqlite_store(const config::Store& options);

}  // namespace evr::store
