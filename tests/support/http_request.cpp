// Blocking HTTP/1.1 request for tests. Beast's synchronous operations have no timeout, so the exchange runs
// as async operations on a private io_context with a tcp_stream deadline; the call blocks until it ends.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <optional>

#include "support/sink.h"

namespace evr::test {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

PostResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body, std::chrono::milliseconds timeout) {
  PostResult result;
  net::io_context ioc{1};
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;

  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.keep_alive(false);
  if (!body.empty() || method != "GET") req.prepare_payload();

  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(64 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);

  auto fail = [&](const char* what, beast::error_code ec) {
    result.status = 0;
    result.error =
        ec == beast::error::timeout ? std::string("timeout") : std::string(what) + ": " + ec.message();
  };

  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) return fail("connect", ec);
    bhttp::async_write(stream, req, [&](beast::error_code ec2, std::size_t) {
      if (ec2) return fail("write", ec2);
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return fail("read", ec3);
        auto& res = parser.get();
        result.status = static_cast<int>(res.result_int());
        result.body = std::move(res.body());
        for (const auto& field : res) {
          std::string name(field.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          auto [it, inserted] = result.headers.try_emplace(std::move(name), field.value());
          if (!inserted) {
            it->second += ", ";
            it->second += field.value();
          }
        }
      });
    });
  });
  ioc.run();
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream.socket().close(ec);
  return result;
}

}  // namespace evr::test
