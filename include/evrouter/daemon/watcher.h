#pragma once
// Watches the configuration files (inotify) and calls back once changes have settled, for
// `reload: {watch: true}`. Directories are watched rather than files, so editors that save by writing a
// new file and renaming it over the old one (and Kubernetes ConfigMap updates) are seen too.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "evrouter/config/config.h"

namespace evr::daemon {

class Watcher {
 public:
  // `on_change` runs on the watcher's own thread, `debounce` after the last change seen.
  Watcher(std::chrono::milliseconds debounce, std::function<void()> on_change);
  ~Watcher();  // stops; never from `on_change`
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Watches `paths` from now on (files, or directories standing for the *.yaml / *.yml inside them),
  // replacing the previous set. Thread-safe, including from `on_change`. Throws std::runtime_error when
  // inotify is not available.
  void watch(std::vector<std::filesystem::path> paths);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a configuration's reload watcher looks at: the main file and every `flows:` entry.
std::vector<std::filesystem::path> watched_paths(const config::Config& config);

}  // namespace evr::daemon
