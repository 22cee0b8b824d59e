#include "evrouter/event/event.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace evr::event {

std::string new_event_id(int64_t now) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  unsigned char rnd[10];
  RAND_bytes(rnd, sizeof rnd);
  // 128 bits: 48 of time then 80 random, emitted as 26 base32 digits (the first carries 3 bits).
  unsigned __int128 v = static_cast<unsigned __int128>(static_cast<uint64_t>(now) & 0xFFFFFFFFFFFFULL) << 80;
  for (int i = 0; i < 10; ++i) v |= static_cast<unsigned __int128>(rnd[i]) << (8 * (9 - i));
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = alphabet[static_cast<int>(v & 31)];
    v >>= 5;
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
