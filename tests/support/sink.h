#pragma once
// A real HTTP server on 127.0.0.1 that records every request it receives, for tests and benchmarks.
// It runs its own thread. Replies are programmable (status, headers, body, delay), and the number of
// requests in flight at once is tracked so tests can check concurrency caps.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace evr::test {

struct Recorded {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  std::chrono::steady_clock::time_point arrived;
  int in_flight = 0;  // requests in flight at the sink when this one arrived, itself included
  std::string sni;    // TLS server name the client sent (https only; "" when none)
  std::string header(const std::string& lower_name) const;
};

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body = "{}";
  std::chrono::milliseconds delay{0};  // answered after this long (asynchronously; others proceed)
  bool close = false;                  // close the connection after answering ("Connection: close")
  bool drop = false;                   // close the connection without answering at all
  std::string raw;                     // when set: written verbatim instead of a response, then closed
};

struct SinkOptions {
  static SinkOptions on_port(uint16_t p) {
    SinkOptions o;
    o.port = p;
    return o;
  }
  uint16_t port = 0;     // 0 = ephemeral
  std::string tls_cert;  // PEM files; both set = serve https
  std::string tls_key;
};

class Sink {
 public:
  explicit Sink(SinkOptions options = {});
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:<port>" (https when TLS)

  // Called on the sink's thread for each request; the default answers 200 "{}".
  void set_handler(std::function<Reply(const Recorded&)> handler);

  std::vector<Recorded> requests() const;
  std::size_t count() const;
  int max_in_flight() const;
  // Waits until at least n requests were recorded; false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;
  // Forgets the recorded requests and restarts max_in_flight (connections() keeps counting).
  void clear();

  // TCP (or TLS) connections accepted so far.
  std::size_t connections() const;
  // Closes every open connection now, as a server's idle timeout would (returns once done).
  void close_connections();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A blocking HTTP/1.1 client for tests: one request on a new connection to 127.0.0.1:port.
struct PostResult {
  int status = 0;  // 0 when the exchange failed
  std::string body;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string error;
};
PostResult http_request(uint16_t port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace evr::test
