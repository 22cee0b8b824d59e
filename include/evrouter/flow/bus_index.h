#pragma once
// Which bus flows an event published to /v1/events may match, without evaluating every flow's patterns.
// A flow whose every branch requires the same field to hold one of a few strings (e.g. each flow of a
// tenant matching its own `detail.shop`) is filed under that field's values; an event is then matched only
// against the flows filed under its own value, and against the flows that could not be filed. With 1,000
// such flows an event is matched against one flow instead of 1,000.
//
// The index only skips flows that cannot match: when the event's value at a filed path is not a plain
// string reached through objects (an array, a missing field, a key spelling a dotted path on the way),
// every flow filed under that path stays a candidate and its patterns decide.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace evr::flow {

struct Flow;

class BusIndex {
 public:
  BusIndex() = default;
  // `flows`: the routes' flows; only bus flows are indexed (by their position in `flows`).
  explicit BusIndex(const std::vector<Flow>& flows);

  // The positions of the bus flows `envelope` may match, in increasing order (the flows' order).
  void candidates(const nlohmann::json& envelope, std::vector<std::size_t>& out) const;

  // Bus flows matched against every event (not filed under a path).
  std::size_t unfiled() const { return always_.size(); }

 private:
  struct Filed {
    std::vector<std::string> path;
    std::unordered_map<std::string, std::vector<std::size_t>> by_value;
    std::vector<std::size_t> all;  // every flow filed under this path, for events it cannot be read from
  };
  std::vector<std::size_t> always_;
  std::vector<Filed> filed_;
};

}  // namespace evr::flow
