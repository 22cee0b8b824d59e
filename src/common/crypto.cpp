#include "evrouter/common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace evr::crypto {

namespace {

// The digest's implementation, fetched once per process (EVP_sha256() alone is fetched again at each
// EVP_DigestInit_ex, under a lock).
const EVP_MD* fetched(Digest digest) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  const EVP_MD* md = digest == Digest::sha256 ? sha256 : sha1;
  if (md == nullptr) throw std::runtime_error("the HMAC digest is not available from OpenSSL");
  return md;
}

}  // namespace

// HMAC (RFC 2104): H((K ^ opad) || H((K ^ ipad) || m)), K the key (hashed first when longer than a block)
// padded with zeros to the block. The two digests after their first block are kept; each message starts
// from copies of them.
struct HmacKey::Pads {
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  using Ctx = std::unique_ptr<EVP_MD_CTX, Free>;
  static Ctx make() {
    Ctx c(EVP_MD_CTX_new());
    if (!c) throw std::runtime_error("EVP_MD_CTX_new failed");
    return c;
  }
  Ctx inner = make();
  Ctx outer = make();
};

HmacKey::HmacKey(Digest digest, std::string_view key) : pads_(std::make_unique<Pads>()) {
  const EVP_MD* md = fetched(digest);
  const auto block = static_cast<std::size_t>(EVP_MD_get_block_size(md));
  std::array<unsigned char, 128> k{};  // the block of SHA-1 and SHA-256 is 64 bytes
  if (block > k.size()) throw std::runtime_error("HMAC digest block too large");
  if (key.size() > block) {
    unsigned int n = 0;
    if (EVP_Digest(key.data(), key.size(), k.data(), &n, md, nullptr) != 1)
      throw std::runtime_error("HMAC key digest failed");
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<unsigned char, 128> pad{};
  auto start = [&](EVP_MD_CTX* c, unsigned char with) {
    for (std::size_t i = 0; i < block; ++i) pad[i] = static_cast<unsigned char>(k[i] ^ with);
    if (EVP_DigestInit_ex(c, md, nullptr) != 1 || EVP_DigestUpdate(c, pad.data(), block) != 1)
      throw std::runtime_error("HMAC key setup failed");
  };
  start(pads_->inner.get(), 0x36);
  start(pads_->outer.get(), 0x5c);
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(pad.data(), pad.size());
}

HmacKey::~HmacKey() = default;
HmacKey::HmacKey(HmacKey&&) noexcept = default;
HmacKey& HmacKey::operator=(HmacKey&&) noexcept = default;

std::string HmacKey::mac(std::string_view data) const {
  thread_local const Pads::Ctx work = Pads::make();
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int inner_len = 0, len = 0;
  if (EVP_MD_CTX_copy_ex(work.get(), pads_->inner.get()) != 1 ||
      EVP_DigestUpdate(work.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(work.get(), inner, &inner_len) != 1 ||
      EVP_MD_CTX_copy_ex(work.get(), pads_->outer.get()) != 1 ||
      EVP_DigestUpdate(work.get(), inner, inner_len) != 1 || EVP_DigestFinal_ex(work.get(), out, &len) != 1) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hmac(Digest digest, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const EVP_MD* md = digest == Digest::sha256 ? EVP_sha256() : EVP_sha1();
  if (HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out, &len) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes; trim them.
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() > 1 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// URL-safe base64 without padding.
std::string token_text(std::string_view raw) {
  std::string s = base64_encode(raw);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

void random_bytes(std::string& out) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
}

}  // namespace

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  random_bytes(raw);
  return token_text(raw);
}

std::vector<std::string> random_tokens(std::size_t count, std::size_t bytes) {
  std::vector<std::string> out;
  if (count == 0) return out;
  std::string raw(count * bytes, '\0');
  random_bytes(raw);
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(token_text(std::string_view(raw).substr(i * bytes, bytes)));
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

}  // namespace evr::crypto
