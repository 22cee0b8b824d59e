#pragma once
// A SQLite VFS over the default one that gathers a transaction's writes to the write-ahead log into one
// write. SQLite writes each WAL frame with two writes (its 24-byte header, then the page), so a group
// commit of a few dozen pages costs a hundred syscalls; here contiguous writes are kept in a buffer and
// written at once when SQLite syncs the WAL, reads, sizes or truncates it, writes elsewhere in it, or
// closes it. Every other file (the database, its shared memory) and every other call pass through.
//
// Safe only on a connection with synchronous=FULL: there SQLite syncs the WAL at every commit before it
// publishes the commit to other connections, so no reader can look for frames still in the buffer, and a
// commit is durable exactly as before (the buffer is written, then synced). The store uses it for the
// writer's connection in `durability: fsync` only.

namespace evr::store::sqlite {

// Registers the VFS (once; thread-safe) and returns its name for sqlite3_open_v2.
const char* wal_gathering_vfs();

}  // namespace evr::store::sqlite
