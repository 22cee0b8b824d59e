#include "cli/admin_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <memory>

#include "evrouter/http/client.h"

namespace evr::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

// One exchange driven by an io_context on the calling thread, bounded by the stream's timer.
struct Exchange {
  explicit Exchange(net::io_context& ioc) : resolver(ioc), stream(ioc) {}
  tcp::resolver resolver;
  beast::tcp_stream stream;
  std::unique_ptr<net::ssl::context> tls_context;           // https:// admin URLs
  std::optional<net::ssl::stream<beast::tcp_stream&>> tls;  // over stream
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req;
  bhttp::response_parser<bhttp::string_body> parser;
  beast::error_code ec;
  std::string stage;
};

}  // namespace

AdminTarget admin_target_from_env() {
  AdminTarget target;
  if (const char* url = std::getenv("EVROUTER_ADMIN_URL"); url != nullptr && *url != '\0') target.url = url;
  if (const char* token = std::getenv("EVROUTER_ADMIN_TOKEN"); token != nullptr) target.token = token;
  return target;
}

std::unique_ptr<net::ssl::context> admin_tls_context(std::string& error) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  const char* ca = std::getenv("EVROUTER_ADMIN_CA_FILE");
  if (ca != nullptr && *ca != '\0') {
    ctx->load_verify_file(ca, ec);
    if (ec) {
      error = std::string("cannot load EVROUTER_ADMIN_CA_FILE ") + ca + ": " + ec.message();
      return nullptr;
    }
  } else {
    ctx->set_default_verify_paths(ec);
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  return ctx;
}

bool prepare_admin_tls(SSL* ssl, const std::string& host) {
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  beast::error_code ec;
  net::ip::make_address(host, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1;
}

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::optional<AdminReply> admin_request(const AdminTarget& target, const std::string& method,
                                        const std::string& path, const std::string& body,
                                        std::string& error) {
  const auto endpoint = http::Endpoint::parse(target.url);
  if (!endpoint) {
    error = "the admin URL " + target.url +
            " is not an http:// or https:// URL (--admin-url, EVROUTER_ADMIN_URL)";
    return std::nullopt;
  }
  net::io_context ioc{1};
  auto x = std::make_shared<Exchange>(ioc);
  if (endpoint->tls) {
    x->tls_context = admin_tls_context(error);
    if (!x->tls_context) return std::nullopt;
    x->tls.emplace(x->stream, *x->tls_context);
    if (!prepare_admin_tls(x->tls->native_handle(), endpoint->host)) {
      error = "cannot set up TLS for " + endpoint->host;
      return std::nullopt;
    }
  }
  x->req.method_string(method);
  x->req.target(endpoint->base_path + path);
  x->req.version(11);
  x->req.set(bhttp::field::host, endpoint->host + ":" + std::to_string(endpoint->port));
  x->req.set(bhttp::field::user_agent, "evrouter-cli");
  x->req.set(bhttp::field::accept, "application/json");
  if (!target.token.empty()) x->req.set(bhttp::field::authorization, "Bearer " + target.token);
  if (!body.empty() || method == "POST") {
    x->req.set(bhttp::field::content_type, "application/json");
    x->req.body() = body;
  }
  x->req.prepare_payload();
  x->parser.body_limit(std::uint64_t{64} * 1024 * 1024);

  auto fail = [x](const char* stage, beast::error_code ec) {
    x->ec = ec;
    x->stage = stage;
  };
  x->stage = "resolve";
  x->resolver.async_resolve(
      endpoint->host, std::to_string(endpoint->port),
      [x, fail, timeout = target.timeout](beast::error_code ec, const tcp::resolver::results_type& results) {
        if (ec) return fail("resolve", ec);
        x->stream.expires_after(timeout);
        x->stream.async_connect(results, [x, fail](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2) return fail("connect", ec2);
          // The exchange itself, on the TCP stream or on the TLS one over it.
          auto exchange = [x, fail](auto& stream) {
            bhttp::async_write(stream, x->req, [x, fail, &stream](beast::error_code ec3, std::size_t) {
              if (ec3) return fail("send", ec3);
              bhttp::async_read(stream, x->buffer, x->parser, [x, fail](beast::error_code ec4, std::size_t) {
                if (ec4) return fail("read", ec4);
                x->stage.clear();
                beast::error_code ignored;
                x->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
              });
            });
          };
          if (!x->tls) return exchange(x->stream);
          x->tls->async_handshake(net::ssl::stream_base::client, [x, fail, exchange](beast::error_code ec5) {
            if (ec5) return fail("tls", ec5);
            exchange(*x->tls);
          });
        });
      });
  ioc.run();
  if (!x->stage.empty()) {
    const std::string what = x->ec == beast::error::timeout
                                 ? "timed out after " + std::to_string(target.timeout.count()) + " ms"
                                 : x->ec.message();
    error = "cannot reach the admin API at " + target.url + " (" + x->stage + ": " + what +
            "); is the daemon running? Set --admin-url or EVROUTER_ADMIN_URL";
    return std::nullopt;
  }
  AdminReply reply;
  reply.status = static_cast<int>(x->parser.get().result_int());
  reply.body = std::move(x->parser.get().body());
  return reply;
}

}  // namespace evr::cli
