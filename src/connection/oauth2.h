#pragma once
// OAuth2 client credentials (RFC 6749 section 4.4) for one connection: a token fetched from token_url with
// the connection's own HTTP client settings (a separate client: token_url may be another host), kept, and
// fetched again before it expires or when the destination answers 401. Requests wait while a token is
// being fetched; a failed fetch fails those requests (retryable) with "oauth2 token: ...". Tokens are never
// logged. Everything runs on the connection's io_context: never blocks it, not thread-safe.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evrouter/config/config.h"
#include "evrouter/http/client.h"

namespace evr::connection {

class OAuth2 : public std::enable_shared_from_this<OAuth2> {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(http::Result)>;
  using Send = std::function<void(http::Request, Done)>;

  // For an `auth: {type: oauth2}` connection: resolves the client secret and builds the token client
  // (off the event loop is fine; nothing runs until send()). Throws std::runtime_error when the secret is
  // not set or token_url cannot be used.
  static std::shared_ptr<OAuth2> make(const config::Connection& config, boost::asio::io_context& ioc);

  // Built from the same settings (then a reload keeps the running one and its token).
  bool same(const OAuth2& other) const;

  // Sends `request` with Authorization: Bearer <token> through `send`, after fetching a token when none is
  // valid. On a 401 answer the token is dropped, a new one fetched and the request sent once more through
  // `resend`; the caller sees only the second answer. `done` gets a failed token fetch as an error result.
  void send(http::Request request, Send send, Send resend, Done done);

  // Cancels a fetch under way (its waiters get an error) and refuses further sends.
  void close();

  uint64_t fetches() const { return fetches_; }

 private:
  struct Settings {
    std::string token_url;
    std::string target;  // the token endpoint's path
    std::string client_id;
    std::string client_secret;
    std::string scope;
    std::string audience;
    config::Auth::ClientAuth client_auth = config::Auth::ClientAuth::basic;
    http::ClientOptions options;
    bool operator==(const Settings& o) const {
      return token_url == o.token_url && client_id == o.client_id && client_secret == o.client_secret &&
             scope == o.scope && audience == o.audience && client_auth == o.client_auth &&
             options.connect_timeout == o.options.connect_timeout &&
             options.request_timeout == o.options.request_timeout && options.ca_file == o.options.ca_file &&
             options.tls_verify == o.options.tls_verify;
    }
  };
  // Gets the token (null with an error when the fetch failed).
  using Waiter = std::function<void(const std::string* token, const std::string& error)>;

  OAuth2(Settings settings, std::unique_ptr<http::Client> client, boost::asio::io_context& ioc);
  void with_token(Waiter waiter);
  void fetch();
  void on_token(const http::Result& result);
  // Parses a 2xx answer; "" on success (token_, refresh_at_, expires_at_ set), else the error.
  std::string accept(const http::Response& response, Clock::time_point now);
  void attempt(http::Request request, Send send, Send resend, Done done, bool again);

  Settings settings_;
  std::unique_ptr<http::Client> client_;
  boost::asio::io_context& ioc_;
  std::string token_;  // "" = none
  Clock::time_point refresh_at_{};
  Clock::time_point expires_at_{};
  bool fetching_ = false;
  bool closed_ = false;
  std::vector<Waiter> waiters_;  // bounded by the connection's concurrency cap
  uint64_t fetches_ = 0;
};

}  // namespace evr::connection
