#pragma once
// A destination's mapping: its input paths, body template, relative URI and header values, compiled once
// when the dispatcher starts (the loader has already checked them, with positions) and rendered for each
// delivery attempt on the dispatcher's event loop. See docs/mappings.md.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/event/event.h"
#include "evrouter/mapping/error.h"
#include "evrouter/mapping/inputs.h"
#include "evrouter/mapping/template.h"
#include "evrouter/mapping/text.h"

namespace evr::mapping {

class Mapping {
 public:
  // What one delivery sends, as far as the destination shapes it.
  struct Request {
    std::string path;                                          // relative URI (no base path)
    std::vector<std::pair<std::string, std::string>> headers;  // the destination's headers
    std::optional<std::string> body;                           // none: the payload as received
  };

  // nullopt when the destination maps nothing: no input_template and no {name} in its path or headers, so
  // requests are built without looking into the event. Throws MappingError saying which part is wrong.
  static std::optional<Mapping> compile(const config::Destination& destination);

  // Renders the request parts for one delivery. False (with `error` set) when it cannot be sent as
  // configured: a variable of the path has no value (the request would go to the wrong resource).
  bool render(const event::Event& event, int64_t delivery_id, Request& out, std::string& error) const;

 private:
  Inputs inputs_;
  std::optional<Template> body_;
  Text path_;
  std::vector<std::pair<std::string, Text>> headers_;
};

// The conversion an input path asks for, in the mapping's terms.
Inputs::As convert_as(config::InputPath::As as);

}  // namespace evr::mapping
