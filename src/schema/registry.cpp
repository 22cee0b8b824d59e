#include "evrouter/schema/registry.h"

#include <chrono>
#include <random>

#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"

namespace evr::schema {
namespace {

Limits limits_of(const config::Schemas& c) {
  Limits l;
  l.max_fields = static_cast<std::size_t>(c.max_fields);
  l.max_array_items = static_cast<std::size_t>(c.max_array_items);
  return l;
}

std::vector<std::string> patterns_of(const config::Schemas& c) {
  std::vector<std::string> p;
  if (c.redact_defaults) p = default_redactions();
  p.insert(p.end(), c.redact.begin(), c.redact.end());
  return p;
}

// How long the registry thread lets events gather after a batch before it takes the next one.
constexpr auto kGather = std::chrono::milliseconds(100);

bool sampled(double rate) {
  if (rate >= 1.0) return true;
  if (rate <= 0.0) return false;
  thread_local std::minstd_rand rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < rate;
}

}  // namespace

Registry::Registry(config::Schemas config, store::Store& store)
    : config_(std::move(config)),
      limits_(limits_of(config_)),
      redaction_(patterns_of(config_)),
      store_(store) {}

Registry::~Registry() {
  stop();
}

void Registry::start() {
  for (auto& r : store_.schemas()) {
    try {
      auto s = deserialize(r.source, r.type, r.document);
      Key key{r.source, r.type};
      schemas_.emplace(std::move(key), std::move(s));
    } catch (const std::exception& e) {
      log::warn("kept schema does not load; starting it over", {{"error", e.what()}});
    }
  }
  started_ = true;
  thread_ = std::thread([this] {
    name_this_thread("schemas");
    run();
  });
}

void Registry::stop() {
  {
    std::lock_guard lk(queue_mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Registry::offer(const event::EventPtr& event) {
  if (!sampled(config_.sample_rate)) {
    sampled_out_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  {
    std::lock_guard lk(queue_mu_);
    if (stopping_ || queue_.size() >= static_cast<std::size_t>(config_.queue)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(event);
    if (queue_.size() > 1) return;  // the registry thread is awake already: no wake-up per event
  }
  queue_cv_.notify_one();
}

void Registry::sync() {
  std::unique_lock lk(queue_mu_);
  if (!started_ || stopping_) return;
  const uint64_t ticket = ++sync_asked_;
  queue_cv_.notify_one();
  idle_cv_.wait(lk, [&] { return sync_done_ >= ticket || stopping_; });
}

void Registry::run() {
  using clock = std::chrono::steady_clock;
  auto next_flush = clock::now() + config_.flush_interval;
  std::deque<event::EventPtr> batch;
  bool worked = false;
  for (;;) {
    bool stopping = false;
    uint64_t serving = 0;  // the sync() calls whose events are in `batch` (or already inferred)
    bool asked = false;
    {
      std::unique_lock lk(queue_mu_);
      // After a batch, let the next one gather for a while (unless asked to sync or stop): one wake-up per
      // batch rather than one per accepted event under load.
      if (worked) queue_cv_.wait_for(lk, kGather, [&] { return stopping_ || sync_asked_ != sync_done_; });
      queue_cv_.wait_until(lk, next_flush,
                           [&] { return stopping_ || sync_asked_ != sync_done_ || !queue_.empty(); });
      batch.swap(queue_);
      stopping = stopping_;
      serving = sync_asked_;
      asked = serving != sync_done_;
    }
    worked = !batch.empty();
    for (const auto& e : batch) infer(*e);
    batch.clear();
    if (asked || stopping || clock::now() >= next_flush) {
      flush();
      next_flush = clock::now() + config_.flush_interval;
    }
    if (asked) {
      std::lock_guard lk(queue_mu_);
      sync_done_ = serving;
    }
    idle_cv_.notify_all();
    if (stopping) {
      std::lock_guard lk(queue_mu_);
      if (queue_.empty()) return;
    }
  }
}

bool Registry::within_rate(const event::Event& e) {
  if (config_.max_rate <= 0) return true;
  // Bounded like the schemas themselves (a flood of new types starts the windows over).
  if (windows_.size() > static_cast<std::size_t>(config_.max_schemas)) windows_.clear();
  Window& w = windows_[Key{e.source, e.type}];
  const int64_t second = e.time_ms / 1000;
  if (w.second != second) w = {second, 0};
  return w.examined++ < config_.max_rate;
}

void Registry::infer(const event::Event& e) {
  if (!within_rate(e)) {
    sampled_out_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto payload = nlohmann::json::parse(e.payload, nullptr, false);
  if (payload.is_discarded()) {
    unparsable_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lk(schemas_mu_);
  Key key{e.source, e.type};
  auto it = schemas_.find(key);
  if (it == schemas_.end()) {
    if (schemas_.size() >= static_cast<std::size_t>(config_.max_schemas)) {
      over_limit_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Schema s;
    s.source = e.source;
    s.type = e.type;
    it = schemas_.emplace(key, std::move(s)).first;
  }
  observe(it->second, payload, e.time_ms, limits_, redaction_);
  dirty_.insert(std::move(key));
  observed_.fetch_add(1, std::memory_order_relaxed);
}

void Registry::flush() {
  std::vector<store::SchemaRecord> records;
  {
    std::lock_guard lk(schemas_mu_);
    records.reserve(dirty_.size());
    for (const auto& key : dirty_) {
      auto it = schemas_.find(key);
      if (it == schemas_.end()) continue;
      records.push_back({key.first, key.second, serialize(it->second), event::now_ms()});
    }
    dirty_.clear();
  }
  if (records.empty()) return;
  try {
    store_.save_schemas(records);
  } catch (const std::exception& e) {
    // Kept in memory; written with the next change.
    log::warn("writing inferred schemas failed", {{"error", e.what()}});
    std::lock_guard lk(schemas_mu_);
    for (const auto& r : records) dirty_.insert({r.source, r.type});
  }
}

std::vector<Summary> Registry::list() const {
  std::lock_guard lk(schemas_mu_);
  std::vector<Summary> out;
  out.reserve(schemas_.size());
  for (const auto& [k, s] : schemas_) {
    out.push_back({s.source, s.type, s.events, s.fields, s.first_seen_ms, s.last_seen_ms, s.truncated});
  }
  return out;
}

std::optional<Schema> Registry::get(const std::string& source, const std::string& type) const {
  std::lock_guard lk(schemas_mu_);
  auto it = schemas_.find(Key{source, type});
  if (it == schemas_.end()) return std::nullopt;
  return it->second;
}

Stats Registry::stats() const {
  Stats s;
  s.observed = observed_.load(std::memory_order_relaxed);
  s.sampled_out = sampled_out_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.unparsable = unparsable_.load(std::memory_order_relaxed);
  s.over_limit = over_limit_.load(std::memory_order_relaxed);
  std::lock_guard lk(queue_mu_);
  s.queued = queue_.size();
  return s;
}

}  // namespace evr::schema
