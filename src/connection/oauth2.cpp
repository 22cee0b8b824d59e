#include "connection/oauth2.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "evrouter/common/crypto.h"
#include "evrouter/common/log.h"

namespace evr::connection {

namespace {

constexpr const char* kPrefix = "oauth2 token: ";

// application/x-www-form-urlencoded value: unreserved characters as is, every other byte %XX.
std::string form_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::shared_ptr<OAuth2> OAuth2::make(const config::Connection& config, boost::asio::io_context& ioc) {
  const auto& a = config.auth;
  Settings s;
  s.token_url = a.token_url;
  s.client_id = a.client_id;
  s.scope = a.scope;
  s.audience = a.audience;
  s.client_auth = a.client_auth;
  if (!a.secret) throw std::runtime_error("connection " + config.name + ": oauth2 has no client_secret");
  auto secret = a.secret->resolve();
  if (!secret) {
    throw std::runtime_error("connection " + config.name + ": oauth2 client_secret " + a.secret->describe() +
                             " is not set");
  }
  s.client_secret = std::move(*secret);
  auto endpoint = http::Endpoint::parse(a.token_url);
  if (!endpoint)
    throw std::runtime_error("connection " + config.name + ": invalid oauth2 token_url " + a.token_url);
  s.target = endpoint->base_path.empty() ? "/" : endpoint->base_path;
  s.options.connect_timeout = config.connect_timeout;
  s.options.request_timeout = config.request_timeout;
  s.options.max_idle = 1;
  s.options.ca_file = config.ca_file;
  s.options.tls_verify = config.tls_verify;
  auto client = http::make_client(ioc, std::move(*endpoint), s.options);
  return std::shared_ptr<OAuth2>(new OAuth2(std::move(s), std::move(client), ioc));
}

OAuth2::OAuth2(Settings settings, std::unique_ptr<http::Client> client, boost::asio::io_context& ioc)
    : settings_(std::move(settings)), client_(std::move(client)), ioc_(ioc) {}

bool OAuth2::same(const OAuth2& other) const {
  return settings_ == other.settings_;
}

void OAuth2::send(http::Request request, Send send, Send resend, Done done) {
  attempt(std::move(request), std::move(send), std::move(resend), std::move(done), false);
}

void OAuth2::attempt(http::Request request, Send send, Send resend, Done done, bool again) {
  with_token([self = shared_from_this(), request = std::move(request), send = std::move(send),
              resend = std::move(resend), done = std::move(done),
              again](const std::string* token, const std::string& error) mutable {
    if (token == nullptr) {
      http::Result failed;
      failed.error = error;
      return done(std::move(failed));
    }
    // The header goes first and is replaced on the second try; the body is kept for that try.
    std::string used = *token;
    http::Request copy;
    if (!again) copy = request;
    auto& headers = request.headers;
    if (again && !headers.empty() && headers.front().first == "Authorization") {
      headers.front().second = "Bearer " + used;
    } else {
      headers.insert(headers.begin(), {"Authorization", "Bearer " + used});
    }
    Send& through = again ? resend : send;
    through(std::move(request), [self, copy = std::move(copy), send, resend, done = std::move(done), again,
                                 used = std::move(used)](http::Result result) mutable {
      if (again || !result.ok() || result.response.status != 401 || self->closed_) {
        return done(std::move(result));
      }
      // The token was refused (revoked, or expired early): forget it unless a newer one came meanwhile.
      if (self->token_ == used) self->token_.clear();
      log::info("oauth2 token refused by the destination (401); fetching a new one",
                {{"token_url", self->settings_.token_url}});
      self->attempt(std::move(copy), std::move(send), std::move(resend), std::move(done), true);
    });
  });
}

void OAuth2::with_token(Waiter waiter) {
  if (closed_) return waiter(nullptr, std::string(kPrefix) + "client closed");
  const auto now = Clock::now();
  if (!token_.empty() && now < expires_at_) {
    if (now >= refresh_at_ && !fetching_) fetch();  // ahead of expiry; this request uses the current one
    return waiter(&token_, {});
  }
  waiters_.push_back(std::move(waiter));
  if (!fetching_) fetch();
}

void OAuth2::fetch() {
  fetching_ = true;
  ++fetches_;
  http::Request req;
  req.method = "POST";
  req.target = settings_.target;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  req.body = "grant_type=client_credentials";
  if (!settings_.scope.empty()) req.body += "&scope=" + form_encode(settings_.scope);
  if (!settings_.audience.empty()) req.body += "&audience=" + form_encode(settings_.audience);
  if (settings_.client_auth == config::Auth::ClientAuth::basic) {
    // RFC 6749 2.3.1: both form-encoded, then HTTP Basic.
    req.headers.emplace_back("Authorization",
                             "Basic " + crypto::base64_encode(form_encode(settings_.client_id) + ":" +
                                                              form_encode(settings_.client_secret)));
  } else {
    req.body += "&client_id=" + form_encode(settings_.client_id) +
                "&client_secret=" + form_encode(settings_.client_secret);
  }
  client_->send(std::move(req), [self = shared_from_this()](const http::Result& result) {
    self->on_token(result);
    // Not released inside the client's own callback: a replaced token source may go with this reference.
    boost::asio::post(self->ioc_, [self] {});
  });
}

void OAuth2::on_token(const http::Result& result) {
  fetching_ = false;
  const auto now = Clock::now();
  std::string error;
  if (!result.ok()) {
    error = std::string(kPrefix) + result.error + " (" + settings_.token_url + ")";
  } else if (result.response.status < 200 || result.response.status >= 300) {
    error = std::string(kPrefix) + "HTTP " + std::to_string(result.response.status) + " from " +
            settings_.token_url;
    // The RFC 6749 error code (invalid_client, invalid_scope, ...) says why; it is not secret.
    auto body = nlohmann::json::parse(result.response.body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      const std::string code = body["error"].get<std::string>().substr(0, 64);
      if (std::all_of(code.begin(), code.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; }))
        error += " (" + code + ")";
    }
  } else {
    error = accept(result.response, now);
  }
  if (!error.empty()) {
    log::warn("oauth2 token fetch failed", {{"token_url", settings_.token_url}, {"error", error}});
    // A refresh ahead of expiry failed: the current token serves on; try again in a few seconds.
    if (!token_.empty()) refresh_at_ = std::min(expires_at_, now + std::chrono::seconds(5));
  }
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) {
    if (error.empty()) {
      w(&token_, {});
    } else {
      w(nullptr, error);
    }
  }
}

std::string OAuth2::accept(const http::Response& response, Clock::time_point now) {
  const std::string from = " from " + settings_.token_url;
  auto body = nlohmann::json::parse(response.body, nullptr, false);
  if (!body.is_object()) return std::string(kPrefix) + "the response" + from + " is not a JSON object";
  if (!body.contains("access_token") || !body["access_token"].is_string() ||
      body["access_token"].get_ref<const std::string&>().empty()) {
    return std::string(kPrefix) + "no access_token in the response" + from;
  }
  if (body.contains("token_type")) {
    const auto& type = body["token_type"];
    if (!type.is_string() || !iequals(type.get_ref<const std::string&>(), "bearer"))
      return std::string(kPrefix) + "token_type" + from + " is not Bearer";
  }
  std::string token = body["access_token"].get<std::string>();
  for (const char c : token) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return std::string(kPrefix) + "the access_token" + from + " holds control characters";
  }
  // expires_in: seconds, a number or (some providers) a numeric string. Absent: valid until refused.
  double seconds = 0;
  if (body.contains("expires_in")) {
    const auto& e = body["expires_in"];
    if (e.is_number()) {
      seconds = e.get<double>();
    } else if (e.is_string()) {
      try {
        seconds = std::stod(e.get<std::string>());
      } catch (const std::exception&) {
        seconds = 0;
      }
    }
  }
  token_ = std::move(token);
  if (seconds > 0) {
    const auto lifetime = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    // Fetch the next one 60 s before expiry, or after 80% of the lifetime when that is shorter.
    const auto lead = std::min<Clock::duration>(std::chrono::seconds(60), lifetime / 5);
    expires_at_ = now + lifetime;
    refresh_at_ = expires_at_ - lead;
  } else {
    expires_at_ = Clock::time_point::max();
    refresh_at_ = Clock::time_point::max();
  }
  return {};
}

void OAuth2::close() {
  closed_ = true;
  client_->close();
}

}  // namespace evr::connection
