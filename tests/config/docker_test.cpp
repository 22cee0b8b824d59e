// No Docker engine runs where the tests do, so the Docker files are checked for consistency instead:
// every path they name exists, ports agree with the sample config, the health check has what it runs.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "support/harness.h"

namespace fs = std::filesystem;
using evr::test::read_file;

namespace {

const fs::path kRoot = EVROUTER_SOURCE_DIR;

// Dockerfile instructions, with line continuations joined.
std::vector<std::string> instructions(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (!line.empty() && line.back() == '\\') {
      current += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    out.push_back(current + line);
    current.clear();
  }
  return out;
}

}  // namespace

TEST(Docker, DockerfileNamesOnlyWhatExists) {
  const std::string text = read_file(kRoot / "docker" / "Dockerfile");
  int copies = 0;
  bool healthcheck = false;
  for (const auto& ins : instructions(text)) {
    std::smatch m;
    if (std::regex_match(ins, m, std::regex(R"(COPY (\S+) (\S+))"))) {
      ++copies;
      const std::string src = m[1];
      if (src != ".") {
        EXPECT_TRUE(fs::exists(kRoot / src)) << ins;
      }
    }
    if (std::regex_search(ins, m, std::regex(R"(RUN (scripts/\S+|/usr/local/lib/evrouter/bootstrap\.sh))"))) {
      EXPECT_TRUE(fs::exists(kRoot / "scripts" / "bootstrap.sh")) << ins;
    }
    if (ins.rfind("HEALTHCHECK", 0) == 0) {
      healthcheck = true;
      EXPECT_NE(ins.find("/healthz"), std::string::npos) << ins;
      EXPECT_NE(ins.find("${EVROUTER_HTTP_PORT}"), std::string::npos) << ins;
    }
  }
  EXPECT_GE(copies, 4);
  EXPECT_TRUE(healthcheck);
  // The health check runs curl: the runtime package list must install it.
  const std::string bootstrap = read_file(kRoot / "scripts" / "bootstrap.sh");
  std::smatch runtime;
  ASSERT_TRUE(std::regex_search(bootstrap, runtime, std::regex(R"(runtime=\(([^)]*)\))")));
  EXPECT_NE(runtime[1].str().find("curl"), std::string::npos);
  // The default command uses the config the image copies in, which is the sample config.
  EXPECT_NE(text.find("COPY config/ /etc/evrouter/config/"), std::string::npos);
  EXPECT_NE(text.find("\"/etc/evrouter/config/evrouter.yaml\""), std::string::npos);
  EXPECT_TRUE(fs::exists(kRoot / "config" / "evrouter.yaml"));
  // It runs as a non-root user and exposes the ports the sample config defaults to.
  EXPECT_NE(text.find("USER evrouter"), std::string::npos);
  EXPECT_NE(text.find("EXPOSE 8080 8081"), std::string::npos);
  const std::string config = read_file(kRoot / "config" / "evrouter.yaml");
  EXPECT_NE(config.find("${EVROUTER_HTTP_PORT:-8080}"), std::string::npos);
  EXPECT_NE(config.find("${EVROUTER_ADMIN_PORT:-8081}"), std::string::npos);
  EXPECT_NE(text.find("EVROUTER_HTTP_PORT=8080"), std::string::npos);
  EXPECT_NE(text.find("EVROUTER_ADMIN_PORT=8081"), std::string::npos);
}

TEST(Docker, ComposeFileIsConsistent) {
  const fs::path dir = kRoot / "docker";
  const YAML::Node compose = YAML::LoadFile((dir / "compose.yaml").string());
  const auto services = compose["services"];
  ASSERT_TRUE(services["evrouter"] && services["sink"] && services["nats"]);

  const auto ev = services["evrouter"];
  const fs::path context = dir / ev["build"]["context"].as<std::string>();
  EXPECT_TRUE(fs::exists(context / ev["build"]["dockerfile"].as<std::string>()));
  for (const auto& name : {"evrouter", "sink", "nats"}) {
    for (const auto& v : services[name]["volumes"]) {
      const std::string spec = v.as<std::string>();
      const std::string host = spec.substr(0, spec.find(':'));
      if (host.rfind('.', 0) == 0) {
        EXPECT_TRUE(fs::exists(dir / host)) << name << ": " << spec;
      }
    }
  }
  // The sample config's destination and the sink agree on the port.
  const std::string base = ev["environment"]["OUTSYSTEMS_BASE_URL"].as<std::string>();
  EXPECT_EQ(base, "http://sink:9000");
  EXPECT_NE(read_file(dir / "sink" / "nginx.conf").find("listen 9000;"), std::string::npos);
  // Published ports are the sample config's defaults.
  std::vector<std::string> ports;
  for (const auto& p : ev["ports"]) ports.push_back(p.as<std::string>());
  EXPECT_EQ(ports, (std::vector<std::string>{"8080:8080", "8081:8081"}));
  // The Shopify secret the sample flow requires has a demo default.
  EXPECT_TRUE(ev["environment"]["SHOPIFY_WEBHOOK_SECRET"].IsDefined());
}
