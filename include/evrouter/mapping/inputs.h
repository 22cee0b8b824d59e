#pragma once
// The variables one destination's mapping may use: its input paths (names bound to paths into the event
// envelope) and the predefined evrouter.* variables. Compiled once at load; per delivery, only the variables
// some template actually uses are evaluated, into Values.

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/mapping/error.h"
#include "evrouter/mapping/path.h"

namespace evr::mapping {

// The values of one delivery's variables, by slot. References into the envelope where possible (no copy).
class Values {
 public:
  // The value of a slot; null when its path selected nothing.
  const nlohmann::json& operator[](std::size_t slot) const;

 private:
  friend class Inputs;
  std::vector<const nlohmann::json*> slots_;
  std::deque<nlohmann::json> owned_;  // values computed for this delivery (wildcards, conversions, ids)
};

class Inputs {
 public:
  // How a bound value is converted: kept as is, or made a number / a string (docs/mappings.md).
  enum class As { value, number, string };

  // With the predefined variables: evrouter.event, evrouter.payload, evrouter.event-id,
  // evrouter.event-type, evrouter.flow, evrouter.delivery-id.
  Inputs();

  // A name an input path may take: letters, digits, _ and -, not empty.
  static bool valid_name(std::string_view name);

  // Binds `name` to `path`. Throws MappingError when the name is invalid or already bound.
  void bind(const std::string& name, Path path, As as = As::value);
  // The slot of `name`, marking it used; nullopt when no variable has that name.
  std::optional<std::size_t> use(std::string_view name);
  // Every variable name, predefined ones included (for messages).
  std::vector<std::string> names() const;
  // Input paths (not predefined variables) that nothing used.
  std::vector<std::string> unused() const;
  // Whether any variable was used (a mapping with none renders without looking at the event).
  bool any_used() const;

  // Evaluates the used variables against `envelope` (which must outlive `out`).
  void evaluate(const nlohmann::json& envelope, int64_t delivery_id, Values& out) const;

 private:
  struct Variable {
    std::string name;
    std::optional<Path> path;  // none: evrouter.delivery-id
    As as = As::value;
    bool predefined = false;
    bool used = false;
  };
  std::vector<Variable> vars_;
};

// A value as text, for interpolation: strings as they are, null as "", anything else as compact JSON.
void append_text(const nlohmann::json& value, std::string& out);

}  // namespace evr::mapping
