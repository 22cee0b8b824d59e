#pragma once
// EventBridge `cidr` operand: an IPv4 or IPv6 network ("10.0.0.0/24", "2001:db8::/32") that string
// values holding an IP address of the same family are tested against.

#include <array>
#include <cstdint>
#include <string_view>

namespace evr::pattern {

class Cidr {
 public:
  // Throws std::invalid_argument saying what is malformed.
  static Cidr parse(std::string_view text);

  // True when `address` is an IP address of the network's family inside the network.
  bool contains(std::string_view address) const;

 private:
  bool v6_ = false;
  unsigned bits_ = 0;
  std::array<uint8_t, 16> net_{};
};

}  // namespace evr::pattern
