#pragma once
// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), for text that
// is stored or sent as JSON.

#include <cstddef>
#include <string>
#include <string_view>

namespace evr::utf8 {

// The length (2-4) of the well-formed multi-byte sequence at the start of `s`, whose first byte is at
// least 0x80; 0 when it is not one (a stray continuation byte, an overlong form, a surrogate, a truncated
// sequence).
inline std::size_t sequence(std::string_view s) {
  const auto at = [s](std::size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const auto cont = [](unsigned c, unsigned lo = 0x80, unsigned hi = 0xBF) { return c >= lo && c <= hi; };
  const unsigned c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(at(1), lo, hi) && cont(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(at(1), lo, hi) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  }
  return 0;
}

// Whether all of `s` is well-formed UTF-8.
inline bool valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = sequence(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `s` made well-formed, for text from outside kept and shown as JSON (a destination's answer): each byte
// that does not start a well-formed sequence becomes U+FFFD, and the result stops before `max_bytes` would
// be exceeded, at a character boundary.
inline std::string scrub(std::string_view s, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : sequence(s.substr(i));
    const std::string_view piece = n > 0 ? s.substr(i, n) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += n > 0 ? n : 1;
  }
  return out;
}

}  // namespace evr::utf8
