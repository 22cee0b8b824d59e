#include "support/nats_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include "support/harness.h"

namespace evr::test {

NatsServer::NatsServer(std::filesystem::path store_dir) : dir_(std::move(store_dir)), port_(free_port()) {
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
  const std::string port = std::to_string(port_);
  const std::string store = dir_.string();
  const std::string log = (dir_ / "nats-server.log").string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port.c_str(), "-sd", store.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (!wait_port(port_, std::chrono::seconds(20))) {
    stop();
    throw std::runtime_error("nats-server did not come up on port " + port + " (see " + log + ")");
  }
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
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace evr::test
