#include "store/wal_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

namespace evr::store::sqlite {

namespace {

constexpr const char* kName = "evrouter-wal-gather";
// A commit larger than this is written in several pieces of this size.
constexpr std::size_t kMaxGathered = 1 << 20;
// Bytes handed to the base VFS per write: its unix write keeps only the low 17 bits of a length (it never
// writes more than 128 KiB - 1 at once), and a length of 128 KiB exactly would be taken as 0 (a "full disk").
constexpr std::size_t kWriteChunk = std::size_t{96} * 1024;
// Read ahead in a checkpoint: WAL bytes read at once when a frame is not in the last piece read. Runs of
// pages that follow each other in both the database and the WAL are short (about 3 at peak ingest: a
// commit's new table pages, between index pages), so a few frames of 4 KiB pages; more is copied for
// nothing.
constexpr std::size_t kReadAhead = std::size_t{32} * 1024;

// The current CheckpointReadAhead of this thread (0: none), and the source of their numbers.
thread_local uint64_t t_read_ahead = 0;
std::atomic<uint64_t> g_read_aheads{0};

// Where the current DeferredWalSync of this thread records a deferred WAL (none: nullptr).
thread_local int* t_deferred_wal = nullptr;

sqlite3_vfs* g_base = nullptr;  // the default VFS, set once in wal_gathering_vfs()
sqlite3_vfs g_vfs;

// What SQLite allocates for each file opened through this VFS: ours, then the base VFS's file, aligned.
struct File {
  sqlite3_file base;           // must be first: SQLite sees a sqlite3_file*
  sqlite3_file* real;          // the base VFS's file, right after this struct
  std::vector<char>* pending;  // gathered bytes (WAL and main database files)
  sqlite3_int64 pending_at;    // their offset in the file
  bool wal;                    // the file is a WAL
  std::vector<char>* ahead;    // WAL bytes read ahead in a checkpoint (allocated on first use)
  sqlite3_int64 ahead_at;      // their offset in the file
  uint64_t ahead_of;           // the CheckpointReadAhead they were read in (0: none, the bytes are stale)
  sqlite3_int64 size;          // the file's size, read once in that CheckpointReadAhead
  uint64_t size_of;            // the CheckpointReadAhead it was read in
  int sync_fd;                 // WAL: a descriptor of our own for deferred syncs (-1: none, never deferred)
  bool synced;                 // WAL: SQLite has synced it once (with its directory, when it created it)
};

constexpr std::size_t real_offset() {
  return (sizeof(File) + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
         alignof(std::max_align_t);
}

File* self(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}

int flush(File* f) {
  if (f->pending == nullptr || f->pending->empty()) return SQLITE_OK;
  const std::vector<char>& p = *f->pending;
  int rc = SQLITE_OK;
  for (std::size_t done = 0; done < p.size() && rc == SQLITE_OK; done += kWriteChunk) {
    const std::size_t n = std::min(kWriteChunk, p.size() - done);
    rc = f->real->pMethods->xWrite(f->real, p.data() + done, static_cast<int>(n),
                                   f->pending_at + static_cast<sqlite3_int64>(done));
  }
  f->pending->clear();
  return rc;
}

int x_close(sqlite3_file* file) {
  File* f = self(file);
  const int flushed = flush(f);
  const int rc = f->real->pMethods->xClose(f->real);
  delete f->pending;
  f->pending = nullptr;
  delete f->ahead;
  f->ahead = nullptr;
  if (f->sync_fd >= 0) ::close(f->sync_fd);
  f->sync_fd = -1;
  return flushed != SQLITE_OK ? flushed : rc;
}

// A WAL read inside a CheckpointReadAhead: served from the bytes read ahead in the same one, or reads
// kReadAhead bytes (at most to the end of the file) from `offset` first. A checkpoint reads only frames
// that were committed before it started and that no one may overwrite until it has finished, so bytes
// read earlier in the same checkpoint are still the file's.
int read_ahead(File* f, void* out, int amount, sqlite3_int64 offset) {
  const auto want = static_cast<std::size_t>(amount);
  if (f->ahead != nullptr && f->ahead_of == t_read_ahead && offset >= f->ahead_at &&
      static_cast<std::size_t>(offset - f->ahead_at) + want <= f->ahead->size()) {
    std::memcpy(out, f->ahead->data() + (offset - f->ahead_at), want);
    return SQLITE_OK;
  }
  // The checkpoint's frames were all in the file before it started: the size then covers them.
  if (f->size_of != t_read_ahead || f->size - offset < amount) {
    f->size_of = 0;
    if (f->real->pMethods->xFileSize(f->real, &f->size) != SQLITE_OK || f->size - offset < amount)
      return f->real->pMethods->xRead(f->real, out, amount, offset);  // the base VFS reports the short read
    f->size_of = t_read_ahead;
  }
  const auto n =
      std::min<std::size_t>(std::max(kReadAhead, want), static_cast<std::size_t>(f->size - offset));
  if (f->ahead == nullptr) {
    f->ahead = new (std::nothrow) std::vector<char>();
    if (f->ahead == nullptr) return f->real->pMethods->xRead(f->real, out, amount, offset);
  }
  f->ahead->resize(n);
  f->ahead_of = 0;
  if (const int rc = f->real->pMethods->xRead(f->real, f->ahead->data(), static_cast<int>(n), offset);
      rc != SQLITE_OK)
    return f->real->pMethods->xRead(f->real, out, amount, offset);
  f->ahead_at = offset;
  f->ahead_of = t_read_ahead;
  std::memcpy(out, f->ahead->data(), want);
  return SQLITE_OK;
}

int x_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  if (f->wal && t_read_ahead != 0 && amount > 0 && static_cast<std::size_t>(amount) <= kReadAhead)
    return read_ahead(f, out, amount, offset);
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

int x_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  File* f = self(file);
  f->ahead_of = 0;
  f->size_of = 0;
  if (f->pending == nullptr) return f->real->pMethods->xWrite(f->real, data, amount, offset);
  std::vector<char>& p = *f->pending;
  const bool follows = !p.empty() && offset == f->pending_at + static_cast<sqlite3_int64>(p.size());
  if (!follows || p.size() + static_cast<std::size_t>(amount) > kMaxGathered) {
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
    f->pending_at = offset;
  }
  const auto* bytes = static_cast<const char*>(data);
  p.insert(p.end(), bytes, bytes + amount);
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = self(file);
  f->ahead_of = 0;
  f->size_of = 0;
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}

std::atomic<bool> g_fail_database_syncs{false};

int x_sync(sqlite3_file* file, int flags) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  if (!f->wal && f->pending != nullptr && g_fail_database_syncs.load(std::memory_order_relaxed))
    return SQLITE_IOERR_FSYNC;  // fail_database_syncs_for_testing
  if (f->wal && f->synced && f->sync_fd >= 0 && t_deferred_wal != nullptr) {
    *t_deferred_wal = f->sync_fd;  // written (above): the holder syncs it
    return SQLITE_OK;
  }
  const int rc = f->real->pMethods->xSync(f->real, flags);
  if (rc == SQLITE_OK) f->synced = true;
  return rc;
}

int x_file_size(sqlite3_file* file, sqlite3_int64* size) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileSize(f->real, size);
}

int x_lock(sqlite3_file* file, int level) {
  File* f = self(file);
  return f->real->pMethods->xLock(f->real, level);
}

int x_unlock(sqlite3_file* file, int level) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xUnlock(f->real, level);
}

int x_check_reserved_lock(sqlite3_file* file, int* out) {
  File* f = self(file);
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}

int x_file_control(sqlite3_file* file, int op, void* arg) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int x_sector_size(sqlite3_file* file) {
  File* f = self(file);
  return f->real->pMethods->xSectorSize(f->real);
}

int x_device_characteristics(sqlite3_file* file) {
  File* f = self(file);
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}

int x_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  File* f = self(file);
  return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

int x_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  File* f = self(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

void x_shm_barrier(sqlite3_file* file) {
  File* f = self(file);
  f->real->pMethods->xShmBarrier(f->real);
}

int x_shm_unmap(sqlite3_file* file, int remove) {
  File* f = self(file);
  return f->real->pMethods->xShmUnmap(f->real, remove);
}

int x_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  File* f = self(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFetch(f->real, offset, amount, out);
}

int x_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  File* f = self(file);
  return f->real->pMethods->xUnfetch(f->real, offset, p);
}

// Version 3 methods; the calls a base file of an older version lacks are never made (iVersion below).
const sqlite3_io_methods kMethods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};
sqlite3_io_methods g_methods[4];  // kMethods with iVersion 1..3, to match the base file's version

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = self(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + real_offset());
  f->pending = nullptr;
  f->pending_at = 0;
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->ahead = nullptr;
  f->ahead_at = 0;
  f->ahead_of = 0;
  f->size = 0;
  f->size_of = 0;
  f->sync_fd = -1;
  f->synced = false;
  const int rc = g_base->xOpen(g_base, name, f->real, flags, out_flags);
  if (f->real->pMethods == nullptr) return rc;  // nothing to close
  if ((flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) != 0) {
    f->pending = new (std::nothrow) std::vector<char>();
    if (f->pending == nullptr) {
      f->real->pMethods->xClose(f->real);
      return SQLITE_NOMEM;
    }
  }
  // A WAL has no POSIX locks (they are on the database and shared-memory files), so a second descriptor
  // of it, closed with it, releases nothing. Without one its syncs are simply never deferred.
  if (f->wal && rc == SQLITE_OK && name != nullptr) f->sync_fd = ::open(name, O_RDWR | O_CLOEXEC);
  const int version = f->real->pMethods->iVersion;
  f->base.pMethods = &g_methods[version >= 1 && version <= 3 ? version : 1];
  return rc;
}

// Everything but xOpen: the base VFS's own calls, on the base VFS.
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_base->xDelete(g_base, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_base->xAccess(g_base, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_base->xFullPathname(g_base, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) {
  return g_base->xDlOpen(g_base, name);
}
void x_dl_error(sqlite3_vfs*, int n, char* out) {
  g_base->xDlError(g_base, n, out);
}
void (*x_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return g_base->xDlSym(g_base, handle, symbol);
}
void x_dl_close(sqlite3_vfs*, void* handle) {
  g_base->xDlClose(g_base, handle);
}
int x_randomness(sqlite3_vfs*, int n, char* out) {
  return g_base->xRandomness(g_base, n, out);
}
int x_sleep(sqlite3_vfs*, int micros) {
  return g_base->xSleep(g_base, micros);
}
int x_current_time(sqlite3_vfs*, double* out) {
  return g_base->xCurrentTime(g_base, out);
}
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_base->xGetLastError ? g_base->xGetLastError(g_base, n, out) : 0;
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_base->xCurrentTimeInt64(g_base, out);
}

void register_vfs() {
  g_base = sqlite3_vfs_find(nullptr);
  if (g_base == nullptr || g_base->iVersion < 2) throw std::runtime_error("SQLite has no usable default VFS");
  for (int v = 1; v <= 3; ++v) {
    g_methods[v] = kMethods;
    g_methods[v].iVersion = v;
  }
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(real_offset()) + g_base->szOsFile;
  g_vfs.mxPathname = g_base->mxPathname;
  g_vfs.zName = kName;
  g_vfs.xOpen = x_open;
  g_vfs.xDelete = x_delete;
  g_vfs.xAccess = x_access;
  g_vfs.xFullPathname = x_full_pathname;
  g_vfs.xDlOpen = x_dl_open;
  g_vfs.xDlError = x_dl_error;
  g_vfs.xDlSym = x_dl_sym;
  g_vfs.xDlClose = x_dl_close;
  g_vfs.xRandomness = x_randomness;
  g_vfs.xSleep = x_sleep;
  g_vfs.xCurrentTime = x_current_time;
  g_vfs.xGetLastError = x_get_last_error;
  g_vfs.xCurrentTimeInt64 = x_current_time_int64;
  if (const int rc = sqlite3_vfs_register(&g_vfs, 0); rc != SQLITE_OK) {
    throw std::runtime_error(std::string("cannot register SQLite VFS: ") + sqlite3_errstr(rc));
  }
}

}  // namespace

const char* wal_gathering_vfs() {
  static std::once_flag once;
  std::call_once(once, register_vfs);
  return kName;
}

CheckpointReadAhead::CheckpointReadAhead() : previous_(t_read_ahead) {
  t_read_ahead = ++g_read_aheads;
}

CheckpointReadAhead::~CheckpointReadAhead() {
  t_read_ahead = previous_;
}

DeferredWalSync::DeferredWalSync() : previous_(t_deferred_wal) {
  t_deferred_wal = &wal_;
}

DeferredWalSync::~DeferredWalSync() {
  t_deferred_wal = previous_;
}

namespace {
std::atomic<int> g_injected_sync_error{0};
}  // namespace

void fail_database_syncs_for_testing(bool fail) {
  g_fail_database_syncs.store(fail, std::memory_order_relaxed);
}

void fail_wal_syncs_for_testing(int err) {
  g_injected_sync_error.store(err, std::memory_order_relaxed);
}

int sync_wal(int fd) {
  if (const int err = g_injected_sync_error.load(std::memory_order_relaxed); err != 0) return err;
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

}  // namespace evr::store::sqlite
