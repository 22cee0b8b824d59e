// `evrouter validate` and `evrouter test-pattern`, run as the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "support/harness.h"

namespace evr {
namespace {

namespace fs = std::filesystem;
using test::DaemonProcess;
using test::read_file;
using test::TempDir;
using test::write_file;

using Outcome = test::CliRun;
using test::run_cli;

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::string kSampleConfig = std::string(EVROUTER_SOURCE_DIR) + "/config/evrouter.yaml";

class InSourceDir : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = fs::current_path();
    fs::current_path(EVROUTER_SOURCE_DIR);  // the sample's flows: [flows] is relative to the cwd
  }
  void TearDown() override { fs::current_path(old_); }
  fs::path old_;
};

TEST_F(InSourceDir, ValidateAcceptsTheSampleConfig) {
  const Outcome r = run_cli({"validate", "--config", kSampleConfig}, {"SHOPIFY_WEBHOOK_SECRET=x"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, "ok: 1 config, 1 flow, 1 connection")) << r.output;
}

TEST_F(InSourceDir, ValidateWarnsAboutAnUnsetSecretButSucceeds) {
  // The child inherits the test's environment: make sure the secret is not there.
  const char* old = std::getenv("SHOPIFY_WEBHOOK_SECRET");
  const std::string saved = old ? old : "";
  ::unsetenv("SHOPIFY_WEBHOOK_SECRET");
  const Outcome r = run_cli({"validate"});
  if (old) ::setenv("SHOPIFY_WEBHOOK_SECRET", saved.c_str(), 1);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output,
                  "flows/shopify-orders.yaml:14:11: warning: source.secret: environment variable "
                  "SHOPIFY_WEBHOOK_SECRET is not set"))
      << r.output;
  EXPECT_TRUE(has(r.output, "ok: 1 config, 1 flow, 1 connection (1 warning)")) << r.output;
}

TEST(Validate, ReportsErrorsAndExitsOne) {
  TempDir dir;
  write_file(dir / "evrouter.yaml",
             "server:\n  prot: 80\nconnections:\n  os: {base_uri: 'http://h'}\nflows: [" +
                 (dir / "flows").string() + "]\n");
  write_file(dir / "flows" / "a.yaml",
             "name: a\nsource: {secret: {env: EVR_CLI_SECRET}}\nbranches:\n  - destinations: [{connection: "
             "nope}]\n");
  const Outcome r = run_cli({"validate", "--config", (dir / "evrouter.yaml").string()}, {"EVR_CLI_SECRET=x"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, (dir / "evrouter.yaml").string() +
                                ":2:3: error: server.prot: unknown key 'prot' (did you mean 'port'?)"))
      << r.output;
  EXPECT_TRUE(
      has(r.output, (dir / "flows/a.yaml").string() +
                        ":4:33: error: branches[0].destinations[0].connection: unknown connection 'nope'"))
      << r.output;
  EXPECT_TRUE(has(r.output, "2 errors, 0 warnings")) << r.output;
}

TEST(Validate, ChecksGivenFlowFilesAgainstTheConfig) {
  TempDir dir;
  write_file(dir / "evrouter.yaml", "connections:\n  os: {base_uri: 'http://h'}\nflows: []\n");
  write_file(
      dir / "good.yaml",
      "name: a\nsource: {secret: {env: EVR_CLI_SECRET}}\nbranches:\n  - destinations: [{connection: os}]\n");
  const Outcome ok =
      run_cli({"validate", "--config", (dir / "evrouter.yaml").string(), (dir / "good.yaml").string()},
              {"EVR_CLI_SECRET=x"});
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_TRUE(has(ok.output, "ok: 1 config, 1 flow, 1 connection")) << ok.output;

  const Outcome missing = run_cli({"validate", "--config", (dir / "missing.yaml").string()});
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_TRUE(has(missing.output, "cannot read file")) << missing.output;

  const Outcome bad_option = run_cli({"validate", "--frobnicate"});
  EXPECT_EQ(bad_option.status, 2) << bad_option.output;
}

TEST(Validate, WarnsAboutUnreachableBranchesUnusedConnectionsAndUnsetSecrets) {
  TempDir dir;
  write_file(dir / "evrouter.yaml",
             "connections:\n  os: {base_uri: 'http://h'}\n  spare: {base_uri: 'http://h'}\nflows: [" +
                 (dir / "f.yaml").string() + "]\n");
  write_file(
      dir / "f.yaml",
      "name: a\nsource: {secret: {env: EVR_CLI_UNSET_SECRET}}\nbranches:\n  - destinations: [{connection: "
      "os}]\n  - name: late\n    destinations: [{connection: os}]\n");
  ::unsetenv("EVR_CLI_UNSET_SECRET");
  const Outcome r = run_cli({"validate", "--config", (dir / "evrouter.yaml").string()});
  EXPECT_EQ(r.status, 0) << r.output;
  const std::string config = (dir / "evrouter.yaml").string(), flow = (dir / "f.yaml").string();
  EXPECT_TRUE(
      has(r.output, config + ":3:3: warning: connections.spare: connection 'spare' is not used by any flow"))
      << r.output;
  EXPECT_TRUE(has(
      r.output, flow + ":2:18: warning: source.secret: environment variable EVR_CLI_UNSET_SECRET is not set"))
      << r.output;
  EXPECT_TRUE(has(r.output, flow + ":5:5: warning: branches[1]: branch 'late' is unreachable")) << r.output;
  EXPECT_TRUE(has(r.output, "ok: 1 config, 1 flow, 2 connections (3 warnings)")) << r.output;
}

TEST(Validate, RefusesABaseUriTheHttpClientCannotUse) {
  TempDir dir;
  write_file(dir / "evrouter.yaml", "connections:\n  os: {base_uri: 'http://-host'}\nflows: []\n");
  const Outcome r = run_cli({"validate", "--config", (dir / "evrouter.yaml").string()});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(
      r.output, (dir / "evrouter.yaml").string() + ":2:18: error: connections.os.base_uri: expected an http"))
      << r.output;
}

class TestPattern : public ::testing::Test {
 protected:
  TempDir dir;
  std::string file(const std::string& name, const std::string& text) {
    write_file(dir / name, text);
    return (dir / name).string();
  }
};

TEST_F(TestPattern, MatchPrintsTrueAndExitsZero) {
  const auto pattern = file(
      "p.yaml", "detail-type: [orders/create]\ndetail:\n  total_price: [{numeric-string: ['>', 100]}]\n");
  const auto event =
      file("e.json", R"({"detail-type": "orders/create", "detail": {"total_price": "193.86"}})");
  const Outcome r = run_cli({"test-pattern", pattern, event});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "true\n");
}

TEST_F(TestPattern, NoMatchPrintsFalseAndExitsOne) {
  const auto pattern = file("p.json", R"({"detail-type": ["orders/create"]})");
  const auto event = file("e.yaml", "detail-type: orders/updated\ndetail: {}\n");
  const Outcome r = run_cli({"test-pattern", pattern, event});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output, "false\n");
}

TEST_F(TestPattern, InvalidInputsExitTwo) {
  const auto event = file("e.json", R"({"detail-type": "orders/create"})");
  const auto bad_json = file("bad.json", "{\"detail-type\": [\"orders/create\"\n");
  const Outcome syntax = run_cli({"test-pattern", bad_json, event});
  EXPECT_EQ(syntax.status, 2) << syntax.output;
  EXPECT_TRUE(has(syntax.output, "pattern: " + bad_json + ":")) << syntax.output;

  const auto invalid = file("invalid.json", R"({"detail-type": "orders/create"})");
  const Outcome engine = run_cli({"test-pattern", invalid, event});
  EXPECT_EQ(engine.status, 2) << engine.output;
  EXPECT_TRUE(has(engine.output, "evrouter test-pattern: pattern: ")) << engine.output;

  const auto pattern = file("p.json", R"({"detail-type": ["orders/create"]})");
  const Outcome bad_event = run_cli({"test-pattern", pattern, bad_json});
  EXPECT_EQ(bad_event.status, 2) << bad_event.output;
  EXPECT_TRUE(has(bad_event.output, "event: ")) << bad_event.output;

  const Outcome missing = run_cli({"test-pattern", pattern, (dir / "missing.json").string()});
  EXPECT_EQ(missing.status, 2) << missing.output;

  EXPECT_EQ(run_cli({"test-pattern", "-", "-"}).status, 2);
  EXPECT_EQ(run_cli({"test-pattern", pattern}).status, 2);
}

TEST_F(TestPattern, ReadsStandardInput) {
  const auto pattern = file("p.json", R"({"detail-type": ["orders/create"]})");
  const auto event = file("e.json", R"({"detail-type": "orders/create"})");
  const auto out = (dir / "out.txt").string();
  const std::string cmd = std::string(EVROUTER_BINARY) + " test-pattern - '" + event + "' < '" + pattern +
                          "' > '" + out + "' 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(out);
  EXPECT_EQ(read_file(out), "true\n");
}

}  // namespace
}  // namespace evr
