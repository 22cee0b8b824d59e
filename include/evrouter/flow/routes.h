#pragma once
// Flows compiled for the hot path: listener id -> flow, patterns compiled once, branches resolved to lanes.
// A Routes value is immutable and shared; a reload builds a new one and swaps it in.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "evrouter/bus/publisher.h"
#include "evrouter/bus/source_filter.h"
#include "evrouter/config/config.h"
#include "evrouter/event/event.h"
#include "evrouter/flow/bus_index.h"
#include "evrouter/mapping/path.h"
#include "evrouter/pattern/pattern.h"
#include "evrouter/source/source.h"

namespace evr::flow {

// "<flow>/<branch>/<destination>": the name of the queue of deliveries for one destination.
std::string lane_id(const std::string& flow, const std::string& branch, const std::string& destination);

struct Branch {
  std::string name;
  std::optional<pattern::Pattern> match;  // none = every event
  bool is_default = false;                // taken only when no other branch matched
  std::vector<std::string> lanes;
  std::vector<std::optional<mapping::Path>> ordering;  // per lane: its destination's ordering_key
};

// The ordering key `path` selects in `envelope`: a string as it is, another value as compact JSON;
// nullopt when the path selects nothing or null (the delivery is then unordered).
std::optional<std::string> ordering_key(const mapping::Path& path, const nlohmann::json& envelope);

struct Flow {
  std::string name;
  bool enabled = true;
  std::string source_type;
  std::string listener_id;                       // "" for bus flows (no listener URL)
  std::shared_ptr<const source::Source> source;  // verification and envelope; null for bus flows
  bus::SourceFilter bus_sources;                 // bus flows: the published sources taken
  std::vector<std::string> topics;               // empty = all
  config::Flow::Mode mode = config::Flow::Mode::first;
  std::vector<Branch> branches;
  // What of a webhook's body the branches' patterns and the source read (the envelope's "detail"): the
  // listener parses only that (pattern::parse_selected).
  pattern::Selection detail_fields;
  // The envelope members (event::envelope_member bits) the branches' patterns and ordering keys read: the
  // listener builds only those around "detail".
  uint32_t envelope_members = event::kAllEnvelopeMembers;

  bool is_bus() const { return source_type == "bus"; }
  bool subscribed(std::string_view topic) const;
  // Appends the lanes `envelope` must be delivered to: the first matching branch (mode first) or every
  // matching branch (mode all); the default branch when no other branch matched.
  // With `keys`: appends, per lane appended, its ordering key (nullopt for unordered destinations).
  void route(const nlohmann::json& envelope, std::vector<std::string>& lanes,
             std::vector<std::optional<std::string>>* keys = nullptr) const;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class Routes {
 public:
  // Throws config::ConfigError when a flow cannot be compiled (invalid pattern, secret not set).
  // `listener_id` is asked for webhook flows only.
  static std::shared_ptr<const Routes> build(
      const config::Config& config, const std::function<std::string(const config::Flow&)>& listener_id);

  const Flow* find_listener(std::string_view listener_id) const;
  const std::vector<Flow>& flows() const { return flows_; }
  // Where producers send: <public_base_url>/hooks/<listener id>, or /v1/events for bus flows.
  std::string listener_url(const Flow& flow) const;
  // The publish API's keys; null when it is off.
  const bus::Publisher* publisher() const { return publisher_.get(); }
  // The positions in flows() of the bus flows a published event (its envelope) may match, in order.
  void bus_candidates(const nlohmann::json& envelope, std::vector<std::size_t>& out) const {
    bus_index_.candidates(envelope, out);
  }

 private:
  std::string public_base_url_;
  std::vector<Flow> flows_;
  std::shared_ptr<const bus::Publisher> publisher_;
  std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> by_listener_;
  BusIndex bus_index_;
};

}  // namespace evr::flow
