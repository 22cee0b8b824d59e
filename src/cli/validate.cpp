// evrouter validate [--config FILE] [FLOW_FILE...]: checks the configuration without starting anything.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "evrouter/config/loader.h"

namespace evr::cli {
namespace {

std::string count(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

void usage() {
  std::fputs(
      "usage: evrouter validate [--config FILE] [FLOW_FILE...]\n"
      "  Checks the main config (default config/evrouter.yaml), its connections and flows.\n"
      "  With FLOW_FILEs, checks those flow files (against the config's connections) instead of the\n"
      "  config's flows: list. Exit status 0 when there is no error, 1 otherwise.\n",
      stderr);
}

}  // namespace

int validate(const Args& args) {
  std::string config_file = "config/evrouter.yaml";
  bool config_given = false;
  std::vector<std::filesystem::path> flow_files;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "evrouter validate: %s needs a file\n", a.c_str());
        usage();
        return 2;
      }
      config_file = args[++i];
      config_given = true;
    } else if (a.rfind("--config=", 0) == 0) {
      config_file = a.substr(9);
      config_given = true;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "evrouter validate: unknown option '%s'\n", a.c_str());
      usage();
      return 2;
    } else {
      flow_files.emplace_back(a);
    }
  }

  config::LoadOptions options;
  options.require_secrets = false;  // unset secrets are warnings here: files can be checked anywhere
  std::vector<config::Diagnostic> diagnostics;
  std::size_t configs = 0, flows = 0, connections = 0;

  std::error_code ec;
  if (!flow_files.empty() && !config_given && !std::filesystem::exists(config_file, ec)) {
    // Flow files on their own: everything but the connections they name can be checked.
    for (const auto& f : flow_files) {
      if (config::load_flow(f, diagnostics, nullptr, options)) ++flows;
    }
    config::Diagnostic no_config;
    no_config.severity = config::Diagnostic::Severity::warning;
    no_config.message =
        "no config file (" + config_file + "): connection names were not checked; use --config FILE";
    diagnostics.push_back(std::move(no_config));
  } else {
    if (!flow_files.empty()) options.flow_files = flow_files;
    auto result = config::load(config_file, options);
    diagnostics = std::move(result.diagnostics);
    if (result.config) {
      configs = 1;
      flows = result.config->flows.size();
      connections = result.config->connections.size();
    }
  }

  std::size_t errors = 0, warnings = 0;
  for (const auto& d : diagnostics) {
    (d.severity == config::Diagnostic::Severity::error ? errors : warnings)++;
    std::fprintf(stderr, "%s\n", d.str().c_str());
  }
  std::fflush(stderr);
  if (errors == 0) {
    std::string line = "ok: " + count(configs, "config") + ", " + count(flows, "flow") + ", " +
                       count(connections, "connection");
    if (warnings > 0) line += " (" + count(warnings, "warning") + ")";
    std::printf("%s\n", line.c_str());
    return 0;
  }
  std::printf("%s, %s\n", count(errors, "error").c_str(), count(warnings, "warning").c_str());
  return 1;
}

}  // namespace evr::cli
