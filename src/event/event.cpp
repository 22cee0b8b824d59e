#include "evrouter/event/event.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <stdexcept>

namespace evr::event {

namespace {

// The 80 bits after the time: random once per thread, then counted up by one per id. Ids stay unique (two
// threads' sequences would have to meet within 2^80 values) and a thread's ids of one millisecond sort in
// creation order, without a call into the system's random source per event (which costs a syscall here).
// Event ids name events; they are not secrets (listener ids, which are, come from random_token()).
struct IdSequence {
  std::array<unsigned char, 10> next{};
  IdSequence() {
    if (RAND_bytes(next.data(), static_cast<int>(next.size())) != 1) {
      throw std::runtime_error("RAND_bytes failed");
    }
  }
  void take(unsigned char* out) {
    std::copy(next.begin(), next.end(), out);
    for (std::size_t i = next.size(); i-- > 0;) {
      if (++next[i] != 0) break;
    }
  }
};

}  // namespace

std::string new_event_id(int64_t now) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  // 128 bits: 48 of time then 80 random, emitted as 26 base32 digits (the first carries 3 bits).
  std::array<unsigned char, 16> bits{};
  const auto t = static_cast<uint64_t>(now) & 0xFFFFFFFFFFFFULL;
  for (std::size_t i = 0; i < 6; ++i) bits[i] = static_cast<unsigned char>(t >> (8 * (5 - i)));
  thread_local IdSequence sequence;
  sequence.take(bits.data() + 6);
  std::string out(26, '0');
  // Digit i (from the right) takes bits [5i, 5i+5) of the 128-bit big-endian value.
  for (std::size_t d = 0; d < 26; ++d) {
    unsigned v = 0;
    for (std::size_t b = 0; b < 5; ++b) {
      const std::size_t bit = 5 * d + b;  // counted from the least significant bit
      if (bit >= 128) break;
      const std::size_t byte = 15 - bit / 8;
      v |= static_cast<unsigned>((bits[byte] >> (bit % 8)) & 1U) << b;
    }
    out[25 - d] = alphabet[v];
  }
  return out;
}

std::string format_time(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

namespace {

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> parse_time(std::string_view s) {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, pos, 4, year) || !expect(s, pos, '-') || !digits(s, pos, 2, month) || !expect(s, pos, '-') ||
      !digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't')) return std::nullopt;
  ++pos;
  if (!digits(s, pos, 2, hour) || !expect(s, pos, ':') || !digits(s, pos, 2, minute) ||
      !expect(s, pos, ':') || !digits(s, pos, 2, second)) {
    return std::nullopt;
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] || (month == 2 && day == 29 && !leap) ||
      hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 3) millis = millis * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) millis *= 10;
  }
  int offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int oh = 0, om = 0;
    if (!digits(s, pos, 2, oh) || !expect(s, pos, ':') || !digits(s, pos, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t days = days_from_civil(year, month, day);
  const int64_t secs = days * 86400 + int64_t{hour} * 3600 + int64_t{minute} * 60 + std::min(second, 59) -
                       int64_t{offset_min} * 60;
  return secs * 1000 + millis;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// The envelope's members besides "detail", in the order of their bits.
constexpr std::string_view kEnvelopeMembers[] = {
    "version", "id",   "source",     "detail-type",    "time",   "resources",
    "flow",    "shop", "webhook-id", "correlation-id", "headers"};
static_assert(std::size(kEnvelopeMembers) == 11 && kAllEnvelopeMembers == (1U << 11) - 1);

}  // namespace

uint32_t envelope_member(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kEnvelopeMembers); ++i) {
    if (kEnvelopeMembers[i] == name) return 1U << i;
  }
  return 0;
}

nlohmann::json envelope(const Event& e, nlohmann::json detail, uint32_t members) {
  nlohmann::json out = nlohmann::json::object();
  auto& o = out.get_ref<nlohmann::json::object_t&>();
  const auto wanted = [members](std::size_t i) { return (members & (1U << i)) != 0; };
  if (wanted(0)) o.emplace(kEnvelopeMembers[0], "0");
  if (wanted(1)) o.emplace(kEnvelopeMembers[1], e.id);
  if (wanted(2)) o.emplace(kEnvelopeMembers[2], e.source);
  if (wanted(3)) o.emplace(kEnvelopeMembers[3], e.type);
  if (wanted(4)) o.emplace(kEnvelopeMembers[4], format_time(e.occurred_ms != 0 ? e.occurred_ms : e.time_ms));
  if (wanted(5)) o.emplace(kEnvelopeMembers[5], e.resources);
  if (wanted(6)) o.emplace(kEnvelopeMembers[6], e.flow);
  if (wanted(7)) o.emplace(kEnvelopeMembers[7], e.shop_domain);
  if (wanted(8)) o.emplace(kEnvelopeMembers[8], e.webhook_id);
  if (wanted(9)) o.emplace(kEnvelopeMembers[9], e.correlation_id);
  if (wanted(10)) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [k, v] : e.headers) headers[k] = v;  // a repeated name: its last value
    o.emplace(kEnvelopeMembers[10], std::move(headers));
  }
  o.emplace("detail", std::move(detail));
  return out;
}

}  // namespace evr::event
