// libFuzzer target: the ingest HTTP request path. The input is raw bytes sent by a client on one
// connection (possibly several pipelined requests); a real listener session (src/listener/session.cpp,
// with the server's limits) reads them from one end of a socket pair, routes to a listener or the publish
// API, verifies signatures and keys, validates the JSON and answers. No network: the session's socket is
// a local socketpair, the pipeline is an in-memory stand-in that accepts, reports duplicates and fails
// commits in turn.
//
// Checked for every input:
// - every answer (1xx aside) is well-formed HTTP with Content-Type application/json and a JSON body;
// - a /hooks/ request whose X-Shopify-Hmac-Sha256 is not the body's HMAC (computed here with OpenSSL)
//   never gets a 2xx, nor does a /v1/events request without the publish key;
// - a request whose Content-Length exceeds max_body_bytes gets a 413;
// - a commit happens only for a correctly signed webhook or an authenticated publish, and a failed commit
//   is never answered 2xx; a committed event's text from headers (ids, type, kept headers) is UTF-8, so
//   the store can write it as JSON, and its type holds no control character (it is sent as a header);
// - the session ends (no hang) and answers in order.
// The literal `{hmac}` in a request's headers is replaced by the correct signature of that request's body,
// so that the fuzzer reaches the paths behind verification.
//   scripts/fuzz.sh http_request [seconds]
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "evrouter/common/log.h"
#include "evrouter/common/utf8.h"
#include "evrouter/flow/routes.h"
#include "evrouter/listener/server.h"
#include "listener/session.h"
#include "listener/worker.h"

namespace {

namespace beast_http = boost::beast::http;
using namespace evr;

constexpr std::string_view kSecret = "fuzz-shopify-secret";
constexpr std::string_view kPublishKey = "fuzz-publish-key-0001";
constexpr std::string_view kListener = "fuzz-listener";
constexpr uint64_t kMaxBody = 4096;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "http_request fuzz: %s\n", why.c_str());
  std::abort();
}

std::string hmac_b64(std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

config::Config make_config() {
  ::setenv("EVR_FUZZ_SHOPIFY_SECRET", std::string(kSecret).c_str(), 1);
  ::setenv("EVR_FUZZ_PUBLISH_KEY", std::string(kPublishKey).c_str(), 1);
  config::Config cfg;
  cfg.server.max_body_bytes = kMaxBody;
  cfg.server.request_timeout = std::chrono::seconds(2);
  cfg.server.idle_timeout = std::chrono::seconds(2);
  cfg.publish.max_entries = 4;
  cfg.publish.keys.push_back(
      {"fuzz", {config::SecretRef::Kind::env, "EVR_FUZZ_PUBLISH_KEY", {}}, {"app.*"}, {}});

  config::Destination d;
  d.name = "sink";
  d.connection = "sink";
  d.path = "/sink";
  config::Flow shop;
  shop.name = "orders";
  shop.source.type = "shopify";
  shop.source.secrets.push_back({config::SecretRef::Kind::env, "EVR_FUZZ_SHOPIFY_SECRET", {}});
  shop.source.topics = {"orders/create", "orders/paid"};
  config::Branch big;
  big.name = "big";
  big.match = nlohmann::json::parse(R"({"detail":{"total_price":[{"numeric":[">",100]}]}})");
  big.destinations.push_back(d);
  config::Branch rest;
  rest.name = "rest";
  rest.destinations.push_back(d);
  shop.branches = {big, rest};
  cfg.flows.push_back(shop);

  config::Flow bus;
  bus.name = "bus";
  bus.source.type = "bus";
  bus.source.sources = {"app.orders"};
  config::Branch all;
  all.name = "all";
  all.destinations.push_back(d);
  bus.branches.push_back(all);
  cfg.flows.push_back(bus);
  return cfg;
}

// The daemon's part, in memory: commits answer accepted, duplicate, failed in turn.
class FakePipeline final : public listener::Pipeline {
 public:
  explicit FakePipeline(const config::Config& cfg)
      : routes_(flow::Routes::build(cfg, [](const config::Flow&) { return std::string(kListener); })) {}

  std::shared_ptr<const flow::Routes> routes() const override { return routes_; }

  void commit(store::Ingest ingest, std::function<void(store::CommitResult)> done) override {
    if (!ingest.event) fail("a commit without an event");
    const event::Event& e = *ingest.event;
    for (const auto& [name, value] : e.headers) {
      if (!utf8::valid(value)) fail("a committed event whose header " + name + " is not UTF-8");
    }
    for (const std::string* text :
         {&e.type, &e.webhook_id, &e.dedup_key, &e.shop_domain, &e.correlation_id}) {
      if (!utf8::valid(*text)) fail("a committed event with an id or type that is not UTF-8");
    }
    for (const char c : e.type) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        fail("a committed event type with a control character");
    }
    payloads.push_back(e.payload);
    done(next_result(ingest.event->id));
  }

  void commit_batch(std::vector<store::Ingest> ingests,
                    std::function<void(std::vector<store::CommitResult>)> done) override {
    ++batches;
    std::vector<store::CommitResult> results;
    const int turn = turn_++ % 3;
    for (const auto& in : ingests) {
      store::CommitResult r;
      r.status = turn == 2 ? store::CommitResult::Status::failed : store::CommitResult::Status::accepted;
      r.event_id = in.event ? in.event->id : "";
      results.push_back(std::move(r));
    }
    if (turn == 2) ++failed;
    done(std::move(results));
  }

  bool ready() const override { return true; }

  std::vector<std::string> payloads;  // bodies of committed webhooks
  int batches = 0;
  int failed = 0;  // commits (webhook or batch) that failed

 private:
  store::CommitResult next_result(const std::string& id) {
    store::CommitResult r;
    r.event_id = id;
    switch (turn_++ % 3) {
      case 0:
        r.status = store::CommitResult::Status::accepted;
        break;
      case 1:
        r.status = store::CommitResult::Status::duplicate;
        break;
      default:
        r.status = store::CommitResult::Status::failed;
        r.error = "fuzz: store down";
        ++failed;
        return r;
    }
    return r;
  }

  std::shared_ptr<const flow::Routes> routes_;
  int turn_ = 0;
};

struct Setup {
  Setup() {
    log::set_level("error");
    spdlog::default_logger_raw()->set_level(spdlog::level::off);
  }
  config::Config cfg = make_config();
  FakePipeline pipeline{cfg};
  listener::Shared shared{cfg.server, pipeline};
};

// One request as our own parser (with the session's limits) reads it from `in`; what it consumed.
struct Parsed {
  bool complete = false;
  bool too_large = false;  // Content-Length or chunked body over the limit
  bool head = false;       // a HEAD whose header was read (within the limits): answered without a body
  std::size_t consumed = 0;
  std::size_t header_bytes = 0;
  beast_http::request<beast_http::string_body> msg;
};

Parsed parse_one(std::string_view in) {
  Parsed p;
  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(kMaxBody);
  parser.eager(false);
  boost::beast::error_code ec;
  std::size_t off = 0;
  while (!parser.is_header_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(in.data() + off, in.size() - off), ec);
    off += n;
    if (ec || n == 0) {
      if (ec == beast_http::error::body_limit) p.too_large = true;
      p.consumed = off;
      return p;
    }
  }
  p.header_bytes = off;
  if (auto len = parser.content_length(); len && *len > kMaxBody) {
    p.too_large = true;
    return p;
  }
  p.head = parser.get().method() == beast_http::verb::head;
  parser.eager(true);
  while (!parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(in.data() + off, in.size() - off), ec);
    off += n;
    if (ec == beast_http::error::need_more && off == in.size()) {
      parser.put_eof(ec);
      if (!ec && parser.is_done()) break;
      return p;
    }
    if (ec == beast_http::error::body_limit) p.too_large = true;
    if (ec || n == 0) return p;
  }
  p.consumed = off;
  p.complete = true;
  p.msg = parser.release();
  return p;
}

// Replaces `{hmac}` in each request's headers by the HMAC of its body.
std::string sign_placeholders(std::string in) {
  constexpr std::string_view token = "{hmac}";
  std::size_t start = 0;
  for (int guard = 0; guard < 64 && start < in.size(); ++guard) {
    Parsed p = parse_one(std::string_view(in).substr(start));
    if (!p.complete) break;
    const std::size_t at = in.find(token, start);
    if (at != std::string::npos && at < start + p.header_bytes) {
      in.replace(at, token.size(), hmac_b64(p.msg.body()));
      p = parse_one(std::string_view(in).substr(start));
      if (!p.complete) break;
    }
    start += p.consumed;
  }
  return in;
}

std::string target_path(const beast_http::request<beast_http::string_body>& req) {
  std::string t(req.target());
  if (auto q = t.find('?'); q != std::string::npos) t.resize(q);
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Setup setup;
  const std::string input = sign_placeholders(std::string(reinterpret_cast<const char*>(data), size));

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) fail("socketpair");
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
  setup.pipeline.payloads.clear();
  setup.pipeline.batches = 0;
  setup.pipeline.failed = 0;

  std::string answers;
  {
    listener::Worker worker;
    listener::Session::Socket socket(worker.ioc);
    socket.assign(boost::asio::ip::tcp::v4(), fds[0]);
    std::make_shared<listener::Session>(std::move(socket), setup.shared, worker)->start();
    std::size_t sent = 0;
    bool shut = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    char buf[16 * 1024];
    while (true) {
      if (sent < input.size()) {
        const ssize_t n = ::send(fds[1], input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) sent = input.size();  // the session closed
      }
      if (sent == input.size() && !shut) {
        ::shutdown(fds[1], SHUT_WR);
        shut = true;
      }
      ssize_t n;
      while ((n = ::recv(fds[1], buf, sizeof buf, 0)) > 0) answers.append(buf, static_cast<std::size_t>(n));
      worker.ioc.restart();
      const std::size_t ran = worker.ioc.run_for(std::chrono::milliseconds(5));
      if (ran == 0 && worker.ioc.stopped() && shut && worker.sessions.empty()) break;
      if (std::chrono::steady_clock::now() > deadline) fail("the session did not finish within 8 s");
    }
    ssize_t n;
    while ((n = ::recv(fds[1], buf, sizeof buf, 0)) > 0) answers.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[1]);

  // Our reading of the requests, in order.
  std::vector<Parsed> requests;
  for (std::size_t start = 0; start < input.size() && requests.size() < 64;) {
    Parsed p = parse_one(std::string_view(input).substr(start));
    const bool complete = p.complete;
    const std::size_t consumed = p.consumed;
    requests.push_back(std::move(p));
    if (!complete || consumed == 0) break;
    start += consumed;
  }

  // The answers, in order.
  std::size_t off = 0, index = 0;
  std::size_t signed_ok = 0, published_ok = 0;
  int store_unavailable = 0;
  for (const auto& r : requests) {
    if (!r.complete) continue;
    const std::string path = target_path(r.msg);
    if (path.rfind("/hooks/", 0) == 0 && r.msg[("X-Shopify-Hmac-Sha256")] == hmac_b64(r.msg.body()))
      ++signed_ok;
    if (path == "/v1/events") ++published_ok;
  }
  while (off < answers.size()) {
    beast_http::response_parser<beast_http::string_body> rp;
    rp.eager(true);
    // A HEAD request's answer has the GET answer's headers (its Content-Length too) and no body.
    const bool head = index < requests.size() && requests[index].head;
    rp.skip(head);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!rp.is_done()) {
      const std::size_t n =
          rp.put(boost::asio::buffer(answers.data() + off + used, answers.size() - off - used), ec);
      used += n;
      // The answers ended inside this one (put makes no progress on nothing): a truncated answer.
      if (off + used == answers.size() && (ec == beast_http::error::need_more || (!ec && n == 0))) {
        rp.put_eof(ec);
        break;
      }
      if (ec) break;
    }
    if (ec || !rp.is_done()) fail("a malformed answer: " + ec.message() + "\n" + answers.substr(off));
    off += used;
    const auto& res = rp.get();
    if (res.result_int() < 200) continue;  // 100 Continue
    if (res[beast_http::field::content_type] != "application/json")
      fail("an answer without application/json");
    if (head && !res.body().empty()) fail("a HEAD answer with a body");
    if (!head && !nlohmann::json::accept(res.body())) fail("an answer whose body is not JSON: " + res.body());
    const auto body = head ? nlohmann::json::object() : nlohmann::json::parse(res.body());
    if (!body.is_object()) fail("an answer whose body is not a JSON object: " + res.body());
    const unsigned status = res.result_int();
    if (status == 503 && body.value("error", "") == "store_unavailable") ++store_unavailable;
    if (index < requests.size()) {
      const Parsed& req = requests[index];
      if (req.complete) {
        const std::string path = target_path(req.msg);
        const bool good_signature = req.msg["X-Shopify-Hmac-Sha256"] == hmac_b64(req.msg.body());
        const std::string_view auth = req.msg[beast_http::field::authorization];
        const bool good_key =
            req.msg["X-Api-Key"] == kPublishKey || (auth.size() > 7 && auth.substr(7) == kPublishKey);
        if (status / 100 == 2 && path.rfind("/hooks/", 0) == 0 && !good_signature)
          fail("a 2xx for a webhook with a bad signature");
        if (status / 100 == 2 && path == "/v1/events" && !good_key)
          fail("a 2xx for a publish without the key");
        if (status / 100 == 2 && path != "/healthz" && path != "/readyz" && path != "/v1/events" &&
            path.rfind("/hooks/", 0) != 0)
          fail("a 2xx for " + path);
      } else if (req.too_large && status != 413 && status != 400 && status != 404 && status != 405) {
        fail("an oversized request answered " + std::to_string(status));
      }
    }
    ++index;
  }
  if (index > requests.size()) fail("more answers than requests");
  if (setup.pipeline.payloads.size() > signed_ok) fail("a webhook committed without a valid signature");
  for (const auto& body : setup.pipeline.payloads) {
    if (!nlohmann::json::accept(body)) fail("a committed webhook body that is not JSON");
  }
  // Every failed commit was answered 503 store_unavailable (so never 2xx), and nothing else was.
  if (store_unavailable != setup.pipeline.failed)
    fail("failed commits and 503 store_unavailable answers differ");
  if (static_cast<std::size_t>(setup.pipeline.batches) > published_ok)
    fail("a batch committed without a request");
  return 0;
}
