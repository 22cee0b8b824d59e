#include "lane/key_gate.h"

namespace evr::lane {

void KeyGate::start(const store::Delivery& d) {
  if (!d.ordering_key) return;
  active_keys_.insert(*d.ordering_key);
  by_id_.emplace(d.id, *d.ordering_key);
}

bool KeyGate::finish(int64_t delivery_id) {
  auto it = by_id_.find(delivery_id);
  if (it == by_id_.end()) return false;
  active_keys_.erase(it->second);
  by_id_.erase(it);
  return true;
}

}  // namespace evr::lane
