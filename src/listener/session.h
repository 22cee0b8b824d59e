#pragma once
// One client connection to the ingest server: an async session in the manner of the Beast examples,
// with a deadline on every read and write and a parser that refuses oversized headers and bodies; over
// TLS when server.tls is set.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "evrouter/bus/batch.h"
#include "evrouter/config/config.h"
#include "evrouter/listener/server.h"
#include "evrouter/metrics/metrics.h"
#include "http/tls_or_tcp.h"

namespace evr::listener {

struct Worker;

// State shared by every worker of one server.
struct Shared {
  const config::Server& config;
  Pipeline& pipeline;
  std::atomic<bool> draining{false};
  std::atomic<int> sessions{0};
  // Bytes of request bodies the sessions hold (reserved from their Content-Length, or max_body_bytes when
  // chunked), at most config.max_body_memory.
  std::atomic<uint64_t> body_bytes{0};
  metrics::Gauge& body_memory = metrics::Registry::global().gauge(
      "evrouter_ingest_body_bytes",
      "Bytes of request bodies held in memory by the ingest server (at most server.max_body_memory).");
  // evrouter_ingest_connections: the same count, on /metrics
  metrics::Gauge& connections = metrics::Registry::global().gauge(
      "evrouter_ingest_connections", "Open client connections to the ingest server.");
  // server.tls: every connection starts with a TLS handshake with this context (none: plain HTTP). A
  // reload swaps in a new one (renewed certificate) for the connections accepted after it.
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> tls{};
  metrics::Counter& tls_failures = metrics::Registry::global().counter(
      "evrouter_ingest_tls_handshake_failures_total",
      "Client connections to the ingest server closed because their TLS handshake failed or timed out.");
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // Sockets and streams bound to the worker's io_context by type: no type-erased executor to copy,
  // compare and destroy at every read, write and timer of every request (beast::tcp_stream's
  // any_io_executor).
  using Socket =
      boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;
  using Stream = boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

  Session(Socket socket, Shared& shared, Worker& worker);
  ~Session();
  void start();
  void close();
  // True between a request's headers and the end of its answer.
  bool busy() const { return busy_; }

 private:
  // Read buffer kept by an idle connection: a typical webhook's header and the start of its body.
  static constexpr std::size_t kReadBuffer = 4096;

  void handshake();
  void read_header();
  // Calls op(stream) with the stream requests are read from and answers written to: the TLS stream over
  // the TCP one when server.tls is set, else the TCP stream itself (timeouts are the TCP stream's either
  // way).
  template <typename Op>
  void with_stream(Op&& op) {
    evr::http::on_stream(tls_, stream_, std::forward<Op>(op));
  }
  void on_header(boost::beast::error_code ec);
  void on_body(boost::beast::error_code ec);
  void handle_webhook(const flow::Flow& flow);
  void on_committed(store::CommitResult result);
  void handle_publish();
  void on_published(std::vector<store::CommitResult> results);
  void reply(unsigned status, std::string_view body, bool close_after = false);
  void reply_error(unsigned status, const char* code, const std::string& message, bool close_after = false);
  // A header for the next answer only ("Retry-After", "Allow", ...): name and value are constants or come
  // from the configuration, never from the request.
  void add_header(std::string_view name, std::string_view value);
  void on_write(bool close_after, boost::beast::error_code ec);
  void linger();
  void read_discard(std::size_t total);
  bool reserve_body(uint64_t bytes);
  void release_body();

  Stream stream_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // the one tls_ was made with
  std::optional<boost::asio::ssl::stream<Stream&>> tls_;    // over stream_, when server.tls is set
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::string answer_;         // the answer being written: status line, headers and body, sent in one write
  std::string extra_headers_;  // add_header's lines for the next answer
  Shared& shared_;
  Worker& worker_;
  std::shared_ptr<const flow::Routes> routes_;  // keeps flow_ alive across a reload
  const flow::Flow* flow_ = nullptr;            // the webhook's flow; null for the publish API
  std::optional<bus::Batch> batch_;             // a published batch awaiting its commit
  std::vector<store::Ingest> published_;        // its events and lanes, for the flows' stats
  std::vector<uint8_t> matched_;                // the webhook's flow's branches it was routed to (stats)
  bool first_ = true;
  bool busy_ = false;
  bool keep_alive_ = true;
  bool head_ = false;  // the request's header was read and it is a HEAD: its answer has no body
  int64_t received_ms_ = 0;
  uint64_t body_reserved_ = 0;  // of Shared::body_bytes, for this request
  // Ingest latency (observe_answer, observe_store): set for webhooks and published batches only.
  std::chrono::steady_clock::time_point started_{};
  std::chrono::steady_clock::time_point handed_{};  // to the store
  unsigned answer_status_ = 0;
  std::vector<char> discard_;
};

}  // namespace evr::listener
