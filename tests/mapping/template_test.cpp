// Body templates, {name} texts and input bindings: types preserved, interpolation, missing values, errors.
#include "evrouter/mapping/template.h"

#include <gtest/gtest.h>

#include "evrouter/mapping/inputs.h"
#include "evrouter/mapping/text.h"

namespace evr::mapping {
namespace {

using ojson = nlohmann::ordered_json;

const nlohmann::json kEnvelope = nlohmann::json::parse(R"({
  "id": "01JEVENT",
  "flow": "orders",
  "detail-type": "orders/create",
  "shop": "demo.myshopify.com",
  "detail": {
    "id": 6012345678901,
    "name": "#1042",
    "total_price": "193.86",
    "taxes_included": false,
    "note": null,
    "quote": "say \"hi\"\nbye",
    "customer": {"first_name": "Mira", "last_name": "Holt"},
    "line_items": [{"sku": "A", "price": "10.50"}, {"sku": "B", "price": "x"}]
  }
})");

Inputs inputs() {
  Inputs in;
  in.bind("id", Path::parse("$.detail.id"));
  in.bind("name", Path::parse("$.detail.name"));
  in.bind("total", Path::parse("$.detail.total_price"));
  in.bind("total_n", Path::parse("$.detail.total_price"), Inputs::As::number);
  in.bind("id_s", Path::parse("$.detail.id"), Inputs::As::string);
  in.bind("taxes", Path::parse("$.detail.taxes_included"));
  in.bind("note", Path::parse("$.detail.note"));
  in.bind("missing", Path::parse("$.detail.nope"));
  in.bind("customer", Path::parse("$.detail.customer"));
  in.bind("skus", Path::parse("$.detail.line_items[*].sku"));
  in.bind("prices", Path::parse("$.detail.line_items[*].price"), Inputs::As::number);
  in.bind("quote", Path::parse("$.detail.quote"));
  in.bind("shop", Path::parse("$.shop"));
  return in;
}

// Compiles `tmpl` and renders it against kEnvelope (delivery id 77).
std::string render(const ojson& tmpl) {
  Inputs in = inputs();
  const Template t = Template::compile(tmpl, in);
  Values values;
  in.evaluate(kEnvelope, 77, values);
  std::string out;
  t.render(values, out);
  return out;
}

TEST(Template, WholeStringPlaceholderKeepsTheValuesType) {
  const std::string out = render(ojson::parse(R"({
    "Id": "<id>", "Name": "<name>", "Total": "<total>", "TotalNumber": "<total_n>", "IdText": "<id_s>",
    "Taxes": "<taxes>", "Note": "<note>", "Missing": "<missing>", "Customer": "<customer>", "Skus": "<skus>",
    "Prices": "<prices>"})"));
  // Exactly: key order as written, compact JSON, numbers as numbers, objects as objects.
  EXPECT_EQ(
      out,
      R"({"Id":6012345678901,"Name":"#1042","Total":"193.86","TotalNumber":193.86,"IdText":"6012345678901",)"
      R"("Taxes":false,"Note":null,"Missing":null,"Customer":{"first_name":"Mira","last_name":"Holt"},)"
      R"("Skus":["A","B"],"Prices":[10.5,null]})");
}

TEST(Template, PlaceholdersInsideTextAreInterpolated) {
  const auto out = nlohmann::json::parse(render(ojson::parse(R"({
    "Title": "Order <name> (<id>) from <shop>",
    "Flags": "taxes=<taxes> note=[<note>] missing=[<missing>]",
    "Customer": "c=<customer>",
    "Quote": "<<quote>>",
    "Nested": [{"deep": "<name>!"}, "<id>"]})")));
  EXPECT_EQ(out["Title"], "Order #1042 (6012345678901) from demo.myshopify.com");
  EXPECT_EQ(out["Flags"], "taxes=false note=[] missing=[]");
  EXPECT_EQ(out["Customer"], R"(c={"first_name":"Mira","last_name":"Holt"})");
  EXPECT_EQ(out["Quote"], "<say \"hi\"\nbye>");  // escaped correctly in the JSON text
  EXPECT_EQ(out["Nested"], nlohmann::json::parse(R"([{"deep": "#1042!"}, 6012345678901])"));
}

TEST(Template, LiteralsKeysAndNonPlaceholdersStayAsWritten) {
  EXPECT_EQ(
      render(ojson::parse(R"({"<id>": 1, "a": [true, null, 2.5, "x < y > z", "<>", "< id >", "<a b>"]})")),
      R"({"<id>":1,"a":[true,null,2.5,"x < y > z","<>","< id >","<a b>"]})");
  EXPECT_EQ(render(ojson("<id>")), "6012345678901");  // a template may be a single value
  EXPECT_EQ(render(ojson::parse(R"(["<skus>", "<missing>"])")), R"([["A","B"],null])");
}

TEST(Template, PredefinedVariables) {
  const auto out = nlohmann::json::parse(render(ojson::parse(R"({
    "event": "<evrouter.event>", "payload": "<evrouter.payload>", "id": "<evrouter.event-id>",
    "type": "<evrouter.event-type>", "flow": "<evrouter.flow>", "delivery": "<evrouter.delivery-id>",
    "key": "<evrouter.event-id>-<evrouter.delivery-id>"})")));
  EXPECT_EQ(out["event"], kEnvelope);
  EXPECT_EQ(out["payload"], kEnvelope["detail"]);
  EXPECT_EQ(out["id"], "01JEVENT");
  EXPECT_EQ(out["type"], "orders/create");
  EXPECT_EQ(out["flow"], "orders");
  EXPECT_EQ(out["delivery"], 77);
  EXPECT_EQ(out["key"], "01JEVENT-77");
}

TEST(Template, UnknownVariableIsRejectedWithWhereAndWhich) {
  Inputs in = inputs();
  try {
    (void)Template::compile(ojson::parse(R"({"a": {"b~/c": ["x", "Order <nmae>"]}})"), in);
    FAIL() << "accepted";
  } catch (const MappingError& e) {
    EXPECT_EQ(e.pointer(), "/a/b~0~1c/1");
    EXPECT_EQ(e.unknown(), "nmae");
    EXPECT_EQ(
        std::string(e.what()).rfind("unknown variable <nmae> (bind it under input_paths; variables: ", 0), 0u)
        << e.what();
  }
}

TEST(Inputs, NamesAreCheckedAndUsesTracked) {
  Inputs in;
  EXPECT_THROW(in.bind("evrouter.event", Path::parse("$")), MappingError);  // predefined: invalid name
  EXPECT_THROW(in.bind("a b", Path::parse("$")), MappingError);
  EXPECT_THROW(in.bind("", Path::parse("$")), MappingError);
  in.bind("order-id_2", Path::parse("$.detail.id"));
  EXPECT_THROW(in.bind("order-id_2", Path::parse("$")), MappingError);
  in.bind("spare", Path::parse("$.x"));
  EXPECT_FALSE(in.any_used());
  EXPECT_TRUE(in.use("order-id_2").has_value());
  EXPECT_FALSE(in.use("nope").has_value());
  EXPECT_TRUE(in.any_used());
  EXPECT_EQ(in.unused(), std::vector<std::string>{"spare"});
}

TEST(Inputs, ConversionsToNumberAndString) {
  Inputs in;
  in.bind("n1", Path::parse("$.a"), Inputs::As::number);
  in.bind("n2", Path::parse("$.b"), Inputs::As::number);
  in.bind("n3", Path::parse("$.c"), Inputs::As::number);
  in.bind("n4", Path::parse("$.d"), Inputs::As::number);
  in.bind("s1", Path::parse("$.b"), Inputs::As::string);
  in.bind("s2", Path::parse("$.e"), Inputs::As::string);
  in.bind("s3", Path::parse("$.f"), Inputs::As::string);
  in.bind("s4", Path::parse("$.missing"), Inputs::As::string);
  const Template t =
      Template::compile(ojson::parse(R"(["<n1>","<n2>","<n3>","<n4>","<s1>","<s2>","<s3>","<s4>"])"), in);
  const auto doc =
      nlohmann::json::parse(R"({"a":"-12.5e1","b":42,"c":"12abc","d":true,"e":{"k":[1]},"f":"t"})");
  Values v;
  in.evaluate(doc, 1, v);
  std::string out;
  t.render(v, out);
  EXPECT_EQ(out, R"([-125.0,42,null,null,"42","{\"k\":[1]}","t",null])");
}

std::string text(const std::string& tmpl, Text::Encoding enc, std::string* missing = nullptr) {
  Inputs in = inputs();
  const Text t = Text::compile(tmpl, in, enc);
  Values values;
  in.evaluate(kEnvelope, 77, values);
  std::string out;
  const std::string* m = t.render(values, out);
  if (missing != nullptr) *missing = m ? *m : "";
  return out;
}

TEST(Text, UriValuesArePercentEncoded) {
  std::string missing;
  EXPECT_EQ(text("/orders/{id}", Text::Encoding::uri, &missing), "/orders/6012345678901");
  EXPECT_EQ(missing, "");
  EXPECT_EQ(text("/orders/{name}?shop={shop}&t={evrouter.event-type}", Text::Encoding::uri),
            "/orders/%231042?shop=demo.myshopify.com&t=orders%2Fcreate");
  EXPECT_EQ(text("/q/{quote}", Text::Encoding::uri), "/q/say%20%22hi%22%0Abye");
  EXPECT_EQ(text("/orders/{missing}/x", Text::Encoding::uri, &missing), "/orders//x");
  EXPECT_EQ(missing, "missing");
  EXPECT_EQ(text("/orders/{note}", Text::Encoding::uri, &missing), "/orders/");
  EXPECT_EQ(missing, "note");
  EXPECT_EQ(text("/a{b/{}/{ id }", Text::Encoding::uri, &missing), "/a{b/{}/{ id }");  // not placeholders
  EXPECT_EQ(missing, "");
}

TEST(Text, HeaderValuesAreTextOnOneLine) {
  EXPECT_EQ(text("Order {name} total {total_n}", Text::Encoding::header), "Order #1042 total 193.86");
  EXPECT_EQ(text("{quote}", Text::Encoding::header), "say \"hi\" bye");  // no header injection
  EXPECT_EQ(text(R"({"literal":1})", Text::Encoding::header), R"({"literal":1})");
  Inputs in = inputs();
  try {
    (void)Text::compile("/orders/{order}", in, Text::Encoding::uri);
    FAIL() << "accepted";
  } catch (const MappingError& e) {
    EXPECT_EQ(e.unknown(), "order");
  }
}

}  // namespace
}  // namespace evr::mapping
