#include "evrouter/bus/batch.h"

#include <algorithm>
#include <array>
#include <memory>

#include "evrouter/event/event.h"
#include "evrouter/flow/routes.h"

namespace evr::bus {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxSource = 256;
constexpr std::size_t kMaxDetailType = 256;
constexpr std::size_t kMaxId = 128;
constexpr std::size_t kMaxResources = 100;
constexpr std::size_t kMaxResource = 2048;

constexpr std::array<std::string_view, 7> kFields = {"source",    "detail-type", "detail",        "time",
                                                     "resources", "id",          "correlation_id"};

struct EntryError {
  std::string code;
  std::string message;
};

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

bool source_chars(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '/' || c == ':';
  });
}

EntryError invalid(std::string message) {
  return {"invalid_entry", std::move(message)};
}

// A string field: nullopt with `error` set when present but not a string in range.
const std::string* string_field(const json& entry, std::string_view name, std::size_t max, bool required,
                                std::optional<EntryError>& error) {
  auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) {
    if (required) error = EntryError{"missing_field", "\"" + std::string(name) + "\" is required"};
    return nullptr;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > max || !printable(it->get_ref<const std::string&>())) {
    error = invalid("\"" + std::string(name) + "\" must be a string of 1 to " + std::to_string(max) +
                    " printable characters");
    return nullptr;
  }
  return &it->get_ref<const std::string&>();
}

// Checks one entry and builds its event; `error` says why it cannot be published.
std::shared_ptr<event::Event> read_entry(const json& entry, const Key& key, int64_t received_ms,
                                         std::string_view correlation_id, json& detail,
                                         std::optional<EntryError>& error) {
  if (!entry.is_object()) {
    error = invalid("an entry must be a JSON object");
    return nullptr;
  }
  // The policy first: an entry for a source the key may not publish is refused as such, whatever else.
  const std::string* source = string_field(entry, "source", kMaxSource, true, error);
  if (error) return nullptr;
  if (!source_chars(*source)) {
    error = invalid("\"source\" may hold letters, digits and . - _ / : only");
    return nullptr;
  }
  if (!key.sources.allows(*source)) {
    error = EntryError{"forbidden_source", "key '" + key.name + "' may not publish source '" + *source + "'"};
    return nullptr;
  }
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (std::find(kFields.begin(), kFields.end(), it.key()) == kFields.end()) {
      error = invalid("unknown field \"" + it.key() +
                      "\" (expected source, detail-type, detail, time, resources, id, correlation_id)");
      return nullptr;
    }
  }
  const std::string* detail_type = string_field(entry, "detail-type", kMaxDetailType, true, error);
  if (error) return nullptr;
  auto d = entry.find("detail");
  if (d == entry.end() || d->is_null()) {
    error = EntryError{"missing_field", "\"detail\" is required"};
    return nullptr;
  }
  if (d->is_string()) {
    // PutEvents carries detail as a string of JSON; accept that spelling too.
    detail = json::parse(d->get_ref<const std::string&>(), nullptr, false);
  } else {
    detail = *d;
  }
  if (!detail.is_object()) {
    error = invalid("\"detail\" must be a JSON object (or a string holding one)");
    return nullptr;
  }
  auto e = std::make_shared<event::Event>();
  if (const std::string* t = string_field(entry, "time", 64, false, error)) {
    auto ms = event::parse_time(*t);
    if (!ms) {
      error = invalid("\"time\" must be an RFC 3339 date-time such as 2026-11-22T10:00:00Z");
      return nullptr;
    }
    e->occurred_ms = *ms;
  }
  if (error) return nullptr;
  if (auto r = entry.find("resources"); r != entry.end() && !r->is_null()) {
    if (!r->is_array() || r->size() > kMaxResources) {
      error =
          invalid("\"resources\" must be an array of at most " + std::to_string(kMaxResources) + " strings");
      return nullptr;
    }
    for (const auto& item : *r) {
      if (!item.is_string() || item.get_ref<const std::string&>().empty() ||
          item.get_ref<const std::string&>().size() > kMaxResource) {
        error = invalid("\"resources\" items must be strings of 1 to " + std::to_string(kMaxResource) +
                        " characters");
        return nullptr;
      }
      e->resources.push_back(item.get<std::string>());
    }
  }
  const std::string* id = string_field(entry, "id", kMaxId, false, error);
  if (error) return nullptr;
  const std::string* correlation = string_field(entry, "correlation_id", kMaxId, false, error);
  if (error) return nullptr;

  e->source = *source;
  e->type = *detail_type;
  e->time_ms = received_ms;
  e->id = event::new_event_id(received_ms);
  e->listener_id = std::string(kBusListener);
  if (id != nullptr) {
    e->webhook_id = *id;
    e->dedup_key = *source + " " + *id;  // sources hold no space: the key is unambiguous
  }
  if (correlation != nullptr) {
    e->correlation_id = *correlation;
  } else if (!correlation_id.empty()) {
    e->correlation_id = std::string(correlation_id);
  } else {
    e->correlation_id = e->id;
  }
  e->headers.emplace_back("X-Evrouter-Publisher", key.name);
  return e;
}

}  // namespace

std::variant<Batch, Refusal> read_batch(std::string_view body, const Key& key, int max_entries,
                                        const flow::Routes& routes, int64_t received_ms,
                                        std::string_view correlation_id) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return Refusal{400, "malformed_json", "body is not valid JSON"};
  const json* entries = nullptr;
  json single = json::array();
  if (doc.is_array()) {
    entries = &doc;
  } else if (doc.is_object() && doc.contains("entries")) {
    if (doc.size() != 1) {
      return Refusal{400, "malformed_request", "a batch is {\"entries\": [...]} with no other field"};
    }
    entries = &doc["entries"];
    if (!entries->is_array()) return Refusal{400, "malformed_request", "\"entries\" must be an array"};
  } else if (doc.is_object()) {
    single.push_back(std::move(doc));
    entries = &single;
  } else {
    return Refusal{400, "malformed_request",
                   "body must be an entry object, {\"entries\": [...]} or an array of entries"};
  }
  if (entries->empty()) return Refusal{400, "no_entries", "the request holds no entry"};
  if (entries->size() > static_cast<std::size_t>(max_entries)) {
    return Refusal{413, "too_many_entries",
                   std::to_string(entries->size()) + " entries; at most " + std::to_string(max_entries) +
                       " per request"};
  }

  Batch batch;
  batch.slots.reserve(entries->size());
  std::vector<std::size_t> candidates;  // bus flows an entry may match (Routes::bus_candidates)
  for (const auto& entry : *entries) {
    Batch::Slot slot;
    json detail;
    std::optional<EntryError> error;
    auto ev = read_entry(entry, key, received_ms, correlation_id, detail, error);
    if (!ev) {
      slot.error_code = std::move(error->code);
      slot.error_message = std::move(error->message);
      batch.slots.push_back(std::move(slot));
      continue;
    }
    store::Ingest ingest;
    ev->payload = detail.dump();
    json envelope = event::envelope(*ev, std::move(detail));
    routes.bus_candidates(envelope, candidates);
    for (const std::size_t i : candidates) {
      const flow::Flow& f = routes.flows()[i];
      if (!f.enabled || !f.bus_sources.allows(ev->source)) continue;
      envelope["flow"] = f.name;
      f.route(envelope, ingest.lanes, &ingest.ordering_keys);
    }
    ingest.event = std::move(ev);
    slot.ingest = batch.ingests.size();
    batch.ingests.push_back(std::move(ingest));
    batch.slots.push_back(std::move(slot));
  }
  return batch;
}

Answer answer(const Batch& batch, const std::vector<store::CommitResult>& results) {
  json entries = json::array();
  std::size_t failed = 0, forbidden = 0;
  for (const auto& slot : batch.slots) {
    if (!slot.error_code.empty()) {
      ++failed;
      if (slot.error_code == "forbidden_source") ++forbidden;
      entries.push_back({{"error_code", slot.error_code}, {"error_message", slot.error_message}});
      continue;
    }
    const store::CommitResult& r = results.at(slot.ingest);
    json e{{"event_id", r.event_id}};
    if (r.status == store::CommitResult::Status::duplicate) e["duplicate"] = true;
    entries.push_back(std::move(e));
  }
  json body{{"failed_entry_count", failed}, {"entries", std::move(entries)}};
  Answer a;
  if (failed < batch.slots.size()) {
    a.status = 200;
  } else if (forbidden == failed) {
    a.status = 403;
    body["error"] = "forbidden";
    body["message"] = "this key may not publish the entries' sources";
  } else {
    a.status = 400;
    body["error"] = "invalid_entries";
    body["message"] = "no entry could be published; see entries[].error_message";
  }
  a.body = body.dump();
  return a;
}

}  // namespace evr::bus
