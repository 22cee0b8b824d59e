#include "store/jetstream_operations.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include "store/jetstream_codec.h"
#include "store/jetstream_publisher.h"

namespace evr::store::jetstream {
namespace {

// Rows a page holds at most.
constexpr std::size_t kMaxLimit = 1000;
// A list page stops after this many reads and answers what it found with a cursor to go on from.
constexpr std::size_t kScanBudget = 5000;
// Sequences a list reads per window: the first, the largest after windows with matches, the largest.
constexpr uint64_t kFirstWindow = 64;
constexpr uint64_t kDenseWindow = 4096;
constexpr uint64_t kSparseWindow = 65536;
// JetStream's "no message" error code.
constexpr int kNoMessage = 10037;

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using Msg = std::unique_ptr<natsMsg, MsgDeleter>;

int64_t to_int(const std::string& s, int64_t fallback = 0) {
  int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() ? v : fallback;
}

int64_t msg_time_ms(natsMsg* m) {
  return natsMsg_GetTime(m) / 1'000'000;
}

std::vector<Attempt> attempts_from(const std::string& text) {
  std::vector<Attempt> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& a : j) out.push_back(attempt_from(a));
  return out;
}

nlohmann::json attempts_json(const std::vector<Attempt>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : v) out.push_back(attempt_json(a));
  return out;
}

// The attempts of several sources as one history, by number (the first seen of a number wins).
void merge_into(std::map<int, Attempt>& by_number, const std::vector<Attempt>& v) {
  for (const auto& a : v) {
    if (a.number > 0) by_number.emplace(a.number, a);
  }
}

// JSON text; text from outside (response bodies cut at 1 KB) may not be valid UTF-8: replaced, never thrown.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::size_t clamp_limit(std::size_t limit) {
  return limit == 0 ? 50 : std::min(limit, kMaxLimit);
}

const char* outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::delivered:
      return "delivered";
    case Outcome::Kind::retry:
      return "retry";
    case Outcome::Kind::dead:
      return "dead";
  }
  return "retry";
}

// The time a consumer-delivered message was stored, in ms (0 when unknown).
int64_t stored_ms(natsMsg* m) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m) != NATS_OK) return 0;
  const int64_t t = meta->Timestamp / 1'000'000;
  jsMsgMetaData_Destroy(meta);
  return t;
}

std::string token_of(int64_t id) {
  return std::to_string(id);
}

}  // namespace

// The last entry of a delivery's journal.
struct Operations::Journal {
  std::string kind;     // attempt, replayed, discarded
  std::string outcome;  // attempt: delivered, retry, dead
  std::string lane;
  std::string event_id;
  int attempts = 0;
  int replays = 0;
  int64_t replayed_ms = 0;
  int64_t next_ms = 0;
  int64_t created_ms = 0;
  int64_t at_ms = 0;  // when it was written
  std::string error;
};

Names names_for(const std::string& stream) {
  return {stream, stream, stream + "_deliveries", stream + "_dead", stream + "_attempts"};
}

Operations::Operations(natsConnection* nc, jsCtx* js, Names names, int64_t timeout_ms)
    : nc_(nc), js_(js), names_(std::move(names)), timeout_ms_(timeout_ms) {}

namespace {

void check(natsStatus s, const std::string& what, jsErrCode code = static_cast<jsErrCode>(0)) {
  if (s != NATS_OK) throw std::runtime_error("store: " + what + ": " + status_text(s, code));
}

// The last message on `subject` (wildcards allowed) of `stream`, none when there is none.
Msg last_on(jsCtx* js, const std::string& stream, const std::string& subject) {
  natsMsg* m = nullptr;
  jsErrCode code{};
  natsStatus s = js_GetLastMsg(&m, js, stream.c_str(), subject.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == kNoMessage) return nullptr;
  check(s, "get last message of " + subject, code);
  return Msg(m);
}

// The first message on `subject` at or after sequence `from` (a direct get), none when there is none.
Msg next_on(jsCtx* js, const std::string& stream, const std::string& subject, uint64_t from) {
  jsDirectGetMsgOptions o;
  jsDirectGetMsgOptions_Init(&o);
  o.Sequence = std::max<uint64_t>(1, from);
  o.NextBySubject = subject.c_str();
  natsMsg* m = nullptr;
  natsStatus s = js_DirectGetMsg(&m, js, stream.c_str(), nullptr, &o);
  if (s == NATS_NOT_FOUND) return nullptr;
  check(s, "read " + stream);
  return Msg(m);
}

// Every message on `subject` (no wildcards) of `stream`, oldest first, whose body is a JSON object.
template <typename Visit>
void each_object_on(jsCtx* js, const std::string& stream, const std::string& subject, Visit visit) {
  for (uint64_t seq = 1;;) {
    Msg m = next_on(js, stream, subject, seq);
    if (!m) return;
    seq = natsMsg_GetSequence(m.get()) + 1;
    auto j = nlohmann::json::parse(natsMsg_GetData(m.get()),
                                   natsMsg_GetData(m.get()) + natsMsg_GetDataLength(m.get()), nullptr, false);
    if (j.is_object()) visit(j);
  }
}

Msg at_seq(jsCtx* js, const std::string& stream, uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode code{};
  natsStatus s = js_GetMsg(&m, js, stream.c_str(), seq, nullptr, &code);
  if (s == NATS_NOT_FOUND || code == kNoMessage) return nullptr;
  check(s, "get message of " + stream, code);
  return Msg(m);
}

struct Bounds {
  uint64_t first = 0;
  uint64_t last = 0;
};

Bounds bounds(jsCtx* js, const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode code{};
  check(js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &code), "stream info " + stream, code);
  Bounds b{si->State.FirstSeq, si->State.LastSeq};
  jsStreamInfo_Destroy(si);
  return b;
}

template <typename T>
struct Scanned {
  std::vector<std::pair<uint64_t, T>> items;  // newest first
  std::optional<std::string> next_cursor;
};

// Walks the messages of `stream` on `filter` from the newest (below the cursor) to the oldest, reading
// windows of sequences oldest first (direct gets: the server skips what the filter leaves out) and
// keeping the newest matches. `visit(msg, stop)` returns a match or none, and sets `stop` when nothing
// older can match. Memory: one page. Reads: bounded by kScanBudget, then a partial page with a cursor.
template <typename T, typename Visit>
Scanned<T> scan_newest_first(jsCtx* js, const std::string& stream, const std::string& filter,
                             const std::optional<std::string>& cursor, std::size_t limit, Visit visit) {
  limit = clamp_limit(limit);
  const Bounds b = bounds(js, stream);
  uint64_t hi = b.last;
  if (cursor) {
    uint64_t c = 0;
    const auto [p, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), c);
    if (ec != std::errc() || p != cursor->data() + cursor->size() || c == 0) {
      throw std::invalid_argument("malformed cursor");
    }
    hi = std::min(hi, c - 1);
  }
  Scanned<T> out;
  const uint64_t first = std::max<uint64_t>(1, b.first);
  uint64_t window = kFirstWindow;
  std::size_t reads = 0;
  bool older = false;
  while (hi >= first && out.items.size() <= limit && !older) {
    if (reads >= kScanBudget) {
      out.next_cursor = std::to_string(hi + 1);
      return out;
    }
    const uint64_t lo = hi - first + 1 > window ? hi - window + 1 : first;
    const std::size_t need = limit + 1 - out.items.size();
    std::deque<std::pair<uint64_t, T>> found;
    std::size_t seen = 0;
    for (uint64_t seq = lo; seq <= hi;) {
      Msg m = next_on(js, stream, filter, seq);
      ++reads;
      if (!m) break;
      const uint64_t s = natsMsg_GetSequence(m.get());
      if (s > hi) break;
      ++seen;
      bool stop = false;
      if (auto v = visit(m.get(), stop)) {
        found.emplace_back(s, std::move(*v));
        if (found.size() > need) found.pop_front();
      }
      older = older || stop;
      seq = s + 1;
    }
    for (auto it = found.rbegin(); it != found.rend(); ++it) out.items.push_back(std::move(*it));
    if (lo == first) break;
    hi = lo - 1;
    window = seen == 0 ? std::min(window * 4, kSparseWindow) : std::min(window * 2, kDenseWindow);
  }
  if (out.items.size() > limit) {
    out.items.resize(limit);
    out.next_cursor = std::to_string(out.items.back().first);
  }
  return out;
}

}  // namespace

std::string Operations::publish(const std::string& subject, const std::string& msg_id,
                                const std::vector<std::pair<const char*, std::string>>& headers,
                                const char* data, int len, uint64_t* seq, bool* duplicate) const {
  std::vector<std::pair<const char*, const std::string*>> refs;
  refs.reserve(headers.size());
  for (const auto& [name, value] : headers) refs.emplace_back(name, &value);
  return jetstream::publish(js_, timeout_ms_, subject, msg_id, refs, data, len, seq, duplicate);
}

std::string Operations::event_subject(const event::Event& e) const {
  return names_.prefix + ".events." + token(e.flow) + "." + token(e.type) + "." + token(e.id) + "." +
         token(e.webhook_id);
}

int64_t Operations::delivery_id(natsMsg* m, int64_t sequence) const {
  const int64_t original = to_int(header(m, "Evr-Delivery-Id"));
  return original > 0 ? original : sequence;
}

void Operations::fill(natsMsg* m, Delivery& d, int delivered, bool attempts_known) const {
  const int before = static_cast<int>(to_int(header(m, "Evr-Attempts-Before")));
  d.attempts_before_replay = before;
  d.replayed_ms = to_int(header(m, "Evr-Replayed-Ms"));
  d.replay = to_int(header(m, "Evr-Replay-Ms")) > 0;  // made by a window replay
  if (const int64_t created = to_int(header(m, "Evr-Created-Ms")); created > 0) d.created_ms = created;
  if (attempts_known) return;
  d.attempts = before;
  if (delivered <= 1) return;  // handed out for the first time: no attempt yet (since the replay)
  // Handed out before (another instance, or before a restart): the journal knows the attempts made.
  try {
    if (auto j = last_entry(d.id); j && j->kind == "attempt") {
      d.attempts = std::max(before, j->attempts);
      return;
    }
  } catch (const std::exception&) {
  }
  d.attempts = before + delivered - 1;
}

JournalEntry Operations::journal_entry(const Outcome& o, const std::string& lane, natsMsg* m) const {
  const auto env = nlohmann::json::parse(header(m, "Evr-Envelope"), nullptr, false);
  int64_t created = to_int(header(m, "Evr-Created-Ms"));
  if (created == 0) created = stored_ms(m);
  nlohmann::json j{{"kind", "attempt"},
                   {"outcome", outcome_name(o.kind)},
                   {"lane", lane},
                   {"event_id", env.is_object() ? env.value("id", "") : ""},
                   {"attempts", o.attempts},
                   {"next_ms", o.kind == Outcome::Kind::retry ? o.next_attempt_ms : 0},
                   {"replays", to_int(header(m, "Evr-Replays"))},
                   {"replayed_ms", to_int(header(m, "Evr-Replayed-Ms"))},
                   {"created_ms", created},
                   {"error", o.attempt.error},
                   {"attempt", attempt_json(o.attempt)}};
  return {names_.prefix + ".attempts." + token_of(o.delivery_id), dump(j)};
}

std::string Operations::dead_letter(natsMsg* m, const std::string& lane, int64_t id,
                                    const std::vector<Attempt>& recorded) const {
  std::vector<Attempt> carried = attempts_from(header(m, "Evr-Attempts"));
  carried.insert(carried.end(), recorded.begin(), recorded.end());
  std::vector<Attempt> hist;
  try {
    hist = history(id, carried);
  } catch (const std::exception& ex) {
    return ex.what();
  }
  std::string envelope = header(m, "Evr-Envelope");
  if (envelope.empty()) envelope = "{}";
  const auto env = nlohmann::json::parse(envelope, nullptr, false);
  const std::string flow = env.is_object() ? env.value("flow", "") : "";
  std::string created = header(m, "Evr-Created-Ms");
  if (created.empty()) created = std::to_string(stored_ms(m));
  const std::string replays = header(m, "Evr-Replays");
  return publish(names_.prefix + ".dead." + token(lane) + "." + token(flow) + "." + token_of(id),
                 names_.prefix + ":dead:" + token_of(id) + ":" + (replays.empty() ? "0" : replays),
                 {{"Evr-Envelope", envelope},
                  {"Evr-Lane", lane},
                  {"Evr-Ordering-Key", header(m, "Evr-Ordering-Key")},
                  {"Evr-Delivery-Id", token_of(id)},
                  {"Evr-Attempts", dump(attempts_json(hist))},
                  {"Evr-Replays", replays},
                  {"Evr-Replayed-Ms", header(m, "Evr-Replayed-Ms")},
                  {"Evr-Replay-Ms", header(m, "Evr-Replay-Ms")},
                  {"Evr-Created-Ms", created}},
                 natsMsg_GetData(m), natsMsg_GetDataLength(m));
}

std::optional<Operations::Journal> Operations::last_entry(int64_t id) const {
  Msg m = last_on(js_, names_.attempts, names_.prefix + ".attempts." + token_of(id));
  if (!m) return std::nullopt;
  auto j = nlohmann::json::parse(natsMsg_GetData(m.get()),
                                 natsMsg_GetData(m.get()) + natsMsg_GetDataLength(m.get()), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  Journal e;
  e.kind = j.value("kind", "");
  e.outcome = j.value("outcome", "");
  e.lane = j.value("lane", "");
  e.event_id = j.value("event_id", "");
  e.attempts = j.value("attempts", 0);
  e.replays = j.value("replays", 0);
  e.replayed_ms = j.value("replayed_ms", int64_t{0});
  e.next_ms = j.value("next_ms", int64_t{0});
  e.created_ms = j.value("created_ms", int64_t{0});
  e.error = j.value("error", "");
  e.at_ms = msg_time_ms(m.get());
  return e;
}

std::vector<Attempt> Operations::history(int64_t id, const std::vector<Attempt>& carried) const {
  std::map<int, Attempt> by_number;
  merge_into(by_number, carried);
  each_object_on(js_, names_.attempts, names_.prefix + ".attempts." + token_of(id),
                 [&](const nlohmann::json& j) {
                   if (auto a = j.find("attempt"); a != j.end()) merge_into(by_number, {attempt_from(*a)});
                   if (auto h = j.find("history"); h != j.end() && h->is_array()) {
                     for (const auto& a : *h) merge_into(by_number, {attempt_from(a)});
                   }
                 });
  std::vector<Attempt> out;
  out.reserve(by_number.size());
  for (auto& [_, a] : by_number) out.push_back(std::move(a));
  return out;
}

std::vector<Attempt> Operations::attempts(int64_t delivery_id) const {
  std::vector<Attempt> carried;
  if (Msg dead = last_on(js_, names_.dead, names_.prefix + ".dead.*.*." + token_of(delivery_id)))
    carried = attempts_from(header(dead.get(), "Evr-Attempts"));
  return history(delivery_id, carried);
}

DeliveryInfo Operations::delivery(int64_t id, const std::string& lane, int64_t created_ms,
                                  bool with_history) const {
  DeliveryInfo d;
  d.id = id;
  d.lane = lane;
  d.created_ms = created_ms;
  d.state = DeliveryState::pending;
  d.next_attempt_ms = created_ms;
  d.updated_ms = created_ms;
  if (auto j = last_entry(id)) {
    d.attempts = j->attempts;
    d.replays = j->replays;
    d.replayed_ms = j->replayed_ms;
    d.updated_ms = j->at_ms;
    d.last_error = j->error;
    d.next_attempt_ms = 0;
    if (j->kind == "replayed") {
      d.next_attempt_ms = j->replayed_ms;
    } else if (j->kind == "discarded") {
      d.state = DeliveryState::discarded;
    } else if (j->outcome == "delivered") {
      d.state = DeliveryState::delivered;
      d.last_error.clear();
    } else if (j->outcome == "dead") {
      d.state = DeliveryState::dead;
    } else {
      d.next_attempt_ms = j->next_ms;
    }
  }
  if (with_history) d.history = attempts(id);
  return d;
}

namespace {

struct EventMsg {
  int64_t seq = 0;
  event::EventPtr event;
  std::vector<std::pair<std::string, int64_t>> deliveries;  // lane, delivery id
};

std::optional<EventMsg> parse_event(natsMsg* m, bool payload) {
  auto env = nlohmann::json::parse(header(m, "Evr-Envelope"), nullptr, false);
  if (!env.is_object()) return std::nullopt;
  EventMsg out;
  out.seq = static_cast<int64_t>(natsMsg_GetSequence(m));
  out.event =
      payload ? event_from(env, natsMsg_GetData(m), natsMsg_GetDataLength(m)) : event_from(env, nullptr, 0);
  auto ds = nlohmann::json::parse(header(m, "Evr-Deliveries"), nullptr, false);
  if (ds.is_array()) {
    for (const auto& d : ds) {
      if (d.is_array() && d.size() == 2 && d[0].is_string() && d[1].is_number_integer())
        out.deliveries.emplace_back(d[0].get<std::string>(), d[1].get<int64_t>());
    }
  }
  return out;
}

}  // namespace

std::optional<EventRecord> Operations::event(const std::string& key) const {
  if (key.empty()) return std::nullopt;
  const std::string t = token(key);
  const std::string head = names_.prefix + ".events.*.*.";
  std::string by_id = head;  // the key as the event id
  by_id += t;
  by_id += ".*";
  std::string by_webhook_id = head;  // the key as the webhook id
  by_webhook_id += "*.";
  by_webhook_id += t;
  for (const std::string& subject : {std::move(by_id), std::move(by_webhook_id)}) {
    Msg m = last_on(js_, names_.events, subject);
    if (!m) continue;
    auto parsed = parse_event(m.get(), true);
    if (!parsed) continue;
    EventRecord r;
    r.seq = parsed->seq;
    r.event = parsed->event;
    for (const auto& [lane, id] : parsed->deliveries)
      r.deliveries.push_back(delivery(id, lane, r.event->time_ms, true));
    for (auto& d : replays_of(r.event->id, true)) r.deliveries.push_back(std::move(d));
    return r;
  }
  return std::nullopt;
}

EventPage Operations::events(const EventQuery& q) const {
  const std::string filter = names_.prefix + ".events." + (q.flow ? token(*q.flow) : "*") + "." +
                             (q.type ? token(*q.type) : "*") + ".*.*";
  auto scanned = scan_newest_first<EventRecord>(
      js_, names_.events, filter, q.cursor, q.limit,
      [&](natsMsg* m, bool& stop) -> std::optional<EventRecord> {
        if (q.time.since_ms && msg_time_ms(m) < *q.time.since_ms) stop = true;  // received before
        auto parsed = parse_event(m, false);
        if (!parsed) return std::nullopt;
        const auto& e = *parsed->event;
        if (q.time.since_ms && e.time_ms < *q.time.since_ms) return std::nullopt;
        if (q.time.until_ms && e.time_ms >= *q.time.until_ms) return std::nullopt;
        EventRecord r;
        r.seq = parsed->seq;
        r.event = parsed->event;
        for (const auto& [lane, id] : parsed->deliveries)
          r.deliveries.push_back(delivery(id, lane, e.time_ms, false));
        for (auto& d : replays_of(e.id, false)) r.deliveries.push_back(std::move(d));
        if (q.status && std::none_of(r.deliveries.begin(), r.deliveries.end(),
                                     [&](const DeliveryInfo& d) { return d.state == *q.status; })) {
          return std::nullopt;
        }
        return r;
      });
  EventPage page;
  for (auto& [_, r] : scanned.items) page.events.push_back(std::move(r));
  page.next_cursor = std::move(scanned.next_cursor);
  return page;
}

std::optional<DeadLetter> Operations::from_dead(natsMsg* m, bool full) const {
  auto env = nlohmann::json::parse(header(m, "Evr-Envelope"), nullptr, false);
  if (!env.is_object()) return std::nullopt;
  DeadLetter dl;
  dl.event =
      full ? event_from(env, natsMsg_GetData(m), natsMsg_GetDataLength(m)) : event_from(env, nullptr, 0);
  auto& d = dl.delivery;
  d.id = to_int(header(m, "Evr-Delivery-Id"));
  d.lane = header(m, "Evr-Lane");
  d.state = DeliveryState::dead;
  d.created_ms = to_int(header(m, "Evr-Created-Ms"));
  d.updated_ms = msg_time_ms(m);
  d.replays = static_cast<int>(to_int(header(m, "Evr-Replays")));
  d.replayed_ms = to_int(header(m, "Evr-Replayed-Ms"));
  auto hist = attempts_from(header(m, "Evr-Attempts"));
  if (!hist.empty()) {
    d.attempts = hist.back().number;
    d.last_error = hist.back().error;
  }
  if (full) d.history = history(d.id, hist);
  return dl;
}

DeadLetterPage Operations::dead_letters(const DeadLetterQuery& q) const {
  const auto& f = q.filter;
  const std::string filter = names_.prefix + ".dead." + (f.lane ? token(*f.lane) : "*") + "." +
                             (f.flow ? token(*f.flow) : "*") + ".*";
  auto scanned = scan_newest_first<DeadLetter>(js_, names_.dead, filter, q.cursor, q.limit,
                                               [&](natsMsg* m, bool& stop) -> std::optional<DeadLetter> {
                                                 const int64_t died = msg_time_ms(m);
                                                 if (f.time.since_ms && died < *f.time.since_ms) {
                                                   stop = true;
                                                   return std::nullopt;
                                                 }
                                                 if (f.time.until_ms && died >= *f.time.until_ms)
                                                   return std::nullopt;
                                                 return from_dead(m, false);
                                               });
  DeadLetterPage page;
  for (auto& [_, dl] : scanned.items) page.dead_letters.push_back(std::move(dl));
  page.next_cursor = std::move(scanned.next_cursor);
  return page;
}

std::optional<DeadLetter> Operations::dead_letter(int64_t id) const {
  if (id <= 0) return std::nullopt;
  if (Msg m = last_on(js_, names_.dead, names_.prefix + ".dead.*.*." + token_of(id))) {
    if (auto dl = from_dead(m.get(), true)) return dl;
  }
  // Not dead (any more): its journal says where it is; the event comes from the events stream.
  if (auto j = last_entry(id)) {
    DeadLetter dl;
    if (!j->event_id.empty()) {
      if (Msg e = last_on(js_, names_.events, names_.prefix + ".events.*.*." + token(j->event_id) + ".*")) {
        if (auto parsed = parse_event(e.get(), true)) dl.event = parsed->event;
      }
    }
    if (!dl.event) {
      auto e = std::make_shared<event::Event>();
      e->id = j->event_id;
      dl.event = std::move(e);
    }
    dl.delivery = delivery(id, j->lane, j->created_ms, true);
    return dl;
  }
  // Pending, never attempted: still in the work queue under its own sequence.
  if (Msg m = at_seq(js_, names_.deliveries, static_cast<uint64_t>(id))) {
    auto env = nlohmann::json::parse(header(m.get(), "Evr-Envelope"), nullptr, false);
    if (!env.is_object() || !header(m.get(), "Evr-Delivery-Id").empty()) return std::nullopt;
    DeadLetter dl;
    dl.event = event_from(env, natsMsg_GetData(m.get()), natsMsg_GetDataLength(m.get()));
    dl.delivery.id = id;
    dl.delivery.lane = header(m.get(), "Evr-Lane");
    dl.delivery.created_ms = dl.delivery.updated_ms = dl.delivery.next_attempt_ms = msg_time_ms(m.get());
    return dl;
  }
  return std::nullopt;
}

// Replays (or discards) one dead letter: journal entry first (so the state is right as soon as the
// delivery is back), then for a replay the delivery message again (message id per replay: a repeat is
// dropped), then the dead letter is deleted. The delete decides who did it when two instances race.
bool Operations::change_one(natsMsg* m, bool replay, int64_t now_ms, std::string& lane) const {
  const int64_t id = to_int(header(m, "Evr-Delivery-Id"));
  lane = header(m, "Evr-Lane");
  const std::string envelope = header(m, "Evr-Envelope");
  const auto env = nlohmann::json::parse(envelope, nullptr, false);
  const auto hist = attempts_from(header(m, "Evr-Attempts"));
  const int attempts = hist.empty() ? 0 : hist.back().number;
  const int replays = static_cast<int>(to_int(header(m, "Evr-Replays"))) + (replay ? 1 : 0);
  const int64_t replayed_ms = replay ? now_ms : to_int(header(m, "Evr-Replayed-Ms"));
  const std::string created = header(m, "Evr-Created-Ms");
  if (id <= 0) return false;
  nlohmann::json j{{"kind", replay ? "replayed" : "discarded"},
                   {"lane", lane},
                   {"event_id", env.is_object() ? env.value("id", "") : ""},
                   {"attempts", attempts},
                   {"replays", replays},
                   {"replayed_ms", replayed_ms},
                   {"created_ms", to_int(created)},
                   {"error", hist.empty() ? std::string() : hist.back().error},
                   {"history", attempts_json(hist)}};
  const std::string body = dump(j);
  std::string error = publish(names_.prefix + ".attempts." + token_of(id), {}, {}, body.data(),
                              static_cast<int>(body.size()));
  if (!error.empty()) throw std::runtime_error("store: journal of delivery " + token_of(id) + ": " + error);
  if (replay) {
    error = publish(names_.prefix + ".deliveries." + token(lane),
                    names_.prefix + ":replay:" + token_of(id) + ":" + std::to_string(replays),
                    {{"Evr-Envelope", envelope},
                     {"Evr-Lane", lane},
                     {"Evr-Ordering-Key", header(m, "Evr-Ordering-Key")},
                     {"Evr-Delivery-Id", token_of(id)},
                     {"Evr-Replays", std::to_string(replays)},
                     {"Evr-Replayed-Ms", std::to_string(now_ms)},
                     {"Evr-Attempts-Before", std::to_string(attempts)},
                     {"Evr-Attempts", dump(attempts_json(hist))},
                     {"Evr-Replay-Ms", header(m, "Evr-Replay-Ms")},
                     {"Evr-Created-Ms", created}},
                    natsMsg_GetData(m), natsMsg_GetDataLength(m));
    if (!error.empty()) throw std::runtime_error("store: replay of delivery " + token_of(id) + ": " + error);
  }
  jsErrCode code{};
  natsStatus s = js_DeleteMsg(js_, names_.dead.c_str(), natsMsg_GetSequence(m), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == kNoMessage) return false;  // another instance did it
  check(s, "delete dead letter " + token_of(id), code);
  return true;
}

Bulk Operations::change(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id,
                        bool replay) const {
  Bulk out;
  std::set<std::string> lanes;
  const int64_t now = event::now_ms();
  auto apply = [&](natsMsg* m) {
    std::string lane;
    if (change_one(m, replay, now, lane)) {
      ++out.count;
      lanes.insert(lane);
    }
  };
  if (delivery_id) {
    if (Msg m = last_on(js_, names_.dead, names_.prefix + ".dead.*.*." + token_of(*delivery_id)))
      apply(m.get());
  } else {
    DeadLetterFilter none;
    const auto& f = filter ? *filter : none;
    const std::string subject = names_.prefix + ".dead." + (f.lane ? token(*f.lane) : "*") + "." +
                                (f.flow ? token(*f.flow) : "*") + ".*";
    // Oldest first, one at a time, never one that died after the call began (it may be one just replayed).
    const Bounds b = bounds(js_, names_.dead);
    for (uint64_t seq = std::max<uint64_t>(1, b.first); seq <= b.last;) {
      Msg m = next_on(js_, names_.dead, subject, seq);
      if (!m) break;
      const uint64_t s = natsMsg_GetSequence(m.get());
      if (s > b.last) break;
      seq = s + 1;
      const int64_t died = msg_time_ms(m.get());
      if (f.time.since_ms && died < *f.time.since_ms) continue;
      if (f.time.until_ms && died >= *f.time.until_ms) break;
      apply(m.get());
    }
  }
  if (replay) out.lanes.assign(lanes.begin(), lanes.end());
  return out;
}

Bulk Operations::replay(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id) const {
  return change(filter, delivery_id, true);
}

Bulk Operations::discard(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id) const {
  return change(filter, delivery_id, false);
}

// ---- Window replay ----

std::vector<DeliveryInfo> Operations::replays_of(const std::string& event_id, bool with_history) const {
  std::vector<DeliveryInfo> out;
  if (event_id.empty()) return out;
  each_object_on(js_, names_.attempts, names_.prefix + ".attempts.replays." + token(event_id),
                 [&](const nlohmann::json& j) {
                   const int64_t at = j.value("replay_ms", int64_t{0});
                   const auto ds = j.find("deliveries");
                   if (ds == j.end() || !ds->is_array()) return;
                   for (const auto& d : *ds) {
                     if (!d.is_array() || d.size() != 2 || !d[0].is_string() || !d[1].is_number_integer())
                       continue;
                     out.push_back(delivery(d[1].get<int64_t>(), d[0].get<std::string>(), at, with_history));
                     out.back().replay_ms = at;
                   }
                 });
  return out;
}

// Where a walk of the events received from `ms` on starts: a binary search with direct gets (about
// log2(messages) reads) for the first sequence whose event was received at `ms` or later. Receive times
// grow with the sequence only roughly (commits from several instances, and their queues, interleave), so
// the caller asks for a margin before its window.
uint64_t Operations::first_received_at(int64_t ms, uint64_t first, uint64_t last) const {
  const std::string all = names_.prefix + ".events.>";
  uint64_t lo = first;
  uint64_t hi = last + 1;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    Msg m = next_on(js_, names_.events, all, mid);
    if (!m || natsMsg_GetSequence(m.get()) > last) {
      hi = mid;
      continue;
    }
    auto parsed = parse_event(m.get(), false);
    if (!parsed || parsed->event->time_ms >= ms) {
      hi = mid;
    } else {
      lo = natsMsg_GetSequence(m.get()) + 1;
    }
  }
  return lo;
}

ArchivePage Operations::archived(const ArchiveQuery& q) const {
  ArchivePage page;
  if (q.to_ms <= q.from_ms) return page;
  const std::size_t limit = q.limit == 0 ? 200 : std::min(q.limit, kMaxLimit);
  // A webhook flow's events are on its own subjects; the publish API's are found by their listener id.
  const std::string filter = names_.prefix + ".events." + (q.flow ? token(*q.flow) : "*") + ".*.*.*";
  const Bounds b = bounds(js_, names_.events);
  if (b.last == 0 || b.last < b.first) return page;
  // The stream holds events in the order they were stored, which is their receive order only up to the
  // time a commit waits (the writer's queue, a publish's timeout) and the clocks of the instances: the
  // walk starts that long before the window and stops that long after it.
  const int64_t margin = std::max<int64_t>(10'000, 2 * timeout_ms_);
  uint64_t seq = q.after ? q.after->second + 1
                         : first_received_at(q.from_ms - margin, std::max<uint64_t>(1, b.first), b.last);
  while (seq <= b.last) {
    Msg m = next_on(js_, names_.events, filter, seq);
    if (!m) break;
    const uint64_t s = natsMsg_GetSequence(m.get());
    if (s > b.last) break;
    seq = s + 1;
    auto parsed = parse_event(m.get(), true);
    if (!parsed) continue;
    const auto& e = *parsed->event;
    if (e.time_ms >= q.to_ms + margin) break;
    if (q.listener_id && e.listener_id != *q.listener_id) continue;
    if (e.time_ms < q.from_ms || e.time_ms >= q.to_ms) continue;
    if (page.events.size() == limit) {
      page.more = true;
      break;
    }
    EventRecord r;
    r.seq = parsed->seq;
    r.event = std::move(parsed->event);
    page.events.push_back(std::move(r));
  }
  return page;
}

// Each event's deliveries are published (pipelined: one wait for the page), then, for the event lookup,
// one message naming the ones JetStream acknowledged. A delivery that failed fails the call (the others
// stay made: they are sent like any delivery).
Bulk Operations::add_replay(const std::vector<ReplayIngest>& ingests, int64_t now_ms) const {
  struct Made {
    std::string event_id;
    std::vector<std::pair<std::string, AsyncPublisher::Ack>> deliveries;  // lane, its ack
  };
  std::deque<Made> made;  // stable addresses: the publisher writes the acks
  AsyncPublisher publisher;
  publisher.open(nc_, timeout_ms_);
  const std::string at = std::to_string(now_ms);
  for (const auto& in : ingests) {
    Msg m = at_seq(js_, names_.events, static_cast<uint64_t>(in.seq));
    if (!m) continue;  // aged out of the stream meanwhile
    const std::string envelope = header(m.get(), "Evr-Envelope");
    const auto env = nlohmann::json::parse(envelope, nullptr, false);
    if (!env.is_object()) continue;
    Made& e = made.emplace_back();
    e.event_id = env.value("id", "");
    e.deliveries.reserve(in.lanes.size());
    const std::string_view payload(natsMsg_GetData(m.get()),
                                   static_cast<std::size_t>(natsMsg_GetDataLength(m.get())));
    for (std::size_t i = 0; i < in.lanes.size(); ++i) {
      const std::string& lane = in.lanes[i];
      const std::string key = i < in.ordering_keys.size() && in.ordering_keys[i] ? *in.ordering_keys[i] : "";
      const std::pair<const char*, const std::string*> headers[] = {{"Evr-Envelope", &envelope},
                                                                    {"Evr-Lane", &lane},
                                                                    {"Evr-Ordering-Key", &key},
                                                                    {"Evr-Created-Ms", &at},
                                                                    {"Evr-Replay-Ms", &at}};
      auto& [_, ack] = e.deliveries.emplace_back(lane, AsyncPublisher::Ack{});
      publisher.publish(names_.prefix + ".deliveries." + token(lane),
                        names_.prefix + ":window:" + token(e.event_id) + ":" + token(lane) + ":" + at,
                        headers, payload, ack);
    }
  }
  publisher.wait();
  Bulk out;
  std::set<std::string> lanes;
  std::string error;
  std::deque<AsyncPublisher::Ack> named;
  for (const auto& e : made) {
    nlohmann::json ds = nlohmann::json::array();
    for (const auto& [lane, ack] : e.deliveries) {
      if (!ack.error.empty()) {
        error = ack.error;
        continue;
      }
      ds.push_back({lane, static_cast<int64_t>(ack.seq)});
      lanes.insert(lane);
      ++out.count;
    }
    if (ds.empty()) continue;
    const std::string body =
        dump({{"event_id", e.event_id}, {"replay_ms", now_ms}, {"deliveries", std::move(ds)}});
    publisher.publish(names_.prefix + ".attempts.replays." + token(e.event_id), {}, {}, body,
                      named.emplace_back());
  }
  publisher.wait();
  for (const auto& ack : named) {
    if (!ack.error.empty() && error.empty()) error = "naming the replay's deliveries: " + ack.error;
  }
  if (!error.empty()) throw std::runtime_error("store: window replay: " + error);
  out.lanes.assign(lanes.begin(), lanes.end());
  return out;
}

std::map<std::string, int64_t> Operations::oldest_pending() const {
  std::map<std::string, int64_t> out;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = timeout_ms_;
  const std::string head = names_.prefix + ".deliveries.";
  const std::string filter = head + ">";
  jo.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode code{};
  check(js_GetStreamInfo(&si, js_, names_.deliveries.c_str(), &jo, &code), "stream info", code);
  std::vector<std::string> subjects;
  const uint64_t first = si->State.FirstSeq;
  if (si->State.Subjects) {
    for (int i = 0; i < si->State.Subjects->Count; ++i) {
      const auto& sub = si->State.Subjects->List[i];
      if (sub.Msgs > 0) subjects.emplace_back(sub.Subject);
    }
  }
  jsStreamInfo_Destroy(si);
  for (const auto& subject : subjects) {
    if (subject.compare(0, head.size(), head) != 0) continue;
    // The work queue keeps a delivery until it is settled, in the order it was put there (made, or put
    // back from the dead letters): its first message is the oldest pending one.
    if (Msg m = next_on(js_, names_.deliveries, subject, first))
      out[untoken(std::string_view(subject).substr(head.size()))] = msg_time_ms(m.get());
  }
  return out;
}

}  // namespace evr::store::jetstream
