// The outbound client against the recording sink (and a few hostile servers), all on 127.0.0.1.
#include "evrouter/http/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "support/harness.h"
#include "support/sink.h"
#include "support/slowdown.h"
#include "support/tls.h"

namespace evr::http {
namespace {

using namespace std::chrono_literals;
using test::Recorded;
using test::Reply;
using test::Sink;
using Clock = std::chrono::steady_clock;
namespace net = boost::asio;

Request post(std::string target, std::string body = "{}", Headers headers = {}) {
  Request r;
  r.target = std::move(target);
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

class ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> client(const std::string& url, ClientOptions options = {}) {
    auto ep = Endpoint::parse(url);
    EXPECT_TRUE(ep) << url;
    return make_client(ioc_, ep ? std::move(*ep) : Endpoint{}, std::move(options));
  }

  // Runs the io_context until `done()` holds; false if it did not within `timeout`.
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    ioc_.restart();
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      ioc_.run_one_for(10ms);
      if (ioc_.stopped()) ioc_.restart();
    }
    return true;
  }

  // Sends one request and waits for its result; the callback must run exactly once.
  Result send(Client& c, Request request, std::chrono::milliseconds timeout = 5s) {
    auto out = std::make_shared<std::vector<Result>>();
    c.send(std::move(request), [out](Result r) { out->push_back(std::move(r)); });
    EXPECT_TRUE(run_until([&] { return !out->empty(); }, timeout)) << "no callback";
    run_until([] { return false; }, 20ms);  // a second call would show up here
    EXPECT_EQ(out->size(), out->empty() ? 0u : 1u);
    if (out->empty()) return Result{"test: no callback", {}, {}};
    return std::move(out->front());
  }

  net::io_context ioc_;
};

TEST_F(ClientTest, PostArrivesExactly) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.status = 202;
    reply.headers = {{"X-Reply", "yes"}, {"Content-Type", "application/json"}};
    reply.body = R"({"accepted":true})";
    return reply;
  });
  auto c = client(sink.url() + "/base");
  const std::string body = R"({"id":1,"text":"h\u00e9llo"})";
  auto r =
      send(*c, post("/base/hook?x=1&y=2", body,
                    {{"Content-Type", "application/json"}, {"X-Evrouter-Id", "abc-123"}, {"X-Empty", ""}}));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.status, 202);
  EXPECT_EQ(r.response.body, R"({"accepted":true})");
  EXPECT_EQ(r.response.header("x-reply"), "yes");
  EXPECT_GE(r.latency.count(), 0);

  ASSERT_EQ(sink.count(), 1u);
  const auto rec = sink.requests().front();
  EXPECT_EQ(rec.method, "POST");
  EXPECT_EQ(rec.target, "/base/hook?x=1&y=2");
  EXPECT_EQ(rec.body, body);
  EXPECT_EQ(rec.header("content-type"), "application/json");
  EXPECT_EQ(rec.header("x-evrouter-id"), "abc-123");
  EXPECT_TRUE(rec.headers.count("x-empty"));
  EXPECT_EQ(rec.header("content-length"), std::to_string(body.size()));
  EXPECT_EQ(rec.header("host"), "127.0.0.1:" + std::to_string(sink.port()));
  EXPECT_EQ(rec.header("user-agent"), "evrouter/0.1");
  EXPECT_EQ(c->endpoint().base_path, "/base");
}

TEST_F(ClientTest, ClientOwnsHostAndLengthHeaders) {
  Sink sink;
  auto c = client(sink.url());
  auto r = send(
      *c, post("/", "abc", {{"Host", "evil.example"}, {"Content-Length", "99"}, {"User-Agent", "me/1"}}));
  ASSERT_TRUE(r.ok()) << r.error;
  const auto rec = sink.requests().at(0);
  EXPECT_EQ(rec.header("host"), "127.0.0.1:" + std::to_string(sink.port()));
  EXPECT_EQ(rec.header("content-length"), "3");
  EXPECT_EQ(rec.header("user-agent"), "me/1");
  EXPECT_EQ(rec.body, "abc");
}

TEST_F(ClientTest, GetAndHeadWithoutBody) {
  Sink sink;
  sink.set_handler([](const Recorded& rec) {
    Reply reply;
    reply.body = rec.method == "HEAD" ? "" : "payload";
    return reply;
  });
  auto c = client(sink.url());
  Request get;
  get.method = "GET";
  get.target = "/status";
  auto r = send(*c, get);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.body, "payload");
  Request head = get;
  head.method = "HEAD";
  r = send(*c, head);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "");
  const auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].header("content-length"), "");
  EXPECT_EQ(reqs[1].method, "HEAD");
  EXPECT_EQ(sink.connections(), 1u);
}

TEST_F(ClientTest, EmptyPostSaysContentLengthZeroAndExtensionMethodsGoAsTheyAre) {
  Sink sink;
  auto c = client(sink.url());
  auto r = send(*c, post("/empty", ""));
  ASSERT_TRUE(r.ok()) << r.error;
  Request purge;
  purge.method = "PURGE";
  purge.target = "/cache?x=1";
  r = send(*c, purge);
  ASSERT_TRUE(r.ok()) << r.error;
  Request del;
  del.method = "DELETE";
  del.target = "/item/1";
  del.body = "why";
  r = send(*c, del);
  ASSERT_TRUE(r.ok()) << r.error;
  const auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].header("content-length"), "0");
  EXPECT_EQ(reqs[0].body, "");
  EXPECT_EQ(reqs[1].method, "PURGE");
  EXPECT_EQ(reqs[1].target, "/cache?x=1");
  EXPECT_EQ(reqs[1].header("content-length"), "");
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_EQ(reqs[2].header("content-length"), "3");
  EXPECT_EQ(reqs[2].body, "why");
  EXPECT_EQ(sink.connections(), 1u) << "each request left the stream reusable";
}

TEST_F(ClientTest, InvalidRequestsFailWithoutSending) {
  Sink sink;
  auto c = client(sink.url());
  auto r = send(*c, post("/", "{}", {{"X-Bad", "a\r\nInjected: 1"}}));
  EXPECT_EQ(r.error, "request: invalid header X-Bad");
  r = send(*c, post("/a b"));
  EXPECT_EQ(r.error, "request: invalid target");
  Request bad_method = post("/");
  bad_method.method = "PO ST";
  r = send(*c, bad_method);
  EXPECT_EQ(r.error, "request: invalid method");
  EXPECT_EQ(sink.count(), 0u);
}

TEST_F(ClientTest, KeepAliveReusesOneConnection) {
  Sink sink;
  auto c = client(sink.url());
  for (int i = 0; i < 25; ++i) {
    auto r = send(*c, post("/n/" + std::to_string(i), std::to_string(i)));
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.response.status, 200);
  }
  EXPECT_EQ(sink.count(), 25u);
  EXPECT_EQ(sink.connections(), 1u);
  EXPECT_EQ(sink.requests().back().body, "24");
}

TEST_F(ClientTest, ServerConnectionCloseIsHonoured) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.close = true;
    return reply;
  });
  auto c = client(sink.url());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send(*c, post("/")).ok());
  EXPECT_EQ(sink.connections(), 3u);
}

TEST_F(ClientTest, ConcurrentRequestsOpenStreamsAsNeededAndPoolThem) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 200ms;
    return reply;
  });
  ClientOptions options;
  options.max_idle = 5;
  auto c = client(sink.url(), options);
  auto batch = [&] {
    std::vector<Result> results;
    for (int i = 0; i < 8; ++i)
      c->send(post("/c/" + std::to_string(i)), [&results](Result r) { results.push_back(std::move(r)); });
    const auto start = Clock::now();
    EXPECT_TRUE(run_until([&] { return results.size() == 8; }));
    EXPECT_LT(Clock::now() - start, test::scaled(1500ms));  // in parallel, not 8 x 200ms
    for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.error;
  };
  batch();
  EXPECT_EQ(sink.max_in_flight(), 8);
  EXPECT_EQ(sink.connections(), 8u);
  batch();  // 5 pooled streams reused, 3 new ones
  EXPECT_EQ(sink.connections(), 11u);
  EXPECT_EQ(sink.count(), 16u);
}

TEST_F(ClientTest, ConnectRefusedFailsFast) {
  const uint16_t port = test::free_port();  // nothing listens there
  auto c = client("http://127.0.0.1:" + std::to_string(port));
  const auto start = Clock::now();
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error, "connect: Connection refused");
  EXPECT_LT(Clock::now() - start, test::scaled(1s));
}

TEST_F(ClientTest, UnansweredRequestTimesOut) {
  // A listening socket that never accepts: the kernel completes the TCP handshake, nobody answers.
  net::ip::tcp::acceptor hole(ioc_, {net::ip::make_address("127.0.0.1"), 0});
  ClientOptions options;
  options.request_timeout = 300ms;
  auto c = client("http://127.0.0.1:" + std::to_string(hole.local_endpoint().port()), options);
  const auto start = Clock::now();
  auto r = send(*c, post("/"));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.error, "timeout");
  EXPECT_GE(elapsed, 280ms);
  EXPECT_LT(elapsed, 2s);
}

TEST_F(ClientTest, SlowReplyTimesOut) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 3s;
    return reply;
  });
  ClientOptions options;
  options.request_timeout = 200ms;
  auto c = client(sink.url(), options);
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error, "timeout");
  EXPECT_EQ(sink.count(), 1u);  // a timeout is never retried
}

TEST_F(ClientTest, ConnectTimesOutWhenSynIsDropped) {
  // A listener with a full accept queue drops new SYNs, so connect() never completes.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(50ms);

  ClientOptions options;
  options.connect_timeout = 300ms;
  auto c = client("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), options);
  const auto start = Clock::now();
  auto r = send(*c, post("/"));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.error, "connect: timeout");
  EXPECT_GE(elapsed, 280ms);
  EXPECT_LT(elapsed, 2s);
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST_F(ClientTest, IdleConnectionClosedByServerIsReplaced) {
  Sink sink;
  auto c = client(sink.url());
  ASSERT_TRUE(send(*c, post("/1")).ok());
  sink.close_connections();           // the server's idle timeout
  std::this_thread::sleep_for(20ms);  // let the FIN arrive
  auto r = send(*c, post("/2"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(sink.count(), 2u);
  EXPECT_EQ(sink.connections(), 2u);
}

// Idle for longer than the client's 200 ms of trust: the stream is looked at before it is reused (a
// closed one is dropped without a request on it). Shorter, as above, it is reused without a look and the
// request is retried on a new stream when nothing comes back. Both end the same for the caller.
TEST_F(ClientTest, LongIdleConnectionClosedByServerIsReplacedBeforeSending) {
  Sink sink;
  auto c = client(sink.url());
  ASSERT_TRUE(send(*c, post("/1")).ok());
  sink.close_connections();
  std::this_thread::sleep_for(300ms);
  auto r = send(*c, post("/2"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(sink.count(), 2u);
  EXPECT_EQ(sink.connections(), 2u);
}

TEST_F(ClientTest, ReusedStreamDyingSilentlyIsRetriedOnce) {
  Sink sink;
  sink.set_handler([&](const Recorded& rec) {
    Reply reply;
    if (rec.target == "/2" && sink.count() == 1) reply.drop = true;  // first arrival of /2: no answer
    return reply;
  });
  auto c = client(sink.url());
  ASSERT_TRUE(send(*c, post("/1")).ok());
  auto r = send(*c, post("/2"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.status, 200);
  const auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].target, "/2");
  EXPECT_EQ(reqs[2].target, "/2");
  EXPECT_EQ(sink.connections(), 2u);
}

TEST_F(ClientTest, FreshStreamDyingIsNotRetried) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.drop = true;
    return reply;
  });
  auto c = client(sink.url());
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error, "read: end of stream");
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(ClientTest, LargeResponseBodyIsCapped) {
  Sink sink;
  sink.set_handler([](const Recorded& rec) {
    Reply reply;
    const std::size_t size = rec.target == "/huge" ? 3 * 1024 * 1024 : 100 * 1024;
    reply.body.resize(size);
    for (std::size_t i = 0; i < size; ++i) reply.body[i] = static_cast<char>('a' + i % 26);
    return reply;
  });
  ClientOptions options;
  options.max_response_body = 1000;
  auto c = client(sink.url(), options);
  auto r = send(*c, post("/big"));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.response.body.size(), 1000u);
  EXPECT_EQ(r.response.body.substr(0, 3), "abc");
  EXPECT_EQ(r.response.body[999], static_cast<char>('a' + 999 % 26));
  ASSERT_TRUE(send(*c, post("/big")).ok());
  EXPECT_EQ(sink.connections(), 1u);  // the rest was read and dropped: the stream stayed usable

  r = send(*c, post("/huge"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.body.size(), 1000u);
  ASSERT_TRUE(send(*c, post("/big")).ok());
  EXPECT_EQ(sink.connections(), 2u);  // too much to drain: that stream was closed
}

TEST_F(ClientTest, MalformedResponsesAreErrors) {
  Sink sink;
  sink.set_handler([](const Recorded& rec) {
    Reply reply;
    if (rec.target == "/garbage") reply.raw = "this is not http\r\n\r\n";
    if (rec.target == "/status") reply.raw = "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n";
    if (rec.target == "/truncated") reply.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    if (rec.target == "/chunk") reply.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    if (rec.target == "/header") reply.raw = "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n";
    if (rec.target == "/eof-body") reply.raw = "HTTP/1.1 200 OK\r\n\r\nuntil eof";
    return reply;
  });
  auto c = client(sink.url());
  for (const char* target : {"/garbage", "/status", "/truncated", "/chunk", "/header"}) {
    auto r = send(*c, post(target));
    EXPECT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.error.rfind("read: ", 0), 0u) << target << ": " << r.error;
  }
  EXPECT_EQ(send(*c, post("/truncated")).error, "read: partial message");
  // A body delimited by the end of the connection is complete, not an error.
  auto r = send(*c, post("/eof-body"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.response.body, "until eof");
  // And the client is still fine afterwards.
  ASSERT_TRUE(send(*c, post("/")).ok());
}

// A one-connection server on a raw socket, for behaviour the sink cannot produce: it accepts one
// connection, reads the request, then runs `script` on the socket in its own thread.
class RawServer {
 public:
  explicit RawServer(std::function<void(int fd)> script) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener_, 4);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      char buf[4096];
      (void)::recv(fd, buf, sizeof buf, 0);
      script(fd);
      ::close(fd);
    });
  }
  ~RawServer() {
    ::shutdown(listener_, SHUT_RDWR);  // unblocks accept() if nobody came
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(ClientTest, SlowDripHitsTheRequestDeadline) {
  std::atomic<bool> stop{false};
  RawServer server([&](int fd) {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    (void)::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    for (int i = 0; i < 100 && !stop; ++i) {  // one byte every 20ms: each read makes progress
      if (::send(fd, "x", 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(20ms);
    }
  });
  ClientOptions options;
  options.request_timeout = 300ms;
  auto c = client("http://127.0.0.1:" + std::to_string(server.port()), options);
  const auto start = Clock::now();
  auto r = send(*c, post("/"));
  const auto elapsed = Clock::now() - start;
  stop = true;
  EXPECT_EQ(r.error, "timeout");  // the deadline covers the whole exchange, not each read
  EXPECT_GE(elapsed, 280ms);
  EXPECT_LT(elapsed, test::scaled(1s));
}

TEST_F(ClientTest, ResetMidBodyIsAnError) {
  RawServer server([](int fd) {
    const std::string part = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial";
    (void)::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(50ms);
    linger lin{1, 0};  // close with RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  });
  auto c = client("http://127.0.0.1:" + std::to_string(server.port()));
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error, "read: Connection reset by peer");
}

TEST_F(ClientTest, StalledTlsHandshakeHitsTheConnectTimeout) {
  RawServer server([](int fd) {
    char buf[256];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {  // swallow the ClientHello, never answer
    }
  });
  ClientOptions options;
  options.connect_timeout = 300ms;
  auto c = client("https://127.0.0.1:" + std::to_string(server.port()), options);
  const auto start = Clock::now();
  auto r = send(*c, post("/"));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.error, "connect: timeout");
  EXPECT_GE(elapsed, 280ms);
  EXPECT_LT(elapsed, 2s);
}

TEST_F(ClientTest, CloseCallsEveryPendingCallbackOnce) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 5s;
    return reply;
  });
  auto c = client(sink.url());
  std::vector<std::string> errors;
  for (int i = 0; i < 3; ++i) c->send(post("/p"), [&errors](Result r) { errors.push_back(r.error); });
  ASSERT_TRUE(run_until([&] { return sink.count() == 3; }, 3s));
  const auto start = Clock::now();
  c->close();
  ASSERT_TRUE(run_until([&] { return errors.size() == 3; }, 1s));
  EXPECT_LT(Clock::now() - start, test::scaled(500ms));
  run_until([] { return false; }, 50ms);
  ASSERT_EQ(errors.size(), 3u);
  for (const auto& e : errors) EXPECT_EQ(e, "client closed");
  // After close, sends fail at once (still through the callback).
  auto r = send(*c, post("/after"));
  EXPECT_EQ(r.error, "client closed");
}

TEST_F(ClientTest, DestroyingTheClientStillCallsBack) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 5s;
    return reply;
  });
  int calls = 0;
  std::string error;
  {
    auto c = client(sink.url());
    c->send(post("/"), [&](Result r) {
      ++calls;
      error = r.error;
    });
    ASSERT_TRUE(run_until([&] { return sink.count() == 1; }, 3s));
  }
  ASSERT_TRUE(run_until([&] { return calls == 1; }, 1s));
  run_until([] { return false; }, 20ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(error, "client closed");
}

class TlsClientTest : public ClientTest {
 protected:
  test::TempDir dir_;
};

TEST_F(TlsClientTest, HttpsWithTrustedCaSucceedsAndSendsSni) {
  const auto files = test::make_test_certs(dir_.path());
  test::SinkOptions so;
  so.tls_cert = files.server_cert;
  so.tls_key = files.server_key;
  Sink sink(so);
  EXPECT_EQ(sink.url().rfind("https://", 0), 0u);
  ClientOptions options;
  options.ca_file = files.ca_cert;

  auto by_name = client("https://localhost:" + std::to_string(sink.port()) + "/api", options);
  for (int i = 0; i < 3; ++i) {
    auto r = send(*by_name, post("/api/hook", "secret body"));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.response.status, 200);
  }
  auto rec = sink.requests().at(0);
  EXPECT_EQ(rec.sni, "localhost");
  EXPECT_EQ(rec.body, "secret body");
  EXPECT_EQ(rec.header("host"), "localhost:" + std::to_string(sink.port()));
  EXPECT_EQ(sink.connections(), 1u);  // TLS streams are pooled too

  auto by_ip = client("https://127.0.0.1:" + std::to_string(sink.port()), options);
  auto r = send(*by_ip, post("/"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(sink.requests().back().sni, "");  // no SNI for an IP address
}

TEST_F(TlsClientTest, UntrustedCertificateFails) {
  const auto files = test::make_test_certs(dir_.path());
  test::SinkOptions so;
  so.tls_cert = files.server_cert;
  so.tls_key = files.server_key;
  Sink sink(so);
  auto c = client("https://localhost:" + std::to_string(sink.port()));  // system roots only
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error.rfind("tls: certificate verify failed", 0), 0u) << r.error;
  EXPECT_EQ(sink.count(), 0u);

  ClientOptions insecure;
  insecure.tls_verify = false;
  auto c2 = client("https://localhost:" + std::to_string(sink.port()), insecure);
  r = send(*c2, post("/"));
  EXPECT_TRUE(r.ok()) << r.error;
}

TEST_F(TlsClientTest, HostNameMismatchFails) {
  const auto files = test::make_test_certs(dir_.path(), {"DNS:other.example"});
  test::SinkOptions so;
  so.tls_cert = files.server_cert;
  so.tls_key = files.server_key;
  Sink sink(so);
  ClientOptions options;
  options.ca_file = files.ca_cert;
  auto c = client("https://localhost:" + std::to_string(sink.port()), options);
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error, "tls: certificate verify failed (hostname mismatch)");
  auto by_ip = client("https://127.0.0.1:" + std::to_string(sink.port()), options);
  r = send(*by_ip, post("/"));
  EXPECT_EQ(r.error, "tls: certificate verify failed (IP address mismatch)");
  EXPECT_EQ(sink.count(), 0u);
}

TEST_F(TlsClientTest, BadCaFileFailsEverySend) {
  ClientOptions options;
  options.ca_file = (dir_ / "missing.pem").string();
  auto c = client("https://localhost:1", options);
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error.rfind("tls: cannot load ca_file", 0), 0u) << r.error;
}

TEST_F(TlsClientTest, PlainHttpServerBehindHttpsFails) {
  Sink sink;  // plain
  auto c = client("https://127.0.0.1:" + std::to_string(sink.port()));
  auto r = send(*c, post("/"));
  EXPECT_EQ(r.error.rfind("tls: ", 0), 0u) << r.error;
}

}  // namespace
}  // namespace evr::http
