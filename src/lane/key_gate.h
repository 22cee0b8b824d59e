#pragma once
// Ordered delivery in memory (docs/architecture.md#ordered-delivery): the ordering keys of a lane's
// deliveries that are sent and not yet finished (in flight, or their outcome not yet durable). A ready
// delivery whose key is active waits, so a key never has two deliveries in flight. The store does the rest:
// it hands out only the head (earliest pending delivery) of each key.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "evrouter/store/store.h"

namespace evr::lane {

class KeyGate {
 public:
  // Whether `d` may be sent now: it has no key, or no delivery of its key is active.
  bool open(const store::Delivery& d) const {
    return !d.ordering_key || active_keys_.empty() || !active_keys_.count(*d.ordering_key);
  }
  // `d` is being sent: its key is active until finish(d.id).
  void start(const store::Delivery& d);
  // The delivery's outcome is durable (or it was given back): its key is free. True when a key was freed.
  bool finish(int64_t delivery_id);
  bool empty() const { return active_keys_.empty(); }

 private:
  std::unordered_map<int64_t, std::string> by_id_;
  std::unordered_set<std::string> active_keys_;
};

}  // namespace evr::lane
