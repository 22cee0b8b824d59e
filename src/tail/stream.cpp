#include "evrouter/tail/stream.h"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

namespace evr::tail {
namespace {

using json = nlohmann::json;

// The event document patterns see; the payload was validated at ingest, so it parses.
json document(const event::Event& e) {
  return event::envelope(e, json::parse(e.payload, nullptr, false));
}

class TailStream final : public admin::EventStream {
 public:
  TailStream(Hub& hub, Filter filter) : hub_(hub), filter_(std::move(filter)) {}
  ~TailStream() override {
    if (sub_) hub_.unsubscribe(sub_);
  }

  bool subscribe() {
    // The hub may call this from a publishing thread while the stream goes away: it holds the waker, not
    // the stream.
    sub_ = hub_.subscribe(kWatcherQueue, [w = waker_] { w->call(); });
    return sub_ != nullptr;
  }

  void start(std::function<void()> wake) override { waker_->set(std::move(wake)); }

  bool next(std::string& out) override {
    batch_.clear();
    const bool more = sub_->take(batch_);
    for (const auto& r : batch_) append(*r, out);
    batch_.clear();
    if (!more) {
      out += "event: dropped\ndata: {\"reason\":\"the watcher fell behind (" + std::to_string(kWatcherQueue) +
             " records queued); reconnect to go on\"}\n\n";
    }
    return more;
  }

 private:
  void append(const Record& r, std::string& out) {
    const event::Event& e = *r.event;
    if (r.kind == Record::Kind::event ? !filter_.events : !filter_.deliveries) return;
    if (!filter_.flows.empty() &&
        std::find(filter_.flows.begin(), filter_.flows.end(), e.flow) == filter_.flows.end()) {
      return;
    }
    if (filter_.pattern && !filter_.pattern->matches(document(e))) return;
    out += "id: ";
    out += e.id;
    out += r.kind == Record::Kind::event ? "\nevent: event\ndata: " : "\nevent: delivery\ndata: ";
    out += to_json(r, filter_.payload);
    out += "\n\n";
  }

  struct Waker {
    std::mutex mu;
    std::function<void()> fn;  // mu: set on the admin loop, called from publishers
    void set(std::function<void()> f) {
      std::lock_guard lk(mu);
      fn = std::move(f);
    }
    void call() {
      std::function<void()> f;
      {
        std::lock_guard lk(mu);
        f = fn;
      }
      if (f) f();
    }
  };

  Hub& hub_;
  Filter filter_;
  std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();
  std::shared_ptr<Subscription> sub_;
  std::vector<RecordPtr> batch_;
};

}  // namespace

std::shared_ptr<admin::EventStream> make_stream(Hub& hub, Filter filter) {
  auto s = std::make_shared<TailStream>(hub, std::move(filter));
  if (!s->subscribe()) return nullptr;
  return s;
}

std::string to_json(const Record& r, bool payload) {
  const event::Event& e = *r.event;
  json j{{"kind", r.kind == Record::Kind::event ? "event" : "delivery"},
         {"at", event::format_time(r.at_ms)},
         {"flow", e.flow},
         {"event_id", e.id},
         {"type", e.type},
         {"source", e.source}};
  if (!e.webhook_id.empty()) j["webhook_id"] = e.webhook_id;
  if (!e.correlation_id.empty()) j["correlation_id"] = e.correlation_id;
  if (r.replay) j["replay"] = true;
  if (r.kind == Record::Kind::event) {
    j["lanes"] = r.lanes;
    if (payload) j["event"] = document(e);
  } else {
    j["lane"] = r.lane;
    j["outcome"] = r.outcome;
    j["attempt"] = r.attempt;
    if (r.status != 0) j["status"] = r.status;
    j["latency_ms"] = r.latency_ms;
    if (!r.error.empty()) j["error"] = r.error;
  }
  return j.dump();
}

}  // namespace evr::tail
