#include <cctype>
#include <string_view>

#include "evrouter/http/client.h"

namespace evr::http {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool valid_reg_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  return host.front() != '.' && host.front() != '-';
}

bool valid_ipv6_literal(std::string_view host) {
  if (host.size() < 2) return false;
  for (char c : host)
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  return host.find(':') != std::string_view::npos;
}

bool valid_path(std::string_view path) {
  for (char c : path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

std::optional<Endpoint> Endpoint::parse(const std::string& uri) {
  std::string_view s(uri);
  const auto scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  Endpoint ep;
  const std::string scheme = lower(s.substr(0, scheme_end));
  if (scheme == "https") {
    ep.tls = true;
  } else if (scheme != "http") {
    return std::nullopt;
  }
  s.remove_prefix(scheme_end + 3);
  // A base URI has no query or fragment: targets are appended to its path.
  if (s.find_first_of("?#") != std::string_view::npos) return std::nullopt;

  const auto slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto host = authority.substr(1, close - 1);
    if (!valid_ipv6_literal(host)) return std::nullopt;
    ep.host = lower(host);
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    const auto host = authority.substr(0, colon);
    if (!valid_reg_name(host)) return std::nullopt;
    ep.host = lower(host);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }

  if (port.empty()) {
    ep.port = ep.tls ? 443 : 80;
  } else {
    if (port.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    ep.port = static_cast<uint16_t>(value);
  }

  if (!valid_path(path)) return std::nullopt;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  ep.base_path = std::string(path);
  return ep;
}

}  // namespace evr::http
