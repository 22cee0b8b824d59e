#include "evrouter/flow/replay.h"

#include <algorithm>
#include <set>

#include "evrouter/bus/batch.h"
#include "evrouter/pattern/selection.h"

namespace evr::flow {

std::string lane_destination(const std::string& lane) {
  const auto slash = lane.rfind('/');
  return slash == std::string::npos ? lane : lane.substr(slash + 1);
}

bool route_archived(const Flow& flow, const event::Event& e, std::vector<std::string>& lanes,
                    std::vector<std::optional<std::string>>& keys) {
  nlohmann::json detail;
  if (flow.is_bus()) {
    // As the publish API: a published source this flow takes, its whole detail.
    if (!flow.bus_sources.allows(e.source)) return false;
    detail = nlohmann::json::parse(e.payload, nullptr, false);
  } else {
    // As the listener: only what the flow's patterns and ordering keys read.
    if (!flow.subscribed(e.type)) return false;
    if (!pattern::parse_selected(e.payload, flow.detail_fields, detail)) return false;
  }
  if (!detail.is_object()) return false;
  nlohmann::json envelope = event::envelope(e, std::move(detail));
  envelope["flow"] = flow.name;
  flow.route(envelope, lanes, &keys);
  return true;
}

ReplayResult replay_window(const Flow& flow, store::Store& store, const ReplayRequest& request,
                           const std::function<void(const ReplayedPage&)>& on_page) {
  ReplayResult result;
  std::set<std::string> all_lanes;
  store::ArchiveQuery q;
  if (flow.is_bus()) {
    q.listener_id = std::string(bus::kBusListener);
  } else {
    q.flow = flow.name;
  }
  q.from_ms = request.from_ms;
  q.to_ms = request.to_ms;
  q.limit = request.page;
  std::vector<std::string> lanes;
  std::vector<std::optional<std::string>> keys;
  for (;;) {
    store::ArchivePage page = store.archived(q);
    std::vector<store::ReplayIngest> ingests;
    ReplayedPage replayed;
    for (auto& rec : page.events) {
      ++result.scanned;
      lanes.clear();
      keys.clear();
      if (!route_archived(flow, *rec.event, lanes, keys)) continue;
      keys.resize(lanes.size());
      store::ReplayIngest in;
      in.seq = rec.seq;
      for (std::size_t i = 0; i < lanes.size(); ++i) {
        if (request.destination && lane_destination(lanes[i]) != *request.destination) continue;
        // A lane taken twice (two branches to one destination cannot be: lanes are per branch) is kept once.
        if (std::find(in.lanes.begin(), in.lanes.end(), lanes[i]) != in.lanes.end()) continue;
        in.lanes.push_back(lanes[i]);
        in.ordering_keys.push_back(keys[i]);
      }
      if (in.lanes.empty()) continue;
      ++result.matched;
      if (request.dry_run) {
        result.deliveries += static_cast<int64_t>(in.lanes.size());
        all_lanes.insert(in.lanes.begin(), in.lanes.end());
        continue;
      }
      replayed.events.emplace_back(rec.event, in.lanes);
      ingests.push_back(std::move(in));
    }
    if (!ingests.empty()) {
      const store::Bulk made = store.add_replay(ingests, event::now_ms());
      result.deliveries += made.count;
      all_lanes.insert(made.lanes.begin(), made.lanes.end());
      replayed.lanes = made.lanes;
      if (on_page) on_page(replayed);
    }
    if (!page.more || page.events.empty()) break;
    const auto& last = page.events.back();
    q.after = std::make_pair(last.event->time_ms, last.seq);
  }
  result.lanes.assign(all_lanes.begin(), all_lanes.end());
  return result;
}

}  // namespace evr::flow
