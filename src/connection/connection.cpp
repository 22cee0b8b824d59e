#include "connection/connection.h"

#include <boost/asio/post.hpp>
#include <stdexcept>
#include <utility>

#include "evrouter/common/crypto.h"
#include "lane/lane.h"

namespace evr::connection {

namespace {

http::Headers resolve_auth(const config::Connection& c) {
  const auto& a = c.auth;
  if (a.type == config::Auth::Type::none) return {};
  std::string secret;
  if (a.secret) {
    auto v = a.secret->resolve();
    if (!v) throw std::runtime_error("connection " + c.name + ": " + a.secret->describe() + " is not set");
    secret = std::move(*v);
  }
  switch (a.type) {
    case config::Auth::Type::basic:
      return {{"Authorization", "Basic " + crypto::base64_encode(a.username + ":" + secret)}};
    case config::Auth::Type::bearer:
      return {{"Authorization", "Bearer " + secret}};
    case config::Auth::Type::api_key:
      return {{a.header, secret}};
    case config::Auth::Type::none:
    case config::Auth::Type::oauth2:  // a token source, not a fixed header (connection/oauth2.h)
      break;
  }
  return {};
}

}  // namespace

Prepared prepare(const config::Connection& config, boost::asio::io_context& ioc, bool new_client) {
  Prepared p;
  p.auth_headers = resolve_auth(config);
  p.signer = destination::Signer::make(config.signing, "connection " + config.name);
  if (config.auth.type == config::Auth::Type::oauth2) p.oauth2 = OAuth2::make(config, ioc);
  if (!new_client) return p;
  auto endpoint = http::Endpoint::parse(config.base_uri);
  if (!endpoint)
    throw std::runtime_error("connection " + config.name + ": invalid base_uri " + config.base_uri);
  http::ClientOptions options;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.max_idle = static_cast<std::size_t>(std::max(1, config.concurrency));
  options.ca_file = config.ca_file;
  options.tls_verify = config.tls_verify;
  p.client = http::make_client(ioc, std::move(*endpoint), options);
  return p;
}

bool same_client(const config::Connection& a, const config::Connection& b) {
  return a.base_uri == b.base_uri && a.connect_timeout == b.connect_timeout &&
         a.request_timeout == b.request_timeout && a.ca_file == b.ca_file && a.tls_verify == b.tls_verify;
}

Connection::Connection(const config::Connection& config, boost::asio::io_context& ioc)
    : Connection(config, prepare(config, ioc), ioc) {}

Connection::Connection(const config::Connection& config, Prepared prepared, boost::asio::io_context& ioc)
    : config_(config),
      ioc_(ioc),
      current_(std::make_shared<ClientSlot>(ClientSlot{std::move(prepared.client), 0})),
      auth_headers_(std::move(prepared.auth_headers)),
      signer_(std::move(prepared.signer)),
      oauth2_(std::move(prepared.oauth2)),
      bucket_(config.rate_limit.per_second, config.rate_limit.burst),
      timer_(ioc) {}

void Connection::reconfigure(const config::Connection& config, Prepared prepared) {
  if (config.rate_limit.per_second != config_.rate_limit.per_second ||
      config.rate_limit.burst != config_.rate_limit.burst) {
    bucket_.reconfigure(config.rate_limit.per_second, config.rate_limit.burst);
  }
  config_ = config;
  auth_headers_ = std::move(prepared.auth_headers);
  signer_ = std::move(prepared.signer);
  // Same token settings: the running token source (and its token) stays.
  if (!prepared.oauth2 || !oauth2_ || !oauth2_->same(*prepared.oauth2)) oauth2_ = std::move(prepared.oauth2);
  if (prepared.client) {
    auto old =
        std::exchange(current_, std::make_shared<ClientSlot>(ClientSlot{std::move(prepared.client), 0}));
    if (old->in_flight == 0) {
      old->client->close();
    } else {
      retired_.push_back(std::move(old));
    }
  }
  // A higher cap or rate may let waiting lanes go now.
  drain();
}

void Connection::send(http::Request request, std::function<void(http::Result)> done) {
  if (!oauth2_) return transmit(std::move(request), std::move(done));
  oauth2_->send(
      std::move(request), [this](http::Request r, OAuth2::Done d) { transmit(std::move(r), std::move(d)); },
      [this](http::Request r, OAuth2::Done d) {
        after_rate_limit(
            [this, r = std::move(r), d = std::move(d)]() mutable { transmit(std::move(r), std::move(d)); });
      },
      std::move(done));
}

void Connection::after_rate_limit(std::function<void()> fn) {
  const auto now = TokenBucket::Clock::now();
  if (closed_ || bucket_.try_take(now)) return fn();
  auto timer = std::make_shared<boost::asio::steady_timer>(ioc_, bucket_.wait(now));
  timer->async_wait([this, timer, fn = std::move(fn)](const boost::system::error_code&) mutable {
    after_rate_limit(std::move(fn));
  });
}

void Connection::transmit(http::Request request, std::function<void(http::Result)> done) {
  auto slot = current_;
  ++slot->in_flight;
  slot->client->send(std::move(request), [this, slot, done = std::move(done)](http::Result result) {
    --slot->in_flight;
    if (slot != current_ && slot->in_flight == 0) retire(slot);
    done(std::move(result));
  });
}

void Connection::retire(const std::shared_ptr<ClientSlot>& slot) {
  // Not from inside the client's own callback: close and drop it on a later turn of the loop.
  boost::asio::post(ioc_, [this, slot] {
    slot->client->close();
    std::erase(retired_, slot);
  });
}

void Connection::want(lane::Lane* lane) {
  if (closed_) return;
  if (!lane->queued) {
    lane->queued = true;
    waiting_.push_back(lane);
  }
  drain();
}

void Connection::release() {
  --in_flight_;
  drain();
}

void Connection::forget(lane::Lane* lane) {
  std::erase(waiting_, lane);
  lane->queued = false;
}

void Connection::close() {
  closed_ = true;
  for (auto* l : waiting_) l->queued = false;
  waiting_.clear();
  timer_.cancel();
  if (oauth2_) oauth2_->close();
  current_->client->close();
  for (auto& slot : retired_) slot->client->close();
}

void Connection::drain() {
  if (draining_ || closed_) return;
  draining_ = true;
  while (!waiting_.empty() && in_flight_ < config_.concurrency) {
    const auto now = TokenBucket::Clock::now();
    if (!bucket_.try_take(now)) {
      if (!timer_armed_) {
        timer_armed_ = true;
        timer_.expires_after(bucket_.wait(now));
        timer_.async_wait([this](const boost::system::error_code& ec) {
          timer_armed_ = false;
          if (!ec) drain();
        });
      }
      break;
    }
    lane::Lane* lane = waiting_.front();
    waiting_.pop_front();
    lane->queued = false;
    ++in_flight_;
    if (!lane->send_one()) {
      --in_flight_;
      bucket_.refund();
      continue;
    }
    if (lane->has_ready()) {
      lane->queued = true;
      waiting_.push_back(lane);
    }
  }
  draining_ = false;
}

}  // namespace evr::connection
