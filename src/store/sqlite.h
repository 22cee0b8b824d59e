#pragma once
// Thin RAII over the SQLite C API, private to the store.

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace evr::store::sqlite {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// How long a connection waits for a lock another connection holds before SQLITE_BUSY.
inline constexpr int kBusyTimeoutMs = 10000;

class Db {
 public:
  Db() = default;
  // `vfs`: a registered VFS name (store/wal_vfs.h), or null for the default one.
  explicit Db(const std::string& path, const char* vfs = nullptr);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Db& operator=(Db&& o) noexcept {
    if (this != &o) {
      if (db_) sqlite3_close_v2(db_);
      db_ = o.db_;
      o.db_ = nullptr;
    }
    return *this;
  }
  sqlite3* get() const { return db_; }
  void exec(const char* sql);
  std::string errmsg() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_ = nullptr;
};

// A prepared statement, reset after each use by Row/step helpers.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Db& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : st_(o.st_) { o.st_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind_blob(int i, std::string_view v);
  Stmt& bind_null(int i);
  // Steps once: true when a row is available.
  bool step();
  // Runs to completion (for writes) and resets.
  void run();
  void reset();

  int64_t int64(int col) const { return sqlite3_column_int64(st_, col); }
  std::string text(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace evr::store::sqlite
