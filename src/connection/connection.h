#pragma once
// A connection at run time: where and how to call (HTTP client, auth headers) and its limits (token bucket,
// concurrency cap), shared by every lane that uses it. Lanes that have work queue for a slot; slots are
// handed out round-robin, one request per turn, so one busy lane cannot starve the others.
//
// Two guards sit in front of the slots (see breaker.h and adaptive_limit.h): the circuit breaker, which
// grants nothing while the destination keeps failing (deliveries wait in the lanes and on disk, no attempt
// is spent), and the concurrency limit, fixed or adapted to the round-trip time.
//
// A configuration reload changes a connection in place (reconfigure): limits apply at once to new
// requests, counted together with those already in flight; a new client (base URI, timeouts, TLS changed)
// serves new requests while those in flight finish on the old one, which is closed once they have.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connection/adaptive_limit.h"
#include "connection/breaker.h"
#include "connection/oauth2.h"
#include "evrouter/config/config.h"
#include "evrouter/connection/state.h"
#include "evrouter/connection/token_bucket.h"
#include "evrouter/destination/signing.h"
#include "evrouter/http/client.h"
#include "evrouter/metrics/metrics.h"

namespace evr::lane {
class Lane;
}

namespace evr::connection {

// What a connection's settings build: checked and made off the event loop, then handed to the loop.
struct Prepared {
  http::Headers auth_headers;
  std::shared_ptr<const destination::Signer> signer;  // the connection's default signing; null: none
  std::shared_ptr<OAuth2> oauth2;                     // auth type oauth2: the token source; else null
  std::unique_ptr<http::Client> client;               // null: keep the current client
};

// Builds the auth headers and, when `new_client`, the HTTP client. Throws std::runtime_error when
// base_uri cannot be used or a secret is not set. Does not touch the event loop.
Prepared prepare(const config::Connection& config, boost::asio::io_context& ioc, bool new_client = true);
// Whether two settings can share one HTTP client (same base URI, timeouts and TLS settings).
bool same_client(const config::Connection& a, const config::Connection& b);

// How the lane judged a response of its request (its destination's classification).
enum class Feedback { success, retry, fail, cancelled };

class Connection {
 public:
  // Throws std::runtime_error when base_uri cannot be used or a secret is not set.
  Connection(const config::Connection& config, boost::asio::io_context& ioc);
  // `prepared` must carry a client.
  Connection(const config::Connection& config, Prepared prepared, boost::asio::io_context& ioc);

  const config::Connection& config() const { return config_; }
  const http::Endpoint& endpoint() const { return current_->client->endpoint(); }
  const http::Headers& auth_headers() const { return auth_headers_; }
  // Signs deliveries whose destination sets no signing of its own; null: unsigned.
  const destination::Signer* signer() const { return signer_.get(); }

  // New settings, on the event loop. `prepared.client` replaces the client for new requests.
  void reconfigure(const config::Connection& config, Prepared prepared);

  // Sends on the current client, in a slot granted by want() (from Lane::send_one); `done` runs on the
  // event loop and returns its verdict, which feeds the breaker and the adaptive limit; the slot is then
  // released.
  void send(http::Request request, std::function<Feedback(const http::Result&)> done);
  // The lane has deliveries ready: give it a slot when limits allow.
  void want(lane::Lane* lane);
  // Drops the lane from the wait queue (stopping, or the lane moved or went away).
  void forget(lane::Lane* lane);
  int in_flight() const { return in_flight_; }
  // Several evrouter instances share the store (docs/scaling.md#what-is-cluster-wide): this one sends at
  // 1/instances of the rate limit, with 1/instances of the burst (at least 1).
  void share_rate(int instances);
  ConnectionState state() const;
  void close();

 private:
  struct ClientSlot {
    std::unique_ptr<http::Client> client;
    int in_flight = 0;
  };

  struct Gauges {
    explicit Gauges(const std::string& connection);
    metrics::Gauge& breaker;
    metrics::Gauge& in_flight;
    metrics::Gauge& limit;
  };

  void drain();
  void complete(Breaker::Ticket ticket, Feedback feedback, const http::Result& result);
  void arm_probe_timer();
  void update_gauges();
  void retire(const std::shared_ptr<ClientSlot>& slot);
  // send() without the OAuth2 token step.
  void transmit(http::Request request, std::function<void(http::Result)> done);
  // Runs `fn` once the rate limit allows one more request (a request sent again after a 401).
  void after_rate_limit(std::function<void()> fn);

  config::Connection config_;
  boost::asio::io_context& ioc_;
  std::shared_ptr<ClientSlot> current_;
  std::vector<std::shared_ptr<ClientSlot>> retired_;  // replaced clients with requests still in flight
  http::Headers auth_headers_;
  std::shared_ptr<const destination::Signer> signer_;
  std::shared_ptr<OAuth2> oauth2_;
  TokenBucket bucket_;
  int instances_ = 1;  // share_rate()
  Breaker breaker_;
  AdaptiveLimit limit_;
  std::optional<Breaker::Ticket> pending_ticket_;  // granted in drain(), taken by send() within send_one()
  boost::asio::steady_timer probe_timer_;
  bool probe_timer_armed_ = false;
  Gauges gauges_;
  int in_flight_ = 0;
  std::deque<lane::Lane*> waiting_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

}  // namespace evr::connection
