// A consistent copy of the SQLite store, taken while the daemon runs: VACUUM INTO reads one snapshot (the
// daemon's commits go on; its WAL grows while the copy lasts, see the writer's RESTART patience) and
// writes a compact database file, which is synced and renamed into place only once it is whole.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

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
    sqlite3_busy_timeout(db.get(), 10000);
    sqlite::Stmt vacuum(db, "VACUUM INTO ?1");
    vacuum.bind(1, partial.string()).run();
    {
      sqlite::Db copy(partial.string());
      sqlite::Stmt check(copy, "PRAGMA quick_check");
      const std::string verdict = check.step() ? check.text(0) : std::string("no answer");
      if (verdict != "ok") throw std::runtime_error("the copy failed its check: " + verdict);
    }
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

}  // namespace evr::store
