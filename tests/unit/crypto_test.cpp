#include "evrouter/common/crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "evrouter/source/shopify.h"

using namespace evr;

TEST(Crypto, HmacSha256KnownVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(crypto::hex_encode(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, HmacKeyGivesTheSameMacAsHmacForEveryKeyLength) {
  // RFC 4231 test case 6: a 131-byte key (longer than a block: hashed first).
  const crypto::HmacKey long_key(crypto::Digest::sha256, std::string(131, '\xaa'));
  EXPECT_EQ(crypto::hex_encode(long_key.mac("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  const std::string body(3553, 'x');
  for (const auto digest : {crypto::Digest::sha256, crypto::Digest::sha1}) {
    for (const std::size_t n : {0, 1, 4, 32, 63, 64, 65, 128, 200}) {
      std::string key(n, '\0');
      for (std::size_t i = 0; i < n; ++i) key[i] = static_cast<char>(i * 7 + 1);
      const crypto::HmacKey hk(digest, key);
      for (const std::string_view data :
           {std::string_view(), std::string_view("abc"), std::string_view(body)}) {
        EXPECT_EQ(hk.mac(data), crypto::hmac(digest, key, data)) << "key length " << n;
      }
      EXPECT_EQ(hk.mac("abc"), crypto::hmac(digest, key, "abc")) << "the same key again, key length " << n;
    }
  }
}

TEST(Crypto, HmacKeyIsSafeToShareBetweenThreads) {
  const crypto::HmacKey key(crypto::Digest::sha256, "shared-secret");
  const std::string expected = crypto::hmac_sha256("shared-secret", "message");
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) mismatches[t] += key.mac("message") != expected ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::count(mismatches.begin(), mismatches.end(), 0), 4);
}

TEST(Crypto, Base64RoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto enc = crypto::base64_encode(s);
    auto dec = crypto::base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << s;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(crypto::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(crypto::base64_decode("abc").has_value());
}

TEST(Crypto, ConstantTimeEqual) {
  EXPECT_TRUE(crypto::constant_time_equal("abc", "abc"));
  EXPECT_FALSE(crypto::constant_time_equal("abc", "abd"));
  EXPECT_FALSE(crypto::constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(crypto::constant_time_equal("", ""));
}

TEST(Crypto, RandomTokensAreUrlSafeAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = crypto::random_token(16);
    EXPECT_EQ(t.size(), 22u);
    EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Crypto, RandomTokensFromOneDrawAreDistinct) {
  EXPECT_TRUE(crypto::random_tokens(0, 24).empty());
  const auto tokens = crypto::random_tokens(500, 24);
  ASSERT_EQ(tokens.size(), 500u);
  std::set<std::string> seen(tokens.begin(), tokens.end());
  EXPECT_EQ(seen.size(), 500u);
  for (const auto& t : tokens) {
    EXPECT_EQ(t.size(), 32u);  // 24 bytes, base64 without padding
    EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
  }
}

TEST(ShopifyHmac, VerifiesWithAnyRotatedSecret) {
  const std::string body = R"({"id":1})";
  const std::string sig = crypto::base64_encode(crypto::hmac_sha256("new-secret", body));
  EXPECT_TRUE(source::verify_shopify_hmac(body, sig, {"new-secret"}));
  EXPECT_TRUE(source::verify_shopify_hmac(body, sig, {"old-secret", "new-secret"}));
  EXPECT_FALSE(source::verify_shopify_hmac(body, sig, {"old-secret"}));
  EXPECT_FALSE(source::verify_shopify_hmac(body + " ", sig, {"new-secret"}));
  EXPECT_FALSE(source::verify_shopify_hmac(body, "", {"new-secret"}));
  EXPECT_FALSE(source::verify_shopify_hmac(body, sig, {}));
}

TEST(ShopifyEvent, PrefersEventIdForDeduplication) {
  std::map<std::string, std::string> h{{"X-Shopify-Topic", "orders/create"},
                                       {"X-Shopify-Shop-Domain", "shop.myshopify.com"},
                                       {"X-Shopify-Webhook-Id", "wh-1"},
                                       {"X-Shopify-Event-Id", "ev-1"}};
  auto lookup = [&](std::string_view n) -> std::string_view {
    auto it = h.find(std::string(n));
    return it == h.end() ? std::string_view() : std::string_view(it->second);
  };
  event::Event e;
  source::fill_shopify_event(e, lookup);
  EXPECT_EQ(e.type, "orders/create");
  EXPECT_EQ(e.shop_domain, "shop.myshopify.com");
  EXPECT_EQ(e.webhook_id, "wh-1");
  EXPECT_EQ(e.dedup_key, "ev-1");
  h.erase("X-Shopify-Event-Id");
  event::Event e2;
  source::fill_shopify_event(e2, lookup);
  EXPECT_EQ(e2.dedup_key, "wh-1");
}

TEST(EventId, UlidsAreOrderedAndUnique) {
  auto a = event::new_event_id(1000);
  auto b = event::new_event_id(2000);
  EXPECT_EQ(a.size(), 26u);
  EXPECT_LT(a, b);
  EXPECT_NE(event::new_event_id(1000), event::new_event_id(1000));
  EXPECT_EQ(event::format_time(0), "1970-01-01T00:00:00.000Z");
}

TEST(EventId, UniqueAcrossThreadsAndOrderedWithinOne) {
  // Each thread counts up from its own random start: a thread's ids of one millisecond are increasing,
  // and no two threads' ids collide.
  constexpr int kPerThread = 20000;
  std::vector<std::vector<std::string>> ids(4);
  std::vector<std::thread> threads;
  for (auto& mine : ids) {
    threads.emplace_back([&mine] {
      for (int i = 0; i < kPerThread; ++i) mine.push_back(event::new_event_id(1700000000000));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& mine : ids) {
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), ids.size() * kPerThread);
}
