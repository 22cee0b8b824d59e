#pragma once
// Input paths: a small, documented subset of JSONPath (docs/mappings.md), compiled once at load and
// evaluated against the event envelope many times.
//
//   $                      the whole document
//   $.name  .name          an object member; name is letters, digits, _ and -   ($.detail-type works)
//   $['any key']  ["k"]    an object member by any name (\' \" \\ escape inside quotes)
//   [0]  [-1]              an array element; negative counts from the end ([-1] is the last)
//   [*]  .*                every element of an array (or every member value of an object, by key order)
//
// A path without a wildcard selects one value or nothing. A path with a wildcard always selects an array
// (of everything the rest of the path found under each element; empty when nothing). Recursive descent
// (..), filters ([?...]), scripts ([(...)]), slices ([a:b]) and unions ([a,b]) are rejected.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/mapping/error.h"

namespace evr::mapping {

class Path {
 public:
  // Throws MappingError "invalid path '<text>' at character N: <what is wrong>".
  static Path parse(std::string_view text);

  const std::string& text() const { return text_; }
  bool wildcard() const { return wildcard_; }

  // The member names the path starts with, up to its first index or wildcard step ($.detail.id: detail, id).
  std::vector<std::string> leading_members() const;

  // Without a wildcard: the selected value inside `doc`, or nullptr when the path selects nothing.
  const nlohmann::json* find(const nlohmann::json& doc) const;
  // With or without a wildcard: an array of the values selected (copies).
  nlohmann::json collect(const nlohmann::json& doc) const;

 private:
  struct Step {
    enum class Kind { member, index, every };
    Kind kind = Kind::member;
    std::string name;   // member
    int64_t index = 0;  // index
  };
  static const nlohmann::json* child(const nlohmann::json& node, const Step& step);
  void collect(std::size_t step, const nlohmann::json& node, nlohmann::json& out) const;

  std::string text_;
  std::vector<Step> steps_;
  bool wildcard_ = false;
};

}  // namespace evr::mapping
