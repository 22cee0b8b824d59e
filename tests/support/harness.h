#pragma once
// Test harness helpers: temporary directories, files, Shopify signatures, daemon processes.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace evr::test {

// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);
// A file from tests/data, e.g. "shopify/orders-create.json".
std::string test_data(const std::string& relative);

// base64(HMAC-SHA256(secret, body)), as Shopify computes X-Shopify-Hmac-Sha256.
std::string shopify_hmac(const std::string& secret, const std::string& body);

// A free TCP port on 127.0.0.1 (bound and released; small race accepted in tests).
uint16_t free_port();

// The main config file of a daemon under test: the listener on 127.0.0.1:<port>, state in <dir>/state, flows
// from <dir>/flows, one connection "sink" at `sink_base_uri`. The `*_extra` strings add YAML lines to their
// section (indented two spaces, each ending in "\n"); `top_extra` adds top-level sections.
struct DaemonConfig {
  uint16_t port = 0;
  std::string sink_base_uri = "http://127.0.0.1:9";
  std::string server_extra;
  std::string store_extra;
  std::string sink_extra;  // indented four spaces: keys of the sink connection
  std::string top_extra;
};
// Writes <dir>/evrouter.yaml and returns its path.
std::string write_daemon_config(const TempDir& dir, const DaemonConfig& config);

// The evrouter binary run as a child process.
class DaemonProcess {
 public:
  DaemonProcess(std::vector<std::string> args, std::vector<std::string> env = {});
  ~DaemonProcess();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  void kill(int signal);
  // Waits for exit; returns the exit status (or 128+signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log_path() const { return log_; }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// The evrouter binary run to its end (a command line: `validate`, `backup`, `dlq list`...): its exit status
// (-1 when it did not end within `timeout`) and what it printed (stdout and stderr).
struct CliRun {
  int status = -1;
  std::string output;
};
CliRun run_cli(std::vector<std::string> args, std::vector<std::string> env = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Polls until 127.0.0.1:port accepts TCP connections.
bool wait_port(uint16_t port, std::chrono::milliseconds timeout);
// A blocking TCP connection to 127.0.0.1:port (the caller closes it), or -1.
int connect_loopback(uint16_t port);

// The value of the sample `series` (name with its labels, e.g. `x_total{flow="a"}`) in a Prometheus text
// exposition, or -1 when it is not there.
double metric_sample(const std::string& text, const std::string& series);

// CPU time this process has used so far (every thread), in seconds.
double process_cpu_seconds();

}  // namespace evr::test
