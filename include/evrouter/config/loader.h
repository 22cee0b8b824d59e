#pragma once
// Loads config/evrouter.yaml and the flow files it names into the validated model of config.h.
// ${NAME} and ${NAME:-default} in scalar values are expanded from the environment.
// Every problem is collected as a Diagnostic (file:line:column, key path, message) instead of stopping
// at the first one.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evrouter/config/config.h"

namespace evr::config {

struct LoadOptions {
  // true (serve): a secret that is not set (environment variable missing or empty, file unreadable or
  // empty) is an error, so the daemon never starts with a flow it cannot verify.
  // false (`evrouter validate`): the same problem is a warning, so files can be checked anywhere.
  bool require_secrets = true;
  // When set, these flow files are loaded instead of the config's `flows:` list (`evrouter validate
  // --config FILE flows/x.yaml`); connections that no flow uses are then not reported.
  std::optional<std::vector<std::filesystem::path>> flow_files;
};

struct LoadResult {
  std::optional<Config> config;  // set when there is no error (warnings allowed)
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return config.has_value(); }
  std::size_t errors() const;
  std::size_t warnings() const;
};

// Loads the main config and then every flow it names (config.flow_paths).
LoadResult load(const std::filesystem::path& config_file, const LoadOptions& options = {});

// Loads one flow file on its own (used by load() and by `evrouter validate`); connections are checked
// only when `connections` is given. Returns the flow when the file has no error.
std::optional<Flow> load_flow(const std::filesystem::path& flow_file, std::vector<Diagnostic>& diagnostics,
                              const std::map<std::string, Connection>* connections = nullptr,
                              const LoadOptions& options = {});

// The flow files a `flows:` entry stands for: the file itself, or every *.yaml / *.yml directly inside a
// directory, sorted by name. Throws std::runtime_error when the path does not exist.
std::vector<std::filesystem::path> expand_flow_path(const std::filesystem::path& path);

}  // namespace evr::config
