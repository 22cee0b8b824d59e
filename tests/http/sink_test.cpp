// The recording sink and the blocking test client, exercised against each other.
#include "support/sink.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/slowdown.h"

namespace evr::test {
namespace {

using namespace std::chrono_literals;

TEST(Sink, RecordsRequestAndReplies) {
  Sink sink;
  sink.set_handler([](const Recorded& r) {
    Reply reply;
    reply.status = 201;
    reply.headers = {{"X-Echo", r.header("x-test")}};
    reply.body = "got " + r.body;
    return reply;
  });
  auto res = http_request(sink.port(), "POST", "/hook?a=1",
                          {{"X-Test", "yes"}, {"Content-Type", "text/plain"}}, "hello");
  ASSERT_EQ(res.error, "");
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(res.body, "got hello");
  EXPECT_EQ(res.headers["x-echo"], "yes");
  ASSERT_TRUE(sink.wait_for(1, 1s));
  auto reqs = sink.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/hook?a=1");
  EXPECT_EQ(reqs[0].body, "hello");
  EXPECT_EQ(reqs[0].header("content-type"), "text/plain");
  EXPECT_EQ(reqs[0].header("x-test"), "yes");
  EXPECT_EQ(reqs[0].in_flight, 1);
  EXPECT_EQ(sink.connections(), 1u);
  EXPECT_EQ(sink.url(), "http://127.0.0.1:" + std::to_string(sink.port()));
}

TEST(Sink, DelayedRepliesOverlap) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 300ms;
    return reply;
  });
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<PostResult> results(4);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] { results[i] = http_request(sink.port(), "POST", "/", {}, "x"); });
  for (auto& t : threads) t.join();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  for (auto& r : results) EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_LT(elapsed, scaled(1100ms));  // answered concurrently, not one after another
  EXPECT_EQ(sink.max_in_flight(), 4);
  EXPECT_EQ(sink.count(), 4u);
  sink.clear();
  EXPECT_EQ(sink.count(), 0u);
  EXPECT_EQ(sink.max_in_flight(), 0);
}

TEST(Sink, WaitForTimesOut) {
  Sink sink;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sink.wait_for(1, 100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
}

TEST(Sink, HttpRequestTimesOutAndRefuses) {
  Sink sink;
  sink.set_handler([](const Recorded&) {
    Reply reply;
    reply.delay = 2s;
    return reply;
  });
  auto res = http_request(sink.port(), "GET", "/", {}, "", 200ms);
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error, "timeout");
  {
    Sink other;  // destroyed with a request still delayed: must not hang
    other.set_handler([](const Recorded&) {
      Reply reply;
      reply.delay = 10s;
      return reply;
    });
    std::thread t([&] { http_request(other.port(), "GET", "/", {}, "", 300ms); });
    ASSERT_TRUE(other.wait_for(1, 2s));
    t.join();
  }
}

TEST(Sink, DropAndRawReplies) {
  Sink sink;
  sink.set_handler([](const Recorded& r) {
    Reply reply;
    if (r.target == "/drop") reply.drop = true;
    if (r.target == "/raw") reply.raw = "HTTP/1.1 204 No Content\r\n\r\n";
    return reply;
  });
  auto dropped = http_request(sink.port(), "GET", "/drop", {}, "");
  EXPECT_EQ(dropped.status, 0);
  EXPECT_EQ(dropped.error, "read: end of stream");
  auto raw = http_request(sink.port(), "GET", "/raw", {}, "");
  EXPECT_EQ(raw.status, 204) << raw.error;
}

}  // namespace
}  // namespace evr::test
