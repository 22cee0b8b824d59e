#pragma once
// The store's asynchronous calls made blocking, for tests that drive a Store directly, and the options of
// a store that runs no background pass (retention off: a test prunes itself).

#include <future>
#include <string>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/store/store.h"
#include "support/harness.h"

namespace evr::test {

inline config::Store quiet_store_options(const TempDir& dir) {
  config::Store o;
  o.state_dir = (dir / "state").string();
  o.durability = config::Store::Durability::none;
  o.retention = std::chrono::milliseconds(0);
  return o;
}

inline store::CommitResult commit_now(store::Store& s, event::EventPtr e, std::vector<std::string> lanes) {
  std::promise<store::CommitResult> p;
  s.commit({std::move(e), std::move(lanes)}, [&p](store::CommitResult r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

// A failed first attempt's outcome of `kind` for delivery `id` (a retry is due in a minute).
inline void record_now(store::Store& s, int64_t id, store::Outcome::Kind kind) {
  std::promise<void> p;
  store::Outcome o{id, kind, 1, event::now_ms() + 60000, {1, event::now_ms(), 500, 3, "HTTP 500", "no"}};
  s.record(std::move(o), [&p] { p.set_value(); });
  p.get_future().get();
}

}  // namespace evr::test
