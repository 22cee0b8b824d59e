#include "evrouter/config/yaml_json.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <regex>
#include <stdexcept>

namespace evr::config {
namespace {

bool all_of(std::string_view s, int (*pred)(int)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

int is_octal(int c) {
  return c >= '0' && c <= '7';
}

// An unsigned magnitude in `base`; nullopt on overflow.
std::optional<uint64_t> parse_magnitude(std::string_view digits, int base) {
  uint64_t v = 0;
  for (char c : digits) {
    const int d = std::isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      return std::nullopt;
    }
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return v;
}

// Integers: non-negative ones become unsigned, as nlohmann's JSON parser does; too large -> double.
nlohmann::json integer(bool negative, std::string_view digits, int base) {
  const auto mag = parse_magnitude(digits, base);
  if (!mag) {
    const double d = std::stod(std::string(digits));  // only decimal can be that long in practice
    return negative ? -d : d;
  }
  if (!negative) return *mag;
  if (*mag <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return -static_cast<int64_t>(*mag);
  if (*mag == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
    return std::numeric_limits<int64_t>::min();
  }
  return -static_cast<double>(*mag);
}

std::size_t line_start_offset(std::string_view text, std::size_t offset) {
  const auto nl = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  return nl == std::string_view::npos ? 0 : nl + 1;
}

// "line:column: message" for a nlohmann parse error at byte offset `byte` (1-based, the last char read).
std::string json_error(std::string_view text, const nlohmann::json::parse_error& e) {
  std::size_t offset = e.byte == 0 ? 0 : e.byte - 1;
  if (offset > text.size()) offset = text.size();
  int line = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') ++line;
  }
  const std::size_t column = offset - line_start_offset(text, offset) + 1;
  std::string msg = e.what();
  // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." -> the tail.
  static const std::regex prefix(
      R"(^\[json\.exception\.[a-z_]+\.\d+\] (parse error( at line \d+, column \d+)?: )?)");
  msg = std::regex_replace(msg, prefix, "", std::regex_constants::format_first_only);
  return std::to_string(line) + ":" + std::to_string(column) + ": " + msg;
}

}  // namespace

nlohmann::json yaml_scalar_to_json(const std::string& text, bool plain) {
  if (!plain) return text;
  const std::string_view s = text;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;

  // Integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
  {
    std::string_view body = s;
    bool negative = false;
    if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
      negative = body[0] == '-';
      body.remove_prefix(1);
    }
    if (all_of(body, [](int c) { return std::isdigit(c); })) return integer(negative, body, 10);
    if (s.size() > 2 && s.substr(0, 2) == "0o" && all_of(s.substr(2), is_octal)) {
      return integer(false, s.substr(2), 8);
    }
    if (s.size() > 2 && s.substr(0, 2) == "0x" &&
        all_of(s.substr(2), [](int c) { return std::isxdigit(c); })) {
      return integer(false, s.substr(2), 16);
    }
  }

  // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
  static const std::regex number(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  static const std::regex inf(R"(^[-+]?\.(inf|Inf|INF)$)");
  static const std::regex nan(R"(^\.(nan|NaN|NAN)$)");
  if (std::regex_match(text, number)) return std::stod(text);
  if (std::regex_match(text, inf)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(text, nan)) return std::numeric_limits<double>::quiet_NaN();
  return text;
}

nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      // "?" = plain scalar, "!" = quoted; explicit core tags are honoured for str, else resolved as plain.
      const bool plain = tag != "!" && tag != "tag:yaml.org,2002:str";
      return yaml_scalar_to_json(node.Scalar(), plain);
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first);
        out[key] = yaml_to_json(kv.second);
      }
      return out;
    }
  }
  return nullptr;
}

nlohmann::json parse_json_or_yaml(std::string_view text) {
  std::size_t first = 0;
  while (first < text.size() && std::isspace(static_cast<unsigned char>(text[first]))) ++first;
  if (first == text.size()) throw std::invalid_argument("empty document");
  const bool looks_like_json = text[first] == '{' || text[first] == '[' || text[first] == '"';

  std::string json_problem;
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    json_problem = json_error(text, e);
  }

  try {
    const auto docs = YAML::LoadAll(std::string(text));
    if (docs.empty()) throw std::invalid_argument("empty document");
    if (docs.size() > 1)
      throw std::invalid_argument("expected one document, found " + std::to_string(docs.size()));
    return yaml_to_json(docs.front());
  } catch (const YAML::ParserException& e) {
    // Text that starts like JSON was meant as JSON: its parser's message is the helpful one.
    if (looks_like_json) throw std::invalid_argument(json_problem);
    if (e.mark.is_null()) throw std::invalid_argument(e.msg);
    throw std::invalid_argument(std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                                ": " + e.msg);
  }
}

}  // namespace evr::config
