#include "evrouter/flow/bus_index.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "evrouter/flow/routes.h"

namespace evr::flow {
namespace {

using json = nlohmann::json;
using Path = std::vector<std::string>;

// A path every branch of `flow` requires to hold one of some strings, with the union of those strings;
// none when a branch matches without a pattern (or is the default), or the branches share no such path.
// A path through "flow" is never used: the router sets the envelope's "flow" per flow before matching.
std::optional<std::pair<Path, std::set<std::string>>> filing_of(const Flow& flow) {
  if (flow.branches.empty()) return std::nullopt;
  std::map<Path, std::set<std::string>> common;
  bool first = true;
  for (const auto& b : flow.branches) {
    if (b.is_default || !b.match) return std::nullopt;
    std::map<Path, std::set<std::string>> mine;
    for (auto& r : b.match->required_strings()) {
      if (r.path.empty() || r.path.front() == "flow") continue;
      auto& values = mine[r.path];
      if (values.empty()) {
        values.insert(r.values.begin(), r.values.end());
      } else {
        // The same field required twice (e.g. in an object written twice): it must satisfy both.
        std::set<std::string> both;
        for (auto& v : r.values) {
          if (values.count(v)) both.insert(v);
        }
        values = std::move(both);
      }
    }
    if (first) {
      common = std::move(mine);
      first = false;
      continue;
    }
    for (auto it = common.begin(); it != common.end();) {
      auto m = mine.find(it->first);
      if (m == mine.end()) {
        it = common.erase(it);
      } else {
        it->second.insert(m->second.begin(), m->second.end());
        ++it;
      }
    }
  }
  if (common.empty()) return std::nullopt;
  // The path with the fewest values (the most selective), the first in order on a tie.
  auto best = std::min_element(common.begin(), common.end(), [](const auto& a, const auto& b) {
    return a.second.size() < b.second.size();
  });
  return std::make_pair(best->first, std::move(best->second));
}

// The event's plain string at `path`, or null when it cannot be read plainly: a missing field, an array
// or object, another type, or a key spelling part of the path with dots ({"detail.shop": ...}).
const std::string* plain_string(const json& envelope, const Path& path) {
  const json* at = &envelope;
  for (const auto& key : path) {
    if (!at->is_object()) return nullptr;
    const auto& members = at->get_ref<const json::object_t&>();
    const std::string dotted = key + ".";
    if (auto d = members.lower_bound(dotted); d != members.end() && d->first.starts_with(dotted))
      return nullptr;
    auto it = members.find(key);
    if (it == members.end()) return nullptr;
    at = &it->second;
  }
  return at->is_string() ? &at->get_ref<const std::string&>() : nullptr;
}

}  // namespace

BusIndex::BusIndex(const std::vector<Flow>& flows) {
  std::map<Path, std::size_t> slot;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    if (!flows[i].is_bus()) continue;
    auto filing = filing_of(flows[i]);
    if (!filing) {
      always_.push_back(i);
      continue;
    }
    auto [it, added] = slot.try_emplace(filing->first, filed_.size());
    if (added) filed_.push_back(Filed{filing->first, {}, {}});
    Filed& f = filed_[it->second];
    f.all.push_back(i);
    for (const auto& v : filing->second) f.by_value[v].push_back(i);
  }
}

void BusIndex::candidates(const json& envelope, std::vector<std::size_t>& out) const {
  out = always_;
  for (const auto& f : filed_) {
    const std::string* value = plain_string(envelope, f.path);
    if (value == nullptr) {
      out.insert(out.end(), f.all.begin(), f.all.end());
      continue;
    }
    if (auto it = f.by_value.find(*value); it != f.by_value.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }
  if (!filed_.empty()) {
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
}

}  // namespace evr::flow
