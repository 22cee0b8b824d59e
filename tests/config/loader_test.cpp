// The configuration loader: the sample files, environment expansion and every kind of diagnostic.
#include "evrouter/config/loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

// Runs in `dir` for the lifetime of the object (relative flow paths resolve against the cwd).
class ChangeDir {
 public:
  explicit ChangeDir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ChangeDir() { fs::current_path(old_); }

 private:
  fs::path old_;
};

// Sets (or unsets, with nullptr) an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::vector<std::string> strings(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const auto& d : diagnostics) out.push_back(d.str());
  return out;
}

bool contains(const std::vector<Diagnostic>& diagnostics, const std::string& line) {
  for (const auto& d : diagnostics) {
    if (d.str() == line) return true;
  }
  return false;
}

#define EXPECT_DIAG(result, line)                     \
  EXPECT_TRUE(contains((result).diagnostics, (line))) \
      << ::testing::PrintToString(strings((result).diagnostics))

const char* kMain = R"(connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
flows: [flows]
)";

// A valid flow using connection outsystems, with secret env EVR_TEST_SECRET.
const char* kFlow = R"(name: orders
source:
  type: shopify
  secret: {env: EVR_TEST_SECRET}
branches:
  - name: all
    destinations:
      - connection: outsystems
        path: /orders
)";

// A temp dir holding evrouter.yaml and flows/, with the secret set.
struct Fixture {
  TempDir dir;
  ScopedEnv secret{"EVR_TEST_SECRET", "s3cret"};
  std::optional<ChangeDir> cd;

  Fixture() { cd.emplace(dir.path()); }
  void main(const std::string& text) { write_file(dir / "evrouter.yaml", text); }
  void flow(const std::string& name, const std::string& text) { write_file(dir / "flows" / name, text); }
  LoadResult load(bool require_secrets = true) {
    LoadOptions o;
    o.require_secrets = require_secrets;
    return config::load("evrouter.yaml", o);
  }
};

// ---------------------------------------------------------------------------------------------------

TEST(SampleConfig, LoadsIntoTheExpectedModel) {
  ChangeDir cd(EVROUTER_SOURCE_DIR);
  ScopedEnv secret("SHOPIFY_WEBHOOK_SECRET", "shpss_test");
  ScopedEnv port("EVROUTER_HTTP_PORT", nullptr);
  ScopedEnv state("EVROUTER_STATE_DIR", nullptr);
  ScopedEnv url("EVROUTER_PUBLIC_BASE_URL", nullptr);
  ScopedEnv base("OUTSYSTEMS_BASE_URL", nullptr);

  const auto result = load("config/evrouter.yaml");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(strings(result.diagnostics));
  EXPECT_TRUE(result.diagnostics.empty()) << ::testing::PrintToString(strings(result.diagnostics));
  const Config& c = *result.config;

  EXPECT_EQ(c.server.listen, "0.0.0.0");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.public_base_url, "http://localhost:8080");
  EXPECT_EQ(c.server.workers, 0);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.max_connections, 10000);
  EXPECT_EQ(c.server.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(c.server.idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.server.shutdown_grace, std::chrono::seconds(10));
  EXPECT_EQ(c.store.type, "sqlite");
  EXPECT_EQ(c.store.state_dir, "./state");
  EXPECT_EQ(c.store.durability, Store::Durability::fsync);
  EXPECT_EQ(c.store.dedup_window, std::chrono::hours(48));
  EXPECT_EQ(c.store.commit_max_batch, 2048);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "text");
  EXPECT_EQ(c.flow_paths, std::vector<std::string>{"flows"});

  ASSERT_EQ(c.connections.size(), 1u);
  const Connection& os = c.connections.at("outsystems");
  EXPECT_EQ(os.name, "outsystems");
  EXPECT_EQ(os.base_uri, "http://127.0.0.1:9000");
  EXPECT_EQ(os.auth.type, Auth::Type::none);
  EXPECT_EQ(os.media_type, "application/json");
  EXPECT_EQ(os.connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(os.request_timeout, std::chrono::seconds(30));
  EXPECT_EQ(os.rate_limit.per_second, 50);
  EXPECT_EQ(os.rate_limit.burst, 10);
  EXPECT_EQ(os.concurrency, 8);
  EXPECT_EQ(os.retry.max_attempts, 10);
  EXPECT_EQ(os.retry.max_age, std::chrono::hours(24));
  EXPECT_EQ(os.retry.backoff_base, std::chrono::seconds(1));
  EXPECT_EQ(os.retry.backoff_cap, std::chrono::minutes(10));
  EXPECT_DOUBLE_EQ(os.retry.jitter, 0.2);
  EXPECT_TRUE(os.tls_verify);
  EXPECT_TRUE(os.ca_file.empty());

  ASSERT_EQ(c.flows.size(), 1u);
  const Flow& f = c.flows[0];
  EXPECT_EQ(f.name, "shopify-orders");
  EXPECT_EQ(f.file, "flows/shopify-orders.yaml");
  EXPECT_TRUE(f.enabled);
  EXPECT_EQ(f.mode, Flow::Mode::first);
  EXPECT_EQ(f.source.type, "shopify");
  EXPECT_FALSE(f.source.listener_id.has_value());
  ASSERT_EQ(f.source.secrets.size(), 1u);
  EXPECT_EQ(f.source.secrets[0].kind, SecretRef::Kind::env);
  EXPECT_EQ(f.source.secrets[0].name, "SHOPIFY_WEBHOOK_SECRET");
  EXPECT_EQ(f.source.secrets[0].resolve(), "shpss_test");
  EXPECT_EQ(f.source.topics, (std::vector<std::string>{"orders/create", "orders/updated"}));

  ASSERT_EQ(f.branches.size(), 2u);
  const Branch& priority = f.branches[0];
  EXPECT_EQ(priority.name, "priority");
  ASSERT_TRUE(priority.match.has_value());
  EXPECT_EQ(*priority.match, nlohmann::json::parse(R"({"detail-type": ["orders/create"],
      "detail": {"total_price": [{"numeric-string": [">", 100]}]}})"));
  ASSERT_EQ(priority.destinations.size(), 1u);
  EXPECT_EQ(priority.destinations[0].name, "outsystems");
  EXPECT_EQ(priority.destinations[0].connection, "outsystems");
  EXPECT_EQ(priority.destinations[0].method, "POST");
  EXPECT_EQ(priority.destinations[0].path, "/orders/priority");
  EXPECT_EQ(priority.destinations[0].headers, (Headers{{"X-Evrouter-Flow", "shopify-orders"}}));
  EXPECT_FALSE(priority.destinations[0].retry.has_value());

  const Branch& standard = f.branches[1];
  EXPECT_EQ(standard.name, "standard");
  EXPECT_FALSE(standard.match.has_value());
  ASSERT_EQ(standard.destinations.size(), 1u);
  EXPECT_EQ(standard.destinations[0].path, "/orders");
  EXPECT_EQ(standard.destinations[0].method, "POST");
}

TEST(SampleConfig, ReadsItsEnvironmentVariables) {
  ChangeDir cd(EVROUTER_SOURCE_DIR);
  ScopedEnv secret("SHOPIFY_WEBHOOK_SECRET", "shpss_test");
  ScopedEnv port("EVROUTER_HTTP_PORT", "9191");
  ScopedEnv state("EVROUTER_STATE_DIR", "/var/lib/evrouter");
  ScopedEnv url("EVROUTER_PUBLIC_BASE_URL", nullptr);
  ScopedEnv base("OUTSYSTEMS_BASE_URL", "https://os.example.com/api");

  const auto result = load("config/evrouter.yaml");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(strings(result.diagnostics));
  EXPECT_EQ(result.config->server.port, 9191);
  EXPECT_EQ(result.config->server.public_base_url, "http://localhost:9191");
  EXPECT_EQ(result.config->store.state_dir, "/var/lib/evrouter");
  EXPECT_EQ(result.config->connections.at("outsystems").base_uri, "https://os.example.com/api");

  ScopedEnv url2("EVROUTER_PUBLIC_BASE_URL", "https://hooks.example.com");
  const auto again = load("config/evrouter.yaml");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.config->server.public_base_url, "https://hooks.example.com");
}

TEST(SampleConfig, UnsetWebhookSecretIsAnErrorForServeAndAWarningForValidate) {
  ChangeDir cd(EVROUTER_SOURCE_DIR);
  ScopedEnv secret("SHOPIFY_WEBHOOK_SECRET", nullptr);

  const auto serve = load("config/evrouter.yaml");
  EXPECT_FALSE(serve.ok());
  ASSERT_EQ(serve.diagnostics.size(), 1u);
  EXPECT_EQ(
      serve.diagnostics[0].str(),
      "flows/shopify-orders.yaml:14:11: error: source.secret: environment variable SHOPIFY_WEBHOOK_SECRET "
      "is not set");

  LoadOptions lenient;
  lenient.require_secrets = false;
  const auto validate = load("config/evrouter.yaml", lenient);
  EXPECT_TRUE(validate.ok());
  ASSERT_EQ(validate.diagnostics.size(), 1u);
  EXPECT_EQ(validate.diagnostics[0].severity, Diagnostic::Severity::warning);
  EXPECT_EQ(
      validate.diagnostics[0].str(),
      "flows/shopify-orders.yaml:14:11: warning: source.secret: environment variable SHOPIFY_WEBHOOK_SECRET "
      "is not set");
}

// ---------------------------------------------------------------------------------------------------

TEST(Loader, ExpandsEnvironmentVariablesWithDefaults) {
  Fixture fx;
  ScopedEnv port("EVR_TEST_PORT", "7001");
  ScopedEnv unset("EVR_TEST_UNSET", nullptr);
  ScopedEnv empty("EVR_TEST_EMPTY", "");
  fx.main(R"(server:
  port: ${EVR_TEST_PORT}
  public_base_url: ${EVR_TEST_UNSET:-https://default.example.com}/x
store:
  state_dir: "${EVR_TEST_EMPTY:-/tmp/evr}/$${NOT_EXPANDED}"
connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
flows: [flows]
)");
  fx.flow("orders.yaml", kFlow);
  const auto r = fx.load();
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(r.config->server.port, 7001);
  EXPECT_EQ(r.config->server.public_base_url, "https://default.example.com/x");
  EXPECT_EQ(r.config->store.state_dir, "/tmp/evr/${NOT_EXPANDED}");
}

TEST(Loader, UnsetVariableIsReportedAtItsScalar) {
  Fixture fx;
  ScopedEnv unset("EVR_TEST_UNSET", nullptr);
  fx.main(R"(server:
  listen: 127.0.0.1
  port: ${EVR_TEST_UNSET}
connections:
  outsystems:
    base_uri: "http://${EVR_TEST_UNSET}/api"
flows: [flows]
)");
  fx.flow("orders.yaml", kFlow);
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors(), 2u);
  EXPECT_DIAG(r, "evrouter.yaml:3:9: error: server.port: environment variable EVR_TEST_UNSET is not set");
  EXPECT_DIAG(r,
              "evrouter.yaml:6:15: error: connections.outsystems.base_uri: environment variable "
              "EVR_TEST_UNSET is not "
              "set");
}

TEST(Loader, WrongTypesSayWhatWasExpectedAndFound) {
  Fixture fx;
  fx.main(R"(server:
  port: eighty
  max_body_bytes: lots
  request_timeout: 10
store:
  durability: fsnc
log:
  level: loud
connections:
  outsystems:
    base_uri: ftp://example.com
    concurrency: 0
    rate_limit: {per_second: -5, burst: 10}
    tls_verify: maybe
    retry: {jitter: 2, backoff_base: 1m, backoff_cap: 10s}
flows: [flows]
)");
  fx.flow("orders.yaml", kFlow);
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r, "evrouter.yaml:2:9: error: server.port: expected an integer between 0 and 65535, found 'eighty'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:3:19: error: server.max_body_bytes: expected a size in bytes, e.g. 1048576, 512KiB or "
      "1MiB, found 'lots'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:4:20: error: server.request_timeout: expected a duration with a unit (ms, s, m, h, d), "
      "e.g. 500ms, 10s, 48h, found '10'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:6:15: error: store.durability: expected one of fsync, os, none, found 'fsnc' (did you "
      "mean 'fsync'?)");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:8:10: error: log.level: expected one of trace, debug, info, warn, error, found 'loud'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:11:15: error: connections.outsystems.base_uri: expected an http:// or https:// URI with "
      "a host, e.g. https://api.example.com/base, found 'ftp://example.com'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:12:18: error: connections.outsystems.concurrency: expected an integer between 1 and "
      "10000, found 0");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:13:30: error: connections.outsystems.rate_limit.per_second: expected a number >= 0 (0 = "
      "unlimited), found -5");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:14:17: error: connections.outsystems.tls_verify: expected true or false, found 'maybe'");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:15:21: error: connections.outsystems.retry.jitter: expected a number between 0 and 1, "
      "found 2");
  EXPECT_DIAG(r,
              "evrouter.yaml:15:55: error: connections.outsystems.retry.backoff_cap: expected a duration >= "
              "backoff_base (1m), found 10s");
  // Every problem is reported, in file order.
  EXPECT_EQ(r.errors(), 11u);
  for (std::size_t i = 1; i < r.diagnostics.size(); ++i) {
    EXPECT_LE(r.diagnostics[i - 1].where.line, r.diagnostics[i].where.line);
  }
}

TEST(Loader, AdminMaxConnectionsIsABoundedInteger) {
  Fixture fx;
  fx.main(std::string("admin:\n  max_connections: 5\n") + kMain);
  fx.flow("orders.yaml", kFlow);
  auto ok = fx.load();
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(strings(ok.diagnostics));
  EXPECT_EQ(ok.config->admin.max_connections, 5);
  fx.main(std::string("admin:\n  max_connections: 0\n") + kMain);
  const auto bad = fx.load();
  EXPECT_FALSE(bad.ok());
  EXPECT_DIAG(
      bad,
      "evrouter.yaml:2:20: error: admin.max_connections: expected an integer between 1 and 10000, found 0");
}

TEST(Loader, UnknownKeyHasAHint) {
  Fixture fx;
  fx.main(R"(server:
  prot: 8080
  colour: blue
connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
    concurency: 4
flows: [flows]
)");
  fx.flow("orders.yaml", kFlow);
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors(), 3u);
  EXPECT_DIAG(r, "evrouter.yaml:2:3: error: server.prot: unknown key 'prot' (did you mean 'port'?)");
  EXPECT_DIAG(r,
              "evrouter.yaml:3:3: error: server.colour: unknown key 'colour' (expected one of: listen, port, "
              "public_base_url, workers, max_body_bytes, max_body_memory, max_connections, request_timeout, "
              "idle_timeout, shutdown_grace, tls)");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:7:5: error: connections.outsystems.concurency: unknown key 'concurency' (did you mean "
      "'concurrency'?)");
}

TEST(Loader, YamlSyntaxErrorHasItsPosition) {
  Fixture fx;
  fx.main("server:\n  port: [8080\nstore: {}\n");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].where.file, "evrouter.yaml");
  EXPECT_EQ(r.diagnostics[0].where.line, 3);
  EXPECT_GT(r.diagnostics[0].where.column, 0);
  EXPECT_EQ(r.diagnostics[0].message.rfind("invalid YAML: ", 0), 0u) << r.diagnostics[0].message;

  fx.flow("orders.yaml", "name: orders\n  source: x\n");
  fx.main(kMain);
  const auto f = fx.load();
  ASSERT_EQ(f.diagnostics.size(), 1u);
  EXPECT_EQ(f.diagnostics[0].str(), "flows/orders.yaml:2:9: error: invalid YAML: illegal map value");
}

// yaml-cpp 0.7's LoadAll never returns on a stray comma (found by tests/fuzz/config_fuzz.cpp); the loader
// counts documents with a bounded loop, so this must come back with a diagnostic, quickly.
TEST(Loader, MalformedYamlThatHangsLoadAllIsReported) {
  Fixture fx;
  fx.main(",\n");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(r.diagnostics[0].where.file, "evrouter.yaml");
  EXPECT_GE(r.diagnostics[0].where.line, 1);

  fx.main("server: {}\n---\nstore: {}\n");
  const auto two = fx.load();
  ASSERT_EQ(two.diagnostics.size(), 1u);
  EXPECT_EQ(two.diagnostics[0].where.line, 2) << two.diagnostics[0].str();
  EXPECT_NE(two.diagnostics[0].message.find("expected a single YAML document"), std::string::npos)
      << two.diagnostics[0].str();
}

// A file without any document marker is parsed once (no counting pass); one with markers is counted. Both
// ways give the same model, and a second document or an empty file is reported either way.
TEST(Loader, OneDocumentWithOrWithoutMarkersAndFilesWithNone) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", kFlow);
  const auto plain = fx.load();
  ASSERT_TRUE(plain.ok()) << ::testing::PrintToString(strings(plain.diagnostics));

  fx.flow("orders.yaml", std::string("%YAML 1.2\n---\n") + kFlow + "...\n");
  const auto marked = fx.load();
  ASSERT_TRUE(marked.ok()) << ::testing::PrintToString(strings(marked.diagnostics));
  ASSERT_EQ(marked.config->flows.size(), 1u);
  EXPECT_EQ(marked.config->flows[0].name, "orders");
  EXPECT_EQ(marked.config->flows[0].branches.size(), plain.config->flows[0].branches.size());
  EXPECT_EQ(marked.config->flows[0].source.type, plain.config->flows[0].source.type);

  fx.flow("orders.yaml", std::string(kFlow) + "...\nname: again\n");
  const auto two = fx.load();
  ASSERT_EQ(two.diagnostics.size(), 1u) << ::testing::PrintToString(strings(two.diagnostics));
  EXPECT_NE(two.diagnostics[0].message.find("found 2"), std::string::npos) << two.diagnostics[0].str();

  for (const char* empty : {"", "# only a comment\n", "~\n"}) {
    fx.flow("orders.yaml", empty);
    const auto r = fx.load();
    ASSERT_FALSE(r.ok()) << "'" << empty << "'";
    EXPECT_DIAG(r,
                "flows/orders.yaml:1:1: error: the file is empty (expected a flow: a mapping with name, "
                "source and branches)");
  }
}

TEST(Loader, MissingConfigFileAndFlowDirectory) {
  Fixture fx;
  const auto none = fx.load();
  EXPECT_FALSE(none.ok());
  ASSERT_EQ(none.diagnostics.size(), 1u);
  EXPECT_EQ(none.diagnostics[0].str(), "evrouter.yaml: error: cannot read file (No such file or directory)");

  fx.main(R"(connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
flows:
  - nowhere
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r,
      "evrouter.yaml:5:5: error: flows[0]: expected a flow file or a directory of flow files, found no such "
      "file or directory: nowhere (relative paths are resolved against the current directory)");
}

TEST(Loader, InlineSecretIsRejected) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: orders
source:
  secret: "hunter2"
branches:
  - destinations: [{connection: outsystems}]
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].str(),
            "flows/orders.yaml:3:11: error: source.secret: secrets are referenced, never inline: use {env: "
            "NAME} or "
            "{file: PATH}");
  // Nothing in the message repeats the value.
  EXPECT_EQ(r.diagnostics[0].str().find("hunter2"), std::string::npos);
}

TEST(Loader, ConnectionAuthSecretsAreReferences) {
  Fixture fx;
  ScopedEnv token("EVR_TEST_TOKEN", nullptr);
  fx.main(R"(connections:
  a:
    base_uri: https://a.example.com
    auth: {type: bearer, token: abc}
  b:
    base_uri: https://b.example.com
    auth: {type: bearer, token: {env: EVR_TEST_TOKEN}}
  c:
    base_uri: https://c.example.com
    auth: {type: basic, username: u, password: {file: missing-password.txt}}
flows: [flows]
)");
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
mode: all
branches:
  - destinations: [{connection: a}, {connection: b}, {connection: c}]
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r,
      "evrouter.yaml:4:33: error: connections.a.auth.token: secrets are referenced, never inline: use {env: "
      "NAME} or {file: PATH}");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:7:33: error: connections.b.auth.token: environment variable EVR_TEST_TOKEN is not set");
  EXPECT_DIAG(
      r,
      "evrouter.yaml:10:48: error: connections.c.auth.password: secret file missing-password.txt cannot be "
      "read (No such file or directory)");

  write_file(fx.dir / "missing-password.txt", "pa55\n");
  ScopedEnv token2("EVR_TEST_TOKEN", "tok");
  fx.main(R"(connections:
  b:
    base_uri: https://b.example.com
    auth: {type: bearer, token: {env: EVR_TEST_TOKEN}}
  c:
    base_uri: https://c.example.com
    auth: {type: basic, username: u, password: {file: missing-password.txt}}
flows: [flows]
)");
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
mode: all
branches:
  - destinations: [{connection: b}, {connection: c}]
)");
  const auto ok = fx.load();
  ASSERT_TRUE(ok.ok()) << ::testing::PrintToString(strings(ok.diagnostics));
  const auto& c = ok.config->connections.at("c");
  EXPECT_EQ(c.auth.type, Auth::Type::basic);
  EXPECT_EQ(c.auth.username, "u");
  ASSERT_TRUE(c.auth.secret.has_value());
  EXPECT_EQ(c.auth.secret->resolve(), "pa55");
  EXPECT_EQ(ok.config->connections.at("b").auth.secret->resolve(), "tok");
}

TEST(Loader, UnknownConnection) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
branches:
  - name: first
    destinations:
      - connection: outsystem
        path: /x
      - connection: crm
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:6:21: error: branches[0].destinations[0].connection: unknown connection 'outsystem' "
      "(did you mean 'outsystems'?)");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:8:21: error: branches[0].destinations[1].connection: unknown connection 'crm' "
      "(defined: outsystems)");
}

TEST(Loader, InvalidPatternIsReportedAtTheMatchLine) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
branches:
  - name: bad
    match:
      detail-type: orders/create
    destinations: [{connection: outsystems}]
  - name: bad-json
    match: '{"detail-type": ["orders/create"'
    destinations: [{connection: outsystems}]
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.errors(), 2u) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(r.diagnostics[0].where.file, "flows/orders.yaml");
  EXPECT_EQ(r.diagnostics[0].where.line, 6);
  EXPECT_EQ(r.diagnostics[0].where.column, 7);
  EXPECT_EQ(r.diagnostics[0].path, "branches[0].match");
  EXPECT_FALSE(r.diagnostics[0].message.empty());
  EXPECT_EQ(r.diagnostics[1].str().rfind(
                "flows/orders.yaml:9:12: error: branches[1].match: expected an EventBridge "
                "pattern (a mapping, or a JSON object in a string), found invalid JSON",
                0),
            0u)
      << r.diagnostics[1].str();
}

TEST(Loader, EmptyMatchAndUnsetVariableInsideAPattern) {
  Fixture fx;
  ScopedEnv unset("EVR_TEST_UNSET", nullptr);
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
branches:
  - match:
    destinations: [{connection: outsystems}]
  - match: {detail: {shop: ["${EVR_TEST_UNSET}"]}}
    destinations: [{connection: outsystems}]
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 2u) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(r.diagnostics[0].str(),
            "flows/orders.yaml:4:5: error: branches[0].match: expected an EventBridge pattern, found an "
            "empty value "
            "(leave match out to match every event)");
  EXPECT_EQ(r.diagnostics[1].str(),
            "flows/orders.yaml:6:29: error: branches[1].match.detail.shop[0]: environment variable "
            "EVR_TEST_UNSET is "
            "not set");
}

TEST(Loader, MatchAsAJsonStringIsAccepted) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
branches:
  - match: '{"detail-type": ["orders/create"], "detail": {"total_price": [{"numeric": [">", 100]}]}}'
    destinations: [{connection: outsystems}]
)");
  const auto r = fx.load();
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(
      r.config->flows[0].branches[0].match,
      nlohmann::json::parse(
          R"({"detail-type": ["orders/create"], "detail": {"total_price": [{"numeric": [">", 100]}]}})"));
  EXPECT_EQ(r.config->flows[0].branches[0].name, "branch-0");
}

TEST(Loader, DuplicateFlowNamesAndListenerIds) {
  Fixture fx;
  fx.main(kMain);
  const std::string flow = R"(name: orders
source:
  listener_id: aaaaaaaaaaaaaaaaaaaaaaaa
  secret: {env: EVR_TEST_SECRET}
branches:
  - destinations: [{connection: outsystems}]
)";
  fx.flow("a.yaml", flow);
  fx.flow("b.yml", flow);
  fx.flow("notes.txt", "not a flow");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 2u) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(r.diagnostics[0].str(),
            "flows/b.yml:1:7: error: name: duplicate flow name 'orders' (also in flows/a.yaml:1)");
  EXPECT_EQ(r.diagnostics[1].str(),
            "flows/b.yml:3:16: error: source.listener_id: duplicate listener id 'aaaaaaaaaaaaaaaaaaaaaaaa' "
            "(also in "
            "flows/a.yaml:3)");
}

TEST(Loader, FlowStructureErrors) {
  Fixture fx;
  fx.main(kMain);
  fx.flow("orders.yaml", R"(name: "orders!"
enabled: yes
source:
  type: woocommerce
  listener_id: short
  topics: [orders/create, "bad topic"]
mode: any
branches:
  - name: a
    destinations:
      - connection: outsystems
        method: SEND
        path: orders
        headers: {Content-Length: "1"}
  - name: b
    destinations: []
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:1:7: error: name: expected a flow name made of A-Z a-z 0-9 _ . -, found 'orders!'");
  EXPECT_DIAG(r, "flows/orders.yaml:2:10: error: enabled: expected true or false, found 'yes'");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:4:3: error: source.secret: required key 'secret' is missing (expected the webhook "
      "signing secret, e.g. {env: SHOPIFY_WEBHOOK_SECRET})");
  EXPECT_DIAG(r,
              "flows/orders.yaml:4:9: error: source.type: expected one of shopify, webhook, bus, found "
              "'woocommerce'");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:5:16: error: source.listener_id: expected 22 to 64 characters from A-Z a-z 0-9 _ -, "
      "found 'short'");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:6:27: error: source.topics[1]: expected a topic such as orders/create, found 'bad "
      "topic'");
  EXPECT_DIAG(r, "flows/orders.yaml:7:7: error: mode: expected one of first, all, found 'any'");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:12:17: error: branches[0].destinations[0].method: expected one of GET, POST, PUT, "
      "PATCH, DELETE, found 'SEND'");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:13:15: error: branches[0].destinations[0].path: expected a path starting with / (no "
      "spaces), e.g. /orders, found 'orders'");
  EXPECT_DIAG(r,
              "flows/orders.yaml:14:19: error: branches[0].destinations[0].headers.Content-Length: header "
              "Content-Length is set by evrouter and cannot be configured");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:16:19: error: branches[1].destinations: expected at least one destination, found an "
      "empty sequence");
  EXPECT_EQ(r.errors(), 11u) << ::testing::PrintToString(strings(r.diagnostics));
}

TEST(Loader, WarnsAboutUnreachableBranchesAndUnusedConnections) {
  Fixture fx;
  fx.main(R"(connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
  spare:
    base_uri: http://127.0.0.1:9001
flows: [flows]
)");
  fx.flow("orders.yaml", R"(name: orders
source: {secret: {env: EVR_TEST_SECRET}}
branches:
  - name: everything
    destinations: [{connection: outsystems}]
  - name: never
    match: {detail-type: [orders/create]}
    destinations: [{connection: outsystems}]
default:
  destinations: [{connection: outsystems}]
)");
  const auto r = fx.load();
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(strings(r.diagnostics));
  EXPECT_EQ(r.warnings(), 3u);
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:6:5: warning: branches[1]: branch 'never' is unreachable: branch 'everything' "
      "(branches[0]) has no match and takes every event (mode: first)");
  EXPECT_DIAG(
      r,
      "flows/orders.yaml:10:3: warning: default: branch 'default' is unreachable: branch 'everything' "
      "(branches[0]) has no match and takes every event (mode: first)");
  EXPECT_DIAG(r, "evrouter.yaml:4:3: warning: connections.spare: connection 'spare' is not used by any flow");
}

TEST(Loader, DefaultBranchNamesAndRetryOverrides) {
  Fixture fx;
  fx.main(R"(connections:
  outsystems:
    base_uri: http://127.0.0.1:9000/api
    retry: {max_attempts: 5, backoff_base: 2s}
flows: [flows]
)");
  fx.flow("orders.yaml", R"(name: orders
source:
  secrets: [{env: EVR_TEST_SECRET}, {env: EVR_TEST_SECRET_OLD}]
mode: all
branches:
  - match: {detail-type: [orders/create]}
    destinations:
      - connection: outsystems
        path: /a
      - connection: outsystems
        path: /b
        method: put
        retry: {max_attempts: 2}
      - connection: outsystems
        name: audit
default:
  destinations:
    - connection: outsystems
)");
  LoadOptions o;
  o.require_secrets = false;  // EVR_TEST_SECRET_OLD is not set
  const auto r = load(fx.dir / "evrouter.yaml", o);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(strings(r.diagnostics));
  const Flow& f = r.config->flows.at(0);
  EXPECT_EQ(f.mode, Flow::Mode::all);
  ASSERT_EQ(f.source.secrets.size(), 2u);
  EXPECT_EQ(f.source.secrets[1].describe(), "env EVR_TEST_SECRET_OLD");
  ASSERT_EQ(f.branches.size(), 2u);
  EXPECT_EQ(f.branches[0].name, "branch-0");
  ASSERT_EQ(f.branches[0].destinations.size(), 3u);
  EXPECT_EQ(f.branches[0].destinations[0].name, "outsystems");
  EXPECT_EQ(f.branches[0].destinations[1].name, "outsystems-2");
  EXPECT_EQ(f.branches[0].destinations[1].method, "PUT");
  EXPECT_EQ(f.branches[0].destinations[2].name, "audit");
  const auto& retry = f.branches[0].destinations[1].retry;
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->max_attempts, 2);
  EXPECT_EQ(retry->backoff_base, std::chrono::seconds(2));  // inherited from the connection
  EXPECT_EQ(f.branches[1].name, "default");
  EXPECT_FALSE(f.branches[1].match.has_value());
  EXPECT_EQ(f.branches[1].destinations.at(0).path, "/");
  EXPECT_EQ(r.warnings(), 1u);
  EXPECT_DIAG(r,
              "flows/orders.yaml:3:37: warning: source.secrets[1]: environment variable EVR_TEST_SECRET_OLD "
              "is not set");
}

TEST(Loader, EveryKeyHasItsDefault) {
  Fixture fx;
  fx.main("flows: []\n");
  const auto r = fx.load();
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(strings(r.diagnostics));
  const Config& c = *r.config;
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.public_base_url, "http://localhost:8080");
  EXPECT_EQ(c.store.state_dir, "./state");
  EXPECT_EQ(c.store.durability, Store::Durability::fsync);
  EXPECT_TRUE(c.connections.empty());
  EXPECT_TRUE(c.flows.empty());
  EXPECT_EQ(r.warnings(), 1u);
  EXPECT_DIAG(r, "evrouter.yaml:1:1: warning: flows: no flow is configured: evrouter will accept no webhook");
}

TEST(Loader, DuplicateKeysAndSizes) {
  Fixture fx;
  fx.main(R"(server:
  port: 1
  port: 2
  max_body_bytes: 512KiB
flows: []
)");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(r, "evrouter.yaml:3:3: error: server.port: duplicate key 'port' (first at line 2)");

  fx.main("server: {max_body_bytes: 512KiB}\nflows: []\n");
  const auto sizes = fx.load();
  ASSERT_TRUE(sizes.ok());
  EXPECT_EQ(sizes.config->server.max_body_bytes, 512u * 1024);
}

// Bodies in memory for all connections together: at least one body of the largest size allowed, which a
// large max_body_bytes raises by default.
TEST(Loader, MaxBodyMemoryHoldsAtLeastOneLargestBody) {
  Fixture fx;
  fx.main("server: {max_body_bytes: 2MiB, max_body_memory: 1MiB}\nflows: []\n");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(r,
              "evrouter.yaml:1:49: error: server.max_body_memory: expected at least server.max_body_bytes "
              "(2097152 bytes): a webhook of the largest size allowed must fit, found '1MiB'");
  fx.main("server: {max_body_memory: 64MiB}\nflows: []\n");
  const auto set = fx.load();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.config->server.max_body_memory, 64u * 1024 * 1024);
  fx.main("server: {max_body_bytes: 512MiB}\nflows: []\n");
  const auto raised = fx.load();
  ASSERT_TRUE(raised.ok());
  EXPECT_EQ(raised.config->server.max_body_memory, 512u * 1024 * 1024);
  fx.main("flows: []\n");
  EXPECT_EQ(fx.load().config->server.max_body_memory, 256u * 1024 * 1024);
}

TEST(Loader, ListenMustBeAnIpAddress) {
  Fixture fx;
  fx.main("server: {listen: localhost}\nflows: []\n");
  const auto r = fx.load();
  EXPECT_FALSE(r.ok());
  EXPECT_DIAG(
      r,
      "evrouter.yaml:1:18: error: server.listen: expected an IP address to listen on, e.g. 0.0.0.0 or "
      "127.0.0.1, found 'localhost'");
  fx.main("server: {listen: '::'}\nflows: []\n");
  const auto v6 = fx.load();
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6.config->server.listen, "::");
}

TEST(Loader, LoadFlowOnItsOwn) {
  TempDir dir;
  ScopedEnv secret("EVR_TEST_SECRET", "x");
  write_file(dir / "f.yaml", kFlow);
  std::vector<Diagnostic> diagnostics;
  auto flow = load_flow(dir / "f.yaml", diagnostics);
  ASSERT_TRUE(flow.has_value()) << ::testing::PrintToString(strings(diagnostics));
  EXPECT_TRUE(diagnostics.empty());
  EXPECT_EQ(flow->name, "orders");
  EXPECT_EQ(flow->branches.at(0).destinations.at(0).connection, "outsystems");

  std::map<std::string, Connection> connections;
  auto checked = load_flow(dir / "f.yaml", diagnostics, &connections);
  EXPECT_FALSE(checked.has_value());
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].str(),
            (dir / "f.yaml").string() +
                ":8:21: error: branches[0].destinations[0].connection: unknown connection "
                "'outsystems' (no connection is defined)");
}

TEST(Diagnostic, Formats) {
  Diagnostic d{
      Diagnostic::Severity::error, {"flows/orders.yaml", 12, 7}, "branches[0].match", "expected a mapping"};
  EXPECT_EQ(d.str(), "flows/orders.yaml:12:7: error: branches[0].match: expected a mapping");
  d.severity = Diagnostic::Severity::warning;
  d.path.clear();
  d.where.line = 0;
  EXPECT_EQ(d.str(), "flows/orders.yaml: warning: expected a mapping");
  ConfigError e({d});
  EXPECT_EQ(e.diagnostics().size(), 1u);
  EXPECT_STREQ(e.what(), "flows/orders.yaml: warning: expected a mapping");
}

// Large flow sets are parsed on several threads: the result must not depend on it. Flows come out in file
// order, each file's diagnostics stay together in file order, and checks across files (duplicate names)
// still see every file.
TEST(Loader, ManyFlowFilesLoadInFileOrderWithTheirDiagnostics) {
  Fixture f;
  f.main(kMain);
  constexpr int kFlows = 300;
  for (int i = 0; i < kFlows; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%04d", i);
    std::string text = kFlow;
    text.replace(text.find("name: orders"), 12, std::string("name: ") + name);
    if (i % 50 == 7) text += "bogus: 1\n";  // an unknown key: an error at line 10 of that file
    f.flow(std::string(name) + ".yaml", text);
  }
  auto bad = f.load();
  EXPECT_FALSE(bad.ok());
  std::vector<std::string> files;
  for (const auto& d : bad.diagnostics) files.push_back(d.where.file);
  ASSERT_EQ(files.size(), 6u) << ::testing::PrintToString(strings(bad.diagnostics));
  for (int k = 0; k < 6; ++k) {
    char expected[40];
    std::snprintf(expected, sizeof expected, "flows/f%04d.yaml", k * 50 + 7);
    EXPECT_NE(files[k].find(expected), std::string::npos) << files[k];
    EXPECT_EQ(bad.diagnostics[k].where.line, 10) << bad.diagnostics[k].str();
  }

  for (int k = 0; k < 6; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "f%04d", k * 50 + 7);
    std::string text = kFlow;
    text.replace(text.find("name: orders"), 12, std::string("name: ") + name);
    f.flow(std::string(name) + ".yaml", text);
  }
  auto good = f.load();
  ASSERT_TRUE(good.ok()) << ::testing::PrintToString(strings(good.diagnostics));
  ASSERT_EQ(good.config->flows.size(), static_cast<std::size_t>(kFlows));
  for (int i = 0; i < kFlows; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%04d", i);
    EXPECT_EQ(good.config->flows[i].name, name);
  }

  // The last file repeats the first file's name: reported once, at the later file, naming the earlier.
  std::string text = kFlow;
  text.replace(text.find("name: orders"), 12, "name: f0000");
  f.flow("f0299.yaml", text);
  auto dup = f.load();
  EXPECT_FALSE(dup.ok());
  ASSERT_EQ(dup.diagnostics.size(), 1u) << ::testing::PrintToString(strings(dup.diagnostics));
  EXPECT_NE(dup.diagnostics[0].str().find("duplicate flow name 'f0000'"), std::string::npos);
  EXPECT_NE(dup.diagnostics[0].where.file.find("f0299.yaml"), std::string::npos);
}

}  // namespace
}  // namespace evr::config
