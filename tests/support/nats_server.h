#pragma once
// A real nats-server with JetStream for tests: `nats-server -js -a 127.0.0.1 -p <free port> -sd <dir>`,
// started as a child process; waits for its port; killed on destruction (the directory stays with the
// TempDir that owns it, so a restart finds its streams again). NatsCluster runs several of them as one
// JetStream cluster (routes between them on 127.0.0.1), for R3 streams.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace evr::test {

// A server's place in a cluster: its name, the cluster's name, its route port and the others' route ports.
struct NatsClusterNode {
  std::string server_name;
  std::string cluster_name;
  uint16_t route_port = 0;
  std::vector<uint16_t> routes;
};

class NatsServer {
 public:
  // Starts on a free port with its store under `store_dir`; throws std::runtime_error when it does not
  // come up.
  explicit NatsServer(std::filesystem::path store_dir, std::optional<NatsClusterNode> node = std::nullopt);
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  // Stops the server (SIGTERM, then SIGKILL) and waits for it; start() brings it back on the same port.
  void stop();
  // SIGKILL: no clean shutdown.
  void kill();
  void start();
  bool running() const { return pid_ > 0; }
  // Until its monitoring endpoint /healthz answers 200 (JetStream up and current; in a cluster: a meta
  // leader elected and its streams caught up); false on timeout.
  bool wait_healthy(std::chrono::milliseconds timeout) const;

  // Whether nats-server is installed (tests skip when not).
  static bool available();

 private:
  std::filesystem::path dir_;
  std::optional<NatsClusterNode> node_;
  uint16_t port_ = 0;
  uint16_t monitor_port_ = 0;
  pid_t pid_ = -1;
};

// `size` servers forming one JetStream cluster, each with its own store directory under `dir`.
class NatsCluster {
 public:
  NatsCluster(const std::filesystem::path& dir, int size);
  NatsServer& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  std::vector<std::string> urls() const;
  // Every running node healthy (see NatsServer::wait_healthy).
  bool wait_healthy(std::chrono::milliseconds timeout) const;

 private:
  std::vector<std::unique_ptr<NatsServer>> nodes_;
};

}  // namespace evr::test
