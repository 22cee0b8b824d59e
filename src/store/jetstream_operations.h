#pragma once
// The JetStream store's operations (docs/scaling.md, "What is cluster-wide"): event lookup and lists,
// attempt history, dead letters (list, lookup, replay, discard). Everything is read from and written to
// JetStream, never kept in this process, so every instance sharing the streams answers the same.
// Private to the store. Thread-safe (the NATS client is): the store calls the hooks from its writer and
// reader threads, the admin API the operations from its own.

#include <nats/nats.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/store/store.h"

namespace evr::store::jetstream {

// Stream names and the subject prefix.
struct Names {
  std::string prefix;      // <S>
  std::string events;      // <S>            <S>.events.<flow>.<type>.<event id>.<webhook id>
  std::string deliveries;  // <S>_deliveries <S>.deliveries.<lane>
  std::string dead;        // <S>_dead       <S>.dead.<lane>.<flow>.<delivery id>
  std::string attempts;    // <S>_attempts   <S>.attempts.<delivery id> (the delivery's journal),
                           //                <S>.attempts.replays.<event id> (its window replays' deliveries)
};

Names names_for(const std::string& stream);

// An attempt's outcome as its message in the delivery's journal.
struct JournalEntry {
  std::string subject;
  std::string body;
};

class Operations {
 public:
  // `nc`: the connection `js` is on (window replays publish pipelined, through a context of their own).
  Operations(natsConnection* nc, jsCtx* js, Names names, int64_t timeout_ms);

  // ---- Hooks on the delivery path ----

  // The subject of an event message.
  std::string event_subject(const event::Event& e) const;
  // A delivery handed out by a consumer: its id (the stream sequence, or the original id of a replayed
  // delivery) and, from its headers, what a replay carried over. `attempts_known`: the store recorded
  // the attempts itself; else they are read from the journal when JetStream handed it out before.
  int64_t delivery_id(natsMsg* m, int64_t sequence) const;
  void fill(natsMsg* m, Delivery& d, int delivered, bool attempts_known) const;
  // An attempt's outcome as the entry to append to the delivery's journal (the store publishes a batch
  // of them at once).
  JournalEntry journal_entry(const Outcome& o, const std::string& lane, natsMsg* m) const;
  // Writes the dead letter of the held delivery `m` with its full history (`recorded`: what this process
  // saw, merged with the journal and what a replay carried). Empty on success, else the error.
  std::string dead_letter(natsMsg* m, const std::string& lane, int64_t id,
                          const std::vector<Attempt>& recorded) const;

  // ---- Operations (blocking) ----

  std::vector<Attempt> attempts(int64_t delivery_id) const;
  std::optional<EventRecord> event(const std::string& id_or_webhook_id) const;
  EventPage events(const EventQuery& query) const;
  DeadLetterPage dead_letters(const DeadLetterQuery& query) const;
  std::optional<DeadLetter> dead_letter(int64_t delivery_id) const;
  Bulk replay(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id) const;
  Bulk discard(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id) const;

  // ---- Window replay and queue ages (Store::archived, add_replay, oldest_pending) ----

  // Events received in [from_ms, to_ms), in stream order (receive order up to how long a commit can
  // wait); the keyset's sequence is the event message's.
  ArchivePage archived(const ArchiveQuery& query) const;
  // New deliveries of stored events (seq: the event message's sequence), marked as replays made at
  // `now_ms`, published together; each event's are then named under <S>.attempts.replays.<event id>.
  Bulk add_replay(const std::vector<ReplayIngest>& ingests, int64_t now_ms) const;
  // Per lane with messages in the work queue: when its oldest one was stored.
  std::map<std::string, int64_t> oldest_pending() const;

 private:
  struct Journal;
  std::optional<Journal> last_entry(int64_t id) const;
  std::vector<Attempt> history(int64_t id, const std::vector<Attempt>& carried) const;
  DeliveryInfo delivery(int64_t id, const std::string& lane, int64_t created_ms, bool with_history) const;
  std::optional<DeadLetter> from_dead(natsMsg* m, bool full) const;
  // The deliveries window replays made for an event (with their replay time), oldest first.
  std::vector<DeliveryInfo> replays_of(const std::string& event_id, bool with_history) const;
  uint64_t first_received_at(int64_t ms, uint64_t first, uint64_t last) const;
  Bulk change(const DeadLetterFilter* filter, std::optional<int64_t> delivery_id, bool replay) const;
  bool change_one(natsMsg* m, bool replay, int64_t now_ms, std::string& lane) const;
  std::string publish(const std::string& subject, const std::string& msg_id,
                      const std::vector<std::pair<const char*, std::string>>& headers, const char* data,
                      int len, uint64_t* seq = nullptr, bool* duplicate = nullptr) const;

  natsConnection* nc_;
  jsCtx* js_;
  Names names_;
  int64_t timeout_ms_;
};

}  // namespace evr::store::jetstream
