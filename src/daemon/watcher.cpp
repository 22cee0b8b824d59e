#include "evrouter/daemon/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "evrouter/common/log.h"
#include "evrouter/common/thread.h"

namespace evr::daemon {

namespace fs = std::filesystem;

struct Watcher::Impl {
  // What matters in one watched directory.
  struct Interest {
    std::set<std::string> names;  // watched files in it
    bool any_yaml = false;        // a `flows:` directory: every *.yaml / *.yml
  };

  std::chrono::milliseconds debounce;
  std::function<void()> on_change;
  int inotify = -1;
  int wake = -1;  // eventfd: a new set of paths, or stop
  std::mutex mu;
  std::optional<std::vector<fs::path>> pending;  // mu
  std::atomic<bool> stopping{false};
  std::map<int, Interest> watches;  // watcher thread only: watch descriptor -> interest
  std::thread thread;

  ~Impl() {
    if (inotify >= 0) ::close(inotify);
    if (wake >= 0) ::close(wake);
  }

  void apply(const std::vector<fs::path>& paths) {
    for (const auto& [wd, _] : watches) ::inotify_rm_watch(inotify, wd);
    watches.clear();
    constexpr uint32_t kMask =
        IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_MODIFY;
    for (const auto& p : paths) {
      std::error_code ec;
      const bool dir = fs::is_directory(p, ec);
      fs::path where = dir ? p : p.parent_path();
      if (where.empty()) where = ".";
      const int wd = ::inotify_add_watch(inotify, where.c_str(), kMask);
      if (wd < 0) {
        log::warn("cannot watch for configuration changes",
                  {{"path", where.string()}, {"error", std::strerror(errno)}});
        continue;
      }
      Interest& interest = watches[wd];
      if (dir) {
        interest.any_yaml = true;
      } else {
        interest.names.insert(p.filename().string());
      }
    }
  }

  bool relevant(const inotify_event& e) const {
    if (e.mask & IN_Q_OVERFLOW) return true;  // events were lost: assume the worst
    auto it = watches.find(e.wd);
    if (it == watches.end() || e.len == 0) return false;
    const std::string name = e.name;
    if (name.rfind("..", 0) == 0) return true;  // a ConfigMap-style swap of the ..data symlink
    if (it->second.names.count(name) != 0) return true;
    if (!it->second.any_yaml) return false;
    const auto ext = fs::path(name).extension();
    return ext == ".yaml" || ext == ".yml";
  }

  void run() {
    using Clock = std::chrono::steady_clock;
    bool armed = false;  // a change was seen; call back at `due`
    Clock::time_point due{};
    alignas(inotify_event) char buf[8192];
    while (!stopping) {
      {
        std::lock_guard lk(mu);
        if (pending) {
          apply(*pending);
          pending.reset();
        }
      }
      int timeout = -1;
      if (armed) {
        timeout = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count() + 1));
      }
      pollfd fds[2] = {{inotify, POLLIN, 0}, {wake, POLLIN, 0}};
      const int n = ::poll(fds, 2, timeout);
      if (stopping) return;
      if (n < 0) {
        if (errno == EINTR) continue;
        log::error("configuration watcher stopped", {{"error", std::strerror(errno)}});
        return;
      }
      if (fds[1].revents & POLLIN) {
        uint64_t v = 0;
        (void)!::read(wake, &v, sizeof v);
      }
      if (fds[0].revents & POLLIN) {
        for (;;) {
          const ssize_t len = ::read(inotify, buf, sizeof buf);
          if (len <= 0) break;
          for (ssize_t off = 0; off < len;) {
            const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
            if (relevant(*e)) {
              armed = true;
              due = Clock::now() + debounce;
            }
            off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
          }
        }
      }
      if (armed && Clock::now() >= due) {
        armed = false;
        on_change();
      }
    }
  }

  void poke() {
    const uint64_t one = 1;
    (void)!::write(wake, &one, sizeof one);
  }
};

Watcher::Watcher(std::chrono::milliseconds debounce, std::function<void()> on_change)
    : impl_(std::make_unique<Impl>()) {
  impl_->debounce = debounce;
  impl_->on_change = std::move(on_change);
  impl_->inotify = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  impl_->wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->inotify < 0 || impl_->wake < 0) {
    throw std::runtime_error(std::string("cannot watch configuration files: ") + std::strerror(errno));
  }
  impl_->thread = std::thread([impl = impl_.get()] {
    name_this_thread("watch");
    impl->run();
  });
}

Watcher::~Watcher() {
  stop();
}

void Watcher::watch(std::vector<fs::path> paths) {
  std::lock_guard lk(impl_->mu);
  impl_->pending = std::move(paths);
  impl_->poke();
}

void Watcher::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->poke();
  if (impl_->thread.get_id() == std::this_thread::get_id()) return;  // from on_change: it ends after it
  impl_->thread.join();
}

std::vector<fs::path> watched_paths(const config::Config& config) {
  std::vector<fs::path> out;
  if (!config.file.empty()) out.emplace_back(config.file);
  for (const auto& p : config.flow_paths) out.emplace_back(p);
  // A renewed certificate is read again by the reload its change starts.
  for (const auto* tls : {&config.server.tls, &config.admin.tls}) {
    if (!*tls) continue;
    out.emplace_back((*tls)->cert_file);
    out.emplace_back((*tls)->key_file);
  }
  return out;
}

}  // namespace evr::daemon
