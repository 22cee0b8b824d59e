#include "evrouter/dispatcher/dispatcher.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <future>
#include <map>
#include <thread>
#include <unordered_map>

#include "connection/connection.h"
#include "evrouter/common/log.h"
#include "evrouter/event/event.h"
#include "evrouter/flow/routes.h"
#include "evrouter/mapping/mapping.h"
#include "lane/lane.h"

namespace evr::dispatcher {
namespace {

namespace net = boost::asio;

class DispatcherImpl final : public Dispatcher {
 public:
  DispatcherImpl(const config::Config& config, store::Store& store)
      : store_(store), work_(net::make_work_guard(ioc_)), tick_(ioc_) {
    for (const auto& [name, c] : config.connections) {
      connections_.emplace(name, std::make_unique<connection::Connection>(c, ioc_));
    }
    for (const auto& f : config.flows) {
      for (const auto& b : f.branches) {
        for (const auto& d : b.destinations) {
          auto it = connections_.find(d.connection);
          if (it == connections_.end()) {
            throw std::runtime_error("flow " + f.name + ": unknown connection " + d.connection);
          }
          lane::Spec spec{flow::lane_id(f.name, b.name, d.name), f.name, d,
                          d.retry.value_or(it->second->config().retry), std::nullopt};
          try {
            spec.mapping = mapping::Mapping::compile(d);
          } catch (const mapping::MappingError& e) {
            throw std::runtime_error("flow " + f.name + ", lane " + spec.id + ": " + e.what());
          }
          const std::string id = spec.id;
          lanes_.emplace(id,
                         std::make_unique<lane::Lane>(std::move(spec), *it->second, store_, ioc_, stopping_));
        }
      }
    }
  }

  ~DispatcherImpl() override { stop(std::chrono::milliseconds(0)); }

  void start() override {
    for (const auto& lane : store_.pending_lanes()) {
      if (!lanes_.count(lane)) {
        log::warn("pending deliveries for a lane no flow defines; they wait until it comes back",
                  {{"lane", lane}});
      }
    }
    schedule_tick();
    thread_ = std::thread([this] { ioc_.run(); });
    log::info("dispatcher started", {{"lanes", std::to_string(lanes_.size())},
                                     {"connections", std::to_string(connections_.size())}});
  }

  void offer(std::vector<store::Delivery> deliveries) override {
    net::post(ioc_, [this, deliveries = std::move(deliveries)]() mutable {
      for (auto& d : deliveries) {
        auto it = lanes_.find(d.lane);
        if (it != lanes_.end()) it->second->offer(std::move(d));
      }
    });
  }

  void stop(std::chrono::milliseconds grace) override {
    if (!thread_.joinable()) return;
    // Stop sending new requests; let those in flight finish within the grace period.
    net::post(ioc_, [this] {
      stopping_ = true;
      tick_.cancel();
    });
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      std::promise<int> p;
      auto f = p.get_future();
      net::post(ioc_, [this, &p] {
        int n = 0;
        for (auto& [_, c] : connections_) n += c->in_flight();
        p.set_value(n);
      });
      if (f.get() == 0 || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    net::post(ioc_, [this] {
      for (auto& [_, c] : connections_) c->close();
    });
    work_.reset();
    // Let cancelled requests complete, then stop the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ioc_.stop();
    thread_.join();
  }

 private:
  void schedule_tick() {
    tick_.expires_after(std::chrono::milliseconds(100));
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      const int64_t now = event::now_ms();
      for (auto& [_, lane] : lanes_) lane->tick(now);
      schedule_tick();
    });
  }

  store::Store& store_;
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_;
  net::steady_timer tick_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<connection::Connection>> connections_;
  std::unordered_map<std::string, std::unique_ptr<lane::Lane>> lanes_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Dispatcher> make_dispatcher(const config::Config& config, store::Store& store) {
  return std::make_unique<DispatcherImpl>(config, store);
}

}  // namespace evr::dispatcher
