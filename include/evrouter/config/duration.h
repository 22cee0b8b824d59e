#pragma once
#include <chrono>
#include <optional>
#include <string_view>

namespace evr::config {

using Millis = std::chrono::milliseconds;

// Parses "250ms", "5s", "2m", "48h", "7d" (a unit is required). Returns nullopt when malformed.
std::optional<Millis> parse_duration(std::string_view text);

}  // namespace evr::config
