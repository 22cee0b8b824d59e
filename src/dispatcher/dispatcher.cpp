#include "evrouter/dispatcher/dispatcher.h"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "connection/connection.h"
#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"
#include "evrouter/config/compare.h"
#include "evrouter/event/event.h"
#include "evrouter/flow/routes.h"
#include "evrouter/mapping/mapping.h"
#include "lane/lane.h"

namespace evr::dispatcher {
namespace {

namespace net = boost::asio;

// A lane the configuration defines, and the connection it sends on.
struct LanePlan {
  lane::Spec spec;
  std::string connection;
};

// Every destination of every flow as a lane. Throws std::runtime_error on a connection no one defines.
std::vector<LanePlan> plan_lanes(const config::Config& config) {
  std::vector<LanePlan> out;
  // Reserved: a Spec is large, moving every plan made so far each time the vector grows is not free.
  std::size_t lanes = 0;
  for (const auto& f : config.flows) {
    for (const auto& b : f.branches) lanes += b.destinations.size();
  }
  out.reserve(lanes);
  for (const auto& f : config.flows) {
    for (const auto& b : f.branches) {
      for (const auto& d : b.destinations) {
        auto it = config.connections.find(d.connection);
        if (it == config.connections.end()) {
          throw std::runtime_error("flow " + f.name + ": unknown connection " + d.connection);
        }
        lane::Spec spec;
        spec.id = flow::lane_id(f.name, b.name, d.name);
        spec.flow = f.name;
        spec.destination = d;
        spec.retry = d.retry.value_or(it->second.retry);
        spec.responses = d.responses.value_or(it->second.responses);
        spec.classify = destination::Classifier(spec.responses);
        if (d.signing)
          spec.signer = destination::Signer::make(*d.signing, "flow " + f.name + ", lane " + spec.id);
        try {
          spec.mapping = mapping::Mapping::compile(d);
        } catch (const mapping::MappingError& e) {
          throw std::runtime_error("flow " + f.name + ", lane " + spec.id + ": " + e.what());
        }
        out.push_back({std::move(spec), d.connection});
      }
    }
  }
  return out;
}

// Cluster-wide concurrency (docs/scaling.md#what-is-cluster-wide): a connection's `concurrency` split over
// the lanes that send on it, as the most deliveries each lane may hold at once across every instance.
// Each lane gets concurrency / lanes, the first ones (by id) one more until the remainder is used up, and
// at least 1 (so a connection with more lanes than its concurrency can have one per lane in flight).
std::map<std::string, int> lane_caps(const config::Config& config, const std::vector<LanePlan>& plans) {
  std::map<std::string, std::vector<std::string>> by_connection;
  for (const auto& p : plans) by_connection[p.connection].push_back(p.spec.id);
  std::map<std::string, int> caps;
  for (auto& [name, ids] : by_connection) {
    std::sort(ids.begin(), ids.end());
    const int concurrency = std::max(1, config.connections.at(name).concurrency);
    const int n = static_cast<int>(ids.size());
    if (n > concurrency && config.store.type != "sqlite") {
      log::warn(
          "connection has more lanes than its concurrency: across instances up to one request per lane",
          {{"connection", name}, {"lanes", std::to_string(n)}, {"concurrency", std::to_string(concurrency)}});
    }
    for (int i = 0; i < n; ++i) caps[ids[i]] = std::max(1, concurrency / n + (i < concurrency % n ? 1 : 0));
  }
  return caps;
}

bool same_spec(const lane::Spec& a, const lane::Spec& b) {
  return a.id == b.id && a.flow == b.flow && config::same_settings(a.destination, b.destination) &&
         a.retry == b.retry && a.responses == b.responses;
}

class DispatcherImpl final : public Dispatcher {
 public:
  DispatcherImpl(const config::Config& config, store::Store& store)
      : store_(store), work_(net::make_work_guard(ioc_)), tick_(ioc_) {
    for (const auto& [name, c] : config.connections) {
      connections_.emplace(name, std::make_unique<connection::Connection>(c, ioc_));
    }
    applied_ = config.connections;
    instances_ = store_.live_instances();
    for (auto& [_, c] : connections_) c->share_rate(instances_);
    auto plans = plan_lanes(config);
    store_.cap_lanes(lane_caps(config, plans));
    for (auto& plan : plans) {
      const std::string id = plan.spec.id;
      lanes_.emplace(id, std::make_unique<lane::Lane>(std::move(plan.spec), *connections_.at(plan.connection),
                                                      store_, ioc_, stopping_));
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
    // Every lane reads what waits for it in the store now, not at the first tick: until a lane's first
    // read, the deliveries of new webhooks wait on disk too (they must not pass older ones), and the
    // first tenth of a second of a start's webhooks would be sent up to a tick late.
    net::post(ioc_, [this] {
      const int64_t now = event::now_ms();
      for (auto& [_, lane] : lanes_) lane->tick(now);
    });
    schedule_tick();
    thread_ = std::thread([this] {
      name_this_thread("dispatch");
      ioc_.run();
    });
    log::info("dispatcher started", {{"lanes", std::to_string(lanes_.size())},
                                     {"connections", std::to_string(connections_.size())}});
  }

  // Offers and notices wait in the inbox; only the first one into an empty inbox wakes the loop, which
  // takes all that came meanwhile at once (at peak ingest, one wake-up per few commits rather than one
  // per event). Deliveries reach their lanes in the order they were offered, before the lanes noticed.
  void offer(std::vector<store::Delivery> deliveries) override {
    to_inbox([&] {
      inbox_deliveries_.insert(inbox_deliveries_.end(), std::make_move_iterator(deliveries.begin()),
                               std::make_move_iterator(deliveries.end()));
    });
  }

  void wake(std::vector<std::string> lanes) override {
    net::post(ioc_, [this, lanes = std::move(lanes)]() mutable {
      look(lanes);
      // A delivery that died just before the replay may still be held by its lane (its outcome's commit
      // not yet reported back), so the read above skips it: look once more after that has settled.
      auto again = std::make_shared<net::steady_timer>(ioc_, std::chrono::seconds(1));
      again->async_wait([this, again, lanes = std::move(lanes)](const boost::system::error_code& ec) {
        if (!ec && !stopping_) look(lanes);
      });
    });
  }

  void notify(std::vector<std::string> lanes) override {
    to_inbox([&] {
      for (auto& lane : lanes) {
        if (std::find(inbox_lanes_.begin(), inbox_lanes_.end(), lane) == inbox_lanes_.end())
          inbox_lanes_.push_back(std::move(lane));
      }
    });
  }

  Changes reconfigure(const config::Config& config, std::weak_ptr<const void> previous) override {
    std::lock_guard lk(reconfigure_mu_);
    if (!thread_.joinable() || stopped_) throw std::runtime_error("the dispatcher is not running");

    // Off the loop: everything that can fail. Secrets are resolved again (a rotated token file counts).
    auto lanes = plan_lanes(config);
    std::vector<std::pair<config::Connection, connection::Prepared>> connections;
    Changes changes;
    for (const auto& [name, c] : config.connections) {
      auto it = applied_.find(name);
      const bool known = it != applied_.end();
      connections.emplace_back(
          c, connection::prepare(c, ioc_, !known || !connection::same_client(it->second, c)));
      if (!known) {
        changes.connections_added.push_back(name);
      } else if (!config::same_settings(it->second, c)) {
        changes.connections_changed.push_back(name);
      }
    }
    for (const auto& [name, c] : applied_) {
      if (!config.connections.count(name)) changes.connections_removed.push_back(name);
    }

    store_.cap_lanes(lane_caps(config, lanes));

    // On the loop: swap.
    std::promise<void> done;
    net::post(ioc_, [&] {
      for (auto& [c, prepared] : connections) {
        removed_connections_.erase(c.name);
        auto it = connections_.find(c.name);
        if (it == connections_.end()) {
          auto conn = std::make_unique<connection::Connection>(c, std::move(prepared), ioc_);
          conn->share_rate(instances_);
          connections_.emplace(c.name, std::move(conn));
        } else {
          it->second->reconfigure(c, std::move(prepared));
        }
      }
      std::set<std::string> wanted;
      for (auto& plan : lanes) {
        const std::string id = plan.spec.id;
        wanted.insert(id);
        connection::Connection& conn = *connections_.at(plan.connection);
        auto it = lanes_.find(id);
        if (it == lanes_.end()) {
          auto& lane = *lanes_
                            .emplace(id, std::make_unique<lane::Lane>(std::move(plan.spec), conn, store_,
                                                                      ioc_, stopping_))
                            .first->second;
          lane.tick(event::now_ms());  // a new lane reads the store at once (see start)
          changes.lanes_added.push_back(id);
          continue;
        }
        if (retired_.erase(id) != 0) {
          changes.lanes_added.push_back(id);
        } else if (!same_spec(it->second->spec(), plan.spec) || &it->second->connection() != &conn) {
          changes.lanes_changed.push_back(id);
        }
        it->second->reconfigure(std::move(plan.spec), conn);
      }
      for (const auto& [id, lane] : lanes_) {
        if (wanted.count(id) || retired_.count(id)) continue;
        retired_.emplace(id, Retired{previous, std::nullopt});
        changes.lanes_removed.push_back(id);
      }
      for (const auto& name : changes.connections_removed) removed_connections_.insert(name);
      done.set_value();
    });
    done.get_future().wait();
    applied_ = config.connections;
    return changes;
  }

  std::vector<connection::ConnectionState> connections() override {
    std::lock_guard lk(reconfigure_mu_);
    std::vector<connection::ConnectionState> out;
    auto collect = [&] {
      for (const auto& [_, c] : connections_) out.push_back(c->state());
    };
    if (!thread_.joinable() || stopped_) {
      if (!thread_.joinable()) collect();  // not started: no loop touches them yet
      return out;
    }
    std::promise<void> done;
    net::post(ioc_, [&] {
      collect();
      done.set_value();
    });
    done.get_future().wait();
    return out;
  }

  void stop(std::chrono::milliseconds grace) override {
    {
      std::lock_guard lk(reconfigure_mu_);
      if (!thread_.joinable() || stopped_) return;
      stopped_ = true;
    }
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
  // A lane the configuration no longer defines, delivering what is left for it.
  struct Retired {
    std::weak_ptr<const void> previous;  // the routes that could still send it work
    std::optional<uint64_t> mark;        // lane.fetches() when `previous` was seen expired
  };

  void schedule_tick() {
    tick_.expires_after(std::chrono::milliseconds(100));
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      const int64_t now = event::now_ms();
      for (auto& [_, lane] : lanes_) lane->tick(now);
      if (const int n = store_.live_instances(); n != instances_) {
        log::info("evrouter instances sharing the store changed; rate limits are shared by them",
                  {{"instances", std::to_string(n)}});
        instances_ = n;
        for (auto& [_, c] : connections_) c->share_rate(n);
      }
      sweep();
      schedule_tick();
    });
  }

  // Adds to the inbox (under its lock) and wakes the loop if it was empty.
  template <class Add>
  void to_inbox(Add add) {
    bool wake = false;
    {
      std::lock_guard lk(inbox_mu_);
      wake = inbox_deliveries_.empty() && inbox_lanes_.empty();
      add();
    }
    if (wake) net::post(ioc_, [this] { take_inbox(); });
  }

  // On the loop: what offer() and notify() left in the inbox.
  void take_inbox() {
    {
      std::lock_guard lk(inbox_mu_);
      inbox_deliveries_.swap(taken_deliveries_);
      inbox_lanes_.swap(taken_lanes_);
    }
    for (auto& d : taken_deliveries_) {
      auto it = lanes_.find(d.lane);
      if (it != lanes_.end()) it->second->offer(std::move(d));
    }
    look(taken_lanes_);
    taken_deliveries_.clear();
    taken_lanes_.clear();
  }

  void look(const std::vector<std::string>& lanes) {
    for (const auto& id : lanes) {
      auto it = lanes_.find(id);
      if (it != lanes_.end()) it->second->look_on_disk();
    }
  }

  // Drops retired lanes that have nothing left, then connections that no lane uses any more.
  void sweep() {
    for (auto it = retired_.begin(); it != retired_.end();) {
      auto& [id, r] = *it;
      lane::Lane& lane = *lanes_.at(id);
      if (!r.previous.expired()) {
        ++it;
        continue;
      }
      // Every ingest that could route to this lane has committed: one more read of the store, started
      // after this moment, finds whatever it added.
      if (!r.mark) r.mark = lane.fetches();
      if (lane.fetches() <= *r.mark) {
        lane.look_on_disk();
        ++it;
        continue;
      }
      if (!lane.drained()) {
        ++it;
        continue;
      }
      log::info("removed lane stopped: nothing left to deliver", {{"lane", id}});
      lane.connection().forget(&lane);
      lanes_.erase(id);
      it = retired_.erase(it);
    }
    for (auto it = removed_connections_.begin(); it != removed_connections_.end();) {
      auto c = connections_.find(*it);
      const bool used = std::any_of(lanes_.begin(), lanes_.end(), [&](const auto& l) {
        return &l.second->connection() == c->second.get();
      });
      if (used || c->second->in_flight() != 0) {
        ++it;
        continue;
      }
      log::info("removed connection closed", {{"connection", *it}});
      c->second->close();
      // Destroyed on a later turn, after anything it posted itself.
      net::post(ioc_, [gone = std::shared_ptr<connection::Connection>(std::move(c->second))] {});
      connections_.erase(c);
      it = removed_connections_.erase(it);
    }
  }

  store::Store& store_;
  net::io_context ioc_{1};
  net::executor_work_guard<net::io_context::executor_type> work_;
  net::steady_timer tick_;
  int instances_ = 1;  // loop only: live evrouter instances sharing the store (rate-limit shares)
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<connection::Connection>> connections_;
  std::unordered_map<std::string, std::unique_ptr<lane::Lane>> lanes_;
  std::map<std::string, Retired> retired_;     // loop only
  std::set<std::string> removed_connections_;  // loop only: still open for retired lanes
  std::mutex inbox_mu_;
  std::vector<store::Delivery> inbox_deliveries_;      // inbox_mu_
  std::vector<std::string> inbox_lanes_;               // inbox_mu_
  std::vector<store::Delivery> taken_deliveries_;      // loop only
  std::vector<std::string> taken_lanes_;               // loop only
  std::mutex reconfigure_mu_;                          // one reconfigure at a time; not during stop
  std::map<std::string, config::Connection> applied_;  // reconfigure_mu_
  bool stopped_ = false;                               // reconfigure_mu_
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Dispatcher> make_dispatcher(const config::Config& config, store::Store& store) {
  return std::make_unique<DispatcherImpl>(config, store);
}

}  // namespace evr::dispatcher
