#pragma once
// A real nats-server with JetStream for tests: `nats-server -js -a 127.0.0.1 -p <free port> -sd <dir>`,
// started as a child process; waits for its port; killed on destruction (the directory stays with the
// TempDir that owns it, so a restart finds its streams again).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace evr::test {

class NatsServer {
 public:
  // Starts on a free port with its store under `store_dir`; throws std::runtime_error when it does not
  // come up.
  explicit NatsServer(std::filesystem::path store_dir);
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  // Stops the server (SIGTERM, then SIGKILL) and waits for it; start() brings it back on the same port.
  void stop();
  void start();

  // Whether nats-server is installed (tests skip when not).
  static bool available();

 private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace evr::test
