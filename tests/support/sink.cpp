#include "support/sink.h"

#include <openssl/ssl.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace evr::test {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

std::string Recorded::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
};

// Everything the sink's sessions share (Sink::Impl itself is private to Sink).
struct Core {
  SinkOptions options;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<Recorded> recorded;
  int in_flight = 0;
  int max_in_flight = 0;
  std::size_t connections = 0;
  std::function<Reply(const Recorded&)> handler;

  // Declared before the io_context: TLS streams owned by pending handlers die with the io_context.
  std::unique_ptr<ssl::context> tls;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::vector<std::weak_ptr<SessionBase>> sessions;  // sink thread only
  uint16_t port = 0;
  std::thread thread;

  void accept();
  // Records a request that just arrived; returns the reply to give.
  Reply arrive(bhttp::request<bhttp::string_body>&& req, std::string sni);
  void departed() {
    std::lock_guard lock(mu);
    --in_flight;
  }
};

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Core& sink, Args&&... args) : sink_(sink), stream_(std::forward<Args>(args)...) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(ssl::stream_base::server, [self =
                                                             this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->close();
        beast::get_lowest_layer(self->stream_).expires_never();
        if (const char* name = SSL_get_servername(self->stream_.native_handle(), TLSEXT_NAMETYPE_host_name))
          self->sni_ = name;
        self->read();
      });
    }
  }

  void close() override {
    beast::error_code ec;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    timer_.cancel();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(64 * 1024 * 1024);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        self->on_request();
                      });
  }

  void on_request() {
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    Reply reply = sink_.arrive(std::move(req), sni_);
    if (reply.delay.count() > 0) {
      timer_.expires_after(reply.delay);
      timer_.async_wait([self = this->shared_from_this(), reply = std::move(reply)](
                            beast::error_code) mutable { self->respond(std::move(reply)); });
    } else {
      respond(std::move(reply));
    }
  }

  void respond(Reply reply) {
    // The request stops being "in flight" once its answer is ready to go.
    sink_.departed();
    if (reply.drop) return close();
    if (!reply.raw.empty()) {
      raw_ = std::move(reply.raw);
      net::async_write(stream_, net::buffer(raw_),
                       [self = this->shared_from_this()](beast::error_code, std::size_t) { self->close(); });
      return;
    }
    res_.emplace();
    res_->version(version_);
    res_->result(static_cast<unsigned>(reply.status));
    for (auto& [name, value] : reply.headers) res_->insert(name, value);
    res_->body() = std::move(reply.body);
    keep_alive_ = keep_alive_ && !reply.close;
    res_->keep_alive(keep_alive_);
    res_->prepare_payload();
    bhttp::async_write(stream_, *res_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->res_.reset();
      self->read();
    });
  }

  Core& sink_;
  Stream stream_;
  net::steady_timer timer_{beast::get_lowest_layer(stream_).get_executor()};
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::string raw_;
  std::string sni_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

Reply Core::arrive(bhttp::request<bhttp::string_body>&& req, std::string sni) {
  Recorded rec;
  rec.method = std::string(req.method_string());
  rec.target = std::string(req.target());
  for (const auto& field : req) {
    auto [it, inserted] = rec.headers.try_emplace(lower(field.name_string()), field.value());
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  rec.body = std::move(req.body());
  rec.arrived = std::chrono::steady_clock::now();
  rec.sni = std::move(sni);
  std::function<Reply(const Recorded&)> h;
  {
    std::lock_guard lock(mu);
    rec.in_flight = ++in_flight;
    if (in_flight > max_in_flight) max_in_flight = in_flight;
    h = handler;
  }
  Reply reply;
  if (h) {
    try {
      reply = h(rec);
    } catch (const std::exception& e) {
      reply = Reply{};
      reply.status = 500;
      reply.body = e.what();
    }
  }
  {
    std::lock_guard lock(mu);
    recorded.push_back(std::move(rec));
  }
  cv.notify_all();
  return reply;
}

void Core::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      {
        std::lock_guard lock(mu);
        ++connections;
      }
      std::erase_if(sessions, [](const auto& w) { return w.expired(); });
      socket.set_option(tcp::no_delay(true), ec);
      if (tls) {
        auto s = std::make_shared<Session<ssl::stream<beast::tcp_stream>>>(*this, std::move(socket), *tls);
        sessions.push_back(s);
        s->start();
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket));
        sessions.push_back(s);
        s->start();
      }
    }
    accept();
  });
}

}  // namespace

struct Sink::Impl : Core {};

Sink::Sink(SinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto& o = impl_->options;
  if (!o.tls_cert.empty() && !o.tls_key.empty()) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(o.tls_cert);
    impl_->tls->use_private_key_file(o.tls_key, ssl::context::pem);
  }
  tcp::endpoint ep(net::ip::make_address_v4("127.0.0.1"), o.port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(net::socket_base::max_listen_connections);
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

Sink::~Sink() {
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Pending handlers (and the sessions they own) are destroyed with the io_context.
}

uint16_t Sink::port() const {
  return impl_->port;
}

std::string Sink::url() const {
  return std::string(impl_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(impl_->port);
}

void Sink::set_handler(std::function<Reply(const Recorded&)> handler) {
  std::lock_guard lock(impl_->mu);
  impl_->handler = std::move(handler);
}

std::vector<Recorded> Sink::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->recorded;
}

std::size_t Sink::count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->recorded.size();
}

int Sink::max_in_flight() const {
  std::lock_guard lock(impl_->mu);
  return impl_->max_in_flight;
}

bool Sink::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->recorded.size() >= n; });
}

void Sink::clear() {
  std::lock_guard lock(impl_->mu);
  impl_->recorded.clear();
  impl_->max_in_flight = impl_->in_flight;
}

std::size_t Sink::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->connections;
}

void Sink::close_connections() {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  net::post(impl_->ioc, [impl = impl_.get(), done] {
    for (auto& w : impl->sessions)
      if (auto s = w.lock()) s->close();
    impl->sessions.clear();
    done->set_value();
  });
  future.wait_for(std::chrono::seconds(5));
}

}  // namespace evr::test
