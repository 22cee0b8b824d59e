#include "evrouter/event/event.h"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace evr::event {

std::string new_event_id(int64_t now) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  // 128 bits: 48 of time then 80 random, emitted as 26 base32 digits (the first carries 3 bits).
  std::array<unsigned char, 16> bits{};
  const auto t = static_cast<uint64_t>(now) & 0xFFFFFFFFFFFFULL;
  for (std::size_t i = 0; i < 6; ++i) bits[i] = static_cast<unsigned char>(t >> (8 * (5 - i)));
  RAND_bytes(bits.data() + 6, 10);
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

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json envelope(const Event& e, nlohmann::json detail) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [k, v] : e.headers) headers[k] = v;
  return nlohmann::json{{"version", "0"},
                        {"id", e.id},
                        {"source", e.source},
                        {"detail-type", e.type},
                        {"time", format_time(e.time_ms)},
                        {"flow", e.flow},
                        {"shop", e.shop_domain},
                        {"webhook-id", e.webhook_id},
                        {"correlation-id", e.correlation_id},
                        {"headers", std::move(headers)},
                        {"detail", std::move(detail)}};
}

}  // namespace evr::event
