#pragma once
// Loads config/evrouter.yaml and the flow files it names into the validated model of config.h.
// ${NAME} and ${NAME:-default} in scalar values are expanded from the environment.
// Every problem is collected as a Diagnostic (file:line:column, key path, message) instead of stopping
// at the first one.

#include <filesystem>
#include <optional>
#include <vector>

#include "evrouter/config/config.h"

namespace evr::config {

struct LoadResult {
  std::optional<Config> config;  // set when there is no error (warnings allowed)
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return config.has_value(); }
};

// Loads the main config and then every flow it names (config.flow_paths).
LoadResult load(const std::filesystem::path& config_file);

// Loads one flow file on its own (used by load() and by `evrouter validate`); connections are checked
// only when `connections` is given.
std::optional<Flow> load_flow(const std::filesystem::path& flow_file, std::vector<Diagnostic>& diagnostics,
                              const std::map<std::string, Connection>* connections = nullptr);

}  // namespace evr::config
