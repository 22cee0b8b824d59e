#pragma once
// The admin API's routes over a running daemon: health, Prometheus metrics, flows and store totals.
// Handlers run on the admin server's own thread; the store calls they make are the blocking read-side ones
// (SQLite WAL readers do not wait for the writer), so ingest and delivery never wait for an operator.

#include "evrouter/admin/router.h"

namespace evr::daemon {

class Daemon;

admin::Router make_admin_router(Daemon& daemon);

}  // namespace evr::daemon
