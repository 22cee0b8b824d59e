#include "loadgen/open_loop.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

namespace evr::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kConnectTimeout{5};
constexpr std::chrono::seconds kRequestTimeout{30};
constexpr std::chrono::milliseconds kReconnectDelay{50};

struct Conn {
  explicit Conn(net::io_context& ioc) : stream(ioc), retry(ioc) {}
  beast::tcp_stream stream;
  net::steady_timer retry;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::string out;
  Clock::time_point scheduled;
  uint64_t id = 0;
  bool busy = false;
};

// One connection to the sink: reads requests, answers 200 with an empty body, keeps the connection. Runs on
// the sink's own thread, so an arrival is timed when it is read, not when the sender's loop gets to it.
class SinkSession : public std::enable_shared_from_this<SinkSession> {
 public:
  using Arrival = std::function<void(std::string_view id, Clock::time_point at)>;
  SinkSession(tcp::socket socket, const std::string& id_header, Arrival& arrival)
      : socket_(std::move(socket)), id_header_(id_header), arrival_(arrival) {}

  void read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       const auto at = Clock::now();
                       const auto id = self->parser_->get()[self->id_header_];
                       self->arrival_(std::string_view(id.data(), id.size()), at);
                       const bool keep = self->parser_->get().keep_alive();
                       static constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                       net::async_write(self->socket_, net::buffer(kOk.data(), kOk.size()),
                                        [self, keep](beast::error_code e, std::size_t) {
                                          if (!e && keep) self->read();
                                        });
                     });
  }

 private:
  tcp::socket socket_;
  const std::string& id_header_;
  Arrival& arrival_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

class Driver {
 public:
  Driver(const Target& target, const Plan& plan)
      : target_(target),
        plan_(plan),
        endpoint_(net::ip::make_address(target.host), target.port),
        timer_(ioc_),
        deadline_(ioc_),
        acceptor_(sink_ioc_) {
    if (plan.rate <= 0) throw std::invalid_argument("rate must be > 0");
    if (plan.connections < 1) throw std::invalid_argument("connections must be >= 1");
    total_ =
        static_cast<uint64_t>(std::floor(plan.rate * std::chrono::duration<double>(plan.duration).count()));
    head_ = "POST " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" + std::to_string(target.port) +
            "\r\n";
    for (const auto& [name, value] : target.headers) head_ += name + ": " + value + "\r\n";
    head_ += "Content-Length: " + std::to_string(target.body.size()) + "\r\n";
    report_.latency.reserve(total_);
    report_.send_lag.reserve(total_);
    for (int i = 0; i < plan.connections; ++i) conns_.push_back(std::make_unique<Conn>(ioc_));
    if (target.sink_port != 0) {
      answered_.resize(total_ + 1);
      arrived_.resize(total_ + 1);
      const tcp::endpoint at(net::ip::make_address("127.0.0.1"), target.sink_port);
      acceptor_.open(at.protocol());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(at);
      acceptor_.listen();
      // Timed on the sink thread, matched on the sender's (which owns the report).
      arrival_ = [this](std::string_view id, Clock::time_point arrived) {
        net::post(ioc_, [this, id = std::string(id), arrived] { on_arrival(id, arrived); });
      };
      accept();
      sink_thread_ = std::thread([this] { sink_ioc_.run(); });
    }
  }

  ~Driver() { stop_sink(); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  Report run() {
    for (auto& c : conns_) connect(*c);
    ioc_.run();
    stop_sink();
    if (!started_) throw std::runtime_error(first_error_.empty() ? "cannot connect" : first_error_);
    report_.scheduled = next_;
    return std::move(report_);
  }

 private:
  Clock::time_point scheduled_at(uint64_t i) const {
    return t0_ + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / plan_.rate));
  }

  void connect(Conn& c) {
    c.stream.expires_after(kConnectTimeout);
    c.stream.async_connect(endpoint_, [this, &c](beast::error_code ec) {
      if (ec) {
        if (!started_) {
          // The target must be up before the run starts.
          if (first_error_.empty()) first_error_ = "cannot connect: " + ec.message();
          ioc_.stop();
          return;
        }
        reconnect_later(c);
        return;
      }
      beast::error_code ignored;
      c.stream.socket().set_option(tcp::no_delay(true), ignored);
      c.stream.expires_never();
      idle_.push_back(&c);
      if (!started_) {
        if (++connected_ == conns_.size()) begin();
        return;
      }
      dispatch();
    });
  }

  void reconnect_later(Conn& c) {
    if (finished_) return;
    c.retry.expires_after(kReconnectDelay);
    c.retry.async_wait([this, &c](beast::error_code ec) {
      if (!ec && !finished_) connect(c);
    });
  }

  void begin() {
    started_ = true;
    t0_ = Clock::now() + std::chrono::milliseconds(10);
    timer_.expires_at(t0_);
    timer_.async_wait([this](beast::error_code ec) { on_tick(ec); });
  }

  void on_tick(beast::error_code ec) {
    if (ec || finished_) return;
    const auto now = Clock::now();
    while (next_ < total_ && scheduled_at(next_) <= now) pending_.push_back(scheduled_at(next_++));
    dispatch();
    if (next_ < total_) {
      timer_.expires_at(scheduled_at(next_));
      timer_.async_wait([this](beast::error_code e) { on_tick(e); });
      return;
    }
    deadline_.expires_at(scheduled_at(total_) + plan_.drain);
    deadline_.async_wait([this](beast::error_code e) {
      if (!e) finish(true);
    });
    maybe_finish();
  }

  void dispatch() {
    while (!pending_.empty() && !idle_.empty()) {
      Conn* c = idle_.back();
      idle_.pop_back();
      const auto scheduled = pending_.front();
      pending_.pop_front();
      send(*c, scheduled);
    }
  }

  void send(Conn& c, Clock::time_point scheduled) {
    ++in_flight_;
    c.busy = true;
    c.scheduled = scheduled;
    report_.send_lag.add(Clock::now() - scheduled);
    c.id = ++ids_;
    const std::string id = target_.id_prefix + "-" + std::to_string(c.id);
    c.out = head_;
    for (const auto& name : target_.id_headers) c.out.append(name).append(": ").append(id).append("\r\n");
    c.out.append("\r\n").append(target_.body);
    c.stream.expires_after(kRequestTimeout);
    net::async_write(c.stream, net::buffer(c.out), [this, &c](beast::error_code ec, std::size_t) {
      if (ec) return fail(c, "write", ec);
      c.parser.emplace();
      http::async_read(c.stream, c.buffer, *c.parser, [this, &c](beast::error_code e, std::size_t) {
        if (e) return fail(c, "read", e);
        on_answer(c);
      });
    });
  }

  void on_answer(Conn& c) {
    const auto now = Clock::now();
    --in_flight_;
    c.busy = false;
    last_answer_ = now;
    report_.latency.add(now - c.scheduled);
    const unsigned status = c.parser->get().result_int();
    if (status >= 200 && status < 300) {
      ++report_.ok;
      if (c.id < answered_.size()) {
        answered_[c.id] = now;
        // Delivered before its answer was read: it added nothing after the answer.
        if (arrived_[c.id] != Clock::time_point{}) {
          ++report_.sink_matched;
          report_.added.add(std::chrono::nanoseconds(0));
        }
      }
    } else {
      ++report_.non2xx;
    }
    const bool keep = c.parser->get().keep_alive();
    c.parser.reset();
    if (keep) {
      c.stream.expires_never();
      idle_.push_back(&c);
      dispatch();
    } else {
      drop(c);
      connect(c);
    }
    maybe_finish();
  }

  void fail(Conn& c, const char* what, const beast::error_code& ec) {
    if (report_.errors < 5)
      std::fprintf(stderr, "evrouter-loadgen: %s failed: %s\n", what, ec.message().c_str());
    --in_flight_;
    c.busy = false;
    ++report_.errors;
    c.parser.reset();
    drop(c);
    reconnect_later(c);
    maybe_finish();
  }

  void drop(Conn& c) {
    beast::error_code ignored;
    c.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    c.stream.close();
    c.buffer.clear();
  }

  void maybe_finish() {
    if (next_ != total_ || !pending_.empty() || in_flight_ != 0) return;
    if (target_.sink_port == 0 || report_.sink_matched >= report_.ok) return finish(false);
    // Every answer is in: wait (at most sink_wait) for the deliveries of the accepted ones.
    if (!waiting_for_sink_) {
      waiting_for_sink_ = true;
      deadline_.expires_after(plan_.sink_wait);
      deadline_.async_wait([this](beast::error_code e) {
        if (!e) finish(false);
      });
    }
  }

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<SinkSession>(std::move(socket), target_.sink_id_header, arrival_)->read();
      accept();
    });
  }

  void stop_sink() {
    sink_work_.reset();
    sink_ioc_.stop();
    if (sink_thread_.joinable()) sink_thread_.join();
  }

  // The sink received a request carrying `id` ("<id_prefix>-<n>" for ours) at `now`.
  void on_arrival(std::string_view id, Clock::time_point now) {
    if (finished_) return;
    ++report_.sink_requests;
    const std::string_view prefix = target_.id_prefix;
    if (id.size() <= prefix.size() + 1 || id.substr(0, prefix.size()) != prefix || id[prefix.size()] != '-')
      return;
    uint64_t n = 0;
    const auto digits = id.substr(prefix.size() + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc() || n == 0 ||
        n >= arrived_.size())
      return;
    if (arrived_[n] != Clock::time_point{}) {
      ++report_.sink_repeated;
      return;
    }
    arrived_[n] = now;
    if (answered_[n] == Clock::time_point{}) return;  // matched when its answer is read
    ++report_.sink_matched;
    report_.added.add(now - answered_[n]);
    if (waiting_for_sink_) maybe_finish();
  }

  void finish(bool timed_out) {
    if (finished_) return;
    finished_ = true;
    const auto now = Clock::now();
    if (timed_out) {
      // Whatever is still waiting counts with the latency it has reached: a floor, not a guess.
      for (const auto& s : pending_) report_.latency.add(now - s);
      for (auto& c : conns_) {
        if (c->busy) report_.latency.add(now - c->scheduled);
      }
      report_.unfinished = pending_.size() + in_flight_;
      last_answer_ = now;
    }
    report_.elapsed_s = std::chrono::duration<double>(last_answer_ - t0_).count();
    ioc_.stop();
  }

  const Target& target_;
  const Plan& plan_;
  net::io_context ioc_{1};
  net::io_context sink_ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> sink_work_{
      net::make_work_guard(sink_ioc_)};
  std::thread sink_thread_;
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> idle_;
  std::deque<Clock::time_point> pending_;  // scheduled times of requests waiting for a connection
  net::steady_timer timer_;
  net::steady_timer deadline_;
  tcp::acceptor acceptor_;
  SinkSession::Arrival arrival_;
  std::vector<Clock::time_point> answered_;  // by request id: when its 2xx was read (sink runs only)
  std::vector<Clock::time_point> arrived_;   // by request id: its first arrival at the sink
  bool waiting_for_sink_ = false;
  std::string head_;
  std::string first_error_;
  Clock::time_point t0_;
  Clock::time_point last_answer_;
  uint64_t total_ = 0;
  uint64_t next_ = 0;
  uint64_t ids_ = 0;
  uint64_t in_flight_ = 0;
  std::size_t connected_ = 0;
  bool started_ = false;
  bool finished_ = false;
  Report report_;
};

}  // namespace

Report run_open_loop(const Target& target, const Plan& plan) {
  Driver driver(target, plan);
  return driver.run();
}

}  // namespace evr::bench
