#include "listener/session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "evrouter/common/log.h"
#include "evrouter/event/event.h"
#include "evrouter/pattern/selection.h"
#include "evrouter/source/source.h"
#include "listener/ingest_metrics.h"
#include "listener/worker.h"

namespace evr::listener {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

std::string error_body(const char* code, const std::string& message) {
  nlohmann::json j{{"error", code}, {"message", message}};
  return j.dump();
}

// {"status":"<status>","event_id":"<id>"}, without a JSON DOM when the id is plain (ULIDs are base32).
std::string status_body(std::string_view status, const std::string& event_id) {
  const bool plain = std::all_of(event_id.begin(), event_id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
  });
  if (!plain) return nlohmann::json{{"status", status}, {"event_id", event_id}}.dump();
  std::string body;
  body.reserve(36 + status.size() + event_id.size());
  body.append(R"({"status":")").append(status).append(R"(","event_id":")").append(event_id).append("\"}");
  return body;
}

}  // namespace

Session::Session(Socket socket, Shared& shared, Worker& worker)
    : stream_(std::move(socket)), shared_(shared), worker_(worker) {
  tls_context_ = shared_.tls.load();
  if (tls_context_) tls_.emplace(stream_, *tls_context_);
  ++shared_.sessions;
  shared_.connections.add(1);
}

Session::~Session() {
  release_body();
  worker_.sessions.erase(this);
  --shared_.sessions;
  shared_.connections.add(-1);
  if (worker_.session_closed) worker_.session_closed();
}

void Session::start() {
  worker_.sessions.insert(this);
  // Room for a typical webhook's header and the start of its body in one read: Beast reads at most the
  // buffer's free capacity (512 bytes when empty), so an empty buffer costs one recv per 512 bytes.
  buffer_.reserve(kReadBuffer);
  if (tls_) {
    handshake();
  } else {
    read_header();
  }
}

void Session::handshake() {
  // Within the request timeout, like a request's headers: a client that opens a connection and never
  // finishes its handshake holds nothing for long.
  stream_.expires_after(shared_.config.request_timeout);
  tls_->async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      self->shared_.tls_failures.inc();
      log::debug("TLS handshake failed", {{"error", ec.message()}});
      return self->close();
    }
    self->read_header();
  });
}

bool Session::reserve_body(uint64_t bytes) {
  const uint64_t before = shared_.body_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (before + bytes > shared_.config.max_body_memory) {
    shared_.body_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
  body_reserved_ = bytes;
  shared_.body_memory.add(static_cast<int64_t>(bytes));
  return true;
}

void Session::release_body() {
  if (body_reserved_ == 0) return;
  shared_.body_bytes.fetch_sub(body_reserved_, std::memory_order_relaxed);
  shared_.body_memory.add(-static_cast<int64_t>(body_reserved_));
  body_reserved_ = 0;
}

void Session::close() {
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
}

void Session::linger() {
  // The client may still be sending a body we refused. Closing with unread data makes the kernel send a
  // reset, which can destroy our answer before the client reads it: stop sending, discard what arrives
  // for a short while, then close.
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  if (ec) return close();
  stream_.expires_after(std::chrono::seconds(2));
  discard_.resize(std::size_t{16} * 1024);
  read_discard(0);
}

void Session::read_discard(std::size_t total) {
  stream_.async_read_some(net::buffer(discard_),
                          [self = shared_from_this(), total](beast::error_code ec, std::size_t n) {
                            if (ec || total + n > std::size_t{4} * 1024 * 1024) return self->close();
                            self->read_discard(total + n);
                          });
}

void Session::read_header() {
  if (shared_.draining) {
    close();
    return;
  }
  busy_ = false;
  head_ = false;
  parser_.emplace();
  parser_->header_limit(16 * 1024);
  parser_->body_limit(shared_.config.max_body_bytes);
  stream_.expires_after(first_ ? shared_.config.request_timeout
                               : std::min(shared_.config.idle_timeout, shared_.config.request_timeout * 6));
  with_stream([this](auto& stream) {
    http::async_read_header(
        stream, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  });
}

void Session::on_header(beast::error_code ec) {
  flow_ = nullptr;  // a keep-alive connection's previous request must not be counted against this one
  if (ec) {
    if (ec == http::error::header_limit) {
      reply_error(431, "headers_too_large", "request headers exceed 16 KiB", true);
    } else if (ec == http::error::body_limit) {
      // Beast checks Content-Length against the body limit while parsing the header.
      reply_error(413, "payload_too_large",
                  "body exceeds the limit of " + std::to_string(shared_.config.max_body_bytes) + " bytes",
                  true);
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reply_error(400, "bad_request", "malformed HTTP request: " + ec.message(), true);
    } else {
      close();
    }
    return;
  }
  busy_ = true;
  started_ = {};
  const auto headers_read = std::chrono::steady_clock::now();
  received_ms_ = event::now_ms();
  const auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  head_ = req.method() == http::verb::head;
  std::string_view target = req.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);

  if (target == "/healthz" || target == "/readyz") {
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      reply_error(405, "method_not_allowed", "use GET", true);
      return;
    }
    if (!shared_.pipeline.healthy()) {
      reply(503, R"({"status":"failed"})", true);  // the reason: the admin API's probes, and the log
      return;
    }
    const bool ok = target == "/healthz" || shared_.pipeline.ready();
    reply(ok ? 200 : 503, ok ? R"({"status":"ok"})" : R"({"status":"not_ready"})", true);
    return;
  }
  constexpr std::string_view prefix = "/hooks/";
  routes_ = shared_.pipeline.routes();
  flow_ = nullptr;
  if (target == "/v1/events") {
    if (!routes_ || routes_->publisher() == nullptr) {
      reply_error(404, "not_found", "the publish API is off: no publish key is configured", true);
      return;
    }
  } else if (target.substr(0, prefix.size()) != prefix) {
    reply_error(404, "not_found", "no such endpoint; webhooks go to /hooks/<listener-id>", true);
    return;
  } else {
    flow_ = routes_ ? routes_->find_listener(target.substr(prefix.size())) : nullptr;
    if (flow_ == nullptr) {
      reply_error(404, "unknown_listener", "no flow listens at this URL", true);
      return;
    }
  }
  started_ = headers_read;  // a webhook or a published batch: its answer is timed
  if (req.method() != http::verb::post) {
    add_header("Allow", "POST");
    reply_error(405, "method_not_allowed",
                flow_ ? "webhooks must be sent with POST" : "events are published with POST", true);
    return;
  }
  if (auto len = parser_->content_length(); len && *len > shared_.config.max_body_bytes) {
    reply_error(413, "payload_too_large",
                "body of " + std::to_string(*len) + " bytes exceeds the limit of " +
                    std::to_string(shared_.config.max_body_bytes),
                true);
    return;
  }
  // Bodies in memory stay within server.max_body_memory, whatever the number of connections: the body's
  // declared length (a chunked one may reach the body limit) is reserved before it is read.
  const auto declared = parser_->content_length();
  if (!reserve_body(declared ? *declared : shared_.config.max_body_bytes)) {
    add_header("Retry-After", "1");
    reply_error(503, "overloaded",
                "request bodies in memory have reached server.max_body_memory; retry shortly", true);
    return;
  }
  stream_.expires_after(shared_.config.request_timeout);
  // The whole body in as few reads as the socket allows (it is within the body limit, checked above).
  if (auto len = parser_->content_length(); len && *len > 0)
    buffer_.reserve(buffer_.size() + static_cast<std::size_t>(*len));
  auto read_body = [self = shared_from_this()] {
    self->with_stream([&self](auto& stream) {
      http::async_read(stream, self->buffer_, *self->parser_,
                       [self](beast::error_code e, std::size_t) { self->on_body(e); });
    });
  };
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    with_stream([this, &read_body](auto& stream) {
      net::async_write(stream, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this(), read_body](beast::error_code e, std::size_t) {
                         if (e) return self->close();
                         read_body();
                       });
    });
    return;
  }
  read_body();
}

void Session::on_body(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    reply_error(413, "payload_too_large",
                "body exceeds the limit of " + std::to_string(shared_.config.max_body_bytes) + " bytes",
                true);
    return;
  }
  if (ec) {
    close();
    return;
  }
  if (flow_ != nullptr) {
    handle_webhook(*flow_);
  } else {
    handle_publish();
  }
}

void Session::handle_webhook(const flow::Flow& flow) {
  auto& req = parser_->get();
  auto header = [&req](std::string_view name) -> std::string_view { return req[name]; };
  if (!flow.enabled) {
    add_header("Retry-After", "60");
    reply_error(503, "flow_disabled", "this flow is disabled; retry later");
    return;
  }
  const source::Request request{header, req.body(), received_ms_};
  if (auto refused = flow.source->verify(request)) {
    log::info("webhook rejected", {{"flow", flow.name}, {"reason", refused->code}});
    if (!refused->www_authenticate.empty()) add_header("WWW-Authenticate", refused->www_authenticate);
    reply_error(refused->status, refused->code.c_str(), refused->message);
    return;
  }
  // The whole body is validated, but only what the flow's patterns and source read is materialised.
  nlohmann::json detail;
  const bool valid = pattern::parse_selected(req.body(), flow.detail_fields, detail);
  if (!valid || !detail.is_object()) {
    log::info("webhook rejected", {{"flow", flow.name}, {"reason", "malformed_json"}});
    reply_error(400, "malformed_json", !valid ? "body is not valid JSON" : "body must be a JSON object");
    return;
  }
  auto ev = std::make_shared<event::Event>();
  auto refused = flow.source->describe(*ev, request, detail);
  if (!refused) refused = source::check_envelope_text(*ev);
  if (refused) {
    log::info("webhook rejected", {{"flow", flow.name}, {"reason", refused->code}});
    reply_error(refused->status, refused->code.c_str(), refused->message);
    return;
  }
  if (!flow.subscribed(ev->type)) {
    log::debug("webhook ignored", {{"flow", flow.name}, {"topic", ev->type}});
    count_answer(flow.name, "ignored");
    reply(200, R"({"status":"ignored","reason":"topic_not_subscribed"})");
    return;
  }
  ev->time_ms = received_ms_;
  ev->id = event::new_event_id(received_ms_);
  ev->flow = flow.name;
  ev->listener_id = flow.listener_id;
  if (ev->correlation_id.empty()) ev->correlation_id = ev->id;

  store::Ingest ingest;
  flow.route(event::envelope(*ev, std::move(detail), flow.envelope_members), ingest.lanes,
             &ingest.ordering_keys);
  matched_branches(flow, ingest.lanes, matched_);
  ev->payload = std::move(req.body());
  ingest.event = std::move(ev);
  handed_ = std::chrono::steady_clock::now();
  shared_.pipeline.commit(std::move(ingest), [self = shared_from_this(),
                                              ex = stream_.get_executor()](store::CommitResult r) mutable {
    net::post(ex, [self = std::move(self), r = std::move(r)]() mutable { self->on_committed(std::move(r)); });
  });
}

void Session::on_committed(store::CommitResult r) {
  observe_store(std::chrono::steady_clock::now() - handed_);
  using Status = store::CommitResult::Status;
  const std::string& flow = flow_->name;
  switch (r.status) {
    case Status::accepted:
      log::debug("webhook accepted", {{"flow", flow}, {"event_id", r.event_id}});
      count_answer(flow, "accepted");
      count_matched(*flow_, matched_);
      reply(200, status_body("accepted", r.event_id));
      return;
    case Status::duplicate:
      log::info("webhook duplicate", {{"flow", flow}, {"event_id", r.event_id}});
      count_answer(flow, "duplicate");
      reply(200, status_body("duplicate", r.event_id));
      return;
    case Status::failed:
      log::error("webhook not stored", {{"flow", flow}, {"error", r.error}});
      add_header("Retry-After", "5");
      reply_error(503, "store_unavailable", "the event could not be stored; retry later");
      return;
  }
}

void Session::handle_publish() {
  auto& req = parser_->get();
  const bus::Publisher& publisher = *routes_->publisher();
  // Authorization: Bearer <key>, or X-Api-Key: <key>.
  std::string_view presented = req["X-Api-Key"];
  if (const std::string_view auth = req[http::field::authorization];
      auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) {
    presented = auth.substr(7);
  }
  if (presented.empty()) {
    add_header("WWW-Authenticate", "Bearer");
    reply_error(401, "missing_api_key", "send the publish key as Authorization: Bearer <key> or X-Api-Key");
    return;
  }
  const bus::Key* key = publisher.authenticate(presented);
  if (key == nullptr) {
    log::info("publish rejected", {{"reason", "invalid_api_key"}});
    add_header("WWW-Authenticate", R"(Bearer error="invalid_token")");
    reply_error(401, "invalid_api_key", "the publish key is not known");
    return;
  }
  std::string_view correlation = req["X-Correlation-Id"];
  if (correlation.size() > 128) correlation = {};
  auto read = bus::read_batch(req.body(), *key, publisher.max_entries(), *routes_, received_ms_, correlation);
  if (auto* refused = std::get_if<bus::Refusal>(&read)) {
    log::info("publish rejected", {{"key", key->name}, {"reason", refused->code}});
    reply_error(refused->status, refused->code.c_str(), refused->message);
    return;
  }
  batch_ = std::move(std::get<bus::Batch>(read));
  if (batch_->ingests.empty()) {
    auto answer = bus::answer(*batch_, {});
    log::info("publish rejected", {{"key", key->name}, {"entries", std::to_string(batch_->slots.size())}});
    batch_.reset();
    reply(answer.status, answer.body);
    return;
  }
  std::vector<store::Ingest> ingests = std::move(batch_->ingests);
  batch_->ingests.clear();
  published_.clear();
  for (const auto& i : ingests) published_.push_back({i.event, i.lanes});
  handed_ = std::chrono::steady_clock::now();
  shared_.pipeline.commit_batch(std::move(ingests), [self = shared_from_this(), ex = stream_.get_executor()](
                                                        std::vector<store::CommitResult> results) mutable {
    net::post(ex, [self = std::move(self), results = std::move(results)]() mutable {
      self->on_published(std::move(results));
    });
  });
}

void Session::on_published(std::vector<store::CommitResult> results) {
  observe_store(std::chrono::steady_clock::now() - handed_);
  const bool failed = std::any_of(results.begin(), results.end(), [](const store::CommitResult& r) {
    return r.status == store::CommitResult::Status::failed;
  });
  if (failed) {
    log::error("published events not stored", {{"error", results.empty() ? "" : results.front().error}});
    batch_.reset();
    add_header("Retry-After", "5");
    reply_error(503, "store_unavailable", "the events could not be stored; retry later");
    return;
  }
  auto answer = bus::answer(*batch_, results);
  if (count_published(routes_, published_, results) && !worker_.published_counts_armed) {
    worker_.published_counts_armed = true;
    worker_.published_counts.expires_after(std::chrono::milliseconds(kPublishedCountsDelayMs));
    worker_.published_counts.async_wait([w = &worker_](beast::error_code) {
      w->published_counts_armed = false;
      record_published_counts();
    });
  }
  published_.clear();
  log::debug("events published",
             {{"entries", std::to_string(batch_->slots.size())}, {"stored", std::to_string(results.size())}});
  batch_.reset();
  reply(answer.status, answer.body);
}

void Session::reply_error(unsigned status, const char* code, const std::string& message, bool close_after) {
  count_answer(flow_ != nullptr ? std::string_view(flow_->name) : std::string_view(), code);
  reply(status, error_body(code, message), close_after);
}

void Session::add_header(std::string_view name, std::string_view value) {
  extra_headers_.append(name).append(": ").append(value).append("\r\n");
}

// The answer is rendered into one string and written at once: every answer here is a small JSON body
// with a handful of headers, for which Beast's serializer (a fields container, then a gathered write of
// its pieces) costs more than the bytes.
void Session::reply(unsigned status, std::string_view body, bool close_after) {
  const bool http10 = parser_ && parser_->get().version() == 10;
  answer_status_ = status;
  const bool close_conn = close_after || !keep_alive_ || shared_.draining;
  const std::string_view reason = http::obsolete_reason(http::int_to_status(status));
  char numbers[48];
  const int n = std::snprintf(numbers, sizeof numbers, "%u", status);
  answer_.clear();
  answer_.reserve(160 + extra_headers_.size() + body.size());
  answer_.append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ").append(numbers, static_cast<std::size_t>(n));
  answer_.append(" ").append(reason).append("\r\nContent-Type: application/json\r\nServer: evrouter\r\n");
  answer_.append(extra_headers_);
  extra_headers_.clear();
  if (close_conn && !http10) answer_.append("Connection: close\r\n");
  if (!close_conn && http10) answer_.append("Connection: keep-alive\r\n");
  const int m = std::snprintf(numbers, sizeof numbers, "Content-Length: %zu\r\n\r\n", body.size());
  answer_.append(numbers, static_cast<std::size_t>(m));
  if (!head_) answer_.append(body);  // a HEAD answer has the GET answer's headers, without its body
  stream_.expires_after(shared_.config.request_timeout);
  with_stream([this, close_conn](auto& stream) {
    net::async_write(stream, net::buffer(answer_),
                     [self = shared_from_this(), close_conn](beast::error_code ec, std::size_t) {
                       self->on_write(close_conn, ec);
                     });
  });
}

void Session::on_write(bool close_after, beast::error_code ec) {
  if (body_reserved_ > 0) {  // the request's body is no longer needed
    parser_.reset();
    if (close_after) {
      buffer_.clear();
      buffer_.shrink_to_fit();
    }
    release_body();
  }
  if (!ec && started_ != std::chrono::steady_clock::time_point{}) {
    observe_answer(answer_status_, std::chrono::steady_clock::now() - started_);
    started_ = {};
  }
  if (ec) {
    close();
    return;
  }
  if (close_after) {
    linger();
    return;
  }
  first_ = false;
  // A large body grew the buffer: an idle keep-alive connection goes back to the usual size.
  if (buffer_.capacity() > 4 * kReadBuffer && buffer_.size() <= kReadBuffer) {
    buffer_.shrink_to_fit();
    buffer_.reserve(kReadBuffer);
  }
  read_header();
}

}  // namespace evr::listener
