// evrouter test-connection NAME [--config FILE] [--probe PATH] [--method M] [--output json]:
// checks one connection of the configuration phase by phase (DNS, TCP, TLS, optional probe request).
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "evrouter/config/loader.h"
#include "evrouter/connection/check.h"

namespace evr::cli {
namespace {

void test_connection_usage() {
  std::fputs(
      "usage: evrouter test-connection NAME [--config FILE] [--probe PATH] [--method METHOD]\n"
      "                                [--output text|json]\n"
      "  Resolves, connects to and (for https) handshakes with connection NAME's base_uri, printing the\n"
      "  time of each phase and the server certificate. With --probe, also sends METHOD (default GET)\n"
      "  PATH (relative to base_uri) with the connection's auth. Exit status: 0 reachable, 1 a phase\n"
      "  failed, 2 usage or configuration error.\n",
      stderr);
}

void print_text(const connection::CheckReport& r) {
  std::printf("connection %s (%s)\n", r.connection.c_str(), r.base_uri.c_str());
  for (const auto& p : r.phases) {
    std::printf("  %-8s %-4s %9.2f ms  %s\n", p.name.c_str(), p.ok ? "ok" : "FAIL",
                static_cast<double>(p.took.count()) / 1000.0, p.detail.c_str());
  }
  if (r.certificate) {
    const auto& c = *r.certificate;
    std::printf("  certificate: subject %s\n               issuer %s\n", c.subject.c_str(), c.issuer.c_str());
    std::string names;
    for (const auto& n : c.names) {
      if (!names.empty()) names += ", ";
      names += n;
    }
    std::printf("               names %s\n               valid %s .. %s (%d days left)\n", names.c_str(),
                c.not_before.c_str(), c.not_after.c_str(), c.days_left);
  }
  std::printf("%s: %s\n", r.ok ? "OK" : "FAILED", r.verdict.c_str());
}

}  // namespace

int test_connection(const Args& args) {
  std::string config_file = "config/evrouter.yaml";
  std::string name, output = "text";
  connection::CheckOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "evrouter test-connection: %s needs a value\n", a.c_str());
        return false;
      }
      out = args[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(config_file)) return 2;
    } else if (a == "--probe") {
      std::string path;
      if (!value(path)) return 2;
      if (path.empty() || path[0] != '/') path.insert(0, 1, '/');
      options.probe_path = path;
    } else if (a == "--method") {
      if (!value(options.probe_method)) return 2;
    } else if (a == "--output" || a == "-o") {
      if (!value(output)) return 2;
      if (output != "text" && output != "json") {
        std::fprintf(stderr, "evrouter test-connection: --output is text or json\n");
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      test_connection_usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "evrouter test-connection: unknown option '%s'\n", a.c_str());
      test_connection_usage();
      return 2;
    } else if (name.empty()) {
      name = a;
    } else {
      std::fprintf(stderr, "evrouter test-connection: one connection at a time ('%s')\n", a.c_str());
      return 2;
    }
  }
  if (name.empty()) {
    test_connection_usage();
    return 2;
  }

  config::LoadOptions load_options;
  load_options.require_secrets = false;  // flows' secrets are not needed here; the connection's are checked
  auto result = config::load(config_file, load_options);
  for (const auto& d : result.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!result.ok()) {
    std::fprintf(stderr, "evrouter test-connection: configuration has errors\n");
    return 2;
  }
  const auto& connections = result.config->connections;
  auto it = connections.find(name);
  if (it == connections.end()) {
    std::string known;
    for (const auto& [n, _] : connections) {
      if (!known.empty()) known += ", ";
      known += n;
    }
    std::fprintf(stderr, "evrouter test-connection: no connection named '%s' (known: %s)\n", name.c_str(),
                 known.empty() ? "none" : known.c_str());
    return 2;
  }
  connection::CheckReport report;
  try {
    report = connection::check(it->second, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "evrouter test-connection: %s\n", e.what());
    return 2;
  }
  if (output == "json") {
    std::printf("%s\n", connection::to_json(report).dump(2).c_str());
  } else {
    print_text(report);
  }
  return report.ok ? 0 : 1;
}

}  // namespace evr::cli
