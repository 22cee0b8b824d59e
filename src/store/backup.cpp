// A consistent copy of the SQLite store, taken while the daemon runs: VACUUM INTO reads one snapshot (the
// daemon's commits go on; its WAL grows while the copy lasts, see the writer's RESTART patience) and
// writes a compact database file, which is synced and renamed into place only once it is whole.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "evrouter/store/sqlite_store.h"
#include "store/operations.h"
#include "store/sqlite.h"

namespace evr::store {
namespace {

namespace fs = std::filesystem;

void sync_path(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + p.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot sync " + p.string() + ": " + std::strerror(err));
}

// Starts the copy's writeback as the copy grows, a chunk at a time (and waits, on its own thread, for the
// chunk before), so that the disk writes the copy while it is made and little is left for the final fsync.
// Without it the whole copy (gigabytes, below the kernel's dirty thresholds on a large machine) stays dirty
// until that fsync, whose burst holds the daemon's own WAL syncs on the same disk back.
class WritebackPacer {
 public:
  static constexpr off_t kChunk = off_t{32} * 1024 * 1024;

  explicit WritebackPacer(fs::path file) : file_(std::move(file)), thread_([this] { run(); }) {}
  ~WritebackPacer() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  WritebackPacer(const WritebackPacer&) = delete;
  WritebackPacer& operator=(const WritebackPacer&) = delete;

 private:
  void run() {
    for (;;) {
      {
        std::unique_lock lk(mu_);
        if (cv_.wait_for(lk, std::chrono::milliseconds(20), [this] { return stop_; })) return;
      }
      if (fd_ < 0) fd_ = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);  // once VACUUM INTO created it
      struct stat st {};
      if (fd_ < 0 || ::fstat(fd_, &st) != 0 || st.st_size - started_ < kChunk) continue;
      ::sync_file_range(fd_, started_, st.st_size - started_, SYNC_FILE_RANGE_WRITE);
      if (started_ > waited_) {
        ::sync_file_range(fd_, waited_, started_ - waited_,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        waited_ = started_;
      }
      started_ = st.st_size;
    }
  }

  fs::path file_;
  int fd_ = -1;
  off_t started_ = 0;  // writeback started below this offset
  off_t waited_ = 0;   // and finished below this one
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

// Throws unless `path` is a database that passes PRAGMA quick_check (and, with `store_tables`, holds an
// evrouter store); `what` names it in the message.
void check_copy(const fs::path& path, const std::string& what, bool store_tables) {
  sqlite::Db copy(path.string());
  if (store_tables) {
    sqlite::Stmt is_store(copy,
                          "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'");
    if (!is_store.step() || is_store.int64(0) != 1)
      throw std::runtime_error(what + " is not an evrouter store");
  }
  sqlite::Stmt check(copy, "PRAGMA quick_check");
  const std::string verdict = check.step() ? check.text(0) : std::string("no answer");
  if (verdict != "ok") throw std::runtime_error(what + " failed its check: " + verdict);
}

}  // namespace

BackupResult backup_sqlite(const std::string& state_dir, const std::string& output) {
  const fs::path db_path = fs::path(state_dir) / "evrouter.db";
  if (!fs::exists(db_path)) throw std::runtime_error("no store at " + db_path.string());
  const fs::path out = fs::absolute(output);
  if (fs::exists(out)) throw std::runtime_error(out.string() + " exists; give a new file name");
  if (!fs::is_directory(out.parent_path()))
    throw std::runtime_error("no directory " + out.parent_path().string());
  const fs::path partial = out.string() + ".partial";
  std::error_code ec;
  fs::remove(partial, ec);  // left by an interrupted backup
  try {
    sqlite::Db db(db_path.string());
    sqlite3_busy_timeout(db.get(), sqlite::kBusyTimeoutMs);
    sqlite::Stmt vacuum(db, "VACUUM INTO ?1");
    {
      const WritebackPacer pacer(partial);
      vacuum.bind(1, partial.string()).run();
    }
    check_copy(partial, "the copy", false);
    sync_path(partial, O_RDONLY);
    fs::rename(partial, out);
    sync_path(out.parent_path(), O_RDONLY | O_DIRECTORY);
  } catch (...) {
    fs::remove(partial, ec);
    throw;
  }
  BackupResult r;
  sqlite::Db copy(out.string());
  r.counts = ops::counts(copy);
  r.bytes = fs::file_size(out);
  return r;
}

RestoreResult restore_sqlite(const std::string& state_dir, const std::string& from) {
  const fs::path backup = fs::absolute(from);
  if (!fs::is_regular_file(backup)) throw std::runtime_error("no backup at " + backup.string());
  check_copy(backup, backup.string(), true);
  const fs::path dir = fs::path(state_dir);
  fs::create_directories(dir);
  const fs::path db_path = dir / "evrouter.db";
  RestoreResult r;
  if (fs::exists(db_path)) {
    // Leaving WAL mode needs the only connection to the database: it fails while evrouter (or anything)
    // has the store open, and otherwise folds the WAL into the file, so the file alone is the old store.
    std::string mode_now, failure;
    try {
      sqlite::Db live(db_path.string());
      sqlite::Stmt mode(live, "PRAGMA journal_mode=DELETE");
      if (mode.step()) mode_now = mode.text(0);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (mode_now != "delete") {
      if (failure.empty() || failure.find("locked") != std::string::npos)
        throw std::runtime_error("the store in " + dir.string() +
                                 " is in use (is evrouter running?); stop it before restoring");
      throw std::runtime_error("cannot check the store in " + dir.string() + " (" + failure +
                               "); if evrouter is stopped, move evrouter.db and its -wal and -shm files "
                               "aside and restore again");
    }
  }
  // The copy is whole and synced beside the store before anything is moved: a failed copy (a full disk)
  // leaves the current store where it was.
  const fs::path partial = dir / "evrouter.db.partial";
  std::error_code ec;
  fs::remove(partial, ec);
  try {
    fs::copy_file(backup, partial);
    sync_path(partial, O_RDONLY);
  } catch (...) {
    fs::remove(partial, ec);
    throw;
  }
  if (fs::exists(db_path)) {
    r.kept = (dir / ("evrouter.db.before-restore-" + std::to_string(::time(nullptr)))).string();
    fs::rename(db_path, r.kept);
  }
  for (const char* stale : {"evrouter.db-wal", "evrouter.db-shm", "evrouter.db-journal"})
    fs::remove(dir / stale);
  fs::rename(partial, db_path);
  sync_path(dir, O_RDONLY | O_DIRECTORY);
  sqlite::Db restored(db_path.string());
  r.counts = ops::counts(restored);
  return r;
}

}  // namespace evr::store
