#pragma once
// A connection at run time: where and how to call (HTTP client, auth headers) and its limits (token bucket,
// concurrency cap), shared by every lane that uses it. Lanes that have work queue for a slot; slots are
// handed out round-robin, one request per turn, so one busy lane cannot starve the others.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <string>

#include "evrouter/config/config.h"
#include "evrouter/connection/token_bucket.h"
#include "evrouter/http/client.h"

namespace evr::lane {
class Lane;
}

namespace evr::connection {

class Connection {
 public:
  // Throws std::runtime_error when base_uri cannot be used or a secret is not set.
  Connection(const config::Connection& config, boost::asio::io_context& ioc);

  const config::Connection& config() const { return config_; }
  http::Client& client() { return *client_; }
  const http::Endpoint& endpoint() const { return client_->endpoint(); }
  const http::Headers& auth_headers() const { return auth_headers_; }

  // The lane has deliveries ready: give it a slot when limits allow.
  void want(lane::Lane* lane);
  // A request granted by want() completed.
  void release();
  // Drops the lane from the wait queue (stopping).
  void forget(lane::Lane* lane);
  int in_flight() const { return in_flight_; }
  void close();

 private:
  void drain();

  config::Connection config_;
  boost::asio::io_context& ioc_;
  std::unique_ptr<http::Client> client_;
  http::Headers auth_headers_;
  TokenBucket bucket_;
  int in_flight_ = 0;
  std::deque<lane::Lane*> waiting_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

}  // namespace evr::connection
