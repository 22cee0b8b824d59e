// common/utf8.h: well-formedness as RFC 3629 defines it, and scrubbing outside text for JSON.
#include "evrouter/common/utf8.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace evr;

TEST(Utf8, AcceptsWellFormedAndRefusesTheRest) {
  for (const char* ok :
       {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"}) {
    EXPECT_TRUE(utf8::valid(ok)) << ok;
    EXPECT_TRUE(nlohmann::json::accept("\"" + std::string(ok) + "\"")) << ok;
  }
  for (const char* bad :
       {"\x80", "\xff", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80" /* surrogate */,
        "\xf4\x90\x80\x80" /* past U+10FFFF */, "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "ab\xf0\x9f\x98"}) {
    EXPECT_FALSE(utf8::valid(bad)) << bad;
    EXPECT_FALSE(nlohmann::json::accept("\"" + std::string(bad) + "\"")) << bad;
  }
}

TEST(Utf8, ScrubReplacesBadBytesAndCutsAtACharacterBoundary) {
  EXPECT_EQ(utf8::scrub("caf\xe9!", 100), "caf\xef\xbf\xbd!");
  EXPECT_EQ(utf8::scrub("\xc3\xa9\xc3\xa9", 3), "\xc3\xa9");  // not half of the second
  EXPECT_EQ(utf8::scrub("ab\xff", 4), "ab");                  // the replacement would not fit
  EXPECT_EQ(utf8::scrub("abc", 2), "ab");
  EXPECT_EQ(utf8::scrub("\xe2\x82", 10), "\xef\xbf\xbd\xef\xbf\xbd");  // truncated: each byte replaced
  // Every scrubbed text serialises as JSON.
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (std::size_t max : {0u, 1u, 7u, 300u, 1024u}) {
    const std::string s = utf8::scrub(bytes + bytes, max);
    EXPECT_LE(s.size(), max);
    EXPECT_TRUE(utf8::valid(s));
    EXPECT_NO_THROW((void)nlohmann::json(s).dump());
  }
}
