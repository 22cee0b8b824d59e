#include "support/nats_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include "support/harness.h"
#include "support/sink.h"

namespace evr::test {

NatsServer::NatsServer(std::filesystem::path store_dir, std::optional<NatsClusterNode> node)
    : dir_(std::move(store_dir)), node_(std::move(node)), port_(free_port()), monitor_port_(free_port()) {
  std::filesystem::create_directories(dir_);
  start();
}

NatsServer::~NatsServer() {
  stop();
}

bool NatsServer::available() {
  return ::system("command -v nats-server >/dev/null 2>&1") == 0;
}

void NatsServer::start() {
  if (pid_ > 0) return;
  std::vector<std::string> args = {"nats-server", "-js",
                                   "-a",          "127.0.0.1",
                                   "-p",          std::to_string(port_),
                                   "-m",          std::to_string(monitor_port_),
                                   "-sd",         dir_.string()};
  if (node_) {
    std::string routes;
    for (uint16_t p : node_->routes)
      routes += (routes.empty() ? "" : ",") + ("nats://127.0.0.1:" + std::to_string(p));
    args.insert(args.end(),
                {"--server_name", node_->server_name, "--cluster_name", node_->cluster_name, "--cluster",
                 "nats://127.0.0.1:" + std::to_string(node_->route_port), "--routes", routes});
  }
  const std::string log = (dir_ / "nats-server.log").string();
  // Built before fork: the child of a process with threads must not allocate before exec (harness.cpp).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execvp("nats-server", argv.data());
    ::_exit(127);
  }
  if (!wait_port(port_, std::chrono::seconds(20))) {
    stop();
    throw std::runtime_error("nats-server did not come up on port " + std::to_string(port_) + " (see " + log +
                             ")");
  }
}

bool NatsServer::wait_healthy(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pid_ > 0 &&
        http_request(monitor_port_, "GET", "/healthz", {}, "", std::chrono::seconds(2)).status == 200)
      return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void NatsServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void NatsServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill();
}

NatsCluster::NatsCluster(const std::filesystem::path& dir, int size) {
  std::vector<uint16_t> route_ports;
  for (int i = 0; i < size; ++i) route_ports.push_back(free_port());
  for (int i = 0; i < size; ++i) {
    NatsClusterNode node;
    node.server_name = "n" + std::to_string(i + 1);
    node.cluster_name = "evr-test";
    node.route_port = route_ports[static_cast<std::size_t>(i)];
    for (int j = 0; j < size; ++j) {
      if (j != i) node.routes.push_back(route_ports[static_cast<std::size_t>(j)]);
    }
    nodes_.push_back(std::make_unique<NatsServer>(dir / node.server_name, node));
  }
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->url());
  return out;
}

bool NatsCluster::wait_healthy(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& n : nodes_) {
    if (!n->running()) continue;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!n->wait_healthy(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

}  // namespace evr::test
