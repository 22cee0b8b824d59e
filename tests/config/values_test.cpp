// Durations, sizes, ${...} expansion, secret references and YAML -> JSON typing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "evrouter/config/duration.h"
#include "evrouter/config/env.h"
#include "evrouter/config/secret.h"
#include "evrouter/config/yaml_json.h"
#include "support/harness.h"

namespace evr::config {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("5s"), Millis(5000));
  EXPECT_EQ(parse_duration("2m"), Millis(120000));
  EXPECT_EQ(parse_duration("48h"), Millis(48 * 3600 * 1000));
  EXPECT_EQ(parse_duration("7d"), Millis(7LL * 86400 * 1000));
  EXPECT_EQ(parse_duration("1.5s"), Millis(1500));
  EXPECT_EQ(parse_duration("1h30m"), Millis(90 * 60 * 1000));
  EXPECT_EQ(parse_duration("0s"), Millis(0));
}

TEST(Duration, RejectsMissingOrUnknownUnits) {
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("10sec"));
  EXPECT_FALSE(parse_duration("-5s"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_FALSE(parse_duration("1.s"));
  EXPECT_FALSE(parse_duration("10w"));
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(48h), "2d");
  EXPECT_EQ(format_duration(0ms), "0s");
}

TEST(ByteSize, ParsesNumbersAndUnits) {
  EXPECT_EQ(parse_byte_size("1048576"), 1048576u);
  EXPECT_EQ(parse_byte_size("1MiB"), 1048576u);
  EXPECT_EQ(parse_byte_size("512KiB"), 524288u);
  EXPECT_EQ(parse_byte_size("1GiB"), 1073741824u);
  EXPECT_EQ(parse_byte_size("2MB"), 2000000u);
  EXPECT_EQ(parse_byte_size("10KB"), 10000u);
  EXPECT_EQ(parse_byte_size("100B"), 100u);
  EXPECT_EQ(parse_byte_size("1.5KiB"), 1536u);
  EXPECT_FALSE(parse_byte_size("1XB"));
  EXPECT_FALSE(parse_byte_size("MiB"));
  EXPECT_FALSE(parse_byte_size("-1"));
  EXPECT_FALSE(parse_byte_size("0.5B"));
  EXPECT_FALSE(parse_byte_size(""));
}

TEST(Env, Expands) {
  ::setenv("EVR_T_SET", "value", 1);
  ::setenv("EVR_T_EMPTY", "", 1);
  ::unsetenv("EVR_T_UNSET");
  std::string error;
  EXPECT_EQ(expand_env("a-${EVR_T_SET}-b", error), "a-value-b");
  EXPECT_EQ(expand_env("${EVR_T_UNSET:-fallback}", error), "fallback");
  EXPECT_EQ(expand_env("${EVR_T_EMPTY:-fallback}", error), "fallback");
  EXPECT_EQ(expand_env("${EVR_T_SET:-fallback}", error), "value");
  EXPECT_EQ(expand_env("${EVR_T_UNSET:-}", error), "");
  EXPECT_EQ(expand_env("${EVR_T_EMPTY}", error), "");
  EXPECT_EQ(expand_env("$${EVR_T_SET} costs $5", error), "${EVR_T_SET} costs $5");
  EXPECT_EQ(expand_env("http://${EVR_T_UNSET:-localhost:8080}/x", error), "http://localhost:8080/x");
  EXPECT_EQ(error, "");
}

TEST(Env, ReportsProblems) {
  ::unsetenv("EVR_T_UNSET");
  std::string error;
  EXPECT_FALSE(expand_env("x${EVR_T_UNSET}", error));
  EXPECT_EQ(error, "environment variable EVR_T_UNSET is not set");
  EXPECT_FALSE(expand_env("${EVR_T_UNSET", error));
  EXPECT_EQ(error.rfind("unterminated '${'", 0), 0u) << error;
  EXPECT_FALSE(expand_env("${1BAD}", error));
  EXPECT_EQ(error.rfind("invalid environment variable reference '${1BAD}'", 0), 0u) << error;
}

TEST(Secret, ResolvesEnvAndFile) {
  test::TempDir dir;
  ::setenv("EVR_T_SECRET", "abc", 1);
  ::setenv("EVR_T_EMPTY", "", 1);
  ::unsetenv("EVR_T_UNSET");
  SecretRef env{SecretRef::Kind::env, "EVR_T_SECRET", {}};
  EXPECT_EQ(env.resolve(), "abc");
  EXPECT_EQ(env.describe(), "env EVR_T_SECRET");
  EXPECT_FALSE((SecretRef{SecretRef::Kind::env, "EVR_T_UNSET", {}}.resolve()));
  EXPECT_FALSE((SecretRef{SecretRef::Kind::env, "EVR_T_EMPTY", {}}.resolve()));

  test::write_file(dir / "s", "file-secret\n");
  SecretRef file{SecretRef::Kind::file, (dir / "s").string(), {}};
  EXPECT_EQ(file.resolve(), "file-secret");
  EXPECT_EQ(file.describe(), "file " + (dir / "s").string());
  EXPECT_EQ(file.describe().find("file-secret"), std::string::npos);
  test::write_file(dir / "empty", "\n");
  EXPECT_FALSE((SecretRef{SecretRef::Kind::file, (dir / "empty").string(), {}}.resolve()));
  EXPECT_FALSE((SecretRef{SecretRef::Kind::file, (dir / "missing").string(), {}}.resolve()));
}

TEST(Secret, FileReadIsBounded) {
  test::TempDir dir;
  test::write_file(dir / "limit", std::string(kMaxSecretFileBytes, 'k'));
  EXPECT_EQ((SecretRef{SecretRef::Kind::file, (dir / "limit").string(), {}}.resolve()->size()),
            kMaxSecretFileBytes);
  test::write_file(dir / "big", std::string(kMaxSecretFileBytes + 1, 'k'));
  EXPECT_FALSE((SecretRef{SecretRef::Kind::file, (dir / "big").string(), {}}.resolve()));
  // A device that never ends is refused, not read into memory.
  EXPECT_FALSE((SecretRef{SecretRef::Kind::file, "/dev/zero", {}}.resolve()));
}

TEST(YamlJson, TypesPlainScalarsPerYaml12Core) {
  const auto j = yaml_to_json(YAML::Load(R"(
quoted: "100"
single: '100'
number: 100
negative: -7
float: 1.5
exp: 2e3
octal: 0o17
hex: 0x1F
yes_: yes
no_: no
on_: on
t: true
f: False
n1: null
n2: ~
n3:
str: hello
qtrue: "true"
qnull: "null"
tagged: !!str 42
list: [1, "2", three]
nested: {a: {b: [x]}}
)"));
  EXPECT_EQ(j["quoted"], "100");
  EXPECT_TRUE(j["quoted"].is_string());
  EXPECT_EQ(j["single"], "100");
  EXPECT_TRUE(j["number"].is_number_integer());
  EXPECT_EQ(j["number"], 100);
  EXPECT_EQ(j["negative"], -7);
  EXPECT_TRUE(j["float"].is_number_float());
  EXPECT_DOUBLE_EQ(j["float"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["exp"].get<double>(), 2000.0);
  EXPECT_EQ(j["octal"], 15);
  EXPECT_EQ(j["hex"], 31);
  EXPECT_EQ(j["yes_"], "yes");
  EXPECT_EQ(j["no_"], "no");
  EXPECT_EQ(j["on_"], "on");
  EXPECT_EQ(j["t"], true);
  EXPECT_EQ(j["f"], false);
  EXPECT_TRUE(j["n1"].is_null());
  EXPECT_TRUE(j["n2"].is_null());
  EXPECT_TRUE(j["n3"].is_null());
  EXPECT_EQ(j["str"], "hello");
  EXPECT_EQ(j["qtrue"], "true");
  EXPECT_EQ(j["qnull"], "null");
  EXPECT_EQ(j["tagged"], "42");
  EXPECT_EQ(j["list"], nlohmann::json::parse(R"([1, "2", "three"])"));
  EXPECT_EQ(j["nested"], nlohmann::json::parse(R"({"a": {"b": ["x"]}})"));
}

TEST(YamlJson, ScalarEdgeCases) {
  EXPECT_TRUE(yaml_scalar_to_json("1.", true).is_number_float());
  EXPECT_TRUE(yaml_scalar_to_json(".5", true).is_number_float());
  EXPECT_TRUE(std::isinf(yaml_scalar_to_json("-.inf", true).get<double>()));
  EXPECT_TRUE(std::isnan(yaml_scalar_to_json(".NaN", true).get<double>()));
  EXPECT_EQ(yaml_scalar_to_json("+12", true), 12);
  EXPECT_EQ(yaml_scalar_to_json("1_000", true), "1_000");
  EXPECT_EQ(yaml_scalar_to_json("0x", true), "0x");
  EXPECT_EQ(yaml_scalar_to_json("12:30", true), "12:30");
  EXPECT_EQ(yaml_scalar_to_json("123", false), "123");
  EXPECT_EQ(yaml_scalar_to_json("18446744073709551615", true).get<uint64_t>(), 18446744073709551615ULL);
  EXPECT_TRUE(yaml_scalar_to_json("99999999999999999999999", true).is_number_float());
  EXPECT_EQ(yaml_scalar_to_json("-9223372036854775808", true).get<int64_t>(), INT64_MIN);
}

TEST(YamlJson, ParsesJsonOrYaml) {
  EXPECT_EQ(parse_json_or_yaml(R"({"a": [1, "x"]})"), nlohmann::json::parse(R"({"a": [1, "x"]})"));
  EXPECT_EQ(parse_json_or_yaml("a:\n  - 1\n  - x\n"), nlohmann::json::parse(R"({"a": [1, "x"]})"));
  EXPECT_EQ(parse_json_or_yaml("{a: 1}"), nlohmann::json::parse(R"({"a": 1})"));
  EXPECT_EQ(parse_json_or_yaml(R"({"price": "100"})")["price"], "100");
}

TEST(YamlJson, ErrorsCarryLineAndColumn) {
  try {
    parse_json_or_yaml("{\n  \"a\": [1,\n  \"b\": 2\n}");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("3:", 0), 0u) << e.what();
  }
  try {
    parse_json_or_yaml("a: 1\n  b: 2\n");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "2:4: illegal map value");
  }
  EXPECT_THROW(parse_json_or_yaml("  \n"), std::invalid_argument);
  EXPECT_THROW(parse_json_or_yaml("a: 1\n---\nb: 2\n"), std::invalid_argument);
}

}  // namespace
}  // namespace evr::config
