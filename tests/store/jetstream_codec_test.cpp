#include "store/jetstream_codec.h"

#include <gtest/gtest.h>

#include <string>

// The JetStream store's envelope, written by hand on the writer's thread (envelope_text), against the
// JSON object it replaces (envelope_json): the same bytes, and the same event read back.
namespace jetstream_codec_test {

using namespace evr;
using store::jetstream::envelope_json;
using store::jetstream::envelope_text;
using store::jetstream::event_from;
using store::jetstream::string_array_text;

event::Event sample() {
  event::Event e;
  e.id = "01J9ZK3V4Q8X2";
  e.flow = "shopify \"orders\" \\ flow";
  e.listener_id = "L1";
  e.source = "shopify";
  e.type = "orders/create";
  e.time_ms = 1765000000123;
  e.occurred_ms = -5;
  e.shop_domain = "caf\xc3\xa9.myshopify.com";  // café
  e.webhook_id = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043";
  e.dedup_key = "ev-1";
  e.correlation_id = std::string("tab\there, nl\n, cr\r, bs\b, ff\f, nul") + '\0' + "\x01\x1f\x7f end";
  e.headers = {{"X-Shopify-Topic", "orders/create"}, {"X-Emoji", "\xf0\x9f\x9a\x80 /slash/ \"q\""}};
  e.resources = {"arn:a", "b\\c"};
  return e;
}

TEST(JetStreamCodec, EnvelopeTextIsTheObjectsBytes) {
  const auto e = sample();
  EXPECT_EQ(envelope_text(e), envelope_json(e).dump());
  event::Event empty;
  EXPECT_EQ(envelope_text(empty), envelope_json(empty).dump());
}

TEST(JetStreamCodec, EnvelopeTextReadsBackAsTheSameEvent) {
  const auto e = sample();
  const auto j = nlohmann::json::parse(envelope_text(e));
  const auto back = event_from(j, "{}", 2);
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->flow, e.flow);
  EXPECT_EQ(back->listener_id, e.listener_id);
  EXPECT_EQ(back->type, e.type);
  EXPECT_EQ(back->time_ms, e.time_ms);
  EXPECT_EQ(back->occurred_ms, e.occurred_ms);
  EXPECT_EQ(back->shop_domain, e.shop_domain);
  EXPECT_EQ(back->webhook_id, e.webhook_id);
  EXPECT_EQ(back->dedup_key, e.dedup_key);
  EXPECT_EQ(back->correlation_id, e.correlation_id);
  EXPECT_EQ(back->headers, e.headers);
  EXPECT_EQ(back->resources, e.resources);
  EXPECT_EQ(back->payload, "{}");
}

// Not valid UTF-8 (the listeners refuse it before a commit; a bus or replay path must not throw here):
// the bad bytes become U+FFFD and the envelope is still JSON.
TEST(JetStreamCodec, EnvelopeTextReplacesInvalidUtf8) {
  auto e = sample();
  e.headers.emplace_back("X-Bad",
                         "a\xff"
                         "b");
  const std::string text = envelope_text(e);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << text;
  EXPECT_EQ(event_from(j, nullptr, 0)->headers.back().second,
            "a\xef\xbf\xbd"
            "b");
}

TEST(JetStreamCodec, LanesText) {
  EXPECT_EQ(string_array_text({}), "[]");
  EXPECT_EQ(string_array_text({"orders/priority", "a\"b"}), R"(["orders/priority","a\"b"])");
  EXPECT_EQ(string_array_text({"x\xff"}), "[\"x\xef\xbf\xbd\"]");
}

}  // namespace jetstream_codec_test
