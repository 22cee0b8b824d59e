// Schema inference: types and their merging, required vs optional, nesting, arrays, redaction, caps,
// the fields list, the JSON Schema export and persistence.
#include "evrouter/schema/inference.h"

#include <gtest/gtest.h>

#include "support/harness.h"

using namespace evr;
using namespace evr::schema;
using json = nlohmann::json;

namespace {

Schema infer(const std::vector<std::string>& payloads, Limits limits = {},
             const Redaction& redaction = Redaction(default_redactions())) {
  Schema s;
  s.source = "shopify";
  s.type = "orders/create";
  int64_t t = 1000;
  for (const auto& p : payloads) observe(s, json::parse(p), t++, limits, redaction);
  return s;
}

const Field* field(const std::vector<Field>& fs, const std::string& path) {
  for (const auto& f : fs) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

using Types = std::vector<std::string>;

}  // namespace

TEST(SchemaInference, IntegerAndNumberMergeIntoNumber) {
  const auto s = infer({R"({"a": 1, "b": 2})", R"({"a": 1.5, "b": 3})"});
  const auto fs = fields(s);
  ASSERT_NE(field(fs, "a"), nullptr);
  EXPECT_EQ(field(fs, "a")->types, (Types{"number"}));
  EXPECT_EQ(field(fs, "b")->types, (Types{"integer"}));
  EXPECT_EQ(s.events, 2);
  EXPECT_EQ(s.first_seen_ms, 1000);
  EXPECT_EQ(s.last_seen_ms, 1001);
}

TEST(SchemaInference, NullAndStringIsNullableAndAMissingKeyIsOptional) {
  const auto s = infer({R"({"note": null, "tag": "x", "id": 1})", R"({"note": "hello", "id": 2})"});
  const auto fs = fields(s);
  const auto* note = field(fs, "note");
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->types, (Types{"null", "string"}));
  EXPECT_TRUE(note->required);           // present in both, once as null
  EXPECT_EQ(note->sample, "\"hello\"");  // a non-null sample replaces null
  EXPECT_FALSE(field(fs, "tag")->required);
  EXPECT_EQ(field(fs, "tag")->seen, 1);
  EXPECT_TRUE(field(fs, "id")->required);
}

TEST(SchemaInference, NestedObjectsAreRequiredRelativeToTheirParent) {
  const auto s = infer({R"({"customer": {"id": 1, "tags": "a"}})", R"({"customer": {"id": 2}})", R"({})"});
  const auto fs = fields(s);
  EXPECT_FALSE(field(fs, "customer")->required);  // missing from the third event
  EXPECT_EQ(field(fs, "customer")->types, (Types{"object"}));
  EXPECT_TRUE(field(fs, "customer.id")->required);  // whenever customer was there
  EXPECT_FALSE(field(fs, "customer.tags")->required);
  EXPECT_EQ(field(fs, "customer.id")->sample, "1");
}

TEST(SchemaInference, ArraysOfObjects) {
  const auto s = infer({R"({"line_items": [{"sku": "A", "qty": 1}, {"qty": 2}], "tags": []})",
                        R"({"line_items": [{"sku": "B", "qty": 3}]})"});
  const auto fs = fields(s);
  EXPECT_EQ(field(fs, "line_items")->types, (Types{"array"}));
  ASSERT_NE(field(fs, "line_items[]"), nullptr);
  EXPECT_EQ(field(fs, "line_items[]")->types, (Types{"object"}));
  EXPECT_EQ(field(fs, "line_items[]")->seen, 3);  // elements examined
  EXPECT_TRUE(field(fs, "line_items[].qty")->required);
  EXPECT_FALSE(field(fs, "line_items[].sku")->required);  // missing from one element
  EXPECT_EQ(field(fs, "tags")->types, (Types{"array"}));
  EXPECT_EQ(field(fs, "tags[]"), nullptr);  // never saw an element
  EXPECT_FALSE(field(fs, "tags")->required);
}

TEST(SchemaInference, MixedTypesAndTopLevelArrays) {
  const auto s = infer({R"([{"a": true}, 3])"});
  const auto fs = fields(s);
  ASSERT_NE(field(fs, "[]"), nullptr);
  EXPECT_EQ(field(fs, "[]")->types, (Types{"integer", "object"}));
  EXPECT_EQ(field(fs, "[].a")->types, (Types{"boolean"}));
  EXPECT_TRUE(field(fs, "[].a")->required);  // in every element that was an object
}

TEST(SchemaInference, DefaultRedactionHidesPersonalAndSecretSamples) {
  const auto s = infer({R"({"email": "a@b.c", "contact_email": "x@y.z", "total": "10.00",
      "customer": {"first_name": "Mira", "phone": "+1 555", "id": 7},
      "billing_address": {"address1": "1 Main St", "city": "Brooklyn", "zip": "11201"},
      "cart_token": "abc", "api_password": "p", "client_secret": "s", "browser_ip": "10.0.0.1"})"});
  const auto fs = fields(s);
  const std::string hidden = "\"[redacted]\"";
  for (const char* p :
       {"email", "contact_email", "customer.first_name", "customer.phone", "billing_address.address1",
        "billing_address.zip", "cart_token", "api_password", "client_secret", "browser_ip"}) {
    ASSERT_NE(field(fs, p), nullptr) << p;
    EXPECT_EQ(field(fs, p)->sample, hidden) << p;
    EXPECT_EQ(field(fs, p)->types, (Types{"string"})) << p;  // the type is still known
  }
  EXPECT_EQ(field(fs, "total")->sample, "\"10.00\"");
  EXPECT_EQ(field(fs, "customer.id")->sample, "7");
  EXPECT_EQ(field(fs, "billing_address.city")->sample, "\"Brooklyn\"");
}

TEST(SchemaInference, ConfiguredRedactionByKeyGlobAndPathCoversSubtrees) {
  const Redaction r({"note", "shipping_*", "line_items[].sku"});
  const auto s = infer({R"({"note": "hi", "NOTE_2": "x", "shipping_address": {"city": "X", "geo": {"x": 1}},
      "line_items": [{"sku": "S", "title": "T"}], "email": "kept@example.com"})"},
                       {}, r);
  const auto fs = fields(s);
  const std::string hidden = "\"[redacted]\"";
  EXPECT_EQ(field(fs, "note")->sample, hidden);
  EXPECT_EQ(field(fs, "NOTE_2")->sample, "\"x\"");                // a glob matches the whole key
  EXPECT_EQ(field(fs, "shipping_address.city")->sample, hidden);  // beneath a redacted object
  EXPECT_EQ(field(fs, "shipping_address.geo.x")->sample, hidden);
  EXPECT_EQ(field(fs, "line_items[].sku")->sample, hidden);
  EXPECT_EQ(field(fs, "line_items[].title")->sample, "\"T\"");
  EXPECT_EQ(field(fs, "email")->sample, "\"kept@example.com\"");  // defaults not included here
}

TEST(SchemaInference, GlobMatching) {
  EXPECT_TRUE(glob_matches("*email*", "Customer_Email"));
  EXPECT_TRUE(glob_matches("*_ip", "browser_ip"));
  EXPECT_FALSE(glob_matches("*_ip", "ship"));
  EXPECT_TRUE(glob_matches("name", "NAME"));
  EXPECT_FALSE(glob_matches("name", "names"));
  EXPECT_TRUE(glob_matches("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_matches("a*b*c", "axxbyy"));
}

TEST(SchemaInference, FieldCapStopsNewPathsAndMarksTruncated) {
  Limits limits;
  limits.max_fields = 3;
  const auto s = infer({R"({"a": 1, "b": 2, "c": 3, "d": 4, "e": {"f": 1}})", R"({"a": 1, "z": 2})"}, limits);
  EXPECT_EQ(s.fields, 3U);
  EXPECT_TRUE(s.truncated);
  const auto fs = fields(s);
  EXPECT_EQ(fs.size(), 3U);
  EXPECT_EQ(field(fs, "z"), nullptr);
  EXPECT_TRUE(field(fs, "a")->required);
}

TEST(SchemaInference, ArrayElementCapAndDepthCap) {
  Limits limits;
  limits.max_array_items = 2;
  limits.max_depth = 3;
  const auto s = infer({R"({"xs": [1, 2, "three", null], "a": {"b": {"c": {"d": 1}}}})"}, limits);
  const auto fs = fields(s);
  EXPECT_EQ(field(fs, "xs[]")->types, (Types{"integer"}));  // only the first two elements examined
  EXPECT_EQ(field(fs, "xs[]")->seen, 2);
  EXPECT_NE(field(fs, "a.b.c"), nullptr);
  EXPECT_EQ(field(fs, "a.b.c.d"), nullptr);
  EXPECT_TRUE(s.truncated);
}

TEST(SchemaInference, LongSamplesAreCut) {
  Limits limits;
  limits.max_sample_bytes = 10;
  const auto s = infer({R"({"note": "0123456789abcdef"})"}, limits);
  EXPECT_EQ(fields(s)[0].sample, "\"0123456789...\"");
}

TEST(SchemaInference, JsonSchemaExport) {
  const auto s = infer({R"({"id": 1, "price": "1.00", "tags": null, "items": [{"q": 1}], "c": {"x": true}})",
                        R"({"id": 2, "price": "2.00", "tags": "a", "items": []})"});
  const json js = json_schema(s);
  EXPECT_EQ(js["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(js["type"], "object");
  EXPECT_EQ(js["required"], json({"id", "items", "price", "tags"}));
  EXPECT_EQ(js["properties"]["id"]["type"], "integer");
  EXPECT_EQ(js["properties"]["tags"]["type"], json({"null", "string"}));
  EXPECT_EQ(js["properties"]["items"]["type"], "array");
  EXPECT_EQ(js["properties"]["items"]["items"]["type"], "object");
  EXPECT_EQ(js["properties"]["items"]["items"]["required"], json({"q"}));
  EXPECT_EQ(js["properties"]["c"]["required"], json({"x"}));
  EXPECT_EQ(js["properties"]["price"]["examples"], json({"1.00"}));
}

TEST(SchemaInference, SerializeRoundTrips) {
  Limits limits;
  limits.max_fields = 4;
  const auto s = infer({R"({"a": 1, "b": {"c": [1.5]}, "d": "x", "e": 1})", R"({"a": null})"}, limits);
  const auto back = deserialize("shopify", "orders/create", serialize(s));
  EXPECT_EQ(back.events, s.events);
  EXPECT_EQ(back.fields, s.fields);
  EXPECT_EQ(back.truncated, s.truncated);
  EXPECT_EQ(back.first_seen_ms, s.first_seen_ms);
  EXPECT_EQ(json_schema(back), json_schema(s));
  EXPECT_THROW(deserialize("s", "t", "{\"version\": 1}"), std::runtime_error);
  EXPECT_THROW(deserialize("s", "t", "not json"), std::runtime_error);
}

TEST(SchemaInference, ShopifyOrderFixture) {
  const auto s = infer({test::test_data("shopify/orders-create.json")});
  const auto fs = fields(s);
  EXPECT_EQ(field(fs, "id")->types, (Types{"integer"}));
  EXPECT_EQ(field(fs, "email")->sample, "\"[redacted]\"");
  EXPECT_EQ(field(fs, "customer.email")->sample, "\"[redacted]\"");
  EXPECT_EQ(field(fs, "line_items[].sku")->types, (Types{"string"}));
  EXPECT_EQ(field(fs, "currency")->sample, "\"USD\"");
  EXPECT_FALSE(s.truncated);
}
