#include "evrouter/listener/server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <thread>
#include <vector>

#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "evrouter/metrics/metrics.h"
#include "http/server_tls.h"
#include "listener/session.h"
#include "listener/worker.h"

namespace evr::listener {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// File descriptors left for everything but client connections: the store's files, outbound connections
// to destinations, the admin server, NATS.
constexpr rlim_t kReservedDescriptors = 256;

// The open-file soft limit is raised up to this, no further: libnats waits on its sockets with select(),
// built for descriptors below 32768, and a NATS reconnect takes the lowest free descriptor.
constexpr rlim_t kRaisedOpenFiles = 32768;

// Client connections the process can hold: server.max_connections, after raising the open-file soft limit
// towards the hard one (as far as kRaisedOpenFiles; no privilege needed), less the reserve.
int connection_limit(int configured) {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return configured;
  if (const rlim_t want = std::min(nofile.rlim_max, kRaisedOpenFiles); nofile.rlim_cur < want) {
    rlimit raised{want, nofile.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  if (nofile.rlim_cur == RLIM_INFINITY) return configured;
  const rlim_t room = nofile.rlim_cur > 2 * kReservedDescriptors ? nofile.rlim_cur - kReservedDescriptors
                                                                 : nofile.rlim_cur / 2;
  if (static_cast<rlim_t>(configured) <= room) return configured;
  log::info("server.max_connections lowered to what the open-file limit allows",
            {{"configured", std::to_string(configured)},
             {"limit", std::to_string(room)},
             {"open_files", std::to_string(nofile.rlim_cur)}});
  return static_cast<int>(room);
}

class ServerImpl final : public Server {
 public:
  ServerImpl(const config::Server& config, Pipeline& pipeline)
      : config_(config), shared_{config_, pipeline} {}

  ~ServerImpl() override { stop(std::chrono::milliseconds(0)); }

  void start() override {
    if (config_.tls) shared_.tls.store(tls_context());
    int n = config_.workers > 0 ? config_.workers : static_cast<int>(std::thread::hardware_concurrency());
    n = std::max(1, n);
    boost::system::error_code ec;
    const auto address = net::ip::make_address(config_.listen, ec);
    if (ec) throw std::runtime_error("server.listen: invalid address " + config_.listen);
    uint16_t port = config_.port;
    const int max_connections = connection_limit(config_.max_connections);
    metrics::Registry::global()
        .gauge("evrouter_ingest_connection_limit",
               "Client connections the ingest server holds at most (server.max_connections, or less when "
               "the open-file limit is lower); past it new connections wait in the kernel's backlog.")
        .set(max_connections);
    for (int i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->max_sessions = static_cast<std::size_t>(std::max(1, (max_connections + n - 1) / n));
      w->session_closed = [this, w = w.get()] {
        if (w->full && w->sessions.size() < w->max_sessions) accept(*w);
      };
      tcp::endpoint ep(address, port);
      w->acceptor.open(ep.protocol());
      w->acceptor.set_option(tcp::acceptor::reuse_address(true));
      w->acceptor.set_option(reuse_port(true));
      w->acceptor.bind(ep, ec);
      if (ec) {
        throw std::runtime_error("cannot listen on " + config_.listen + ":" + std::to_string(port) + ": " +
                                 ec.message());
      }
      w->acceptor.listen(net::socket_base::max_listen_connections);
      port = w->acceptor.local_endpoint().port();
      workers_.push_back(std::move(w));
    }
    port_ = port;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto& w = workers_[i];
      accept(*w);
      w->thread = std::thread([w = w.get(), i] {
        name_this_thread("listen-" + std::to_string(i));
        w->ioc.run();
      });
    }
    started_ = true;
  }

  uint16_t port() const override { return port_; }

  std::string reload_tls() override {
    if (!config_.tls) return {};
    try {
      shared_.tls.store(tls_context());
    } catch (const std::exception& ex) {
      return ex.what();
    }
    return {};
  }

  void stop(std::chrono::milliseconds grace) override {
    if (!started_) return;
    started_ = false;
    shared_.draining = true;
    for (auto& w : workers_) {
      net::post(w->ioc, [w = w.get()] {
        boost::system::error_code ec;
        w->acceptor.close(ec);
        w->accept_pause.cancel();
        // Idle keep-alive connections are closed now; busy ones close after their answer.
        for (Session* s : w->sessions) {
          if (!s->busy()) s->close();
        }
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (shared_.sessions.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (shared_.sessions.load() > 0) {
      log::warn("shutdown grace period over; closing connections still open",
                {{"connections", std::to_string(shared_.sessions.load())}});
    }
    for (auto& w : workers_) w->ioc.stop();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

 private:
  std::shared_ptr<net::ssl::context> tls_context() const {
    try {
      return http::server_tls_context(*config_.tls);
    } catch (const std::exception& ex) {
      throw std::runtime_error(std::string("server.") + ex.what());
    }
  }

  // On the worker's thread: one accept at a time, while the worker has room for another connection.
  void accept(Worker& w) {
    if (shared_.draining || !w.acceptor.is_open()) return;
    if (w.sessions.size() >= w.max_sessions) {
      w.full = true;
      static metrics::Counter& full = metrics::Registry::global().counter(
          "evrouter_ingest_connection_limit_reached_total",
          "Times a listener worker stopped accepting at its share of server.max_connections.");
      full.inc();
      return;
    }
    w.full = false;
    w.acceptor.async_accept(w.ioc, [this, &w](boost::system::error_code ec, Session::Socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !w.acceptor.is_open()) return;
        if (const auto pause = w.accept_errors.failed(ec); pause.count() > 0) {
          w.accept_pause.expires_after(pause);
          w.accept_pause.async_wait([this, &w](boost::system::error_code e) {
            if (!e) accept(w);
          });
          return;
        }
      } else {
        w.accept_errors.succeeded();
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), shared_, w)->start();
      }
      accept(w);
    });
  }

  config::Server config_;
  Shared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Server> make_server(const config::Server& config, Pipeline& pipeline) {
  return std::make_unique<ServerImpl>(config, pipeline);
}

}  // namespace evr::listener
