// Credentials in the Authorization header (basic, bearer), and no verification at all.
#include <boost/beast/core/string.hpp>

#include "evrouter/source/verifiers.h"

namespace evr::source {
namespace {

// Constant-time equality that does not reveal the expected value's length either: both sides are hashed
// under a fixed key first, so the comparison always runs over 32 bytes.
bool same_secret(std::string_view presented, std::string_view expected) {
  static constexpr std::string_view kKey = "evrouter credential comparison";
  return crypto::constant_time_equal(crypto::hmac_sha256(kKey, presented),
                                     crypto::hmac_sha256(kKey, expected));
}

// The credentials after "<scheme> " in Authorization (scheme case-insensitive); nullopt when absent.
std::optional<std::string_view> credentials(const Request& request, std::string_view scheme) {
  const std::string_view value = request.header("Authorization");
  if (value.size() <= scheme.size() + 1 || !boost::beast::iequals(value.substr(0, scheme.size()), scheme) ||
      value[scheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view rest = value.substr(scheme.size() + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return std::nullopt;
  return rest;
}

class BasicVerifier final : public Verifier {
 public:
  BasicVerifier(const std::string& username, const std::string& password)
      : expected_(username + ":" + password) {}

  std::optional<Refusal> verify(const Request& request) const override {
    const auto given = credentials(request, "Basic");
    if (!given) {
      return Refusal{401, "missing_credentials", "Authorization: Basic credentials are required",
                     R"(Basic realm="evrouter")"};
    }
    const auto decoded = crypto::base64_decode(*given);
    if (!decoded || !same_secret(*decoded, expected_)) {
      return Refusal{401, "invalid_credentials", "the user name or password is wrong",
                     R"(Basic realm="evrouter")"};
    }
    return std::nullopt;
  }

 private:
  std::string expected_;
};

class BearerVerifier final : public Verifier {
 public:
  explicit BearerVerifier(std::string token) : token_(std::move(token)) {}

  std::optional<Refusal> verify(const Request& request) const override {
    const auto given = credentials(request, "Bearer");
    if (!given) {
      return Refusal{401, "missing_credentials", "Authorization: Bearer token is required", "Bearer"};
    }
    if (!same_secret(*given, token_)) {
      return Refusal{401, "invalid_credentials", "the bearer token is wrong",
                     R"(Bearer error="invalid_token")"};
    }
    return std::nullopt;
  }

 private:
  std::string token_;
};

class NoVerifier final : public Verifier {
 public:
  std::optional<Refusal> verify(const Request&) const override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<Verifier> make_basic_verifier(const std::string& username, const std::string& password) {
  return std::make_unique<BasicVerifier>(username, password);
}

std::unique_ptr<Verifier> make_bearer_verifier(std::string token) {
  return std::make_unique<BearerVerifier>(std::move(token));
}

std::unique_ptr<Verifier> make_no_verifier() {
  return std::make_unique<NoVerifier>();
}

}  // namespace evr::source
