#pragma once
// Envelope helpers shared by the sources.

#include <string_view>

#include "evrouter/event/event.h"
#include "evrouter/source/source.h"

namespace evr::source {

// The longest producer-given id or type kept; longer values are refused or ignored.
inline constexpr std::size_t kMaxIdLength = 128;
inline constexpr std::size_t kMaxTypeLength = 256;
inline constexpr std::size_t kMaxDomainLength = 255;

// Takes the correlation id from X-Correlation-Id, else X-Request-Id (at most 128 characters).
inline void take_correlation_id(event::Event& e, const HeaderLookup& header) {
  for (const char* name : {"X-Correlation-Id", "X-Request-Id"}) {
    const std::string_view v = header(name);
    if (!v.empty() && v.size() <= kMaxIdLength) {
      e.correlation_id = std::string(v);
      return;
    }
  }
}

}  // namespace evr::source
