#include "evrouter/admin/server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "evrouter/common/crypto.h"
#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "evrouter/metrics/metrics.h"
#include "http/accept_errors.h"
#include "http/server_tls.h"
#include "http/tls_or_tcp.h"

namespace evr::admin {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

bool is_public(const std::string& path) {
  // The dashboard page holds no data (it asks for the token and sends it with every API call).
  return path == "/healthz" || path == "/readyz" || path == "/dashboard" || path == "/";
}

// The thread that runs deferred answers (Response::deferred), one at a time, in order.
class Worker {
 public:
  void start() {
    thread_ = std::thread([this] {
      name_this_thread("admin-work");
      run();
    });
  }
  // Waits for the job under way (if any); jobs not started are dropped.
  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// Open sessions against Options::max_connections. A session takes a place on the server's thread and
// frees it when destroyed — on that thread, or on the admin worker's when a deferred answer held it last.
// When the server stopped accepting because every place was taken, the first place freed calls `resume`
// (which posts the next accept to the server's thread).
class Capacity {
 public:
  explicit Capacity(int max) : max_(static_cast<std::size_t>(std::max(1, max))) {}
  void take() {
    std::lock_guard lk(mu_);
    ++open_;
  }
  void release() {
    std::function<void()> resume;
    {
      std::lock_guard lk(mu_);
      --open_;
      if (open_ < max_) resume = std::exchange(resume_, nullptr);
    }
    if (resume) resume();
  }
  // Stops accepting at the limit: `resume` runs (once) when a place is free, unless close() comes first.
  // False when a place was freed meanwhile (accept again now).
  bool wait(std::function<void()> resume) {
    std::lock_guard lk(mu_);
    if (open_ < max_) return false;
    resume_ = std::move(resume);
    return true;
  }
  void close() {
    std::lock_guard lk(mu_);
    resume_ = nullptr;
  }

 private:
  std::mutex mu_;
  std::size_t max_;
  std::size_t open_ = 0;
  std::function<void()> resume_;
};

// One connection: read a request (with a deadline), authorise, route, answer, keep alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Options& options, const Router& router, Worker& worker,
          Capacity& capacity, std::shared_ptr<net::ssl::context> tls)
      : stream_(std::move(socket)),
        tls_context_(std::move(tls)),
        options_(options),
        router_(router),
        worker_(worker),
        capacity_(capacity) {
    if (tls_context_) tls_.emplace(stream_, *tls_context_);
    capacity_.take();
  }
  ~Session() { capacity_.release(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    if (!tls_) return read();
    // admin.tls: the handshake within the request timeout, like a request.
    stream_.expires_after(options_.request_timeout);
    tls_->async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->close();
      self->read();
    });
  }

 private:
  // Calls op(stream) with the stream requests are read from and answers written to: the TLS stream over
  // the TCP one with admin.tls, else the TCP stream (its deadlines apply either way).
  template <typename Op>
  void with_stream(Op&& op) {
    evr::http::on_stream(tls_, stream_, std::forward<Op>(op));
  }

  void read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(options_.max_body_bytes);
    stream_.expires_after(first_ ? options_.request_timeout : options_.idle_timeout);
    with_stream([this](auto& stream) {
      http::async_read(stream, buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted) {
      return close();
    }
    if (ec == http::error::body_limit) {
      linger_ = true;  // the client may still be sending the body we refuse
      return write(Response::error(413, "payload_too_large", "request body too large"), false);
    }
    if (ec)
      return write(Response::error(400, "bad_request", "malformed HTTP request: " + ec.message()), false);
    auto& req = parser_->get();
    Request r;
    r.method = std::string(req.method_string());
    if (!parse_target(req.target(), r.path, r.query)) {
      return write(Response::error(400, "bad_request", "malformed percent-encoding in the URL"), false);
    }
    if (options_.token && !is_public(r.path)) {
      constexpr std::string_view kBearer = "Bearer ";
      const std::string_view auth = req[http::field::authorization];
      const bool ok = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer &&
                      crypto::constant_time_equal(auth.substr(kBearer.size()), *options_.token);
      if (!ok) {
        auto resp = Response::error(401, "unauthorized",
                                    auth.empty() ? "an Authorization: Bearer <token> header is required"
                                                 : "the admin token is not valid");
        resp.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"evrouter-admin\"");
        return write(std::move(resp), req.keep_alive());
      }
    }
    r.body = std::move(req.body());
    const bool head = req.method() == http::verb::head;
    Response resp = router_.route(r);
    if (resp.deferred) {
      // Off the loop; the answer comes back to it. Nothing is read from this connection meanwhile.
      auto ex = stream_.get_executor();
      worker_.post([self = shared_from_this(), ex, work = std::move(resp.deferred), keep = req.keep_alive(),
                    head] {
        Response done = work();
        if (head) done.body.clear();
        net::post(ex, [self, keep, done = std::move(done)]() mutable { self->write(std::move(done), keep); });
      });
      return;
    }
    if (resp.stream && !head) return start_stream(std::move(resp));
    if (head) resp.body.clear();
    write(std::move(resp), req.keep_alive());
  }

  // Server-sent events: headers, then frames as the stream has them, until it ends or the client goes.
  // No Content-Length and Connection: close, so the body runs until the connection closes. A write that
  // does not finish within request_timeout (a client that stopped reading) ends the stream.
  void start_stream(Response r) {
    stream_body_ = std::move(r.stream);
    std::string head =
        "HTTP/1.1 200 OK\r\nServer: evrouter\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\nX-Accel-Buffering: no\r\n";
    for (const auto& [k, v] : r.headers) {
      head += k;
      head += ": ";
      head += v;
      head += "\r\n";
    }
    head += "\r\n: evrouter live tail\n\n";
    stream_.expires_never();
    heartbeat_.emplace(stream_.get_executor());
    write_deadline_.emplace(stream_.get_executor());
    std::weak_ptr<Session> weak = weak_from_this();
    auto ex = stream_.get_executor();
    stream_body_->start([weak, ex] {
      net::post(ex, [weak] {
        if (auto self = weak.lock()) self->pump();
      });
    });
    watch_client();
    send_frames(std::move(head), true);
  }

  // Anything the client sends now, or its closing, ends the stream.
  void watch_client() {
    discard_.resize(1024);
    with_stream([this](auto& stream) {
      stream.async_read_some(net::buffer(discard_),
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) return self->end_stream();
                               self->watch_client();
                             });
    });
  }

  void pump() {
    if (writing_ || ended_) return;
    std::string out;
    const bool more = stream_body_->next(out);
    if (out.empty()) {
      if (!more) return end_stream();
      return arm_heartbeat();
    }
    send_frames(std::move(out), more);
  }

  void send_frames(std::string frames, bool more) {
    writing_ = true;
    heartbeat_->cancel();
    auto buf = std::make_shared<std::string>(std::move(frames));
    write_deadline_->expires_after(options_.request_timeout);
    write_deadline_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->end_stream();  // the client stopped reading
    });
    with_stream([this, &buf, more](auto& stream) {
      net::async_write(stream, net::buffer(*buf),
                       [self = shared_from_this(), buf, more](beast::error_code ec, std::size_t) {
                         self->writing_ = false;
                         self->write_deadline_->cancel();
                         if (ec || !more) return self->end_stream();
                         self->pump();
                       });
    });
  }

  // A comment line now and then keeps proxies from timing the stream out and finds dead clients.
  void arm_heartbeat() {
    heartbeat_->expires_after(std::chrono::seconds(15));
    heartbeat_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->writing_ || self->ended_) return;
      self->send_frames(": keep-alive\n\n", true);
    });
  }

  void end_stream() {
    if (ended_) return;
    ended_ = true;
    if (heartbeat_) heartbeat_->cancel();
    if (write_deadline_) write_deadline_->cancel();
    stream_body_.reset();
    close();
  }

  void write(Response r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "evrouter");
    res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(options_.request_timeout);
    with_stream([this, &res, keep_alive](auto& stream) {
      http::async_write(stream, *res,
                        [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
                          if (!ec && self->linger_) return self->linger();
                          if (ec || !keep_alive) return self->close();
                          self->first_ = false;
                          self->read();
                        });
    });
  }

  // Closing with unread input makes the kernel send a reset that can destroy the answer before the client
  // reads it: stop sending, discard what still arrives for a moment (bounded), then close.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(std::chrono::seconds(2));
    discard_.resize(std::size_t{16} * 1024);
    discard(0);
  }

  void discard(std::size_t total) {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this(), total](beast::error_code ec, std::size_t n) {
                              if (ec || total + n > (8U << 20)) return self->close();
                              self->discard(total + n);
                            });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<net::ssl::context> tls_context_;           // admin.tls: the context tls_ was made with
  std::optional<net::ssl::stream<beast::tcp_stream&>> tls_;  // over stream_
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const Options& options_;
  const Router& router_;
  Worker& worker_;
  Capacity& capacity_;
  bool first_ = true;
  bool linger_ = false;
  std::vector<char> discard_;
  // streaming
  std::shared_ptr<EventStream> stream_body_;
  std::optional<net::steady_timer> heartbeat_, write_deadline_;
  bool writing_ = false;
  bool ended_ = false;
};

class ServerImpl final : public Server {
 public:
  ServerImpl(Options options, const Router& router)
      : options_(std::move(options)), router_(router), capacity_(options_.max_connections) {}
  ~ServerImpl() override { stop(); }

  void start() override {
    if (options_.tls) tls_.store(tls_context());
    beast::error_code ec;
    const auto address = net::ip::make_address(options_.listen, ec);
    if (ec) throw std::runtime_error("admin.listen: invalid address " + options_.listen);
    if (!options_.token && !address.is_loopback()) {
      throw std::runtime_error("admin.listen " + options_.listen +
                               " is not a loopback address: set admin.token to expose the admin API");
    }
    const tcp::endpoint ep(address, options_.port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + options_.listen + ":" + std::to_string(options_.port) +
                               " (admin): " + ec.message());
    }
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    worker_.start();
    thread_ = std::thread([this] {
      name_this_thread("admin");
      ioc_.run();
    });
  }

  uint16_t port() const override { return port_; }

  std::string reload_tls() override {
    if (!options_.tls) return {};
    try {
      tls_.store(tls_context());
    } catch (const std::exception& ex) {
      return ex.what();
    }
    return {};
  }

  void stop() override {
    if (!thread_.joinable()) return;
    net::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      accept_pause_.cancel();
    });
    ioc_.stop();
    thread_.join();
    capacity_.close();  // sessions destroyed with the io_context must not start accepting again
    worker_.stop();
  }

 private:
  std::shared_ptr<net::ssl::context> tls_context() const {
    try {
      return evr::http::server_tls_context(*options_.tls);
    } catch (const std::exception& ex) {
      throw std::runtime_error(std::string("admin.") + ex.what());
    }
  }

  void accept() {
    acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        if (const auto pause = accept_errors_.failed(ec); pause.count() > 0) {
          accept_pause_.expires_after(pause);
          accept_pause_.async_wait([this](beast::error_code e) {
            if (!e && acceptor_.is_open()) accept();
          });
          return;
        }
      } else {
        accept_errors_.succeeded();
        std::make_shared<Session>(std::move(socket), options_, router_, worker_, capacity_, tls_.load())
            ->start();
      }
      if (capacity_.wait([this] { net::post(ioc_, [this] { accept(); }); })) {
        static metrics::Counter& reached = metrics::Registry::global().counter(
            "evrouter_admin_connection_limit_reached_total",
            "Times the admin server stopped accepting at admin.max_connections open connections.");
        reached.inc();
        return;
      }
      accept();
    });
  }

  Options options_;
  const Router& router_;
  std::atomic<std::shared_ptr<net::ssl::context>> tls_{};  // admin.tls; a reload swaps in a new one
  Capacity capacity_;  // before ioc_: sessions destroyed with it free their places here
  net::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  net::steady_timer accept_pause_{ioc_};  // after an accept failed for want of descriptors or memory
  evr::http::AcceptErrors accept_errors_{"admin"};
  Worker worker_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace

std::unique_ptr<Server> make_server(Options options, const Router& router) {
  return std::make_unique<ServerImpl>(std::move(options), router);
}

}  // namespace evr::admin
