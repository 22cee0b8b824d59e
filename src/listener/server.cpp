#include "evrouter/listener/server.h"

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <thread>
#include <vector>

#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "listener/session.h"
#include "listener/worker.h"

namespace evr::listener {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

class ServerImpl final : public Server {
 public:
  ServerImpl(const config::Server& config, Pipeline& pipeline)
      : config_(config), shared_{config_, pipeline} {}

  ~ServerImpl() override { stop(std::chrono::milliseconds(0)); }

  void start() override {
    int n = config_.workers > 0 ? config_.workers : static_cast<int>(std::thread::hardware_concurrency());
    n = std::max(1, n);
    boost::system::error_code ec;
    const auto address = net::ip::make_address(config_.listen, ec);
    if (ec) throw std::runtime_error("server.listen: invalid address " + config_.listen);
    uint16_t port = config_.port;
    for (int i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
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

  void stop(std::chrono::milliseconds grace) override {
    if (!started_) return;
    started_ = false;
    shared_.draining = true;
    for (auto& w : workers_) {
      net::post(w->ioc, [w = w.get()] {
        boost::system::error_code ec;
        w->acceptor.close(ec);
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
  void accept(Worker& w) {
    w.acceptor.async_accept(w.ioc, [this, &w](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !w.acceptor.is_open()) return;
        log::warn("accept failed", {{"error", ec.message()}});
      } else {
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
