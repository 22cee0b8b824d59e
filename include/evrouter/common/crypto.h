#pragma once
// Small cryptographic helpers over OpenSSL: HMAC, base64, constant-time comparison, random ids.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evr::crypto {

enum class Digest { sha256, sha1 };

// Raw (binary) HMAC of `data` under `key`.
std::string hmac(Digest digest, std::string_view key, std::string_view data);
inline std::string hmac_sha256(std::string_view key, std::string_view data) {
  return hmac(Digest::sha256, key, data);
}

// HMAC under one key whose padded forms are hashed once, here, rather than at every message: for verifying
// many messages with the same secret. mac() is safe to call from several threads at once; it allocates
// nothing per call beyond OpenSSL's two digest-context copies, and looks nothing up (HMAC() fetches the
// algorithm and builds a MAC context for every call: about as much CPU as hashing a 3 KB body).
class HmacKey {
 public:
  HmacKey(Digest digest, std::string_view key);
  ~HmacKey();
  HmacKey(HmacKey&&) noexcept;
  HmacKey& operator=(HmacKey&&) noexcept;
  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;

  // Raw (binary) HMAC of `data`; the same bytes as hmac(digest, key, data).
  std::string mac(std::string_view data) const;

 private:
  struct Pads;
  std::unique_ptr<Pads> pads_;
};

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);  // nullopt on malformed input
std::string hex_encode(std::string_view bytes);

// Compares in time that depends only on the lengths, never on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` of cryptographically random data, URL-safe base64 without padding (16 bytes -> 22 chars).
std::string random_token(std::size_t bytes = 16);
// `count` such tokens from one draw of the generator (each draw has a fixed cost: 1,000 one by one take
// ~10 ms).
std::vector<std::string> random_tokens(std::size_t count, std::size_t bytes = 16);

}  // namespace evr::crypto
