#include "evrouter/flow/routes.h"

#include <algorithm>

namespace evr::flow {

std::string lane_id(const std::string& flow, const std::string& branch, const std::string& destination) {
  std::string id;
  id.reserve(flow.size() + branch.size() + destination.size() + 2);
  id.append(flow).append("/").append(branch).append("/").append(destination);
  return id;
}

bool Flow::subscribed(std::string_view topic) const {
  if (topics.empty()) return true;
  return std::binary_search(topics.begin(), topics.end(), topic);
}

std::optional<std::string> ordering_key(const mapping::Path& path, const nlohmann::json& envelope) {
  const nlohmann::json* v = path.find(envelope);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  return v->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Flow::route(const nlohmann::json& envelope, std::vector<std::string>& lanes,
                 std::vector<std::optional<std::string>>* keys) const {
  auto take = [&](const Branch& b) {
    if (keys != nullptr) {
      // Lanes appended before without keys (another flow's route without `keys`): none.
      keys->resize(lanes.size());
      for (const auto& path : b.ordering) {
        keys->push_back(path ? ordering_key(*path, envelope) : std::nullopt);
      }
    }
    lanes.insert(lanes.end(), b.lanes.begin(), b.lanes.end());
  };
  const Branch* fallback = nullptr;
  bool matched = false;
  for (const auto& b : branches) {
    if (b.is_default) {
      fallback = &b;
      continue;
    }
    if (b.match && !b.match->matches(envelope)) continue;
    matched = true;
    take(b);
    if (mode == config::Flow::Mode::first) return;
  }
  if (!matched && fallback != nullptr) take(*fallback);
}

namespace {

// Keeps, in what the listener parses of a webhook body, the value an ordering key path reads.
void select_ordering_path(const mapping::Path& path, pattern::Selection& detail_fields) {
  const auto members = path.leading_members();
  if (members.empty()) {
    detail_fields.all = true;  // "$": the whole envelope
    return;
  }
  if (members.front() != "detail") return;  // an envelope field: always there
  if (members.size() == 1) {
    detail_fields.all = true;
    return;
  }
  pattern::Selection wanted;
  pattern::Selection* at = &wanted;
  for (std::size_t i = 1; i + 1 < members.size(); ++i) at = &at->fields[members[i]];
  at->keep(members.back());
  detail_fields.merge(wanted);
}

// The envelope members a flow reads: those its patterns name (`envelope_fields`) and those its ordering keys
// start with; every member when one of them reads the whole envelope.
uint32_t envelope_members_read(const pattern::Selection& envelope_fields,
                               const std::vector<Branch>& branches) {
  if (envelope_fields.all) return event::kAllEnvelopeMembers;
  uint32_t members = 0;
  for (const auto& [name, unused] : envelope_fields.fields) members |= event::envelope_member(name);
  for (const auto& b : branches) {
    for (const auto& path : b.ordering) {
      if (!path) continue;
      const auto leading = path->leading_members();
      if (leading.empty()) return event::kAllEnvelopeMembers;  // "$": the whole envelope
      members |= event::envelope_member(leading.front());
    }
  }
  return members;
}

}  // namespace

std::shared_ptr<const Routes> Routes::build(
    const config::Config& config, const std::function<std::string(const config::Flow&)>& listener_id) {
  auto routes = std::make_shared<Routes>();
  routes->public_base_url_ = config.server.public_base_url;
  while (!routes->public_base_url_.empty() && routes->public_base_url_.back() == '/') {
    routes->public_base_url_.pop_back();
  }
  std::vector<config::Diagnostic> problems;
  for (const auto& f : config.flows) {
    Flow flow;
    flow.name = f.name;
    flow.enabled = f.enabled;
    flow.source_type = f.source.type;
    flow.topics = f.source.topics;
    std::sort(flow.topics.begin(), flow.topics.end());
    flow.mode = f.mode;
    if (flow.is_bus()) {
      flow.bus_sources = bus::SourceFilter(f.source.sources);
    } else {
      flow.listener_id = listener_id(f);
      try {
        flow.source = source::make_source(f.source);
      } catch (const config::ConfigError& e) {
        problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
      }
    }
    for (const auto& b : f.branches) {
      Branch branch;
      branch.name = b.name;
      branch.is_default = b.is_default;
      if (b.match) {
        try {
          branch.match = pattern::Pattern::compile(*b.match);
        } catch (const pattern::PatternError& e) {
          problems.push_back({config::Diagnostic::Severity::error, b.match_where, "match", e.what()});
        }
      }
      for (const auto& d : b.destinations) {
        branch.lanes.push_back(lane_id(f.name, b.name, d.name));
        std::optional<mapping::Path> ordering;
        if (!d.ordering_key.empty()) {
          try {
            ordering = mapping::Path::parse(d.ordering_key);
          } catch (const mapping::MappingError& e) {
            problems.push_back({config::Diagnostic::Severity::error, d.where, "ordering_key", e.what()});
          }
        }
        branch.ordering.push_back(std::move(ordering));
      }
      flow.branches.push_back(std::move(branch));
    }
    pattern::Selection envelope_fields;
    for (const auto& b : flow.branches) {
      if (b.match) b.match->select(envelope_fields);
    }
    flow.envelope_members = envelope_members_read(envelope_fields, flow.branches);
    if (envelope_fields.all) {
      flow.detail_fields.all = true;
    } else if (const auto it = envelope_fields.fields.find("detail"); it != envelope_fields.fields.end()) {
      flow.detail_fields = it->second;
    }
    if (flow.source) {
      for (const auto& field : flow.source->body_fields()) flow.detail_fields.keep(field);
    }
    for (const auto& b : flow.branches) {
      for (const auto& path : b.ordering) {
        if (path && !flow.detail_fields.all) select_ordering_path(*path, flow.detail_fields);
      }
    }
    if (!flow.is_bus()) routes->by_listener_.emplace(flow.listener_id, routes->flows_.size());
    routes->flows_.push_back(std::move(flow));
  }
  try {
    routes->publisher_ = bus::Publisher::build(config.publish);
  } catch (const config::ConfigError& e) {
    problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
  }
  if (!problems.empty()) throw config::ConfigError(std::move(problems));
  routes->bus_index_ = BusIndex(routes->flows_);
  return routes;
}

const Flow* Routes::find_listener(std::string_view listener_id) const {
  auto it = by_listener_.find(listener_id);
  return it == by_listener_.end() ? nullptr : &flows_[it->second];
}

std::string Routes::listener_url(const Flow& flow) const {
  if (flow.is_bus()) return public_base_url_ + "/v1/events";
  return public_base_url_ + "/hooks/" + flow.listener_id;
}

}  // namespace evr::flow
