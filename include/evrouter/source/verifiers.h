#pragma once
// The verifiers a webhook source can use (see docs/sources.md). Each takes resolved secret values.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "evrouter/common/crypto.h"
#include "evrouter/source/source.h"

namespace evr::source {

struct HmacOptions {
  std::string header;  // carries the signature, e.g. X-Hub-Signature-256
  crypto::Digest digest = crypto::Digest::sha256;
  enum class Encoding { hex, base64 } encoding = Encoding::hex;
  std::string prefix;  // before the encoded digest, e.g. "sha256="; "" for none
};

// HMAC of the raw body under any of `secrets` (rotation). Hex signatures are compared case-insensitively.
std::unique_ptr<Verifier> make_hmac_verifier(HmacOptions options, const std::vector<std::string>& secrets);

// Standard Webhooks (https://www.standardwebhooks.com): HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.
// <body>" under any of `keys` (decoded secrets), "v1,<base64>" entries in webhook-signature, and a
// webhook-timestamp within `tolerance` of the arrival time, either way.
std::unique_ptr<Verifier> make_standard_webhooks_verifier(std::vector<std::string> keys,
                                                          std::chrono::milliseconds tolerance);

// Authorization: Basic base64(username:password).
std::unique_ptr<Verifier> make_basic_verifier(const std::string& username, const std::string& password);

// Authorization: Bearer <token>.
std::unique_ptr<Verifier> make_bearer_verifier(std::string token);

// Accepts every request.
std::unique_ptr<Verifier> make_no_verifier();

}  // namespace evr::source
