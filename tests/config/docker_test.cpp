// No Docker engine runs where the tests do, so the Docker files are checked for consistency instead:
// every path they name exists, ports agree with the sample config, the health check has what it runs.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
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

// Standard output of a shell command ("" when it cannot run).
std::string output_of(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

}  // namespace

// The image's runtime stage installs scripts/bootstrap.sh's runtime list and nothing else: every shared
// library the daemon needs (its ELF NEEDED entries) must come from a package on that list, or from one
// that a debian:12-slim image already has. Checked against the binary built here, through dpkg.
TEST(Docker, RuntimePackagesProvideEveryLibraryTheDaemonLinks) {
  if (output_of("command -v dpkg readelf ldd").empty()) GTEST_SKIP() << "dpkg, readelf or ldd missing";
  const std::string bootstrap = read_file(kRoot / "scripts" / "bootstrap.sh");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(bootstrap, m, std::regex(R"(runtime=\(([^)]*)\))")));
  std::set<std::string> runtime{"libc6", "libstdc++6", "libgcc-s1"};  // in debian:12-slim
  std::istringstream words(m[1].str());
  for (std::string w; words >> w;) runtime.insert(w);

  std::map<std::string, std::string> resolved;  // soname -> path, as the loader finds it here
  std::istringstream ldd(output_of(std::string("ldd '") + EVROUTER_BINARY + "'"));
  for (std::string line; std::getline(ldd, line);) {
    std::smatch l;
    if (std::regex_search(line, l, std::regex(R"(^\s*(\S+) => (/\S+))"))) resolved[l[1]] = l[2];
  }
  std::vector<std::string> needed;
  std::istringstream dynamic(output_of(std::string("readelf -d '") + EVROUTER_BINARY + "'"));
  for (std::string line; std::getline(dynamic, line);) {
    std::smatch l;
    if (!std::regex_search(line, l, std::regex(R"(\(NEEDED\).*\[(.+)\])"))) continue;
    needed.push_back(l[1]);
    ASSERT_TRUE(resolved.count(needed.back())) << needed.back() << " is not found by ldd";
  }
  // One dpkg call for all: with merged /usr, dpkg knows /usr/lib/... where the loader reports /lib/...
  std::string query = "dpkg -S";
  for (const auto& soname : needed) query += " '" + resolved[soname] + "' '/usr" + resolved[soname] + "'";
  std::map<std::string, std::string> owner;  // path -> package
  std::istringstream owners(output_of(query + " 2>/dev/null"));
  for (std::string line; std::getline(owners, line);) {
    std::smatch l;
    if (std::regex_search(line, l, std::regex(R"(^([^:,]+)[^ ]*: (/\S+)$)"))) owner[l[2]] = l[1];
  }
  for (const auto& soname : needed) {
    const std::string& path = resolved[soname];
    const std::string pkg = owner.count(path) ? owner[path] : owner["/usr" + path];
    EXPECT_TRUE(runtime.count(pkg)) << soname << " comes from package '" << pkg
                                    << "', which is not in bootstrap.sh's runtime list";
  }
  EXPECT_GE(needed.size(), 5u);
}

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
  // NATS syncs every JetStream write before acknowledging it (a 2xx survives a power cut of its host).
  const std::string nats = read_file(dir / "nats" / "nats.conf");
  EXPECT_NE(nats.find("sync_interval: always"), std::string::npos) << nats;
  EXPECT_NE(nats.find("store_dir: /data"), std::string::npos) << nats;
  // The Shopify secret the sample flow requires has a demo default.
  EXPECT_TRUE(ev["environment"]["SHOPIFY_WEBHOOK_SECRET"].IsDefined());
}
