#include "evrouter/tail/hub.h"

#include <algorithm>

#include "evrouter/metrics/metrics.h"

namespace evr::tail {

bool Subscription::push(const RecordPtr& r) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    if (queue_.size() >= capacity_) return false;
    queue_.push_back(r);
    if (!woken_) wake = woken_ = true;
  }
  if (wake) wake_();
  return true;
}

bool Subscription::take(std::vector<RecordPtr>& out) {
  std::lock_guard lk(mu_);
  woken_ = false;
  while (!queue_.empty()) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return !dropped_.load(std::memory_order_acquire) || !out.empty();
}

Hub& Hub::global() {
  static Hub hub;
  return hub;
}

void Hub::publish(const RecordPtr& record) {
  if (!active()) return;
  std::vector<std::shared_ptr<Subscription>> slow;
  {
    std::lock_guard lk(mu_);
    for (auto it = subs_.begin(); it != subs_.end();) {
      if ((*it)->push(record)) {
        ++it;
        continue;
      }
      slow.push_back(std::move(*it));
      it = subs_.erase(it);
    }
    watchers_.store(subs_.size(), std::memory_order_relaxed);
  }
  for (auto& s : slow) {
    s->dropped_.store(true, std::memory_order_release);
    dropped_total_.fetch_add(1, std::memory_order_relaxed);
    static auto& dropped = metrics::Registry::global().counter(
        "evrouter_tail_dropped_total", "Live-tail watchers dropped for falling behind.");
    dropped.inc();
    s->wake_();  // its session notices, says so and closes
  }
}

std::shared_ptr<Subscription> Hub::subscribe(std::size_t capacity, std::function<void()> wake,
                                             std::size_t max_watchers) {
  std::lock_guard lk(mu_);
  if (subs_.size() >= max_watchers) return nullptr;
  auto s = std::make_shared<Subscription>(capacity, std::move(wake));
  subs_.push_back(s);
  watchers_.store(subs_.size(), std::memory_order_relaxed);
  return s;
}

void Hub::unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lk(mu_);
  std::erase(subs_, s);
  watchers_.store(subs_.size(), std::memory_order_relaxed);
}

void publish_delivery(const event::EventPtr& event, const std::string& lane, const char* outcome, int attempt,
                      int status, int64_t latency_ms, const std::string& error, bool replay) {
  Hub& hub = Hub::global();
  if (!hub.active()) return;
  auto r = std::make_shared<Record>();
  r->kind = Record::Kind::delivery;
  r->event = event;
  r->at_ms = event::now_ms();
  r->lane = lane;
  r->outcome = outcome;
  r->attempt = attempt;
  r->status = status;
  r->latency_ms = latency_ms;
  r->replay = replay;
  r->error = error;
  hub.publish(std::move(r));
}

}  // namespace evr::tail
