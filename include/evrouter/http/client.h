#pragma once
// Async HTTP/1.1 client for one origin (scheme, host, port): a pool of keep-alive connections,
// TLS with certificate and host name verification and SNI for https, explicit connect and request timeouts.
// Limits (rate, concurrency) are the caller's job; the client only opens as many streams as are in use.
// All callbacks run on the io_context given at construction; the client is not thread-safe: use it
// from that io_context's thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace evr::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// An absolute http(s) URI split into parts. parse() returns nullopt on anything it cannot use.
struct Endpoint {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // "" or "/api/v1" (no trailing slash)
  static std::optional<Endpoint> parse(const std::string& uri);
};

struct Request {
  std::string method = "POST";
  std::string target = "/";  // path and query, already joined with the endpoint's base_path by the caller
  Headers headers;           // Host, Content-Length and User-Agent are set by the client
  std::string body;
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;  // at most ClientOptions::max_response_body bytes are kept; the rest is read and dropped
  std::string header(const std::string& name) const;  // case-insensitive, "" when absent
};

struct Result {
  std::string error;  // empty on a completed exchange (any status); otherwise what failed:
                      // "connect: Connection refused", "timeout", "tls: certificate verify failed", ...
  Response response;
  std::chrono::milliseconds latency{0};
  bool ok() const { return error.empty(); }
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};  // from write start to the end of the response
  std::size_t max_idle = 64;                         // idle keep-alive streams kept
  std::size_t max_response_body = std::size_t{64} * 1024;
  std::string ca_file;  // extra trusted CA (PEM); system roots are always trusted
  bool tls_verify = true;
  std::string user_agent = "evrouter/0.1";
};

class Client {
 public:
  virtual ~Client() = default;
  // Sends one request; `done` is called exactly once, on the client's io_context.
  virtual void send(Request request, std::function<void(Result)> done) = 0;
  // Closes idle streams and cancels requests in flight (their callbacks get an error).
  virtual void close() = 0;
  virtual const Endpoint& endpoint() const = 0;
};

std::unique_ptr<Client> make_client(boost::asio::io_context& ioc, Endpoint endpoint, ClientOptions options);

}  // namespace evr::http
