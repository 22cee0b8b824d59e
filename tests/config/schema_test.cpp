// The JSON Schemas in docs/schema/ (for editors): valid JSON Schema 2020-12 documents, every key described,
// the sample files use only keys the schemas know, and the schemas know exactly the keys the loader
// accepts (read from the loader's own "unknown key ... (expected one of: ...)" answers).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "evrouter/config/loader.h"
#include "evrouter/config/yaml_json.h"
#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::read_file;
using test::TempDir;
using test::write_file;

const fs::path kSource = EVROUTER_SOURCE_DIR;

json schema(const std::string& name) {
  return json::parse(read_file(kSource / "docs" / "schema" / name));
}

// A YAML document as JSON (scalars typed as the loader types them).
json to_json(const YAML::Node& y) {
  switch (y.Type()) {
    case YAML::NodeType::Scalar:
      return yaml_scalar_to_json(y.Scalar(), y.Tag() != "!");
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : y) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : y) out[kv.first.Scalar()] = to_json(kv.second);
      return out;
    }
    default:
      return nullptr;
  }
}

json yaml_file(const fs::path& path) {
  return to_json(YAML::LoadFile(path.string()));
}

// Follows "$ref": "#/$defs/<name>" (the only kind of reference the schemas use).
const json& resolve(const json& root, const json& s) {
  const json* at = &s;
  while (at->is_object() && at->contains("$ref")) {
    const std::string ref = (*at)["$ref"].get<std::string>();
    const std::string prefix = "#/$defs/";
    if (ref.rfind(prefix, 0) != 0) throw std::runtime_error("unsupported $ref " + ref);
    at = &root.at("$defs").at(ref.substr(prefix.size()));
  }
  return *at;
}

// The schemas a value may be checked against, through $ref, anyOf, oneOf and allOf.
void alternatives(const json& root, const json& s, std::vector<const json*>& out) {
  const json& r = resolve(root, s);
  if (!r.is_object()) return;
  out.push_back(&r);
  for (const char* k : {"anyOf", "oneOf", "allOf"}) {
    if (r.contains(k)) {
      for (const auto& b : r[k]) alternatives(root, b, out);
    }
  }
}

// Keys of `value` (recursively) that `s` does not allow, as key paths.
std::vector<std::string> unknown_keys(const json& root, const json& s, const json& value,
                                      const std::string& path) {
  std::vector<const json*> options;
  alternatives(root, s, options);
  if (value.is_array()) {
    std::vector<std::string> out;
    for (const json* o : options) {
      if (!o->contains("items")) continue;
      for (std::size_t i = 0; i < value.size(); ++i) {
        auto more = unknown_keys(root, (*o)["items"], value[i], path + "[" + std::to_string(i) + "]");
        out.insert(out.end(), more.begin(), more.end());
      }
      return out;
    }
    return out;
  }
  if (!value.is_object()) return {};
  // The alternative that fits best (e.g. the auth type written).
  std::optional<std::vector<std::string>> best;
  for (const json* o : options) {
    if (!o->contains("properties") && !o->contains("additionalProperties")) continue;
    std::vector<std::string> errors;
    for (const auto& [k, v] : value.items()) {
      const std::string p = path.empty() ? k : path + "." + k;
      if (o->contains("properties") && (*o)["properties"].contains(k)) {
        auto more = unknown_keys(root, (*o)["properties"][k], v, p);
        errors.insert(errors.end(), more.begin(), more.end());
      } else if (o->contains("additionalProperties") && (*o)["additionalProperties"].is_object()) {
        auto more = unknown_keys(root, (*o)["additionalProperties"], v, p);
        errors.insert(errors.end(), more.begin(), more.end());
      } else if (o->value("additionalProperties", json(true)) == json(false)) {
        errors.push_back(p);
      }
    }
    if (!best || errors.size() < best->size()) best = std::move(errors);
  }
  return best.value_or(std::vector<std::string>{});
}

// Every key under "properties", anywhere in the schema, has a description.
void undescribed(const json& s, const std::string& where, std::vector<std::string>& out) {
  if (s.is_array()) {
    for (std::size_t i = 0; i < s.size(); ++i) undescribed(s[i], where + "[" + std::to_string(i) + "]", out);
    return;
  }
  if (!s.is_object()) return;
  for (const auto& [k, v] : s.items()) {
    if (k == "properties" && v.is_object()) {
      for (const auto& [name, prop] : v.items()) {
        if (!prop.is_object() || !prop.contains("description")) out.push_back(where + "/" + name);
      }
    }
    undescribed(v, where + "/" + k, out);
  }
}

// The keys of the object schema `s`.
std::set<std::string> keys_of(const json& root, const json& s) {
  std::set<std::string> out;
  const json& r = resolve(root, s);
  for (const auto& [k, _] : r.at("properties").items()) out.insert(k);
  return out;
}

// The keys the loader accepts where `bogus` is: it answers an unknown key with the list it expected.
constexpr const char* kBogus = "zzzzzzzzzzzzzzzzzzzz";

std::set<std::string> expected_keys(const std::vector<Diagnostic>& diagnostics, const std::string& path) {
  for (const auto& d : diagnostics) {
    if (d.path != path) continue;
    const std::string marker = "(expected one of: ";
    const auto at = d.message.find(marker);
    if (at == std::string::npos) continue;
    const auto end = d.message.find(')', at);
    const std::string list = d.message.substr(at + marker.size(), end - at - marker.size());
    std::set<std::string> out;
    std::size_t from = 0;
    while (from <= list.size()) {
      const auto comma = list.find(", ", from);
      out.insert(list.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
      if (comma == std::string::npos) break;
      from = comma + 2;
    }
    return out;
  }
  ADD_FAILURE() << "the loader did not list its keys at " << path;
  return {};
}

std::set<std::string> config_keys(const std::string& yaml, const std::string& path) {
  TempDir dir;
  write_file(dir / "evrouter.yaml", yaml);
  LoadOptions options;
  options.require_secrets = false;
  options.flow_files = std::vector<fs::path>{};
  return expected_keys(load(dir / "evrouter.yaml", options).diagnostics, path);
}

std::set<std::string> flow_keys(const std::string& yaml, const std::string& path) {
  TempDir dir;
  write_file(dir / "flow.yaml", yaml);
  LoadOptions options;
  options.require_secrets = false;
  std::vector<Diagnostic> diagnostics;
  (void)load_flow(dir / "flow.yaml", diagnostics, nullptr, options);
  return expected_keys(diagnostics, path);
}

std::string bogus(const std::string& path) {
  return path.empty() ? kBogus : path + "." + kBogus;
}

TEST(Schema, BothAreDraft202012WithEveryKeyDescribed) {
  for (const char* name : {"evrouter.schema.json", "flow.schema.json"}) {
    const json s = schema(name);
    EXPECT_EQ(s.value("$schema", ""), "https://json-schema.org/draft/2020-12/schema") << name;
    EXPECT_EQ(s.value("type", ""), "object") << name;
    EXPECT_FALSE(s.value("additionalProperties", true)) << name;
    std::vector<std::string> missing;
    undescribed(s, name, missing);
    EXPECT_TRUE(missing.empty()) << name << ": no description for " << missing.front();
    // Every reference resolves.
    std::function<void(const json&)> refs = [&](const json& j) {
      if (j.is_object()) {
        if (j.contains("$ref")) {
          EXPECT_NO_THROW(resolve(s, j)) << name << ": " << j["$ref"];
        }
        for (const auto& [_, v] : j.items()) refs(v);
      } else if (j.is_array()) {
        for (const auto& v : j) refs(v);
      }
    };
    refs(s);
  }
}

TEST(Schema, SampleFilesUseOnlyKnownKeys) {
  const json main = schema("evrouter.schema.json");
  const json flow = schema("flow.schema.json");
  const json sample = yaml_file(kSource / "config" / "evrouter.yaml");
  EXPECT_EQ(unknown_keys(main, main, sample, ""), std::vector<std::string>{});
  for (const auto& f : expand_flow_path(kSource / "flows")) {
    EXPECT_EQ(unknown_keys(flow, flow, yaml_file(f), ""), std::vector<std::string>{}) << f;
  }
  // The check itself notices an unknown key.
  json wrong = sample;
  wrong["server"]["prot"] = 80;
  EXPECT_EQ(unknown_keys(main, main, wrong, ""), std::vector<std::string>{"server.prot"});
}

TEST(Schema, MainSchemaKnowsEveryKeyTheLoaderAccepts) {
  const json s = schema("evrouter.schema.json");
  const json& props = s["properties"];
  const std::string b = kBogus;
  EXPECT_EQ(keys_of(s, s), config_keys(b + ": 1\n", bogus("")));
  for (const char* section : {"server", "store", "log", "reload", "schemas"}) {
    EXPECT_EQ(keys_of(s, props[section]),
              config_keys(std::string(section) + ": {" + b + ": 1}\n", bogus(section)))
        << section;
  }
  const std::string conn = "connections:\n  c:\n    base_uri: http://h\n";
  const json& connection = s["$defs"]["connection"];
  EXPECT_EQ(keys_of(s, connection), config_keys(conn + "    " + b + ": 1\n", bogus("connections.c")));
  EXPECT_EQ(keys_of(s, connection["properties"]["rate_limit"]),
            config_keys(conn + "    rate_limit: {" + b + ": 1}\n", bogus("connections.c.rate_limit")));
  EXPECT_EQ(keys_of(s, s["$defs"]["retry"]),
            config_keys(conn + "    retry: {" + b + ": 1}\n", bogus("connections.c.retry")));
  EXPECT_EQ(keys_of(s, s["$defs"]["secret"]),
            config_keys(conn + "    auth: {type: bearer, token: {env: X, " + b + ": 1}}\n",
                        bogus("connections.c.auth.token")));
  for (const char* type : {"none", "basic", "bearer", "api_key", "oauth2"}) {
    std::set<std::string> in_schema;
    for (const auto& alt : s["$defs"]["auth"]["oneOf"]) {
      if (alt.contains("properties") && alt["properties"]["type"]["const"] == type)
        in_schema = keys_of(s, alt);
    }
    EXPECT_EQ(in_schema, config_keys(conn + "    auth: {type: " + type + ", " + b + ": 1}\n",
                                     bogus("connections.c.auth")))
        << type;
  }
  std::set<std::string> signing;
  for (const auto& alt : s["$defs"]["signing"]["oneOf"]) {
    if (alt.contains("properties") && alt["properties"]["type"]["const"] == "standard-webhooks")
      signing = keys_of(s, alt);
  }
  EXPECT_EQ(signing, config_keys(conn + "    signing: {type: standard-webhooks, " + b + ": 1}\n",
                                 bogus("connections.c.signing")));
}

TEST(Schema, FlowSchemaKnowsEveryKeyTheLoaderAccepts) {
  const json s = schema("flow.schema.json");
  const std::string b = kBogus;
  const std::string head = "name: f\nsource: {secret: {env: X}}\n";
  EXPECT_EQ(keys_of(s, s),
            flow_keys(head + "default: {destinations: [{connection: c}]}\n" + b + ": 1\n", bogus("")));
  EXPECT_EQ(keys_of(s, s["properties"]["source"]),
            flow_keys("name: f\nsource: {secret: {env: X}, " + b +
                          ": 1}\nbranches: [{destinations: [{connection: c}]}]\n",
                      bogus("source")));
  EXPECT_EQ(keys_of(s, s["$defs"]["secret"]),
            flow_keys("name: f\nsource: {secret: {env: X, " + b +
                          ": 1}}\nbranches: [{destinations: [{connection: c}]}]\n",
                      bogus("source.secret")));
  EXPECT_EQ(keys_of(s, s["$defs"]["branch"]),
            flow_keys(head + "branches: [{destinations: [{connection: c}], " + b + ": 1}]\n",
                      bogus("branches[0]")));
  EXPECT_EQ(keys_of(s, s["$defs"]["destination"]),
            flow_keys(head + "branches: [{destinations: [{connection: c, " + b + ": 1}]}]\n",
                      bogus("branches[0].destinations[0]")));
  EXPECT_EQ(keys_of(s, s["$defs"]["retry"]),
            flow_keys(head + "branches: [{destinations: [{connection: c, retry: {" + b + ": 1}}]}]\n",
                      bogus("branches[0].destinations[0].retry")));
  // The loader names `match` under default only to explain that the default branch takes none.
  auto loader_default =
      flow_keys(head + "default: {destinations: [{connection: c}], " + b + ": 1}\n", bogus("default"));
  loader_default.erase("match");
  EXPECT_EQ(keys_of(s, s["properties"]["default"]), loader_default);
}

}  // namespace
}  // namespace evr::config
