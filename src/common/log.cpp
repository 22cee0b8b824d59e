#include "evrouter/common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace evr::log {
namespace {

std::atomic<bool> g_json{false};
std::atomic<int> g_level{static_cast<int>(Level::info)};

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::trace:
      return spdlog::level::trace;
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::trace:
      return "trace";
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

Level parse_level(std::string_view level) {
  if (level == "trace") return Level::trace;
  if (level == "debug") return Level::debug;
  if (level == "warn") return Level::warn;
  if (level == "error") return Level::error;
  return Level::info;
}

}  // namespace

void setup(std::string_view level, std::string_view format) {
  const Level l = parse_level(level);
  g_level = static_cast<int>(l);
  g_json = format == "json";
  auto logger = spdlog::stderr_logger_mt("evrouter");
  if (g_json) {
    logger->set_pattern("%v");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(to_spd(l));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void set_level(std::string_view level) {
  const Level l = parse_level(level);
  g_level = static_cast<int>(l);
  if (auto* logger = spdlog::default_logger_raw()) logger->set_level(to_spd(l));
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line;
  if (g_json) {
    nlohmann::json j;
    j["ts"] = iso_now();
    j["level"] = level_name(level);
    j["msg"] = message;
    for (const auto& f : fields) j[std::string(f.key)] = f.value;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line.reserve(message.size() + fields.size() * 24);
    line.append(message);
    for (const auto& f : fields) {
      line.push_back(' ');
      line.append(f.key);
      line.push_back('=');
      if (needs_quotes(f.value)) {
        line.append(nlohmann::json(f.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        line.append(f.value);
      }
    }
  }
  spdlog::default_logger_raw()->log(to_spd(level), "{}", line);
}

}  // namespace evr::log
