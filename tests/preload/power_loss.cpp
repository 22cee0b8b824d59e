// A preloaded library (LD_PRELOAD) for process tests that cut the power: it keeps, beside the real files
// of one directory (EVR_TEST_POWER_WATCH), an image of what a disk would still hold after a power loss at
// any moment (in EVR_TEST_POWER_IMAGE, same file names): a write reaches the image only once an fsync or
// fdatasync of its file has returned after it (through any descriptor of that file); writes not yet synced
// are lost. A test kills the daemon with SIGKILL, replaces the directory with the image and restarts it.
//
// What the image keeps, more precisely:
// - writes (pwrite, pwrite64, write) and truncations (ftruncate) made before a sync of the same file began
//   are applied to the image when that sync returns; those made while it runs wait for the next one. A kill
//   in the middle of applying them leaves some applied and some not, which a real disk may do as well.
// - a file appears in the image at its first sync (its directory's entry is taken as synced with it); a
//   file that already existed when it was first opened is copied as it was then (a test starts the daemon
//   on a directory that is itself an image, or empty). Unlinking removes it from the image at once.
// - shared memory (SQLite's -shm, written through mmap) is never synced, so it is never in the image.
// With EVR_TEST_POWER_CUT=<thread name>:<n>, the power is cut when that thread calls its n-th sync of a
// watched file, before the sync: from then on no sync completes, the process runs on for 50 ms (an answer
// given before its sync would go out and be lost) and kills itself with SIGKILL. The cut is noted in
// EVR_TEST_POWER_SYNCERS. With EVR_TEST_POWER_SYNCERS set, the name of each thread that syncs a watched file
// is appended to that file the first time (so a test can tell which of the store's sync paths its cuts went
// through). Built without sanitizers (tests skip it under them: a sanitizer runtime must come first in the
// process).
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

template <typename Fn>
Fn next_fn(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

using OpenFn = int (*)(const char*, int, ...);
using OpenAtFn = int (*)(int, const char*, int, ...);
using CloseFn = int (*)(int);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using TruncateFn = int (*)(int, off_t);
using SyncFn = int (*)(int);
using UnlinkFn = int (*)(const char*);

// One change to a file not yet synced: bytes at an offset, or (truncate) a new length.
struct Change {
  bool truncate = false;
  off_t offset = 0;
  std::string bytes;
};

// A watched file's changes not yet in the image, in the order they were made; the first is number `first`.
struct Pending {
  std::deque<Change> changes;
  uint64_t first = 0;
  uint64_t end() const { return first + changes.size(); }
};

struct State {
  std::mutex mu;
  std::string watch;                     // the watched directory, with a trailing '/'
  std::string image;                     // the image directory, with a trailing '/'
  std::map<int, std::string> paths;      // open descriptors of watched files -> file name
  std::map<std::string, Pending> dirty;  // file name -> changes not yet synced
  std::string syncers;                   // EVR_TEST_POWER_SYNCERS: where to list the syncing threads
  std::set<std::string> seen;            // the threads listed there
  std::string cut_thread;                // EVR_TEST_POWER_CUT: the thread whose sync cuts the power
  long cut_at = 0;                       // and which of its syncs
  long cut_count = 0;                    // its syncs so far
};

// Descriptors of watched files, readable without the lock (write() is called for every log line).
constexpr int kMaxFd = 1 << 16;
std::atomic<bool> g_watched_fd[kMaxFd];

void set_watched(int fd, bool on) {
  if (fd >= 0 && fd < kMaxFd) g_watched_fd[fd].store(on, std::memory_order_relaxed);
}

bool is_watched(int fd) {
  return fd >= 0 && fd < kMaxFd && g_watched_fd[fd].load(std::memory_order_relaxed);
}

State& state() {
  static State* s = [] {
    auto* st = new State;  // never destroyed: used until the process dies
    const char* w = std::getenv("EVR_TEST_POWER_WATCH");
    const char* i = std::getenv("EVR_TEST_POWER_IMAGE");
    if (w != nullptr && i != nullptr && *w != '\0' && *i != '\0') {
      st->watch = std::string(w) + "/";
      st->image = std::string(i) + "/";
    }
    if (const char* n = std::getenv("EVR_TEST_POWER_SYNCERS"); n != nullptr) st->syncers = n;
    if (const char* c = std::getenv("EVR_TEST_POWER_CUT"); c != nullptr) {
      const std::string cut(c);
      if (const auto colon = cut.rfind(':'); colon != std::string::npos) {
        st->cut_thread = cut.substr(0, colon);
        st->cut_at = std::strtol(cut.c_str() + colon + 1, nullptr, 10);
      }
    }
    return st;
  }();
  return *s;
}

// The file name (no directory) of a path directly in the watched directory, or "".
std::string watched_name(const char* path) {
  State& s = state();
  if (s.watch.empty() || path == nullptr) return {};
  std::string p(path);
  if (p.compare(0, s.watch.size(), s.watch) != 0) return {};
  p.erase(0, s.watch.size());
  if (p.empty() || p.find('/') != std::string::npos) return {};
  return p;
}

// Copies a watched file as it is now into the image (an existing file first opened: taken as durable).
void copy_into_image(int fd, const std::string& name) {
  static const PwriteFn real_pwrite = next_fn<PwriteFn>("pwrite");
  static const OpenFn real_open = next_fn<OpenFn>("open");
  static const CloseFn real_close = next_fn<CloseFn>("close");
  const std::string target = state().image + name;
  const int out = real_open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return;
  char buf[65536];
  off_t at = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    real_pwrite(out, buf, static_cast<size_t>(n), at);
    at += n;
  }
  real_close(out);
}

void track(int fd, const char* path) {
  if (fd < 0) return;
  const std::string name = watched_name(path);
  if (name.empty()) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  State& s = state();
  std::lock_guard lk(s.mu);
  s.paths[fd] = name;
  set_watched(fd, true);
  const std::string target = s.image + name;
  if (st.st_size > 0 && ::access(target.c_str(), F_OK) != 0 && s.dirty.count(name) == 0) {
    copy_into_image(fd, name);
  }
}

void record(int fd, Change c) {
  if (!is_watched(fd)) return;
  State& s = state();
  std::lock_guard lk(s.mu);
  const auto it = s.paths.find(fd);
  if (it == s.paths.end()) return;
  s.dirty[it->second].changes.push_back(std::move(c));
}

// Applies a change to the image (called with the lock held).
void apply_to_image(const std::string& name, const Change& c) {
  static const PwriteFn real_pwrite = next_fn<PwriteFn>("pwrite");
  static const OpenFn real_open = next_fn<OpenFn>("open");
  static const CloseFn real_close = next_fn<CloseFn>("close");
  static const TruncateFn real_truncate = next_fn<TruncateFn>("ftruncate");
  const std::string target = state().image + name;
  const int out = real_open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0) return;
  if (c.truncate) {
    real_truncate(out, c.offset);
  } else {
    real_pwrite(out, c.bytes.data(), c.bytes.size(), c.offset);
  }
  real_close(out);
}

std::string thread_name() {
  char thread[32] = {};
  if (::pthread_getname_np(::pthread_self(), thread, sizeof thread) != 0) return {};
  return thread;
}

// Appends a line to EVR_TEST_POWER_SYNCERS (called with the lock held).
void note(const State& s, const std::string& line) {
  static const OpenFn real_open = next_fn<OpenFn>("open");
  static const WriteFn real_write = next_fn<WriteFn>("write");
  static const CloseFn real_close = next_fn<CloseFn>("close");
  if (s.syncers.empty()) return;
  const int out = real_open(s.syncers.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return;
  const std::string text = line + "\n";
  real_write(out, text.data(), text.size());
  real_close(out);
}

// Lists the calling thread the first time it syncs (called with the lock held).
void note_syncer(State& s) {
  const std::string thread = thread_name();
  if (!thread.empty() && s.seen.insert(thread).second) note(s, thread);
}

// EVR_TEST_POWER_CUT: the power goes when the chosen thread is about to make its chosen sync (called with
// the lock held, so no other sync's changes reach the image after it).
void maybe_cut(State& s) {
  if (s.cut_thread.empty() || thread_name() != s.cut_thread || ++s.cut_count != s.cut_at) return;
  note(s, "cut " + s.cut_thread + " " + std::to_string(s.cut_at));
  // The disk is gone but the machine runs on for a moment: no other sync completes (each waits for the
  // lock held here), while whatever the other threads do without one (answering producers) goes on.
  ::usleep(50 * 1000);
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

// A sync of fd: once it has returned, every change to the file made before it began is in the image (in
// the order they were made, also when syncs through several descriptors overlap).
int synced(SyncFn real, int fd) {
  State& s = state();
  std::string name;
  uint64_t upto = 0;
  {
    std::lock_guard lk(s.mu);
    const auto it = s.paths.find(fd);
    if (it != s.paths.end()) {
      maybe_cut(s);
      name = it->second;
      upto = s.dirty[name].end();
    }
  }
  const int rc = real(fd);
  if (rc == 0 && !name.empty()) {
    std::lock_guard lk(s.mu);
    Pending& p = s.dirty[name];
    bool touched = false;
    while (!p.changes.empty() && p.first < upto) {
      apply_to_image(name, p.changes.front());
      p.changes.pop_front();
      ++p.first;
      touched = true;
    }
    // A file synced with nothing to write still exists after a power loss.
    if (!touched) apply_to_image(name, Change{false, 0, {}});
    note_syncer(s);
  }
  return rc;
}

mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  static const OpenFn real = next_fn<OpenFn>("open");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  const int fd = real(path, flags, mode);
  track(fd, path);
  return fd;
}

int open64(const char* path, int flags, ...) {
  static const OpenFn real = next_fn<OpenFn>("open64");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  const int fd = real(path, flags, mode);
  track(fd, path);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  static const OpenAtFn real = next_fn<OpenAtFn>("openat");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  const int fd = real(dirfd, path, flags, mode);
  if (path[0] == '/') track(fd, path);
  return fd;
}

int openat64(int dirfd, const char* path, int flags, ...) {
  static const OpenAtFn real = next_fn<OpenAtFn>("openat64");
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  const int fd = real(dirfd, path, flags, mode);
  if (path[0] == '/') track(fd, path);
  return fd;
}

int close(int fd) {
  static const CloseFn real = next_fn<CloseFn>("close");
  if (is_watched(fd)) {
    State& s = state();
    std::lock_guard lk(s.mu);
    s.paths.erase(fd);
    set_watched(fd, false);
  }
  return real(fd);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  static const PwriteFn real = next_fn<PwriteFn>("pwrite");
  const ssize_t done = real(fd, buf, n, offset);
  if (done > 0)
    record(fd, {false, offset, std::string(static_cast<const char*>(buf), static_cast<size_t>(done))});
  return done;
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t offset) {
  static const PwriteFn real = next_fn<PwriteFn>("pwrite64");
  const ssize_t done = real(fd, buf, n, offset);
  if (done > 0)
    record(fd, {false, offset, std::string(static_cast<const char*>(buf), static_cast<size_t>(done))});
  return done;
}

ssize_t write(int fd, const void* buf, size_t n) {
  static const WriteFn real = next_fn<WriteFn>("write");
  const bool watched = is_watched(fd);
  const off_t at = watched ? ::lseek(fd, 0, SEEK_CUR) : 0;
  const ssize_t done = real(fd, buf, n);
  if (watched && done > 0 && at >= 0) {
    record(fd, {false, at, std::string(static_cast<const char*>(buf), static_cast<size_t>(done))});
  }
  return done;
}

int ftruncate(int fd, off_t length) {
  static const TruncateFn real = next_fn<TruncateFn>("ftruncate");
  const int rc = real(fd, length);
  if (rc == 0) record(fd, {true, length, {}});
  return rc;
}

int ftruncate64(int fd, off_t length) {
  static const TruncateFn real = next_fn<TruncateFn>("ftruncate64");
  const int rc = real(fd, length);
  if (rc == 0) record(fd, {true, length, {}});
  return rc;
}

int fsync(int fd) {
  static const SyncFn real = next_fn<SyncFn>("fsync");
  return synced(real, fd);
}

int fdatasync(int fd) {
  static const SyncFn real = next_fn<SyncFn>("fdatasync");
  return synced(real, fd);
}

int unlink(const char* path) {
  static const UnlinkFn real = next_fn<UnlinkFn>("unlink");
  const int rc = real(path);
  const std::string name = watched_name(path);
  if (rc == 0 && !name.empty()) {
    State& s = state();
    std::lock_guard lk(s.mu);
    Pending& p = s.dirty[name];
    p.first += p.changes.size();
    p.changes.clear();
    static const UnlinkFn real_unlink = next_fn<UnlinkFn>("unlink");
    real_unlink((s.image + name).c_str());
  }
  return rc;
}

}  // extern "C"
