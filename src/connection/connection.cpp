#include "connection/connection.h"

#include <stdexcept>

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
      break;
  }
  return {};
}

}  // namespace

Connection::Connection(const config::Connection& config, boost::asio::io_context& ioc)
    : config_(config),
      ioc_(ioc),
      auth_headers_(resolve_auth(config)),
      bucket_(config.rate_limit.per_second, config.rate_limit.burst),
      timer_(ioc) {
  auto endpoint = http::Endpoint::parse(config.base_uri);
  if (!endpoint)
    throw std::runtime_error("connection " + config.name + ": invalid base_uri " + config.base_uri);
  http::ClientOptions options;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.max_idle = static_cast<std::size_t>(std::max(1, config.concurrency));
  options.ca_file = config.ca_file;
  options.tls_verify = config.tls_verify;
  client_ = http::make_client(ioc, std::move(*endpoint), options);
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
  client_->close();
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
