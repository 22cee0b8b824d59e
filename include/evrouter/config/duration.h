#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evr::config {

using Millis = std::chrono::milliseconds;

// Parses "250ms", "5s", "2m", "48h", "7d" (a unit is required). Returns nullopt when malformed.
// Decimals ("1.5s") and compounds ("1h30m") are accepted; the result is rounded to whole milliseconds.
std::optional<Millis> parse_duration(std::string_view text);

// Parses a byte size: a plain integer ("1048576") or a number with a unit: B, KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024), e.g. "1MiB", "512KiB", "1.5MB". Returns nullopt when malformed.
std::optional<uint64_t> parse_byte_size(std::string_view text);

// "250ms", "5s", "10m", "48h", "7d", "1h30m": the shortest exact rendering, for messages and docs.
std::string format_duration(Millis d);

}  // namespace evr::config
