#include "evrouter/config/duration.h"

#include <cctype>
#include <cmath>
#include <limits>

namespace evr::config {
namespace {

// Reads "123" or "1.5" at text[i...]; returns false when there is no digit.
bool read_number(std::string_view text, std::size_t& i, double& value) {
  const std::size_t start = i;
  bool digits = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    ++i;
    digits = true;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    bool frac = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      frac = true;
    }
    if (!frac) return false;
    digits = true;
  }
  if (!digits) return false;
  value = std::stod(std::string(text.substr(start, i - start)));
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    double value = 0;
    if (!read_number(text, i, value)) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    double factor = 0;
    if (unit == "ms") {
      factor = 1;
    } else if (unit == "s") {
      factor = 1000;
    } else if (unit == "m") {
      factor = 60 * 1000;
    } else if (unit == "h") {
      factor = 3600 * 1000;
    } else if (unit == "d") {
      factor = 24 * 3600 * 1000;
    } else {
      return std::nullopt;
    }
    total += value * factor;
  }
  // Keep well inside int64 so later arithmetic (deadlines) cannot overflow.
  if (!std::isfinite(total) || total > 1e15) return std::nullopt;
  return Millis(static_cast<int64_t>(std::llround(total)));
}

std::optional<uint64_t> parse_byte_size(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  std::size_t i = 0;
  double value = 0;
  if (!read_number(text, i, value)) return std::nullopt;
  std::string_view unit = trim(text.substr(i));
  double factor = 0;
  if (unit.empty() || unit == "B") {
    factor = 1;
  } else if (unit == "KB" || unit == "kB") {
    factor = 1e3;
  } else if (unit == "MB") {
    factor = 1e6;
  } else if (unit == "GB") {
    factor = 1e9;
  } else if (unit == "KiB") {
    factor = 1024.0;
  } else if (unit == "MiB") {
    factor = 1024.0 * 1024;
  } else if (unit == "GiB") {
    factor = 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  const double bytes = value * factor;
  if (!std::isfinite(bytes) || bytes > 1e18) return std::nullopt;
  // A fraction of a byte makes no sense; "1.5KiB" is fine (1536), "0.5B" is not.
  if (bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms % 1000 != 0 && ms < int64_t{1000} * 60) return out + std::to_string(ms) + "ms";
  const struct {
    int64_t size;
    const char* unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : units) {
    if (ms >= u.size) {
      out += std::to_string(ms / u.size) + u.unit;
      ms %= u.size;
    }
  }
  return out;
}

}  // namespace evr::config
