// Hostile clients against the real binary: slowloris, huge headers, floods of idle connections (also past
// the daemon's file descriptors), chunked and oversized bodies, invalid UTF-8 and deeply nested JSON. The
// daemon must stay up, keep answering well-behaved clients promptly, answer each abuse with a clear status
// and JSON error, and keep its memory bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process_rig.h"
#include "support/slowdown.h"

using namespace evr::test;
using namespace std::chrono_literals;

namespace {

// Sends `bytes`, then reads until the peer closes or `timeout`; returns what came back.
std::string raw_exchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout = 10s) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos && out.find("Connection: close") == std::string::npos &&
        out.find("connection: close") == std::string::npos) {
      // A keep-alive answer: stop once its body is in.
      const auto cl = out.find("Content-Length: ");
      if (cl != std::string::npos) {
        const auto len = std::stoul(out.substr(cl + 16));
        if (out.size() >= out.find("\r\n\r\n") + 4 + len) break;
      }
    }
  }
  ::close(fd);
  return out;
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The process's CPU time (user + system), in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string f;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i >= 14) ticks += std::stol(f);  // utime, stime
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::size_t open_files(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

std::size_t count_lines(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

std::string signed_post(const std::string& body, const std::string& extra_headers = "") {
  return "POST /hooks/" + std::string(kProcessListener) +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "X-Shopify-Topic: orders/create\r\nX-Shopify-Webhook-Id: hostile-" +
         std::to_string(std::hash<std::string>{}(body)) +
         "\r\nX-Shopify-Hmac-Sha256: " + shopify_hmac(kProcessSecret, body) + "\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// UBSan's vptr check cannot work in a process that has no free file descriptor: the first check of a type
// at an address probes the vtable through a pipe (sanitizer_common's IsAccessibleMemoryRange) and, when the
// pipe cannot be made, reports a valid object as having an "invalid vptr" ("<memory cannot be printed>").
// A daemon run out of descriptors on purpose gets, under the sanitizer build (UBSAN_OPTIONS set), the same
// suppressions plus every vptr check; every other check stays on, and every other test keeps vptr checks.
std::vector<std::string> env_without_vptr_checks(std::vector<std::string> env, const TempDir& dir) {
  const char* options = std::getenv("UBSAN_OPTIONS");
  if (options == nullptr || *options == '\0') return env;
  std::string suppressions;
  std::string kept;
  std::istringstream in(options);
  for (std::string option; std::getline(in, option, ':');) {
    if (option.rfind("suppressions=", 0) == 0) {
      std::ifstream file(option.substr(std::string("suppressions=").size()));
      suppressions.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    } else if (!option.empty()) {
      kept += option + ":";
    }
  }
  const auto path = dir / "ubsan-no-vptr.supp";
  std::ofstream(path) << suppressions << "\nvptr:*\n";
  env.push_back("UBSAN_OPTIONS=" + kept + "suppressions=" + path.string());
  return env;
}

}  // namespace

TEST(Hostile, DaemonStaysUpAndKeepsServingOthers) {
  ProcessRig s("  request_timeout: 2s\n  max_body_bytes: 65536\n");
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  ASSERT_EQ(s.post(0).status, 200);
  const long rss_before = rss_kb(d.pid());

  // Slowloris: 40 connections dribbling headers, one byte every 100 ms.
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(connect_loopback(s.port));
  // A flood of idle connections that never send anything.
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) idle.push_back(connect_loopback(s.port));
  std::atomic<bool> stop{false};
  std::thread dribble([&] {
    const std::string head = "POST /hooks/x HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    for (std::size_t i = 0; !stop && i < 200; ++i) {
      for (int fd : slow) (void)::send(fd, &head[i % head.size()], 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(100ms);
    }
  });

  // Well-behaved clients are answered promptly meanwhile.
  for (int i = 1; i <= 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = s.post(i);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(1s)) << "request " << i << " was held up";
  }

  // The slow ones are cut off at the request deadline (2 s): their sockets are closed by the daemon.
  std::this_thread::sleep_for(3s);
  int closed = 0;
  for (int fd : slow) {
    char c;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0 && ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0) ++closed;
  }
  stop = true;
  dribble.join();
  EXPECT_GE(closed, 35) << "slowloris connections must hit the request deadline";

  // Huge headers: 431 with a JSON error, before anything else is read.
  const std::string huge =
      raw_exchange(s.port, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  EXPECT_NE(huge.find("431"), std::string::npos) << huge.substr(0, 200);
  EXPECT_NE(huge.find("headers_too_large"), std::string::npos) << huge.substr(0, 400);

  // A chunked body over the limit: 413; a chunked body within it: accepted.
  std::string chunks;
  for (int i = 0; i < 20; ++i) chunks += "1000\r\n" + std::string(0x1000, ' ') + "\r\n";
  const std::string over = raw_exchange(
      s.port, "POST /hooks/" + std::string(kProcessListener) +
                  " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Shopify-Topic: orders/create\r\n"
                  "X-Shopify-Hmac-Sha256: x\r\n\r\n" +
                  chunks + "0\r\n\r\n");
  EXPECT_NE(over.find("413"), std::string::npos) << over.substr(0, 300);
  const std::string body = R"({"id":9001,"total_price":"1.00"})";
  const std::string chunked_ok = raw_exchange(
      s.port, "POST /hooks/" + std::string(kProcessListener) +
                  " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Shopify-Topic: orders/create\r\n"
                  "X-Shopify-Webhook-Id: chunked-1\r\nX-Shopify-Hmac-Sha256: " +
                  shopify_hmac(kProcessSecret, body) + "\r\nConnection: close\r\n\r\n" +
                  [&] {
                    char len[16];
                    std::snprintf(len, sizeof len, "%zx", body.size());
                    return std::string(len);
                  }() +
                  "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_NE(chunked_ok.find("200 OK"), std::string::npos) << chunked_ok.substr(0, 300);

  // Invalid UTF-8 inside a JSON string and deeply nested JSON: 400 malformed_json, correctly signed or not.
  const std::string bad_utf8 = raw_exchange(s.port, signed_post("{\"id\":1,\"note\":\"\xff\xfe\"}"));
  EXPECT_NE(bad_utf8.find("400"), std::string::npos) << bad_utf8.substr(0, 300);
  EXPECT_NE(bad_utf8.find("malformed_json"), std::string::npos) << bad_utf8.substr(0, 400);
  const std::string nested = raw_exchange(
      s.port, signed_post("{\"a\":" + std::string(30000, '[') + "1" + std::string(30000, ']') + "}"));
  EXPECT_NE(nested.find("400"), std::string::npos)
      << "[" << nested.substr(0, 300) << "]" << log_tail(d.log_path());

  // Still up, still serving, memory bounded.
  for (int fd : slow) ::close(fd);
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(d.running()) << log_tail(d.log_path());
  EXPECT_EQ(s.post(100).status, 200);
  const long rss_after = rss_kb(d.pid());
  EXPECT_LT(rss_after, rss_before + 100 * 1024)
      << "RSS grew from " << rss_before << " kB to " << rss_after << " kB";
}

// Many connections each sending a large body slowly: without a bound the daemon would hold connections x
// max_body_bytes. With server.max_body_memory the requests past it are answered 503 overloaded at once
// (before their bodies are read), the daemon's memory stays near the bound, and once the large requests
// end, webhooks are accepted again.
TEST(Hostile, LargeBodiesFromManyConnectionsStayWithinMaxBodyMemory) {
  ProcessRig s("  request_timeout: 8s\n  max_body_bytes: 1MiB\n  max_body_memory: 8MiB\n");
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  ASSERT_EQ(s.post(0).status, 200);
  const long rss_before = rss_kb(d.pid());

  // 160 connections declare a 1 MiB body and send all of it but its last byte: 160 MiB if all were held.
  constexpr int kConnections = 160;
  constexpr std::size_t kBody = 1024 * 1024;
  const std::string head = "POST /hooks/" + std::string(kProcessListener) +
                           " HTTP/1.1\r\nHost: a\r\nX-Shopify-Topic: orders/create\r\n"
                           "X-Shopify-Hmac-Sha256: x\r\nContent-Length: " +
                           std::to_string(kBody) + "\r\n\r\n";
  const std::string almost(kBody - 1, ' ');
  std::vector<int> fds;
  int sent_whole = 0;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = connect_loopback(s.port);
    ASSERT_GE(fd, 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    fds.push_back(fd);
    std::string bytes = head + almost;
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // answered and closed (503), or the 2 s send timeout
      off += static_cast<std::size_t>(n);
    }
    if (off == bytes.size()) ++sent_whole;
  }
  // The ones past the bound were answered 503 overloaded (with Retry-After) without waiting for the body.
  int overloaded = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    const std::string answer(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    if (answer.find("503") != std::string::npos && answer.find("overloaded") != std::string::npos &&
        answer.find("Retry-After: 1") != std::string::npos)
      ++overloaded;
  }
  const long rss_held = rss_kb(d.pid());
  EXPECT_GE(overloaded, kConnections - 8) << "sent whole: " << sent_whole;
  EXPECT_LT(rss_held, rss_before + 48 * 1024)
      << "RSS grew from " << rss_before << " kB to " << rss_held << " kB";
  for (int fd : fds) ::close(fd);

  // The held bodies are gone with their connections: webhooks are accepted again.
  const auto deadline = std::chrono::steady_clock::now() + scaled(5s);
  int status = 0;
  while ((status = s.post(1).status) != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(d.running()) << log_tail(d.log_path());
}

// Out of file descriptors: connections wait in the listening socket's backlog and every accept() fails
// with EMFILE. The daemon must pause accepting rather than retry at once (which spins a CPU and writes a log
// line per failure), stay up, and accept again once descriptors are free.
TEST(Hostile, OutOfFileDescriptorsPausesAcceptingAndRecovers) {
  ProcessRig s;
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, env_without_vptr_checks(s.env(), s.dir));
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());
  ASSERT_EQ(s.post(0).status, 200);
  // Delivered before the descriptors run out, so the out-of-descriptors window exercises accepting mostly
  // (the client may still be reading the sink's answer when it begins).
  ASSERT_TRUE(sink.wait_for(1, scaled(10s))) << log_tail(d.log_path());

  // The soft limit only, just above what the daemon holds now: raising it again needs no privilege.
  rlimit before{};
  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, nullptr, &before), 0);
  rlimit tight{static_cast<rlim_t>(open_files(d.pid()) + 4), before.rlim_max};
  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &tight, nullptr), 0);
  std::vector<int> flood;
  for (int i = 0; i < 64; ++i) flood.push_back(connect_loopback(s.port));  // the kernel completes them all

  std::this_thread::sleep_for(500ms);  // the daemon takes what it can and runs out
  const double cpu_before = cpu_seconds(d.pid());
  std::this_thread::sleep_for(2s);
  const double busy = cpu_seconds(d.pid()) - cpu_before;
  EXPECT_LT(busy, 0.5) << "the daemon used " << busy << " s of CPU in 2 s while out of descriptors";
  EXPECT_TRUE(d.running()) << log_tail(d.log_path());
  const std::size_t reports = count_lines(d.log_path(), "accept failed");
  EXPECT_GE(reports, 1u) << log_tail(d.log_path());
  EXPECT_LE(reports, 4u) << "accept failures are reported at most once per 10 s per worker";

  // Descriptors come back: the flood is taken and closed, and webhooks are answered again.
  for (int fd : flood) {
    if (fd >= 0) ::close(fd);
  }
  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &before, nullptr), 0);
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = s.post(1).status;
    if (status != 200) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200) << log_tail(d.log_path());
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait(10s), 0) << log_tail(d.log_path());
}

// The listener writes its answers itself (one pre-rendered buffer, not Beast's serializer): they must stay
// well-formed HTTP for every kind of client, as read off the wire.
TEST(Hostile, AnswersAreWellFormedForHeadHttp10AndKeepAlive) {
  ProcessRig s;
  Sink sink(SinkOptions::on_port(s.sink_port));
  DaemonProcess d({"serve", "--config", s.config_path}, s.env());
  ASSERT_TRUE(wait_port(s.port, 10s)) << log_tail(d.log_path());

  // HEAD: the GET answer's status and headers, no body.
  const std::string head = raw_exchange(s.port, "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 15\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: close\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "") << head;
  // A HEAD refused while its header is read (a field name that is not a token) gets the error's body:
  // the answer describes the malformed request, not a resource.
  const std::string bad_head =
      raw_exchange(s.port, "HEAD /healthz HTTP/1.1\r\nHost: a\r\nBad\xff: y\r\n\r\n");
  EXPECT_EQ(bad_head.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << bad_head;
  EXPECT_NE(bad_head.find(R"("error":"bad_request")"), std::string::npos) << bad_head;

  // HTTP/1.0 asking for keep-alive gets a 1.0 answer that says keep-alive, then a second answer on the
  // same connection; without asking, the connection closes after the answer.
  const std::string body = R"({"id":1,"total_price":"1.00"})";
  std::string post10 = signed_post(body);
  post10.replace(post10.find("HTTP/1.1"), 8, "HTTP/1.0");
  post10.replace(post10.find("Connection: close"), 17, "Connection: keep-alive");
  std::string two;
  {
    const int fd = connect_loopback(s.port);
    ASSERT_GE(fd, 0);
    const std::string both = post10 + post10;
    (void)::send(fd, both.data(), both.size(), MSG_NOSIGNAL);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (two.find("duplicate") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      char buf[4096];
      if (::poll(&p, 1, 200) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      two.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
  EXPECT_EQ(two.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << two;
  EXPECT_NE(two.find("Connection: keep-alive\r\n"), std::string::npos) << two;
  EXPECT_NE(two.find(R"({"status":"accepted","event_id":")"), std::string::npos) << two;
  EXPECT_NE(two.find(R"({"status":"duplicate","event_id":")"), std::string::npos)
      << "the second request on the kept connection: " << two;

  // An error answer carries its extra header (Allow) once, and only on that answer.
  const std::string get =
      raw_exchange(s.port, "GET /hooks/" + std::string(kProcessListener) + " HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(get.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << get;
  EXPECT_NE(get.find("Allow: POST\r\n"), std::string::npos) << get;
  EXPECT_NE(get.find("Content-Type: application/json\r\n"), std::string::npos) << get;
  const auto get_body = get.substr(get.find("\r\n\r\n") + 4);
  EXPECT_NE(get_body.find(R"("error":"method_not_allowed")"), std::string::npos) << get;
  EXPECT_NE(get.find("Content-Length: " + std::to_string(get_body.size()) + "\r\n"), std::string::npos)
      << get;
}
