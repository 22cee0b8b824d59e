#include "store/jetstream_watch.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "store/jetstream_codec.h"

namespace evr::store::jetstream {

void KvWatch::start(const std::vector<kvStore*>& buckets, std::function<void()> changed) {
  stop();
  stopping_ = false;
  changed_ = std::move(changed);
  for (kvStore* kv : buckets) {
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.MetaOnly = true;
    kvWatcher* w = nullptr;
    natsStatus s = kvStore_WatchAll(&w, kv, &o);
    if (s != NATS_OK) {
      stop();
      throw std::runtime_error(std::string("store: cannot watch KV bucket ") + kvStore_Bucket(kv) + ": " +
                               status_text(s));
    }
    watchers_.push_back(w);
  }
  thread_ = std::thread([this] {
    name_this_thread("js-watch");
    run();
  });
}

void KvWatch::stop() {
  stopping_ = true;
  for (kvWatcher* w : watchers_) kvWatcher_Stop(w);
  if (thread_.joinable()) thread_.join();
  for (kvWatcher* w : watchers_) kvWatcher_Destroy(w);
  watchers_.clear();
}

void KvWatch::run() {
  // A watcher first replays the values present, then a null entry: changes are what comes after it.
  std::vector<bool> caught_up(watchers_.size(), false);
  bool pending = false;
  while (!stopping_) {
    bool idle = true;
    for (std::size_t i = 0; i < watchers_.size() && !stopping_; ++i) {
      kvEntry* e = nullptr;
      natsStatus s = kvWatcher_Next(&e, watchers_[i], 100);
      if (s == NATS_TIMEOUT) continue;  // nothing new
      if (s != NATS_OK) {
        // Stopped, or the connection is down (the client reconnects): no busy loop meanwhile.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      idle = false;
      if (!e) {
        caught_up[i] = true;
        continue;
      }
      if (caught_up[i]) pending = true;
      kvEntry_Destroy(e);
    }
    if (pending && idle && !stopping_) {
      pending = false;
      try {
        changed_();
      } catch (const std::exception& ex) {
        log::warn("store: applying a change of the shared flow state failed", {{"error", ex.what()}});
      }
    }
  }
}

}  // namespace evr::store::jetstream
