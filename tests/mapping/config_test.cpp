// The loader's checks of mappings (input_paths, input_template, {name} in path and headers) and of the
// default branch, with file:line:column diagnostics.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

struct Loaded {
  std::optional<Flow> flow;
  std::vector<std::string> diagnostics;
};

// Loads `body` (after a common header: name, source, connection outsystems) as flows/f.yaml.
Loaded load(const std::string& body) {
  ::setenv("EVR_TEST_SECRET", "s3cret", 1);
  test::TempDir dir;
  test::write_file(dir / "f.yaml", "name: f\nsource: {secret: {env: EVR_TEST_SECRET}}\n" + body);
  std::map<std::string, Connection> connections;
  connections["outsystems"].name = "outsystems";
  std::vector<Diagnostic> diags;
  Loaded out;
  out.flow = load_flow(dir / "f.yaml", diags, &connections);
  const std::string prefix = (dir / "f.yaml").string();
  for (const auto& d : diags) {
    std::string s = d.str();
    if (s.rfind(prefix, 0) == 0) s = "f.yaml" + s.substr(prefix.size());
    out.diagnostics.push_back(s);
  }
  return out;
}

#define EXPECT_DIAGS(loaded, ...) EXPECT_EQ((loaded).diagnostics, (std::vector<std::string>{__VA_ARGS__}))

TEST(MappingConfig, ValidMappingIsLoaded) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        path: /orders/{id}?shop={shop}
        headers: {X-Order: "{name}", X-Event: "{evrouter.event-id}"}
        input_paths:
          id: $.detail.id
          name: {path: "$.detail['name']"}
          total: {path: $.detail.total_price, as: number}
          shop: $.shop
        input_template:
          Id: <id>
          Total: <total>
          Zebra: 1
          Apple: [<name>, "x"]
)");
  ASSERT_TRUE(l.flow.has_value()) << ::testing::PrintToString(l.diagnostics);
  EXPECT_DIAGS(l);
  const Destination& d = l.flow->branches.at(0).destinations.at(0);
  EXPECT_EQ(d.path, "/orders/{id}?shop={shop}");
  ASSERT_EQ(d.input_paths.size(), 4u);
  EXPECT_EQ(d.input_paths[1].name, "name");
  EXPECT_EQ(d.input_paths[1].path, "$.detail['name']");
  EXPECT_EQ(d.input_paths[2].as, InputPath::As::number);
  EXPECT_EQ(d.input_paths[2].where.line, 11);
  ASSERT_TRUE(d.input_template.has_value());
  EXPECT_EQ(d.input_template->dump(), R"({"Id":"<id>","Total":"<total>","Zebra":1,"Apple":["<name>","x"]})");
}

TEST(MappingConfig, TemplateAsAJsonString) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        input_paths: {id: $.detail.id}
        input_template: '{"b": "<id>", "a": [1, 2.5, null]}'
      - connection: outsystems
        input_template: <evrouter.payload>
)");
  ASSERT_TRUE(l.flow.has_value()) << ::testing::PrintToString(l.diagnostics);
  EXPECT_EQ(l.flow->branches[0].destinations[0].input_template->dump(), R"({"b":"<id>","a":[1,2.5,null]})");
  EXPECT_EQ(l.flow->branches[0].destinations[1].input_template->dump(), R"("<evrouter.payload>")");
}

TEST(MappingConfig, BadPathsAreReportedAtTheirValue) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        input_paths:
          recursive: $..id
          filter: {path: "$.items[?(@.x)]"}
          relative: detail.id
          nopath: {as: number}
          badas: {path: $.x, as: integer}
          "f g": $.x
          seq: [$.x]
        input_template: {A: <recursive>, B: <badas>}
)");
  EXPECT_FALSE(l.flow.has_value());
  EXPECT_DIAGS(
      l,
      "f.yaml:7:22: error: branches[0].destinations[0].input_paths.recursive: invalid path '$..id' at "
      "character 2: "
      "recursive descent (..) is not supported",
      "f.yaml:8:26: error: branches[0].destinations[0].input_paths.filter.path: invalid path "
      "'$.items[?(@.x)]' at "
      "character 9: filter expressions ([?...]) are not supported",
      "f.yaml:9:21: error: branches[0].destinations[0].input_paths.relative: invalid path 'detail.id' at "
      "character "
      "1: a path starts with $ (the event envelope), e.g. $.detail.id",
      "f.yaml:10:19: error: branches[0].destinations[0].input_paths.nopath.path: required key 'path' is "
      "missing "
      "(expected a path into the event such as $.detail.id)",
      "f.yaml:11:34: error: branches[0].destinations[0].input_paths.badas.as: expected one of value, number, "
      "string, found 'integer'",
      "f.yaml:12:11: error: branches[0].destinations[0].input_paths.f g: expected a variable name made of "
      "A-Z a-z "
      "0-9 _ - (evrouter.* names are predefined), found 'f g'",
      "f.yaml:13:16: error: branches[0].destinations[0].input_paths.seq: expected a path such as "
      "$.detail.id, or "
      "{path: ..., as: number}, found a sequence",
      // A variable whose path was rejected is not bound: its use is reported too.
      "f.yaml:14:29: error: branches[0].destinations[0].input_template.A: unknown variable <recursive> (bind "
      "it "
      "under input_paths; bound: badas; predefined: evrouter.event, evrouter.payload, evrouter.event-id, "
      "evrouter.event-type, evrouter.flow, evrouter.delivery-id)");
}

TEST(MappingConfig, UnusedInputPathIsAWarning) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        path: /orders/{id}
        input_paths:
          id: $.detail.id
          spare: $.detail.name
)");
  ASSERT_TRUE(l.flow.has_value());
  EXPECT_DIAGS(
      l,
      "f.yaml:9:11: warning: branches[0].destinations[0].input_paths.spare: input path 'spare' is not "
      "used by input_template, path or headers");
}

TEST(MappingConfig, UnknownVariablesAreReportedWhereTheyAreUsed) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        path: /orders/{ordr_id}
        headers:
          X-One: "{order_id}"
          X-Two: "id {nothing_close}"
        input_paths:
          order_id: $.detail.id
          spare: $.detail.name
        input_template:
          Order:
            Lines:
              - Sku: <sku>
              - Id: <order_idd>
)");
  EXPECT_FALSE(l.flow.has_value());
  EXPECT_DIAGS(
      l,
      "f.yaml:6:15: error: branches[0].destinations[0].path: unknown variable {ordr_id} (did you mean "
      "{order_id}?)",
      "f.yaml:9:18: error: branches[0].destinations[0].headers.X-Two: unknown variable {nothing_close} (bind "
      "it "
      "under input_paths; bound: order_id, spare; predefined: evrouter.event, evrouter.payload, "
      "evrouter.event-id, "
      "evrouter.event-type, evrouter.flow, evrouter.delivery-id)",
      "f.yaml:16:22: error: branches[0].destinations[0].input_template.Order.Lines[0].Sku: unknown variable "
      "<sku> "
      "(bind it under input_paths; bound: order_id, spare; predefined: evrouter.event, evrouter.payload, "
      "evrouter.event-id, evrouter.event-type, evrouter.flow, evrouter.delivery-id)");
}

TEST(MappingConfig, InvalidJsonTemplateAndEmptyTemplate) {
  const auto l = load(R"(branches:
  - destinations:
      - connection: outsystems
        input_paths: {id: $.detail.id}
        input_template: '{"Id": <id>}'
      - connection: outsystems
        input_template:
)");
  EXPECT_FALSE(l.flow.has_value());
  ASSERT_EQ(l.diagnostics.size(), 2u) << ::testing::PrintToString(l.diagnostics);
  EXPECT_EQ(
      l.diagnostics[0].rfind("f.yaml:7:25: error: branches[0].destinations[0].input_template: expected a "
                             "template (a mapping, or a JSON object or array in a string), found invalid "
                             "JSON: ",
                             0),
      0u)
      << l.diagnostics[0];
  EXPECT_NE(l.diagnostics[0].find("(placeholders go inside quotes: \"<name>\" keeps the value's type)"),
            std::string::npos);
  EXPECT_EQ(
      l.diagnostics[1],
      "f.yaml:9:9: error: branches[0].destinations[1].input_template: expected a template, found an empty "
      "value (leave input_template out to send the payload as received)");
}

TEST(DefaultBranch, FlaggingABranchIsAnError) {
  const auto l = load(R"(branches:
  - name: fallback
    default: true
    destinations: [{connection: outsystems}]
)");
  EXPECT_FALSE(l.flow.has_value());
  EXPECT_DIAGS(
      l,
      "f.yaml:5:5: error: branches[0].default: a branch cannot be flagged default; write the default "
      "branch at the flow's top level: default: {destinations: [...]}");
}

TEST(DefaultBranch, WithModeAllAndACatchAllBranchItIsNeverTaken) {
  const auto l = load(R"(mode: all
branches:
  - name: matched
    match: {detail-type: [orders/create]}
    destinations: [{connection: outsystems}]
  - name: everything
    destinations: [{connection: outsystems, path: /all}]
default:
  destinations: [{connection: outsystems, path: /default}]
)");
  ASSERT_TRUE(l.flow.has_value());
  EXPECT_DIAGS(l,
               "f.yaml:11:3: warning: default: the default branch is never taken: branch 'everything' "
               "(branches[1]) has no match and takes every event (mode: all)");
  EXPECT_TRUE(l.flow->branches.back().is_default);
  EXPECT_FALSE(l.flow->branches.front().is_default);
}

}  // namespace
}  // namespace evr::config
