#pragma once
// A SQLite VFS over the default one that gathers contiguous writes into one write. SQLite writes each WAL
// frame with two writes (its 24-byte header, then the page), so a group commit of a few dozen pages costs a
// hundred syscalls, and a checkpoint copies each page into the database file with a write of its own (in
// page order: new pages at the end of the file are contiguous). Here contiguous writes to the WAL or the
// database file are kept in a buffer and written at once when SQLite syncs that file, reads, sizes or
// truncates it, writes elsewhere in it, unlocks or closes it. Every other file (journals, shared memory)
// and every other call pass through.
//
// Safe only on connections with synchronous=FULL: there SQLite syncs the WAL at every commit before it
// publishes the commit to other connections, so no reader can look for frames still in the buffer, and a
// commit is durable exactly as before (the buffer is written, then synced — by the holder of a
// DeferredWalSync, below, when one asked to make that sync itself); and a checkpoint syncs the
// database file before it records how far the WAL was copied (nBackfill), the moment from which another
// connection may read those pages from the database file rather than the WAL. The store uses it for the
// writer's and the checkpointer's connections in `durability: fsync` only.

#include <cstdint>

namespace evr::store::sqlite {

// Registers the VFS (once; thread-safe) and returns its name for sqlite3_open_v2.
const char* wal_gathering_vfs();

// While one exists on a thread, a checkpoint run on that thread by a connection on this VFS reads the WAL
// ahead (64 KiB at a time, served to the frames that follow) rather than with one read per page: a
// checkpoint copies pages in page order, and the pages of one commit follow each other in the WAL. Only
// around sqlite3_wal_checkpoint_v2 (PASSIVE) and nothing else: the bytes read ahead are trusted only within
// the one checkpoint (its frames were committed before it started and stay until it ends); the next
// CheckpointReadAhead reads afresh.
class CheckpointReadAhead {
 public:
  CheckpointReadAhead();
  ~CheckpointReadAhead();
  CheckpointReadAhead(const CheckpointReadAhead&) = delete;
  CheckpointReadAhead& operator=(const CheckpointReadAhead&) = delete;

 private:
  uint64_t previous_;
};

// While one exists on a thread, a WAL sync that SQLite asks for on that thread, on a connection of this VFS,
// writes the gathered frames (so other connections can read them, as before) but leaves the fdatasync to
// the holder: wal() then names the WAL, and sync_wal(wal()) — on any thread, later — makes everything written
// to it so far durable. A group commit can so be answered after a sync that runs while the writer already
// builds the next transaction. Only around write transactions whose answers wait for that sync: a
// checkpoint run inside one would copy frames not yet synced. The first sync of a WAL file opened here is
// never deferred (SQLite syncs the directory along with it when it has just created the file); database
// files are always synced.
class DeferredWalSync {
 public:
  DeferredWalSync();
  ~DeferredWalSync();
  DeferredWalSync(const DeferredWalSync&) = delete;
  DeferredWalSync& operator=(const DeferredWalSync&) = delete;

  // A descriptor of the WAL whose sync was deferred in this scope, -1 when none was. It stays valid while
  // the connection that wrote it is open.
  int wal() const { return wal_; }

 private:
  int* previous_;
  int wal_ = -1;
};

// fdatasync of a WAL named by DeferredWalSync::wal(), retried on EINTR. 0 or the errno.
int sync_wal(int fd);

// Fault injection for tests: while `err` is not 0, sync_wal() fails with it without syncing (as a disk
// whose writeback failed would make fdatasync fail). 0 ends it. Process-wide.
void fail_wal_syncs_for_testing(int err);

// Fault injection for tests: while true, a sync of a database file opened through this VFS (a checkpoint's,
// after it copied pages from the WAL) fails with SQLITE_IOERR_FSYNC. Process-wide.
void fail_database_syncs_for_testing(bool fail);

}  // namespace evr::store::sqlite
