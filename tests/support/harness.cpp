#include "support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "evrouter/common/crypto.h"

namespace evr::test {

TempDir::TempDir() {
  std::random_device rd;
  const auto base = std::filesystem::temp_directory_path();
  for (int i = 0; i < 100; ++i) {
    auto p = base / ("evrouter-test-" + std::to_string(rd()) + std::to_string(::getpid()));
    if (std::filesystem::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create temp dir");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, const std::string& content) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string test_data(const std::string& relative) {
  return read_file(std::filesystem::path(EVROUTER_TEST_DATA) / relative);
}

std::string shopify_hmac(const std::string& secret, const std::string& body) {
  return crypto::base64_encode(crypto::hmac_sha256(secret, body));
}

std::string write_daemon_config(const TempDir& dir, const DaemonConfig& c) {
  const std::string path = (dir / "evrouter.yaml").string();
  write_file(path,
             "server:\n"
             "  listen: 127.0.0.1\n"
             "  port: " +
                 std::to_string(c.port) + "\n" + c.server_extra +
                 "store:\n"
                 "  state_dir: " +
                 (dir / "state").string() + "\n" + c.store_extra +
                 "flows:\n"
                 "  - " +
                 (dir / "flows").string() +
                 "\n"
                 "connections:\n"
                 "  sink:\n"
                 "    base_uri: " +
                 c.sink_base_uri + "\n" + c.sink_extra + c.top_extra);
  return path;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

int connect_loopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

double metric_sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool wait_port(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = connect_loopback(port);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::vector<std::string> env) {
  static int counter = 0;
  log_ = (std::filesystem::temp_directory_path() /
          ("evrouter-daemon-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".log"))
             .string();
  // Everything the child needs is built before fork: the test process runs threads (a daemon in-process,
  // sinks), and a child that allocates or takes the environment's lock between fork and exec can block
  // for ever on a lock one of them held at the fork (seen under ASan: a CLI child that never started).
  std::string bin = EVROUTER_BINARY;
  std::vector<char*> argv;
  argv.push_back(bin.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);  // "NAME="
    bool replaced = false;
    for (const auto& mine : env) replaced = replaced || std::string_view(mine).substr(0, name.size()) == name;
    if (!replaced) envp.push_back(*e);
  }
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {  // only async-signal-safe calls from here to exec
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execve(bin.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    kill(SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

void DaemonProcess::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

bool DaemonProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return r == 0;
}

CliRun run_cli(std::vector<std::string> args, std::vector<std::string> env,
               std::chrono::milliseconds timeout) {
  DaemonProcess p(std::move(args), std::move(env));
  CliRun r;
  r.status = p.wait(timeout);
  r.output = read_file(p.log_path());
  std::error_code ec;
  std::filesystem::remove(p.log_path(), ec);
  return r;
}

int DaemonProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

}  // namespace evr::test
