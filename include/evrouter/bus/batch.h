#pragma once
// One request to the publish API (POST /v1/events): its entries checked one by one against the schema
// and the key's publish policy, the valid ones turned into events routed to the bus flows, and the
// PutEvents-like answer once they are committed. See docs/publish-api.md.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "evrouter/bus/publisher.h"
#include "evrouter/store/store.h"

namespace evr::flow {
class Routes;
}

namespace evr::bus {

// The listener id under which published events are deduplicated (with "<source> <id>" as the key).
inline constexpr std::string_view kBusListener = "bus";

// A refusal of the whole request.
struct Refusal {
  unsigned status = 400;
  std::string code;
  std::string message;
};

struct Batch {
  // One per entry, in request order: the index of its ingest, or why it was refused.
  struct Slot {
    std::size_t ingest = 0;
    std::string error_code;  // "" = accepted for commit
    std::string error_message;
  };
  std::vector<Slot> slots;
  std::vector<store::Ingest> ingests;
};

struct Answer {
  unsigned status = 200;
  std::string body;  // JSON
};

// Parses `body` (one entry object, {"entries": [...]} or a bare array of entries) published with `key`.
// Entries are routed to the enabled bus flows of `routes` whose sources take them.
std::variant<Batch, Refusal> read_batch(std::string_view body, const Key& key, int max_entries,
                                        const flow::Routes& routes, int64_t received_ms,
                                        std::string_view correlation_id);

// The answer once the batch's ingests are committed (`results` in the order of `batch.ingests`; empty
// when nothing was committed). Not for a failed commit: that is a 503 for the whole request.
Answer answer(const Batch& batch, const std::vector<store::CommitResult>& results);

}  // namespace evr::bus
