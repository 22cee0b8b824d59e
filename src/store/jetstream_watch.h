#pragma once
// Watches the JetStream store's KV buckets (listener ids, flow states) so that a change made by any
// instance reaches every other one (docs/scaling.md). Private to the store.

#include <nats/nats.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace evr::store::jetstream {

class KvWatch {
 public:
  KvWatch() = default;
  KvWatch(const KvWatch&) = delete;
  KvWatch& operator=(const KvWatch&) = delete;
  ~KvWatch() { stop(); }

  // Watches every key of `buckets` on its own thread and calls `changed` there after a change (puts and
  // deletes, once per burst), not for the values present when it starts. Throws std::runtime_error when
  // a watch cannot be set up.
  void start(const std::vector<kvStore*>& buckets, std::function<void()> changed);
  // Stops and joins; the buckets must outlive the watch until then.
  void stop();

 private:
  void run();

  std::vector<kvWatcher*> watchers_;
  std::function<void()> changed_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace evr::store::jetstream
