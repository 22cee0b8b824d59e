#include <gtest/gtest.h>

#include "evrouter/http/client.h"

namespace evr::http {
namespace {

TEST(Endpoint, ParsesGoodUris) {
  auto a = Endpoint::parse("http://example.com");
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port, 80);
  EXPECT_EQ(a->base_path, "");

  auto b = Endpoint::parse("HTTPS://Hooks.Example.COM:8443/api/v1/");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->host, "hooks.example.com");
  EXPECT_EQ(b->port, 8443);
  EXPECT_EQ(b->base_path, "/api/v1");

  auto c = Endpoint::parse("https://api.example.com/");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->base_path, "");

  auto d = Endpoint::parse("http://127.0.0.1:9000/x");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 9000);
  EXPECT_EQ(d->base_path, "/x");

  auto e = Endpoint::parse("http://[::1]:8080/p/q");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->base_path, "/p/q");

  auto f = Endpoint::parse("http://localhost:65535");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->port, 65535);
}

TEST(Endpoint, RejectsBadUris) {
  for (const char* uri : {"",
                          "example.com",
                          "//example.com",
                          "ftp://example.com",
                          "http://",
                          "http:///path",
                          "http://host:0",
                          "http://host:65536",
                          "http://host:123456",
                          "http://host:8a",
                          "http://host:-1",
                          "http://user@host",
                          "http://user:pw@host/",
                          "http://host/path?q=1",
                          "http://host/#frag",
                          "http://ho st/",
                          "http://host/pa th",
                          "http://[::1",
                          "http://[::1]x",
                          "http://[zz]/",
                          "http://-host/",
                          "http://host\r\n/"}) {
    EXPECT_FALSE(Endpoint::parse(uri)) << uri;
  }
}

TEST(Response, HeaderLookupIsCaseInsensitive) {
  Response r;
  r.headers = {{"Content-Type", "application/json"}, {"X-Id", "7"}};
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("X-ID"), "7");
  EXPECT_EQ(r.header("missing"), "");
}

}  // namespace
}  // namespace evr::http
