// libFuzzer target: the webhook signature and credential verifiers. The input is split at NUL bytes into a
// signature header value, a webhook-id, a webhook-timestamp, an Authorization value and the body. Every
// verifier (Shopify HMAC, generic HMAC hex/base64 with a prefix, Standard Webhooks, basic, bearer) sees the
// fuzzed headers (refusals are fine, crashes are not). Then, with signatures computed here independently
// (OpenSSL's HMAC), each must accept the fuzzed body correctly signed and refuse it with one byte of the
// signature changed.
//   scripts/fuzz.sh verifier [seconds]
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <strings.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "evrouter/source/shopify.h"
#include "evrouter/source/verifiers.h"

namespace {

using namespace evr::source;

constexpr std::string_view kSecret = "fuzz-shopify-secret";
constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";  // a Standard Webhooks key (decoded)

std::string mac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string b64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string_view next_part(std::string_view& rest) {
  const auto nul = rest.find('\0');
  const std::string_view part = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  return part;
}

struct Verifiers {
  std::shared_ptr<const Source> shopify = make_shopify_source({std::string(kSecret), "old-secret"});
  std::unique_ptr<Verifier> hmac_hex = make_hmac_verifier(
      {"X-Hub-Signature-256", evr::crypto::Digest::sha256, HmacOptions::Encoding::hex, "sha256="},
      {std::string(kSecret)});
  std::unique_ptr<Verifier> hmac_b64 =
      make_hmac_verifier({"X-Signature", evr::crypto::Digest::sha256, HmacOptions::Encoding::base64, ""},
                         {std::string(kSecret)});
  std::unique_ptr<Verifier> standard =
      make_standard_webhooks_verifier({std::string(kKey)}, std::chrono::minutes(5));
  std::unique_ptr<Verifier> basic = make_basic_verifier("user", "pass:word");
  std::unique_ptr<Verifier> bearer = make_bearer_verifier("token-123");
};

// Verifies with these headers; true when accepted.
template <typename V>
bool accepted(const V& v, const std::map<std::string, std::string>& headers, std::string_view body,
              int64_t now) {
  const HeaderLookup lookup = [&headers](std::string_view name) -> std::string_view {
    for (const auto& [k, val] : headers) {
      if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return val;
    }
    return {};
  };
  const Request r{lookup, body, now};
  return !v.verify(r).has_value();
}

// The signature with its last character changed to another of both alphabets (hex and base64), distinct
// case-insensitively too (hex signatures are compared so).
std::string flipped(std::string s) {
  if (!s.empty()) s.back() = s.back() == '0' ? '1' : '0';
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Verifiers v;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string sig(next_part(rest));
  const std::string id(next_part(rest));
  const std::string ts(next_part(rest));
  const std::string auth(next_part(rest));
  const std::string_view body = rest;
  const int64_t now = 1795000000000;

  // Whatever arrives: no crash.
  const std::map<std::string, std::string> fuzzed{
      {"X-Shopify-Hmac-Sha256", sig}, {"X-Hub-Signature-256", sig}, {"X-Signature", sig},
      {"webhook-signature", sig},     {"webhook-id", id},           {"webhook-timestamp", ts},
      {"Authorization", auth}};
  (void)accepted(*v.shopify, fuzzed, body, now);
  (void)accepted(*v.hmac_hex, fuzzed, body, now);
  (void)accepted(*v.hmac_b64, fuzzed, body, now);
  (void)accepted(*v.standard, fuzzed, body, now);
  (void)accepted(*v.basic, fuzzed, body, now);
  (void)accepted(*v.bearer, fuzzed, body, now);

  // Correctly signed: accepted; one byte changed: refused.
  const std::string digest = mac(kSecret, body);
  auto check = [&](const auto& verifier, const std::string& header, const std::string& good) {
    if (!accepted(verifier, {{header, good}}, body, now)) std::abort();
    if (accepted(verifier, {{header, flipped(good)}}, body, now)) std::abort();
  };
  check(*v.shopify, "X-Shopify-Hmac-Sha256", b64(digest));
  check(*v.hmac_hex, "X-Hub-Signature-256", "sha256=" + hex(digest));
  check(*v.hmac_b64, "X-Signature", b64(digest));

  const std::string msg_id = id.empty() ? "msg_1" : id;
  const std::string stamp = std::to_string(now / 1000);
  const std::string good = "v1," + b64(mac(kKey, msg_id + "." + stamp + "." + std::string(body)));
  const bool printable = msg_id.find_first_of(std::string("\r\n\0", 3)) == std::string::npos;
  if (printable) {
    if (!accepted(*v.standard,
                  {{"webhook-id", msg_id}, {"webhook-timestamp", stamp}, {"webhook-signature", good}}, body,
                  now)) {
      std::abort();
    }
    if (accepted(*v.standard,
                 {{"webhook-id", msg_id}, {"webhook-timestamp", stamp}, {"webhook-signature", flipped(good)}},
                 body, now)) {
      std::abort();
    }
  }
  return 0;
}
