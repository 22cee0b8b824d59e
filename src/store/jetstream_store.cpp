// The JetStream store. Layout (docs/scaling.md):
//   stream <S>             subjects <S>.events.<flow>.<type>.<event id>.<webhook id>
//                                  limits, max age = dedup window: one message per event (the dedup
//                                  record; Nats-Msg-Id = listener id + dedup key), naming its deliveries
//   stream <S>_deliveries  subjects <S>.deliveries.<lane>  work queue: one message per delivery, removed
//                                                          when acknowledged (delivered) or terminated
//   stream <S>_dead        subjects <S>.dead.<lane>.<flow>.<delivery id>
//                                  limits: dead letters with their attempt history
//   stream <S>_attempts    subjects <S>.attempts.<delivery id>  limits, max age = dedup window: each
//                                  delivery's journal (attempts, replays, discards); jetstream_operations.h
//                                  and <S>.attempts.replays.<event id>: the deliveries window replays made
//   KV <S>_listeners (flow → listener id), KV <S>_flows (flow → enabled override),
//   KV <S>_schemas (source.type → inferred schema)
//   stream <S>_instances   subjects <S>.instances.<id>     limits, one message per subject, max age
//                                                          kInstanceTtl: a heartbeat per live instance
// Names in subjects (flows, lanes) are encoded as tokens of [A-Za-z0-9-] with _XX escapes.
#include "evrouter/store/jetstream_store.h"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "evrouter/common/crypto.h"
#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "store/jetstream_codec.h"
#include "store/jetstream_operations.h"
#include "store/jetstream_publisher.h"
#include "store/jetstream_watch.h"

namespace evr::store {
namespace {

// A fetched delivery may stay unacknowledged for `ack_wait` (config) before JetStream hands it out again;
// the store extends it (in progress) every ack_wait / 3 for deliveries its lanes still hold.
// Instances announce themselves every kBeatEvery; one not heard of for kInstanceTtl no longer counts.
constexpr auto kBeatEvery = std::chrono::milliseconds(1000);
constexpr int64_t kInstanceTtlMs = 3000;
// Lanes poll their consumer for retries whose delay ended (JetStream does not tell): soon after a fetch
// that brought something, less often when it was empty (new commits wake their lanes at once).
constexpr int64_t kPollMs = 250;
constexpr int64_t kIdlePollMs = 1000;
// Deliveries a lane remembers as committed here and not fetched yet (only their count is used, and a
// fetch asks for 256 at most).
constexpr std::size_t kMaxExpected = 1024;
// How long a fetch waits for messages when none is there at once.
constexpr int64_t kFetchWaitMs = 20;
// Commits queued on the writer thread beyond this fail at once (bounded memory).
constexpr std::size_t kMaxQueuedStreamCommits = 20'000;
// Commits published together by one pass of the writer (publish_all): two round trips to JetStream for
// all of them.
constexpr std::size_t kPipelinedCommits = 256;
// Outcomes settled together by one pass of the reader (settle_all): their journal entries in one round trip.
constexpr std::size_t kPipelinedOutcomes = 256;

// Up to `n` items from the front of `q` (under `mu`). None left: an empty result, and `posted` (the flag that
// a pass is posted to drain `q`) is cleared under the same lock, so the next item queued posts a new pass.
template <typename T>
std::vector<T> take_queued(std::mutex& mu, std::deque<T>& q, bool& posted, std::size_t n) {
  std::vector<T> out;
  std::lock_guard lk(mu);
  if (q.empty()) {
    posted = false;
    return out;
  }
  n = std::min(q.size(), n);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::move(q.front()));
    q.pop_front();
  }
  return out;
}

using jetstream::event_from;
using jetstream::status_text;
using jetstream::token;
using jetstream::untoken;

// One thread running posted jobs in order; `every` runs when the queue has been idle for `period`.
class Worker {
 public:
  void start(std::function<void()> every, std::chrono::milliseconds period) {
    every_ = std::move(every);
    period_ = period;
    thread_ = std::thread([this] {
      name_this_thread("js-jobs");
      run();
    });
  }
  // False when stopped.
  bool post(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }
  // Runs the jobs still queued, then joins.
  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  std::size_t queued() {
    std::lock_guard lk(mu_);
    return jobs_.size();
  }

 private:
  void run() {
    auto next = std::chrono::steady_clock::now() + period_;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        const auto woken = [this] { return stopping_ || !jobs_.empty(); };
        // Without `every` there is no deadline: waiting until a past `next` would return at once, and the
        // idle thread would spin.
        if (every_) {
          cv_.wait_until(lk, next, woken);
        } else {
          cv_.wait(lk, woken);
        }
        if (!jobs_.empty()) {
          job = std::move(jobs_.front());
          jobs_.pop_front();
        } else if (stopping_) {
          return;
        }
      }
      if (job) job();
      if (every_ && std::chrono::steady_clock::now() >= next) {
        every_();
        next = std::chrono::steady_clock::now() + period_;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::function<void()> every_;
  std::chrono::milliseconds period_{1000};
  std::thread thread_;
};

// A commit waiting for the writer thread's next pass.
struct QueuedCommit {
  Ingest ingest;
  std::function<void(CommitResult)> done;
};

// An outcome waiting for the reader thread's next pass.
struct QueuedOutcome {
  Outcome outcome;
  std::function<void()> done;
};

// A journal entry published by the reader whose PubAck may still be on its way.
struct Journaled {
  std::string lane;
  jetstream::AsyncPublisher::Ack ack;
};

// A fetched, unacknowledged delivery message.
struct Held {
  natsMsg* msg = nullptr;
  std::string lane;
};

class JetStreamStore final : public Store {
 public:
  explicit JetStreamStore(config::Store options)
      : options_(std::move(options)),
        prefix_(options_.stream),
        events_stream_(options_.stream),
        deliveries_stream_(options_.stream + "_deliveries"),
        dead_stream_(options_.stream + "_dead"),
        names_(jetstream::names_for(options_.stream)),
        instances_stream_(options_.stream + "_instances"),
        instance_subject_(options_.stream + ".instances." + crypto::random_token(16)) {}
  ~JetStreamStore() override { close(); }

  // Two connections: the writer's (commits, and everything else) buffers what it sends for the client's
  // flusher (which waits 1 ms for more), the reader's (fetches, acks, journal entries, in-progress marks)
  // sends each at once: a lane's fetch-send-settle cycle is a chain of small round trips, where waiting
  // for company only adds latency (docs/benchmarks.md, "Deliveries on JetStream").
  natsConnection* connect(const char* name, bool send_asap) {
    natsOptions* opts = nullptr;
    check(natsOptions_Create(&opts), "NATS options");
    std::vector<const char*> servers;
    for (const auto& s : options_.servers) servers.push_back(s.c_str());
    natsStatus s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, timeout_ms());
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 500);
    if (s == NATS_OK) s = natsOptions_SetName(opts, name);
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, send_asap);
    natsConnection* nc = nullptr;
    if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      std::string list;
      for (const auto& u : options_.servers) list += (list.empty() ? "" : ", ") + u;
      throw std::runtime_error("store: cannot connect to NATS at " + list + ": " + status_text(s));
    }
    return nc;
  }

  void open() override {
    nc_ = connect("evrouter", false);
    reader_nc_ = connect("evrouter-reader", true);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms();
    check(natsConnection_JetStream(&js_, nc_, &jo), "JetStream context");
    check(natsConnection_JetStream(&reader_js_, reader_nc_, &jo), "JetStream context");
    commit_publisher_.open(nc_, timeout_ms());
    settle_publisher_.open(reader_nc_, timeout_ms());

    // The streams and buckets, each retried while JetStream is not answering yet: replicas started with
    // (or just after) their NATS cluster find its meta leader still being elected, and a replicated
    // stream's creation can time out while its own leader is chosen. Other errors stop the start.
    setup_deadline_ = std::chrono::steady_clock::now() + setup_patience();
    const std::string events_subject = prefix_ + ".events.>";
    const std::string deliveries_subject = prefix_ + ".deliveries.>";
    const std::string dead_subject = prefix_ + ".dead.>";
    const int64_t window_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(options_.dedup_window).count();
    ensure_stream(events_stream_, events_subject, js_LimitsPolicy, window_ns, window_ns);
    ensure_stream(deliveries_stream_, deliveries_subject, js_WorkQueuePolicy, 0, window_ns);
    ensure_stream(dead_stream_, dead_subject, js_LimitsPolicy, 0, 0);
    ensure_stream(names_.attempts, prefix_ + ".attempts.>", js_LimitsPolicy, window_ns, 0);
    ops_ = std::make_unique<jetstream::Operations>(nc_, js_, names_, timeout_ms());
    ensure_stream(instances_stream_, prefix_ + ".instances.*", js_LimitsPolicy, kInstanceTtlMs * 1'000'000,
                  kInstanceTtlMs * 1'000'000, 1);
    listeners_kv_ = ensure_kv(prefix_ + "_listeners");
    flows_kv_ = ensure_kv(prefix_ + "_flows");
    schemas_kv_ = ensure_kv(prefix_ + "_schemas");

    writer_.start(nullptr, std::chrono::milliseconds(1000));
    reader_.start(nullptr, std::chrono::milliseconds(1000));
    marker_.start([this] { keep_held(); },
                  std::chrono::duration_cast<std::chrono::milliseconds>(options_.ack_wait / 3));
    join_instances();
    beat_.start([this] { beat(); }, kBeatEvery);
    open_ = true;
    log::info("store opened", {{"type", "jetstream"}, {"stream", events_stream_}});
    if (options_.replicas == 1) {
      // What a 2xx promises rests on the server here, and nothing in the client protocol says how it syncs.
      log::info(
          "store durability: one replica; a 2xx survives a power cut of the NATS host only if "
          "nats-server syncs every write (jetstream { sync_interval: always }, nats-server 2.10+; "
          "docs/scaling.md)",
          {{"replicas", "1"}});
    }
  }

  void close() override {
    if (open_.exchange(false)) {
      writer_.stop();
      marker_.stop();
      // Deliveries fetched but not settled go back at once (no wait for the ack timeout), for the next
      // start or another instance.
      reader_.post([this] {
        reap_journal(true);
        std::lock_guard lk(held_mu_);
        for (auto& [_, h] : held_) {
          natsMsg_Nak(h.msg, nullptr);
          natsMsg_Destroy(h.msg);
        }
        held_.clear();
        for (auto& [_, sub] : subs_) natsSubscription_Destroy(sub);
        subs_.clear();
      });
      reader_.stop();
      beat_.stop();
      leave_instances();
    }
    watch_.stop();
    ops_.reset();
    // Also after an open() that failed half way.
    if (listeners_kv_) kvStore_Destroy(listeners_kv_);
    if (flows_kv_) kvStore_Destroy(flows_kv_);
    if (schemas_kv_) kvStore_Destroy(schemas_kv_);
    listeners_kv_ = flows_kv_ = schemas_kv_ = nullptr;
    commit_publisher_.close();
    settle_publisher_.close();
    if (js_) jsCtx_Destroy(js_);
    if (reader_js_) jsCtx_Destroy(reader_js_);
    js_ = reader_js_ = nullptr;
    for (natsConnection* nc : {nc_, reader_nc_}) {
      if (!nc) continue;
      natsConnection_FlushTimeout(nc, timeout_ms());
      natsConnection_Close(nc);
      natsConnection_Destroy(nc);
    }
    nc_ = reader_nc_ = nullptr;
  }

  std::string listener_id(const std::string& flow, const std::optional<std::string>& pinned) override {
    const std::string key = token(flow);
    if (pinned) {
      uint64_t rev = 0;
      check(kvStore_PutString(&rev, listeners_kv_, key.c_str(), pinned->c_str()), "listener id");
      return *pinned;
    }
    for (int i = 0; i < 3; ++i) {
      if (auto id = kv_get(listeners_kv_, key)) return *id;
      std::string id = crypto::random_token(24);
      uint64_t rev = 0;
      // Create fails when another instance created it first: read theirs.
      if (kvStore_CreateString(&rev, listeners_kv_, key.c_str(), id.c_str()) == NATS_OK) return id;
    }
    throw std::runtime_error("store: cannot keep the listener id of flow " + flow);
  }

  void commit(Ingest ingest, std::function<void(CommitResult)> done) override {
    if (!admit()) {
      CommitResult r;
      r.error = "the store's queue is full or the store is closed";
      done(std::move(r));
      return;
    }
    ++queued_;
    bool post = false;
    {
      std::lock_guard lk(commits_mu_);
      commits_.push_back(QueuedCommit{std::move(ingest), std::move(done)});
      post = !drain_posted_;
      drain_posted_ = true;
    }
    if (post && !writer_.post([this] { drain_commits(); })) fail_queued_commits();
  }

  void commit_batch(std::vector<Ingest> ingests,
                    std::function<void(std::vector<CommitResult>)> done) override {
    if (!admit()) {
      std::vector<CommitResult> failed(ingests.size());
      for (auto& r : failed) r.error = "the store's queue is full or the store is closed";
      done(std::move(failed));
      return;
    }
    queued_ += ingests.size();
    const std::size_t n = ingests.size();
    const bool posted = writer_.post([this, ingests = std::move(ingests), done = std::move(done)]() mutable {
      queued_ -= ingests.size();
      // Not atomic in JetStream: the batch is published together (publish_all); when one fails every
      // result is failed and the producer's retry finds the ones already published as duplicates (their
      // deliveries are published again under the same message ids, which JetStream drops if they are there).
      std::vector<CommitResult> results(ingests.size());
      std::vector<Ingest*> to_publish;
      std::vector<std::size_t> at;
      std::unordered_set<std::string> seen;
      for (std::size_t i = 0; i < ingests.size(); ++i) {
        const auto& e = *ingests[i].event;
        if (!e.dedup_key.empty() && !seen.insert(e.listener_id + ":" + e.dedup_key).second) {
          results[i].status = CommitResult::Status::duplicate;
          results[i].event_id = e.id;
          continue;
        }
        to_publish.push_back(&ingests[i]);
        at.push_back(i);
      }
      std::vector<CommitResult> published = publish_all(to_publish);
      for (std::size_t k = 0; k < published.size(); ++k) {
        if (published[k].status == CommitResult::Status::failed) {
          std::vector<CommitResult> failed(ingests.size());
          for (auto& f : failed) f.error = published[k].error;
          done(std::move(failed));
          return;
        }
        results[at[k]] = std::move(published[k]);
      }
      done(std::move(results));
    });
    if (!posted) queued_ -= n;
  }

  void fetch_due(std::string lane, int64_t now_ms, std::size_t limit, std::unordered_set<int64_t> exclude,
                 std::function<void(Due)> done) override {
    const bool posted =
        reader_.post([this, lane = std::move(lane), now_ms, limit, exclude = std::move(exclude),
                      done]() mutable { done(fetch(lane, now_ms, limit, exclude)); });
    if (!posted) done(Due{});
  }

  void record(Outcome outcome, std::function<void()> done) override {
    bool post = false;
    {
      std::lock_guard lk(outcomes_mu_);
      outcomes_.push_back(QueuedOutcome{std::move(outcome), std::move(done)});
      post = !settle_posted_;
      settle_posted_ = true;
    }
    if (post && !reader_.post([this] { drain_outcomes(); })) {
      // Stopped: nothing is settled (JetStream hands the deliveries out again after ack_wait).
      std::deque<QueuedOutcome> left;
      {
        std::lock_guard lk(outcomes_mu_);
        left.swap(outcomes_);
        settle_posted_ = false;
      }
      for (auto& q : left) q.done();
    }
  }

  std::vector<std::string> pending_lanes() override {
    std::vector<std::string> lanes;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms();
    const std::string filter = prefix_ + ".deliveries.>";
    jo.Stream.Info.SubjectsFilter = filter.c_str();
    jsStreamInfo* si = nullptr;
    jsErrCode code{};
    check(js_GetStreamInfo(&si, js_, deliveries_stream_.c_str(), &jo, &code), "stream info", code);
    const std::string head = prefix_ + ".deliveries.";
    if (si->State.Subjects) {
      for (int i = 0; i < si->State.Subjects->Count; ++i) {
        const auto& sub = si->State.Subjects->List[i];
        std::string_view subject = sub.Subject;
        if (sub.Msgs > 0 && subject.substr(0, head.size()) == head)
          lanes.push_back(untoken(subject.substr(head.size())));
      }
    }
    jsStreamInfo_Destroy(si);
    return lanes;
  }

  Counts counts() override {
    Counts c;
    c.events = static_cast<int64_t>(stream_msgs(events_stream_));
    c.pending = static_cast<int64_t>(stream_msgs(deliveries_stream_));
    c.dead = static_cast<int64_t>(stream_msgs(dead_stream_));
    c.delivered = delivered_.load();
    return c;
  }

  // Operations: jetstream_operations.cpp, read from JetStream (the same on every instance).
  std::vector<Attempt> attempts(int64_t delivery_id) override { return ops().attempts(delivery_id); }
  std::optional<EventRecord> event(const std::string& key) override { return ops().event(key); }
  EventPage events(const EventQuery& query) override { return ops().events(query); }
  DeadLetterPage dead_letters(const DeadLetterQuery& query) override { return ops().dead_letters(query); }
  std::optional<DeadLetter> dead_letter(int64_t id) override { return ops().dead_letter(id); }
  // Inferred schemas, one KV entry per source and type (key <source token>.<type token>): each instance
  // infers from what it accepts, saves what changed (the last save of a key wins), and starts from what
  // is there.
  std::vector<SchemaRecord> schemas() override {
    std::vector<SchemaRecord> out;
    kvKeysList keys{};
    natsStatus s = kvStore_Keys(&keys, schemas_kv_, nullptr);
    if (s == NATS_NOT_FOUND) return out;  // empty bucket
    check(s, "schemas");
    for (int i = 0; i < keys.Count; ++i) {
      const std::string_view key = keys.Keys[i];
      const auto dot = key.find('.');
      if (dot == std::string_view::npos) continue;
      kvEntry* e = nullptr;
      if (kvStore_Get(&e, schemas_kv_, keys.Keys[i]) != NATS_OK) continue;  // deleted meanwhile
      out.push_back({untoken(key.substr(0, dot)), untoken(key.substr(dot + 1)),
                     std::string(static_cast<const char*>(kvEntry_Value(e)),
                                 static_cast<std::size_t>(kvEntry_ValueLen(e))),
                     kvEntry_Created(e) / 1'000'000});
      kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
    return out;
  }
  void save_schemas(const std::vector<SchemaRecord>& records) override {
    for (const auto& r : records) {
      uint64_t rev = 0;
      const std::string key = token(r.source) + "." + token(r.type);
      check(
          kvStore_Put(&rev, schemas_kv_, key.c_str(), r.document.data(), static_cast<int>(r.document.size())),
          "schema " + r.source + " " + r.type);
    }
  }
  Bulk replay(int64_t id) override { return ops().replay(nullptr, id); }
  Bulk replay(const DeadLetterFilter& filter) override { return ops().replay(&filter, std::nullopt); }
  Bulk discard(int64_t id) override { return ops().discard(nullptr, id); }
  Bulk discard(const DeadLetterFilter& filter) override { return ops().discard(&filter, std::nullopt); }
  // Window replay reaches back as far as the events stream keeps events (dedup_window); retention is the
  // streams' own (prune() stays unsupported).
  ArchivePage archived(const ArchiveQuery& query) override { return ops().archived(query); }
  Bulk add_replay(const std::vector<ReplayIngest>& ingests, int64_t now_ms) override {
    return ops().add_replay(ingests, now_ms);
  }
  std::map<std::string, int64_t> oldest_pending() override { return ops().oldest_pending(); }

  std::map<std::string, FlowState> flow_states() override {
    std::map<std::string, FlowState> out;
    kvKeysList keys{};
    natsStatus s = kvStore_Keys(&keys, flows_kv_, nullptr);
    if (s == NATS_NOT_FOUND) return out;  // empty bucket
    check(s, "flow states");
    for (int i = 0; i < keys.Count; ++i) {
      if (auto v = kv_get(flows_kv_, keys.Keys[i])) out[untoken(keys.Keys[i])].enabled = *v == "true";
    }
    kvKeysList_Destroy(&keys);
    return out;
  }

  void cap_lanes(const std::map<std::string, int>& caps) override {
    {
      std::lock_guard lk(caps_mu_);
      for (const auto& [lane, cap] : caps) caps_[lane] = cap;
    }
    // Consumers already made get their new cap; the others get theirs when first read. A lane no longer
    // configured (retired, delivering what is left) keeps the cap it had.
    reader_.post([this, caps] {
      for (const auto& [lane, _] : subs_) {
        if (!caps.count(lane)) continue;
        try {
          ensure_consumer(lane);
        } catch (const std::exception& ex) {
          log::warn("store: cannot change a lane's cap", {{"lane", lane}, {"error", ex.what()}});
        }
      }
    });
  }

  int live_instances() const override { return live_.load(); }

  void set_flow_enabled(const std::string& flow, std::optional<bool> enabled) override {
    const std::string key = token(flow);
    if (!enabled) {
      natsStatus s = kvStore_Delete(flows_kv_, key.c_str());
      if (s != NATS_NOT_FOUND) check(s, "flow state");
      return;
    }
    uint64_t rev = 0;
    check(kvStore_PutString(&rev, flows_kv_, key.c_str(), *enabled ? "true" : "false"), "flow state");
  }

  std::string rotate_listener_id(const std::string& flow) override {
    std::string id = crypto::random_token(24);
    uint64_t rev = 0;
    check(kvStore_PutString(&rev, listeners_kv_, token(flow).c_str(), id.c_str()), "listener id");
    return id;
  }

  void watch_shared_state(std::function<void()> changed) override {
    watch_.start({listeners_kv_, flows_kv_}, std::move(changed));
  }

 private:
  int64_t timeout_ms() const { return std::max<int64_t>(1, options_.timeout.count()); }

  const jetstream::Operations& ops() const {
    if (!ops_) throw std::runtime_error("store: the jetstream store is not open");
    return *ops_;
  }

  static void check(natsStatus s, const std::string& what, jsErrCode code = static_cast<jsErrCode>(0)) {
    if (s != NATS_OK) throw std::runtime_error("store: " + what + ": " + status_text(s, code));
  }

  bool admit() const { return open_ && queued_.load() < kMaxQueuedStreamCommits; }

  // The writer's connection (commits, heartbeats, operations); reading() is the reader's.
  bool connected() const { return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }
  bool reading() const {
    return reader_nc_ && natsConnection_Status(reader_nc_) == NATS_CONN_STATUS_CONNECTED;
  }

  void ensure_stream(const std::string& name, const std::string& subject, jsRetentionPolicy retention,
                     int64_t max_age_ns, int64_t duplicates_ns, int64_t max_per_subject = 0) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = retention;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options_.replicas;
    cfg.MaxAge = max_age_ns;
    if (duplicates_ns > 0) cfg.Duplicates = duplicates_ns;
    cfg.AllowDirect = true;  // the operations read with direct gets (jetstream_operations.cpp)
    if (max_per_subject > 0) cfg.MaxMsgsPerSubject = max_per_subject;
    for (;;) {
      jsStreamInfo* si = nullptr;
      jsErrCode code{};
      natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &code);
      if (s != NATS_OK && code == JSStreamNameExistErr) {
        code = {};
        s = js_UpdateStream(&si, js_, &cfg, nullptr, &code);
      }
      jsStreamInfo_Destroy(si);
      if (retry_setup(s, code, "stream " + name)) continue;
      check(s, "stream " + name, code);
      return;
    }
  }

  // Waiting for JetStream at start: at least 30 s, or 6 request timeouts.
  std::chrono::milliseconds setup_patience() const {
    return std::max(std::chrono::milliseconds(30000), std::chrono::milliseconds(6 * timeout_ms()));
  }

  // True (after a pause) when a setup request failed because JetStream is not ready yet and there is
  // time left to ask again.
  bool retry_setup(natsStatus s, jsErrCode code, const std::string& what) {
    const bool not_ready = s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || code == JSClusterNotAvailErr;
    if (s == NATS_OK || !not_ready || std::chrono::steady_clock::now() >= setup_deadline_) return false;
    log::warn("JetStream not ready; retrying", {{"request", what}, {"error", status_text(s, code)}});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return true;
  }

  kvStore* ensure_kv(const std::string& bucket) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.History = 1;
    cfg.Replicas = options_.replicas;
    cfg.StorageType = js_FileStorage;
    kvStore* kv = nullptr;
    natsStatus s = NATS_OK;
    while (retry_setup(s = js_CreateKeyValue(&kv, js_, &cfg), {}, "KV bucket " + bucket)) {
    }
    check(s, "KV bucket " + bucket);
    return kv;
  }

  std::optional<std::string> kv_get(kvStore* kv, const std::string& key) {
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv, key.c_str());
    if (s == NATS_NOT_FOUND) return std::nullopt;
    check(s, "KV get " + key);
    std::string v(kvEntry_ValueString(e));
    kvEntry_Destroy(e);
    return v;
  }

  uint64_t stream_msgs(const std::string& stream) {
    jsStreamInfo* si = nullptr;
    jsErrCode code{};
    check(js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &code), "stream info " + stream, code);
    const uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }

  // Publishes one message; sets `duplicate` from the acknowledgement. Empty on success, else the error.
  std::string publish_msg(const std::string& subject, const std::string& msg_id,
                          std::initializer_list<std::pair<const char*, const std::string*>> headers,
                          const std::string& body, bool* duplicate, uint64_t* seq) {
    return jetstream::publish(js_, timeout_ms(), subject, msg_id, {headers.begin(), headers.size()},
                              body.data(), static_cast<int>(body.size()), seq, duplicate);
  }

  // On the writer thread: the commits queued since its last pass, published together (publish_all) up to
  // kPipelinedCommits at a time, each answered with its own result.
  void drain_commits() {
    for (;;) {
      std::vector<QueuedCommit> batch = take_queued(commits_mu_, commits_, drain_posted_, kPipelinedCommits);
      if (batch.empty()) return;
      queued_ -= batch.size();
      std::vector<Ingest*> ingests;
      ingests.reserve(batch.size());
      for (auto& c : batch) ingests.push_back(&c.ingest);
      std::vector<CommitResult> results = publish_all(ingests);
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
    }
  }

  // The writer is stopped: commits queued after its last pass fail (the producer retries).
  void fail_queued_commits() {
    std::deque<QueuedCommit> left;
    {
      std::lock_guard lk(commits_mu_);
      left.swap(commits_);
      drain_posted_ = false;
    }
    queued_ -= left.size();
    for (auto& c : left) {
      CommitResult r;
      r.error = "the store is closed";
      c.done(std::move(r));
    }
  }

  // Publishes the ingests, in order, pipelined: every delivery message of every ingest, one wait for their
  // acknowledgements, then every event message (naming its deliveries' sequence numbers), one more wait.
  // Two round trips for the whole batch instead of two per message. One connection keeps the order, so
  // the streams hold the messages in the order of `ins`; a result is accepted only once every message of
  // its ingest was acknowledged.
  std::vector<CommitResult> publish_all(const std::vector<Ingest*>& ins) {
    std::vector<CommitResult> results(ins.size());
    if (ins.empty()) return results;
    if (!connected()) {
      for (auto& r : results) r.error = "NATS is not connected";
      return results;
    }
    struct Prepared {
      std::string envelope;
      std::string lanes;
      std::string base;
      std::size_t first = 0;  // its deliveries' slots in `deliveries`
      std::size_t count = 0;
    };
    std::vector<Prepared> prep(ins.size());
    std::size_t total = 0;
    for (std::size_t i = 0; i < ins.size(); ++i) total += ins[i]->lanes.size();
    // Pending slots must not move while libnats may fill them: sized once.
    std::vector<jetstream::AsyncPublisher::Ack> deliveries(total);
    std::vector<jetstream::AsyncPublisher::Ack> events(ins.size());
    std::size_t slot = 0;
    for (std::size_t i = 0; i < ins.size(); ++i) {
      Ingest& in = *ins[i];
      const event::Event& e = *in.event;
      Prepared& pr = prep[i];
      pr.envelope = jetstream::envelope_text(e);
      pr.lanes = jetstream::string_array_text(in.lanes);
      pr.base = e.dedup_key.empty() ? std::string() : e.listener_id + ":" + e.dedup_key;
      pr.first = slot;
      pr.count = in.lanes.size();
      // The deliveries first, so that the event message can name them (Evr-Deliveries: their ids). Also
      // for a duplicate: when an earlier attempt failed half way this completes it; otherwise JetStream
      // drops them as duplicates of the first ones (and its acknowledgement names the first ones' ids).
      const std::string& delivery_base = pr.base.empty() ? e.id : pr.base;
      for (std::size_t j = 0; j < in.lanes.size(); ++j, ++slot) {
        const std::string& lane = in.lanes[j];
        std::string key;
        if (j < in.ordering_keys.size() && in.ordering_keys[j]) key = *in.ordering_keys[j];
        std::string msg_id = delivery_base;
        msg_id += ':';
        msg_id += lane;
        const std::pair<const char*, const std::string*> headers[] = {
            {"Evr-Envelope", &pr.envelope}, {"Evr-Lane", &lane}, {"Evr-Ordering-Key", &key}};
        commit_publisher_.publish(prefix_ + ".deliveries." + token(lane), msg_id, headers, e.payload,
                                  deliveries[slot]);
      }
    }
    if (total > 0) {
      commit_publisher_.wait();
      expect(ins, deliveries);
    }
    bool any_event = false;
    for (std::size_t i = 0; i < ins.size(); ++i) {
      const Prepared& pr = prep[i];
      nlohmann::json ids = nlohmann::json::array();
      for (std::size_t k = pr.first; k < pr.first + pr.count; ++k) {
        if (!deliveries[k].error.empty()) {
          results[i].error = "publish delivery: " + deliveries[k].error;
          break;
        }
        ids.push_back({ins[i]->lanes[k - pr.first], deliveries[k].seq});
      }
      if (!results[i].error.empty()) continue;
      const std::string names = ids.dump();
      const event::Event& e = *ins[i]->event;
      any_event = true;
      const std::pair<const char*, const std::string*> headers[] = {
          {"Evr-Envelope", &pr.envelope}, {"Evr-Lanes", &pr.lanes}, {"Evr-Deliveries", &names}};
      commit_publisher_.publish(ops().event_subject(e), pr.base, headers, e.payload, events[i]);
    }
    if (any_event) commit_publisher_.wait();
    for (std::size_t i = 0; i < ins.size(); ++i) {
      CommitResult& r = results[i];
      if (!r.error.empty()) continue;
      if (!events[i].error.empty()) {
        r.error = "publish: " + events[i].error;
        continue;
      }
      const event::Event& e = *ins[i]->event;
      r.status = events[i].duplicate ? CommitResult::Status::duplicate : CommitResult::Status::accepted;
      r.event_id = events[i].duplicate ? first_event_id(events[i].seq).value_or(e.id) : e.id;
      r.lanes_to_read = std::move(ins[i]->lanes);
    }
    return results;
  }

  // After a pass's delivery acks (writer thread): each new delivery's sequence, as expected on its lane.
  void expect(const std::vector<Ingest*>& ins, const std::vector<jetstream::AsyncPublisher::Ack>& acks) {
    std::lock_guard lk(expected_mu_);
    std::size_t slot = 0;
    for (const Ingest* in : ins) {
      for (const auto& lane : in->lanes) {
        const auto& a = acks[slot++];
        if (!a.error.empty() || a.duplicate) continue;
        auto& e = expected_[lane];
        if (a.seq <= e.seen) continue;
        e.seqs.push_back(a.seq);  // in commit order, so ascending
        // Bounded whatever the backlog: beyond a fetch's largest batch the count changes nothing.
        if (e.seqs.size() > kMaxExpected) e.seqs.pop_front();
      }
    }
  }

  // Reader thread: how many of this instance's deliveries to `lane` no fetch has brought yet, and the
  // newest of them.
  std::pair<std::size_t, uint64_t> expected_now(const std::string& lane) {
    std::lock_guard lk(expected_mu_);
    auto it = expected_.find(lane);
    if (it == expected_.end() || it->second.seqs.empty()) return {0, 0};
    return {it->second.seqs.size(), it->second.seqs.back()};
  }

  // Reader thread, after a fetch: deliveries up to `newest` were handed out (here or, the older ones, to
  // another instance), and those up to `given_up` are not waited for any more (a fetch for them came back
  // short: another instance has them, or a later poll brings them). True when nothing expected is left
  // (deliveries committed during the fetch are).
  bool seen(const std::string& lane, uint64_t newest, uint64_t given_up) {
    std::lock_guard lk(expected_mu_);
    auto it = expected_.find(lane);
    if (it == expected_.end()) return true;
    auto& e = it->second;
    e.seen = std::max({e.seen, newest, given_up});
    while (!e.seqs.empty() && e.seqs.front() <= e.seen) e.seqs.pop_front();
    return e.seqs.empty();
  }

  // The evrouter id of the event stored at `seq` (a duplicate's original).
  std::optional<std::string> first_event_id(uint64_t seq) {
    natsMsg* m = nullptr;
    jsErrCode code{};
    if (js_GetMsg(&m, js_, events_stream_.c_str(), seq, nullptr, &code) != NATS_OK) return std::nullopt;
    std::optional<std::string> id;
    const char* env = nullptr;
    if (natsMsgHeader_Get(m, "Evr-Envelope", &env) == NATS_OK && env) {
      auto j = nlohmann::json::parse(env, nullptr, false);
      if (j.is_object()) id = j.value("id", "");
    }
    natsMsg_Destroy(m);
    return id;
  }

  // The lane's durable consumer, created or brought to this instance's settings: its ack wait and its
  // MaxAckPending = the lane's cluster-wide cap (cap_lanes), the most deliveries all instances together
  // may hold unsettled, which bounds the lane's requests in flight across the cluster.
  void ensure_consumer(const std::string& lane) {
    const std::string durable = "evr-" + token(lane);
    const std::string subject = prefix_ + ".deliveries." + token(lane);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.FilterSubject = subject.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ack_wait).count();
    cc.MaxDeliver = -1;
    cc.MaxAckPending = -1;
    {
      std::lock_guard lk(caps_mu_);
      if (auto it = caps_.find(lane); it != caps_.end()) cc.MaxAckPending = std::max(1, it->second);
    }
    jsConsumerInfo* ci = nullptr;
    jsErrCode code{};
    natsStatus s = js_AddConsumer(&ci, js_, deliveries_stream_.c_str(), &cc, nullptr, &code);
    if (s != NATS_OK) {
      // It exists with other settings (an older cap, another instance's reload): bring it to ours.
      code = {};
      s = js_UpdateConsumer(&ci, js_, deliveries_stream_.c_str(), &cc, nullptr, &code);
    }
    check(s, "consumer " + durable, code);
    jsConsumerInfo_Destroy(ci);
  }

  natsSubscription* subscription(const std::string& lane) {
    if (auto it = subs_.find(lane); it != subs_.end()) return it->second;
    const std::string durable = "evr-" + token(lane);
    const std::string subject = prefix_ + ".deliveries." + token(lane);
    // The consumer is created here and bound below, so that closing the subscription never deletes it.
    ensure_consumer(lane);
    jsErrCode code{};
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = deliveries_stream_.c_str();
    so.Consumer = durable.c_str();
    so.ManualAck = true;
    natsSubscription* sub = nullptr;
    code = {};
    check(js_PullSubscribe(&sub, reader_js_, subject.c_str(), durable.c_str(), nullptr, &so, &code),
          "subscribe " + durable, code);
    subs_.emplace(lane, sub);
    return sub;
  }

  Due fetch(const std::string& lane, int64_t now_ms, std::size_t limit,
            const std::unordered_set<int64_t>& exclude) {
    Due due;
    due.next_due_ms = now_ms + kPollMs;
    if (limit == 0) return due;
    if (!reading()) {
      due.next_due_ms = now_ms + 1000;
      return due;
    }
    natsSubscription* sub = nullptr;
    try {
      sub = subscription(lane);
    } catch (const std::exception& ex) {
      log::warn("store: cannot read a lane", {{"lane", lane}, {"error", ex.what()}});
      due.next_due_ms = now_ms + 1000;
      return due;
    }
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    std::size_t batch = std::min<std::size_t>(limit, 256);
    bool capped = false;
    bool capped_lane = false;
    {
      // A capped lane holds at most its share of the cap here (cap / live instances, rounded up), so that
      // one instance (sending at its share of the rate limit) does not take every place while the others
      // could send too. The server would also refuse a batch above the consumer's MaxAckPending.
      std::lock_guard lk(caps_mu_);
      if (auto it = caps_.find(lane); it != caps_.end()) {
        capped_lane = true;
        const std::size_t cap = static_cast<std::size_t>(std::max(1, it->second));
        const std::size_t live = static_cast<std::size_t>(std::max(1, live_.load()));
        const std::size_t share = (cap + live - 1) / live;
        std::size_t held = 0;
        {
          std::lock_guard hk(held_mu_);
          for (const auto& [_, h] : held_) held += h.lane == lane ? 1 : 0;
        }
        const std::size_t room = share > held ? share - held : 0;
        capped = room < batch;
        batch = std::min(batch, room);
      }
    }
    if (batch == 0) {
      due.capped = true;  // read again once one of this lane's deliveries is settled here
      return due;
    }
    // Deliveries this instance committed to the lane and no fetch has brought yet: ask for that many, so
    // that the fetch comes back as soon as they are in, rather than when the batch is full or the wait over.
    const auto [expected, expected_newest] = expected_now(lane);
    if (expected > 0) batch = std::min(batch, expected);
    req.Batch = static_cast<int>(batch);
    // A short wait rather than no_wait: the server answers no_wait requests from its pending count, which
    // leaves out messages that are due for redelivery (nak'ed with a delay, or handed back).
    req.Expires = kFetchWaitMs * 1'000'000;
    natsMsgList list{};
    natsStatus s = natsSubscription_FetchRequest(&list, sub, &req);
    uint64_t newest = 0;  // the newest stream sequence handed out here for the first time
    if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND) {
      log::warn("store: fetch failed", {{"lane", lane}, {"error", status_text(s)}});
      due.next_due_ms = now_ms + 1000;
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      list.Msgs[i] = nullptr;
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        natsMsg_Destroy(m);
        continue;
      }
      const auto id = ops().delivery_id(m, static_cast<int64_t>(meta->Sequence.Stream));
      const auto delivered = static_cast<int>(meta->NumDelivered);
      if (delivered == 1) newest = std::max(newest, meta->Sequence.Stream);
      const int64_t stored_ms = meta->Timestamp / 1'000'000;
      // Pending on the consumer behind this one: more than the cap let through.
      if (capped && i == list.Count - 1)
        due.capped = meta->NumPending > 0 || list.Count == static_cast<int>(batch);
      jsMsgMetaData_Destroy(meta);
      if (exclude.count(id) != 0) {
        // The lane still counts this delivery as its own. Held here: keep the newest handle (acknowledgements
        // go through it). Not held: its outcome was settled here and a replay of it (same id) came back
        // before the lane heard of the settlement; held, no lane would ever send it (and keep_held would
        // keep it from JetStream's redelivery), so it goes back for a moment instead, for a fetch issued
        // once the lane knows.
        if (!hold(id, m, lane, false)) {
          natsMsg_NakWithDelay(m, kPollMs, nullptr);
          natsMsg_Destroy(m);
        }
        continue;
      }
      // Everything is read from the message before it is held: from then on the marker thread may use it
      // (natsMsg_InProgress), and reading its headers the first time writes to it.
      const char* env = nullptr;
      natsMsgHeader_Get(m, "Evr-Envelope", &env);
      auto j = nlohmann::json::parse(env ? env : "", nullptr, false);
      if (!j.is_object()) {
        log::error("store: a delivery message without a readable envelope is terminated", {{"lane", lane}});
        natsMsg_Term(m, nullptr);
        natsMsg_Destroy(m);
        if (natsMsg* older = release(id)) natsMsg_Destroy(older);
        continue;
      }
      Delivery d;
      d.id = id;
      d.lane = lane;
      d.created_ms = stored_ms;
      d.next_attempt_ms = now_ms;
      d.event = event_from(j, natsMsg_GetData(m), natsMsg_GetDataLength(m));
      // Attempts: what this process recorded, else JetStream's delivery count (which also counts hand-outs
      // that ended without an attempt, e.g. a shutdown).
      bool known = false;
      {
        std::lock_guard lk(history_mu_);
        auto it = recorded_.find(id);
        known = it != recorded_.end();
        if (known) d.attempts = it->second;
      }
      // Else from the journal (persisted: also after a restart or on another instance); replay fields.
      ops().fill(m, d, delivered, known);
      const char* key = nullptr;
      if (natsMsgHeader_Get(m, "Evr-Ordering-Key", &key) == NATS_OK && key && *key) d.ordering_key = key;
      hold(id, m, lane, true);
      due.deliveries.push_back(std::move(d));
    }
    const bool short_fetch = static_cast<std::size_t>(list.Count) < batch;
    natsMsgList_Destroy(&list);
    // More of this instance's deliveries are on their way (committed during this fetch, or not all
    // brought by it): read again at once.
    if (!seen(lane, newest, short_fetch ? expected_newest : 0)) {
      due.next_due_ms = now_ms;
      return due;
    }
    // A capped lane polls sooner: its fetch can come back empty while places are being freed (acks in
    // flight, other instances settling), with deliveries waiting behind them.
    if (due.deliveries.empty())
      due.next_due_ms = std::max(*due.next_due_ms, now_ms + (capped_lane ? kPollMs : kIdlePollMs));
    return due;
  }

  // On the reader thread: the outcomes recorded since its last pass, settled together (settle_all) up to
  // kPipelinedOutcomes at a time. Each is answered (done) as soon as its delivery is settled.
  void drain_outcomes() {
    for (;;) {
      std::vector<QueuedOutcome> batch =
          take_queued(outcomes_mu_, outcomes_, settle_posted_, kPipelinedOutcomes);
      if (batch.empty()) return;
      settle_all(batch);
    }
  }

  // Each outcome is appended to its delivery's journal (every entry of the batch published at once), then
  // its delivery is settled. delivered → ack (the message leaves the work queue) right away: the acks are
  // sent without waiting for an answer each and confirmed by one round trip for the batch, and these
  // outcomes are answered then, without waiting for their journal entries' PubAcks (checked on later passes:
  // reap_journal). The journal records what was sent, and an entry that fails was never a reason to keep a
  // delivered message (it is logged either way); waiting cost every lane a JetStream write per
  // fetch-send-settle cycle. retry → NAK with the delay, dead → the dead letter, then terminated: both only
  // once the journal holds the attempt, since the next hand-out (on any instance) reads its attempt count
  // from there. An ack lost with a NATS node makes JetStream hand the delivery out again after ack_wait (at
  // least once).
  void settle_all(std::vector<QueuedOutcome>& batch) {
    reap_journal(false);
    struct Settling {
      natsMsg* msg = nullptr;  // null: not held here
      std::string lane;
    };
    std::vector<Settling> held(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Outcome& o = batch[i].outcome;
      {
        std::lock_guard lk(history_mu_);
        history_[o.delivery_id].push_back(o.attempt);
        recorded_[o.delivery_id] = o.attempts;
      }
      if (natsMsg* m = release(o.delivery_id, &held[i].lane)) {
        held[i].msg = m;
      } else {
        log::warn("store: outcome of a delivery not held; JetStream hands it out again",
                  {{"delivery_id", std::to_string(o.delivery_id)}});
        continue;
      }
      const jetstream::JournalEntry entry = ops().journal_entry(o, held[i].lane, held[i].msg);
      Journaled& j = journaled_.emplace_back();  // a deque: its address stays while others are added
      j.lane = held[i].lane;
      settle_publisher_.publish(entry.subject, {}, {}, entry.body, j.ack);
    }

    // Delivered: acked now (each sent at once on the reader's connection) and answered.
    std::vector<bool> settled(batch.size(), false);
    bool later = false;  // retries or dead letters in the batch
    for (std::size_t i = 0; i < batch.size(); ++i) {
      natsMsg* m = held[i].msg;
      const Outcome& o = batch[i].outcome;
      if (!m || o.kind != Outcome::Kind::delivered) {
        later = later || m != nullptr;
        continue;
      }
      if (natsStatus s = natsMsg_Ack(m, nullptr); s != NATS_OK)
        log::warn("store: acknowledgement failed", {{"lane", held[i].lane}, {"error", status_text(s)}});
      ++delivered_;
      forget(o.delivery_id);
      natsMsg_Destroy(m);
      held[i].msg = nullptr;
      settled[i] = true;
    }
    // One round trip for the batch: once the server answers, it has taken the acks (whoever reads the
    // queue next sees them settled).
    if (std::find(settled.begin(), settled.end(), true) != settled.end()) {
      if (natsStatus s = natsConnection_FlushTimeout(reader_nc_, timeout_ms()); s != NATS_OK)
        log::warn("store: acknowledgements not confirmed sent", {{"error", status_text(s)}});
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (settled[i] || !later) batch[i].done();
    }
    if (!later) return;

    // Retries and dead letters: once their journal entries are in.
    reap_journal(true);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      natsMsg* m = held[i].msg;
      if (!m) continue;
      const Outcome& o = batch[i].outcome;
      const std::string& lane = held[i].lane;
      natsStatus s = NATS_OK;
      if (o.kind == Outcome::Kind::retry) {
        s = natsMsg_NakWithDelay(m, std::max<int64_t>(0, o.next_attempt_ms - event::now_ms()), nullptr);
      } else {
        std::string error = dead_letter(m, lane, o.delivery_id);
        if (!error.empty()) {
          // Not lost: it comes back and dies again once the dead-letter stream takes it.
          log::error("store: cannot write a dead letter", {{"lane", lane}, {"error", error}});
          s = natsMsg_NakWithDelay(m, 5000, nullptr);
        } else {
          s = natsMsg_Term(m, nullptr);
          forget(o.delivery_id);
        }
      }
      if (s != NATS_OK)
        log::warn("store: acknowledgement failed", {{"lane", lane}, {"error", status_text(s)}});
      natsMsg_Destroy(m);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!settled[i]) batch[i].done();
    }
  }

  // Reader thread: journal entries whose PubAck came (all of them with `wait`, after waiting for them),
  // dropped from journaled_, a failed one logged.
  void reap_journal(bool wait) {
    if (journaled_.empty()) return;
    if (wait) settle_publisher_.wait();
    while (!journaled_.empty() && (wait || settle_publisher_.answered(journaled_.front().ack))) {
      const Journaled& j = journaled_.front();
      if (!j.ack.error.empty())
        log::warn("store: cannot write an attempt to the journal",
                  {{"lane", j.lane}, {"error", j.ack.error}});
      journaled_.pop_front();
    }
  }

  std::string dead_letter(natsMsg* m, const std::string& lane, int64_t id) {
    std::vector<Attempt> recorded;
    {
      std::lock_guard lk(history_mu_);
      recorded = history_[id];
    }
    return ops().dead_letter(m, lane, id, recorded);
  }

  void forget(int64_t id) {
    std::lock_guard lk(history_mu_);
    history_.erase(id);
    recorded_.erase(id);
  }

  // Heartbeats (the instances stream): each instance publishes to its own subject every kBeatEvery; the
  // subjects with a message younger than kInstanceTtl are the live instances, among which connections
  // share their rate limits. An instance joining others waits one beat before it sends, so that they have
  // counted it by then.
  void join_instances() {
    beat();
    if (live_.load() > 1) std::this_thread::sleep_for(kBeatEvery + std::chrono::milliseconds(200));
    beat();
  }

  void beat() {
    if (!connected()) return;  // keep the last count (docs/scaling.md#failure-modes)
    const std::string body = "{}";
    if (const auto error = publish_msg(instance_subject_, {}, {}, body, nullptr, nullptr); !error.empty()) {
      log::warn("store: heartbeat failed", {{"error", error}});
      return;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms();
    const std::string filter = prefix_ + ".instances.*";
    jo.Stream.Info.SubjectsFilter = filter.c_str();
    jsStreamInfo* si = nullptr;
    jsErrCode code{};
    if (js_GetStreamInfo(&si, js_, instances_stream_.c_str(), &jo, &code) != NATS_OK) return;
    int n = 0;
    if (si->State.Subjects) {
      for (int i = 0; i < si->State.Subjects->Count; ++i) n += si->State.Subjects->List[i].Msgs > 0 ? 1 : 0;
    }
    jsStreamInfo_Destroy(si);
    live_ = std::max(1, n);
  }

  // Closing: the others count this instance out at once rather than after kInstanceTtl.
  void leave_instances() {
    if (!connected()) return;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms();
    jo.Stream.Purge.Subject = instance_subject_.c_str();
    jsErrCode code{};
    js_PurgeStream(js_, instances_stream_.c_str(), &jo, &code);
  }

  // Reader thread: `m` becomes the held handle of delivery `id` (the newest handle: acknowledgements go
  // through it; an older one is destroyed). With `or_add` false only a delivery already held is updated.
  // True when held.
  bool hold(int64_t id, natsMsg* m, const std::string& lane, bool or_add) {
    natsMsg* older = nullptr;
    {
      std::lock_guard lk(held_mu_);
      auto it = held_.find(id);
      if (it == held_.end()) {
        if (!or_add) return false;
        held_.emplace(id, Held{m, lane});
        return true;
      }
      older = it->second.msg;
      it->second = Held{m, lane};
    }
    natsMsg_Destroy(older);
    return true;
  }

  // Reader thread: delivery `id` is no longer held; its handle (null if none) is the caller's, and its
  // lane goes to `lane` when asked.
  natsMsg* release(int64_t id, std::string* lane = nullptr) {
    std::lock_guard lk(held_mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return nullptr;
    natsMsg* m = it->second.msg;
    if (lane) *lane = std::move(it->second.lane);
    held_.erase(it);
    return m;
  }

  // Marker thread, every ack_wait / 3: deliveries the lanes still hold stay theirs. Not on the reader,
  // which can wait for JetStream longer than ack_wait (PubAcks from a NATS node going down, up to
  // `timeout`); a handle is only used here while held_mu_ shows it held.
  void keep_held() {
    std::lock_guard lk(held_mu_);
    for (auto& [_, h] : held_) natsMsg_InProgress(h.msg, nullptr);
  }

  config::Store options_;
  std::string prefix_;
  std::string events_stream_;
  std::string deliveries_stream_;
  std::string dead_stream_;
  jetstream::Names names_;
  std::unique_ptr<jetstream::Operations> ops_;
  jetstream::KvWatch watch_;
  std::string instances_stream_;
  std::string instance_subject_;                          // this instance's heartbeat subject
  std::chrono::steady_clock::time_point setup_deadline_;  // open(): how long JetStream may take to answer
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsConnection* reader_nc_ = nullptr;  // the reader's subscriptions and settle_publisher_ (connect())
  jsCtx* reader_js_ = nullptr;
  kvStore* listeners_kv_ = nullptr;
  kvStore* flows_kv_ = nullptr;
  kvStore* schemas_kv_ = nullptr;
  std::atomic<bool> open_{false};
  std::atomic<std::size_t> queued_{0};
  std::atomic<int64_t> delivered_{0};
  // Commits waiting for the writer thread's next pass (drain_commits).
  std::mutex commits_mu_;
  std::deque<QueuedCommit> commits_;
  bool drain_posted_ = false;
  // Outcomes waiting for the reader thread's next pass (drain_outcomes).
  std::mutex outcomes_mu_;
  std::deque<QueuedOutcome> outcomes_;
  bool settle_posted_ = false;
  jetstream::AsyncPublisher commit_publisher_;  // writer thread
  jetstream::AsyncPublisher settle_publisher_;  // reader thread
  std::deque<Journaled> journaled_;             // reader thread: entries sent, oldest first (reap_journal)
  Worker writer_;
  Worker reader_;
  Worker marker_;  // in-progress marks for held_ (keep_held)
  Worker beat_;
  std::atomic<int> live_{1};  // live instances (heartbeats), this one included
  std::mutex caps_mu_;
  std::map<std::string, int> caps_;  // lane → cluster-wide cap (MaxAckPending of its consumer)
  // Reader thread only.
  std::map<std::string, natsSubscription*> subs_;
  // Changed by the reader thread; read by the marker thread and fetch's cap count.
  // Per lane: the stream sequences of the deliveries this instance committed that no fetch brought yet
  // (ascending), and the newest first hand-out a fetch brought (a commit acknowledged after its delivery
  // was already fetched is not expected again).
  struct Expected {
    std::deque<uint64_t> seqs;
    uint64_t seen = 0;
  };
  std::mutex expected_mu_;
  std::unordered_map<std::string, Expected> expected_;
  std::mutex held_mu_;
  std::unordered_map<int64_t, Held> held_;
  // Attempt history and counts this process recorded (lost on restart; docs/scaling.md).
  std::mutex history_mu_;
  std::unordered_map<int64_t, std::vector<Attempt>> history_;
  std::unordered_map<int64_t, int> recorded_;
};

}  // namespace

std::unique_ptr<Store> make_jetstream_store(const config::Store& options) {
  return std::make_unique<JetStreamStore>(options);
}

}  // namespace evr::store
