// The outbound HTTP/1.1 client: see include/evrouter/http/client.h and docs/http-client.md.
#include "evrouter/http/client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <limits>
#include <unordered_set>

namespace evr::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
// An idle stream younger than this is reused without checking whether the server closed it (Conn::usable).
constexpr auto kFreshIdle = std::chrono::milliseconds(200);

std::string Response::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (beast::iequals(key, name)) return value;
  return {};
}

namespace {

constexpr std::size_t kReadChunk = std::size_t{16} * 1024;
// Past max_response_body, at most this much more is read (and dropped) to keep the stream reusable;
// a longer body ends the exchange early and the stream is closed.
constexpr std::size_t kMaxDropped = std::size_t{1024} * 1024;
constexpr std::uint32_t kHeaderLimit = 64 * 1024;

const char* const kClosed = "client closed";

// Streams bound to the io_context by type: no type-erased executor to copy at every operation.
using Stream = beast::basic_stream<tcp, net::io_context::executor_type>;

// One stream to the origin, plain or TLS.
struct Conn {
  Conn(net::io_context& ioc, ssl::context* tls_ctx) {
    if (tls_ctx)
      tls.emplace(ioc, *tls_ctx);
    else
      plain.emplace(ioc);
  }
  Stream& tcp() { return tls ? tls->next_layer() : *plain; }
  template <class F>
  void with(F&& f) {
    if (tls)
      f(*tls);
    else
      f(*plain);
  }
  void close() {
    beast::error_code ec;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().close();
  }
  // An idle stream is worth reusing unless the server closed it (or sent something unexpected) meanwhile.
  // One that was idle for less than kFreshIdle is taken without a look (under load, a stream comes back
  // within milliseconds and the look costs a system call per request); if the server did close it, the
  // request finds out with nothing read back and is retried once on a new stream (Exchange::retryable).
  bool usable(Clock::time_point now) {
    auto& socket = tcp().socket();
    if (!socket.is_open() || buffer.size() != 0) return false;
    if (now - idle_since < kFreshIdle) return true;
    char byte;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;  // eof, reset...
    // Bytes waiting: with TLS they may be a session ticket (fine), with plain HTTP they cannot be right.
    return tls.has_value();
  }

  std::optional<Stream> plain;
  std::optional<ssl::stream<Stream>> tls;
  beast::flat_buffer buffer;
  std::unique_ptr<char[]> chunk;  // body read buffer, allocated on first use and kept with the stream
  Clock::time_point idle_since;   // when it was last put back among the idle streams
};

// Asio's host name check, plus a verify error saying why (OpenSSL otherwise reports no reason).
struct HostCheck {
  ssl::host_name_verification inner;
  bool ip = false;
  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    const bool ok = inner(preverified, ctx);
    if (!ok && preverified)
      X509_STORE_CTX_set_error(ctx.native_handle(),
                               ip ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
    return ok;
  }
};

struct Exchange;

struct State {
  State(net::io_context& io, Endpoint ep, ClientOptions opts)
      : ioc(io), endpoint(std::move(ep)), options(std::move(opts)) {}
  net::io_context& ioc;
  Endpoint endpoint;
  ClientOptions options;
  std::string host_header;
  std::optional<net::ip::address> literal;  // the host is an IP address: no DNS, no SNI
  std::unique_ptr<ssl::context> tls_ctx;
  std::string init_error;  // set when the TLS context could not be built: every send fails with it
  std::vector<std::shared_ptr<Conn>> idle;
  std::unordered_set<std::shared_ptr<Exchange>> in_flight;
  bool closed = false;
};

// "<phase>: <reason>"; a request timeout (write or read) is just "timeout".
std::string describe(const char* phase, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  return std::string(phase) + ": " + ec.message();
}

// One request, from send() to its callback.
struct Exchange : std::enable_shared_from_this<Exchange> {
  std::shared_ptr<State> state;
  std::string request_head;  // request line and headers, rendered by ClientImpl::build
  std::string request_body;
  std::function<void(Result)> done;
  Clock::time_point start;
  std::shared_ptr<Conn> conn;
  std::unique_ptr<tcp::resolver> resolver;
  std::unique_ptr<net::steady_timer> resolve_timer;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  Response response;
  std::size_t dropped = 0;
  bool head = false;
  bool reused = false;
  bool retried = false;
  bool resolving = false;
  bool finished = false;

  void begin() {
    auto& idle = state->idle;
    const auto now = Clock::now();
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (c->usable(now)) {
        conn = std::move(c);
        reused = true;
        return write();
      }
      c->close();
    }
    connect();
  }

  void connect() {
    conn = std::make_shared<Conn>(state->ioc, state->tls_ctx.get());
    const auto deadline = Clock::now() + state->options.connect_timeout;
    if (state->literal) {
      conn->tcp().expires_at(deadline);
      conn->tcp().async_connect(tcp::endpoint(*state->literal, state->endpoint.port),
                                [self = shared_from_this()](beast::error_code ec) { self->on_connect(ec); });
      return;
    }
    // The resolver has no deadline of its own: a timer cancels it.
    resolver = std::make_unique<tcp::resolver>(state->ioc);
    resolve_timer = std::make_unique<net::steady_timer>(state->ioc);
    resolving = true;
    resolve_timer->expires_at(deadline);
    resolve_timer->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->resolving) return;
      self->resolving = false;
      self->resolver->cancel();
      self->fail("connect: timeout");
    });
    resolver->async_resolve(
        state->endpoint.host, std::to_string(state->endpoint.port),
        [self = shared_from_this(), deadline](beast::error_code ec,
                                              const tcp::resolver::results_type& results) {
          if (self->finished || !self->resolving) return;
          self->resolving = false;
          self->resolve_timer->cancel();
          if (ec) return self->fail("resolve: " + ec.message());
          self->conn->tcp().expires_at(deadline);
          self->conn->tcp().async_connect(
              results, [self](beast::error_code ec2, const tcp::endpoint&) { self->on_connect(ec2); });
        });
  }

  void on_connect(beast::error_code ec) {
    if (finished) return;
    if (ec) return fail(ec == beast::error::timeout ? "connect: timeout" : "connect: " + ec.message());
    beast::error_code ignored;
    conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (!conn->tls) return write();

    const auto& host = state->endpoint.host;
    SSL* ssl = conn->tls->native_handle();
    if (!state->literal && !SSL_set_tlsext_host_name(ssl, host.c_str())) return fail("tls: cannot set SNI");
    if (state->options.tls_verify)
      conn->tls->set_verify_callback(
          HostCheck{ssl::host_name_verification(host), state->literal.has_value()});
    // The handshake shares the connect deadline set above.
    conn->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec2) {
      self->on_handshake(ec2);
    });
  }

  void on_handshake(beast::error_code ec) {
    if (finished) return;
    if (!ec) return write();
    if (ec == beast::error::timeout) return fail("connect: timeout");
    std::string error = "tls: " + ec.message();
    const long verify = SSL_get_verify_result(conn->tls->native_handle());
    if (verify != X509_V_OK) {
      error += " (";
      error += X509_verify_cert_error_string(verify);
      error += ")";
    }
    fail(std::move(error));
  }

  void write() {
    conn->tcp().expires_after(state->options.request_timeout);
    const std::array<net::const_buffer, 2> bytes{net::buffer(request_head), net::buffer(request_body)};
    conn->with([&](auto& stream) {
      net::async_write(stream, bytes, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_write(ec);
      });
    });
  }

  void on_write(beast::error_code ec) {
    if (finished) return;
    if (!ec) return read_header();
    if (retryable(ec)) return retry();
    fail(describe("write", ec));
  }

  void read_header() {
    parser.emplace();
    parser->header_limit(kHeaderLimit);
    // The body is capped by hand below. (Not boost::none: Beast 1.74 then rejects any Content-Length.)
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (head) parser->skip(true);
    conn->with([&](auto& stream) {
      bhttp::async_read_header(
          stream, conn->buffer, *parser,
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
    });
  }

  void on_header(beast::error_code ec) {
    if (finished) return;
    if (ec) {
      // Nothing at all came back on a stream that sat idle: the server likely closed it meanwhile.
      if (!parser->got_some() && conn->buffer.size() == 0 && retryable(ec)) return retry();
      return fail(describe("read", ec));
    }
    auto& msg = parser->get();
    const int status = static_cast<int>(msg.result_int());
    if (status >= 100 && status < 200 && status != 101) return read_header();  // interim response
    response.status = status;
    response.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& field : msg) response.headers.emplace_back(field.name_string(), field.value());
    if (parser->is_done()) return complete(true);
    if (!conn->chunk) conn->chunk = std::make_unique<char[]>(kReadChunk);
    read_body();
  }

  void read_body() {
    auto& body = parser->get().body();
    body.data = conn->chunk.get();
    body.size = kReadChunk;
    conn->with([&](auto& stream) {
      bhttp::async_read(
          stream, conn->buffer, *parser,
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
    });
  }

  void on_body(beast::error_code ec) {
    if (finished) return;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return fail(describe("read", ec));
    const std::size_t got = kReadChunk - parser->get().body().size;
    const std::size_t cap = state->options.max_response_body;
    const std::size_t keep = response.body.size() < cap ? std::min(got, cap - response.body.size()) : 0;
    response.body.append(conn->chunk.get(), keep);
    dropped += got - keep;
    if (parser->is_done()) return complete(true);
    if (dropped > kMaxDropped) return complete(false);
    read_body();
  }

  bool retryable(const beast::error_code& ec) const {
    return reused && !retried && !state->closed && ec != beast::error::timeout &&
           ec != net::error::operation_aborted;
  }

  void retry() {
    conn->close();
    conn.reset();
    retried = true;
    reused = false;
    connect();  // always a fresh stream: the idle ones are suspect too
  }

  void complete(bool reusable) {
    auto& idle = state->idle;
    if (reusable && parser->is_done() && parser->get().keep_alive() && conn->buffer.size() == 0 &&
        !state->closed && idle.size() < state->options.max_idle) {
      conn->tcp().expires_never();
      conn->idle_since = Clock::now();
      idle.push_back(std::move(conn));
    } else {
      conn->close();
    }
    conn.reset();
    Result result;
    result.response = std::move(response);
    finish(std::move(result), false);
  }

  void fail(std::string error) {
    if (conn) conn->close();  // kept: the resolve timer may fail us while nothing else is pending
    Result result;
    result.error = std::move(error);
    finish(std::move(result), false);
  }

  // Called by close(): stops whatever is pending; their handlers then see `finished`.
  void abort() {
    if (finished) return;
    if (resolving) {
      resolving = false;
      resolver->cancel();
      resolve_timer->cancel();
    }
    // The stream stays owned here: operations still pending on it complete (aborted) into its buffer.
    if (conn) conn->close();
    Result result;
    result.error = kClosed;
    finish(std::move(result), true);
  }

  void finish(Result result, bool deferred) {
    finished = true;
    auto self = shared_from_this();  // in_flight may hold the last reference
    state->in_flight.erase(self);
    result.latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (deferred) {
      net::post(state->ioc, [cb = std::move(done), r = std::move(result)]() mutable { cb(std::move(r)); });
    } else {
      auto cb = std::move(done);
      cb(std::move(result));
    }
  }
};

bool valid_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':' || c == '(' || c == ')' || c == ',' || c == ';' || c == '"' ||
        c == '/' || c == '[' || c == ']' || c == '?' || c == '=' || c == '{' || c == '}' || c == '<' ||
        c == '>' || c == '@' || c == '\\')
      return false;
  }
  return true;
}

bool valid_value(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

bool valid_target(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

class ClientImpl final : public Client {
 public:
  ClientImpl(net::io_context& ioc, Endpoint endpoint, ClientOptions options)
      : state_(std::make_shared<State>(ioc, std::move(endpoint), std::move(options))) {
    auto& s = *state_;
    beast::error_code ec;
    auto address = net::ip::make_address(s.endpoint.host, ec);
    if (!ec) s.literal = address;
    const bool ipv6 = s.literal && s.literal->is_v6();
    s.host_header = ipv6 ? "[" + s.endpoint.host + "]" : s.endpoint.host;
    if (s.endpoint.port != (s.endpoint.tls ? 443 : 80))
      s.host_header += ":" + std::to_string(s.endpoint.port);
    if (s.endpoint.tls) init_tls();
  }

  ~ClientImpl() override { close(); }

  void send(Request request, std::function<void(Result)> done) override {
    auto ex = std::make_shared<Exchange>();
    ex->state = state_;
    ex->done = std::move(done);
    ex->start = Clock::now();
    if (state_->closed) return ex->finish(Result{kClosed, {}, {}}, true);
    if (!state_->init_error.empty()) return ex->finish(Result{state_->init_error, {}, {}}, true);
    if (std::string error = build(request, *ex); !error.empty())
      return ex->finish(Result{std::move(error), {}, {}}, true);
    state_->in_flight.insert(ex);
    ex->begin();
  }

  void close() override {
    auto& s = *state_;
    s.closed = true;
    for (auto& conn : s.idle) conn->close();
    s.idle.clear();
    auto pending = std::move(s.in_flight);
    s.in_flight.clear();
    for (const auto& ex : pending) ex->abort();
  }

  const Endpoint& endpoint() const override { return state_->endpoint; }

 private:
  void init_tls() {
    auto& s = *state_;
    try {
      s.tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
      s.tls_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      if (s.options.tls_verify) {
        s.tls_ctx->set_default_verify_paths();
        if (!s.options.ca_file.empty()) s.tls_ctx->load_verify_file(s.options.ca_file);
        s.tls_ctx->set_verify_mode(ssl::verify_peer);
      } else {
        s.tls_ctx->set_verify_mode(ssl::verify_none);
      }
    } catch (const std::exception& e) {
      s.tls_ctx.reset();
      s.init_error = std::string("tls: cannot load ca_file ") + s.options.ca_file + ": " + e.what();
    }
  }

  // Renders the request line and headers of `request` into ex.head (and moves its body to ex.body); returns
  // an error for a request that cannot be sent as is. Written by hand rather than through Beast's fields
  // and serializer: a delivery's head is a few short lines, built once and sent with its body in one write.
  std::string build(Request& request, Exchange& ex) const {
    const auto verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown && !valid_token(request.method)) return "request: invalid method";
    ex.head = verb == bhttp::verb::head;
    if (!valid_target(request.target)) return "request: invalid target";
    std::string& out = ex.request_head;
    out.clear();
    out.reserve(128 + request.target.size() + 64 * request.headers.size());
    out.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\nHost: ");
    out.append(state_->host_header).append("\r\n");
    bool agent = false;
    for (auto& [name, value] : request.headers) {
      if (!valid_token(name) || !valid_value(value)) return "request: invalid header " + name;
      if (beast::iequals(name, "host") || beast::iequals(name, "content-length") ||
          beast::iequals(name, "transfer-encoding") || beast::iequals(name, "connection"))
        continue;
      if (beast::iequals(name, "user-agent")) agent = true;
      out.append(name).append(": ").append(value).append("\r\n");
    }
    if (!agent && !state_->options.user_agent.empty())
      out.append("User-Agent: ").append(state_->options.user_agent).append("\r\n");
    // Content-Length whenever there is a body, and for the methods that expect one even when empty (RFC
    // 9110 8.6); a GET, HEAD or DELETE without a body sends none.
    if (!request.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
        verb == bhttp::verb::patch || verb == bhttp::verb::options) {
      out.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
    }
    out.append("\r\n");
    ex.request_body = std::move(request.body);
    return {};
  }

  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Client> make_client(boost::asio::io_context& ioc, Endpoint endpoint, ClientOptions options) {
  return std::make_unique<ClientImpl>(ioc, std::move(endpoint), std::move(options));
}

}  // namespace evr::http
