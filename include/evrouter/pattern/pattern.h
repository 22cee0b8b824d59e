#pragma once
// EventBridge event patterns: compiled once at load, matched against events many times.
// Semantics follow AWS EventBridge (see docs/patterns.md and the conformance corpus in
// tests/data/eventbridge).

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "evrouter/pattern/selection.h"

namespace evr::pattern {

class PatternError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
struct Compiled;
}

class Pattern {
 public:
  // Throws PatternError with a precise message (which field, what is wrong) when the pattern is invalid.
  static Pattern compile(const nlohmann::json& pattern);

  // True when `event` (the whole event document) matches.
  bool matches(const nlohmann::json& event) const;

  // Adds the fields of the event this pattern reads to `into`: matching an event reduced to them (see
  // parse_selected) gives the same answer as matching the whole event.
  void select(Selection& into) const;

  // A field the pattern requires to hold one of a few strings, found without evaluating it: `path` (keys
  // from the top of the event) reaches a field whose every alternative is an exact string. An event whose
  // value there is a plain string (reached through objects only, no key spelling a dotted path on the way)
  // that is not among `values` does not match. Fields under "$or" are not reported.
  struct RequiredStrings {
    std::vector<std::string> path;
    std::vector<std::string> values;
  };
  std::vector<RequiredStrings> required_strings() const;

 private:
  explicit Pattern(std::shared_ptr<const detail::Compiled> c) : compiled_(std::move(c)) {}
  std::shared_ptr<const detail::Compiled> compiled_;
};

}  // namespace evr::pattern
