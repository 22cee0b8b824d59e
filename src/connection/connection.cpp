#include "connection/connection.h"

#include <algorithm>
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
      breaker_(config.name, config.breaker),
      limit_(config.adaptive.enabled, config.concurrency, config.adaptive.initial),
      probe_timer_(ioc),
      gauges_(config.name),
      timer_(ioc) {
  update_gauges();
}

Connection::Gauges::Gauges(const std::string& connection)
    : breaker(metrics::Registry::global().gauge(
          "evrouter_connection_breaker_state",
          "Circuit breaker of the connection: 0 closed, 1 half-open, 2 open.", {{"connection", connection}})),
      in_flight(metrics::Registry::global().gauge("evrouter_connection_in_flight",
                                                  "Requests in flight on the connection.",
                                                  {{"connection", connection}})),
      limit(metrics::Registry::global().gauge(
          "evrouter_connection_concurrency_limit",
          "Concurrency limit of the connection now (adaptive: the current limit).",
          {{"connection", connection}})) {}

void Connection::update_gauges() {
  gauges_.breaker.set(static_cast<int64_t>(breaker_.state()));
  gauges_.in_flight.set(in_flight_);
  gauges_.limit.set(limit_.limit());
}

void Connection::reconfigure(const config::Connection& config, Prepared prepared) {
  if (config.rate_limit.per_second != config_.rate_limit.per_second ||
      config.rate_limit.burst != config_.rate_limit.burst) {
    bucket_.reconfigure(config.rate_limit.per_second / instances_,
                        std::max(1.0, config.rate_limit.burst / instances_));
  }
  breaker_.reconfigure(config.breaker);
  if (config.adaptive != config_.adaptive || config.concurrency != config_.concurrency) {
    limit_.reconfigure(config.adaptive.enabled, config.concurrency, config.adaptive.initial);
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

void Connection::share_rate(int instances) {
  instances = std::max(1, instances);
  if (instances == instances_) return;
  instances_ = instances;
  bucket_.reconfigure(config_.rate_limit.per_second / instances_,
                      std::max(1.0, config_.rate_limit.burst / instances_));
  drain();
}

void Connection::send(http::Request request, std::function<Feedback(const http::Result&)> done) {
  // The breaker's ticket is the one granted with this slot, whenever the request actually goes out.
  const Breaker::Ticket ticket = pending_ticket_.value_or(Breaker::Ticket{});
  pending_ticket_.reset();
  auto finish = [this, ticket, done = std::move(done)](const http::Result& result) {
    const Feedback feedback = done(result);
    complete(ticket, feedback, result);
  };
  if (!oauth2_) return transmit(std::move(request), std::move(finish));
  oauth2_->send(
      std::move(request), [this](http::Request r, OAuth2::Done d) { transmit(std::move(r), std::move(d)); },
      [this](http::Request r, OAuth2::Done d) {
        after_rate_limit(
            [this, r = std::move(r), d = std::move(d)]() mutable { transmit(std::move(r), std::move(d)); });
      },
      std::move(finish));
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

void Connection::complete(Breaker::Ticket ticket, Feedback feedback, const http::Result& result) {
  --in_flight_;
  const auto now = Breaker::Clock::now();
  switch (feedback) {
    case Feedback::success:
      breaker_.complete(ticket, Breaker::Result::success, now);
      break;
    case Feedback::retry:
      breaker_.complete(ticket, Breaker::Result::failure, now);
      break;
    case Feedback::fail:
      breaker_.complete(ticket, Breaker::Result::other, now);
      break;
    case Feedback::cancelled:
      breaker_.complete(ticket, Breaker::Result::cancelled, now);
      break;
  }
  if (feedback != Feedback::cancelled) {
    const int status = result.ok() ? result.response.status : 0;
    const bool overload = status == 429 || status == 503 || result.error.find("timeout") != std::string::npos;
    limit_.observe(now, result.latency, overload);
  }
  update_gauges();
  drain();
}

void Connection::arm_probe_timer() {
  if (probe_timer_armed_) return;
  probe_timer_armed_ = true;
  probe_timer_.expires_at(breaker_.next_probe());
  probe_timer_.async_wait([this](const boost::system::error_code& ec) {
    probe_timer_armed_ = false;
    if (!ec) drain();
  });
}

ConnectionState Connection::state() const {
  ConnectionState s;
  s.name = config_.name;
  s.breaker = breaker_.state();
  s.consecutive_failures = breaker_.consecutive_failures();
  s.opened_at_ms = breaker_.opened_at_ms();
  s.next_probe_ms = breaker_.next_probe_ms(Breaker::Clock::now());
  s.in_flight = in_flight_;
  s.concurrency_limit = limit_.limit();
  s.concurrency_max = limit_.max();
  s.adaptive = limit_.adaptive();
  s.rate_per_second = config_.rate_limit.per_second;
  s.rate_burst = config_.rate_limit.burst;
  s.waiting_lanes = waiting_.size();
  return s;
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
  probe_timer_.cancel();
  current_->client->close();
  for (auto& slot : retired_) slot->client->close();
}

void Connection::drain() {
  if (draining_ || closed_) return;
  draining_ = true;
  while (!waiting_.empty()) {
    if (in_flight_ >= limit_.limit()) {
      limit_.limited();
      break;
    }
    const auto now = TokenBucket::Clock::now();
    if (!breaker_.may_send(now)) {
      if (breaker_.state() == BreakerState::open) arm_probe_timer();
      break;
    }
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
    pending_ticket_ = breaker_.grant();
    const bool sent = lane->send_one();
    if (pending_ticket_) {  // nothing was sent: a probe slot goes back
      breaker_.complete(*pending_ticket_, Breaker::Result::cancelled, now);
      pending_ticket_.reset();
    }
    if (!sent) {
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
  update_gauges();
}

}  // namespace evr::connection
