#include "pattern/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <stdexcept>
#include <string>

namespace evr::pattern {
namespace {

// Parses an address of either family into 16 bytes (IPv4 uses the first 4); returns false if neither.
bool parse_address(std::string_view text, bool& v6, std::array<uint8_t, 16>& out) {
  if (text.empty() || text.size() > 45) return false;
  const std::string s(text);
  out.fill(0);
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

bool prefix_equal(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, unsigned bits) {
  const unsigned whole = bits / 8;
  for (unsigned i = 0; i < whole; ++i) {
    if (a[i] != b[i]) return false;
  }
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Cidr Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos) {
    throw std::invalid_argument("malformed CIDR \"" + std::string(text) + "\": exactly one '/' is required");
  }
  const auto addr = text.substr(0, slash);
  const auto bits_text = text.substr(slash + 1);
  unsigned bits = 0;
  const auto [end, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
  if (bits_text.empty() || ec != std::errc{} || end != bits_text.data() + bits_text.size()) {
    throw std::invalid_argument("malformed CIDR \"" + std::string(text) + "\": mask bits must be an integer");
  }
  Cidr c;
  if (!parse_address(addr, c.v6_, c.net_)) {
    throw std::invalid_argument("invalid IP address \"" + std::string(addr) + "\"");
  }
  const unsigned max = c.v6_ ? 128 : 32;
  if (bits > max) {
    throw std::invalid_argument(std::string(c.v6_ ? "IPv6" : "IPv4") + " mask bits must be at most " +
                                std::to_string(max));
  }
  c.bits_ = bits;
  return c;
}

bool Cidr::contains(std::string_view address) const {
  bool v6 = false;
  std::array<uint8_t, 16> a{};
  if (!parse_address(address, v6, a) || v6 != v6_) return false;
  return prefix_equal(a, net_, bits_);
}

}  // namespace evr::pattern
