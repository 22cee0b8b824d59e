#pragma once
// Structured logging over spdlog. Text ("msg key=value ...") by default, JSON lines with format "json".
// Never pass a secret or a payload as a field at info level.

#include <initializer_list>
#include <string>
#include <string_view>

namespace evr::log {

enum class Level { trace, debug, info, warn, error };

struct Field {
  std::string_view key;
  std::string_view value;
};

// Configures the process-wide logger (stderr). `level` is trace|debug|info|warn|error, `format` text|json.
void setup(std::string_view level, std::string_view format);
// Changes the minimum level of the configured logger (configuration reload).
void set_level(std::string_view level);
bool enabled(Level level);
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::error, m, f);
}

}  // namespace evr::log
