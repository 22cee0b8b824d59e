#!/usr/bin/env python3
"""What deleting expired dedup keys costs the store's writer: one pass against chunks in each commit.

The SQLite store remembers every accepted webhook's dedup key (listener, key) for store.dedup_window
(48 h by default): ROWS keys is 48 h at ROWS / 172,800 webhooks a second. The keys are random (Shopify's
ids are UUIDs), so every key deleted costs a random leaf page.

  old    the writer's pass every 5 minutes until 2026-12: `DELETE FROM dedup WHERE at_ms < cutoff`, one
         statement in one transaction (no index on at_ms: it reads the whole table), while every answer
         waits for the writer.
  chunk  what the writer does now: each group commit (here COMMIT_SIZE new keys) also deletes up to 64
         expired keys, found through the dedup_expiry index, in the same transaction.

Both start from the same table (uniform ages over the window, the oldest 5 minutes' worth expired), with
the daemon's settings (WAL, synchronous=FULL, a 16 MB page cache) and this machine's libsqlite3 (Python's
sqlite3 module on Debian links the system library the daemon links). Printed: the old pass's duration,
and the commits' duration (p50/p99/max) while chunks drain the same expired keys, beside commits after
they are drained (an index seek that finds nothing).

  python3 bench/dedup_expiry.py                      # 1,000,000 keys, about 2 minutes
  ROWS=4000000 REPEATS=3 python3 bench/dedup_expiry.py
"""
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid

ROWS = int(os.environ.get("ROWS", "1000000"))
REPEATS = int(os.environ.get("REPEATS", "2"))
COMMIT_SIZE = int(os.environ.get("COMMIT_SIZE", "20"))
WINDOW_MS = 48 * 3600 * 1000
EXPIRED = ROWS * 5 // (48 * 60)  # five minutes of a 48 h window
LISTENER = "kq3Z8vB1xT6mN4pR7wY2cD9fH5"
NOW = 1_800_000_000_000


def build(path, with_index):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "CREATE TABLE dedup(listener TEXT NOT NULL, key TEXT NOT NULL, event_id TEXT NOT NULL, "
        "at_ms INTEGER NOT NULL, PRIMARY KEY(listener, key)) WITHOUT ROWID")
    if with_index:
        db.execute("CREATE INDEX dedup_expiry ON dedup(at_ms)")
    oldest = NOW - WINDOW_MS - 5 * 60 * 1000
    step = (WINDOW_MS + 5 * 60 * 1000) / ROWS
    db.execute("BEGIN")
    db.executemany("INSERT INTO dedup VALUES(?1, ?2, ?3, ?4)",
                   ((LISTENER, str(uuid.uuid4()), uuid.uuid4().hex[:26].upper(), int(oldest + i * step))
                    for i in range(ROWS)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-16000")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the daemon checkpoints on another thread
    return db


def old_pass(path):
    db = connect(path)
    started = time.perf_counter()
    db.execute("DELETE FROM dedup WHERE at_ms < ?1", (NOW - WINDOW_MS,))
    took = (time.perf_counter() - started) * 1000
    deleted = db.execute("SELECT changes()").fetchone()[0]
    db.close()
    return took, deleted


def chunked(path):
    db = connect(path)
    insert = ("INSERT INTO dedup(listener, key, event_id, at_ms) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(listener, key) "
              "DO UPDATE SET event_id = excluded.event_id, at_ms = excluded.at_ms WHERE dedup.at_ms < ?5")
    expire = ("DELETE FROM dedup WHERE (listener, key) IN (SELECT listener, key FROM dedup WHERE at_ms < ?1 "
              "ORDER BY at_ms LIMIT 64)")
    draining, drained, deleted = [], [], 0
    while len(drained) < 200:
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for _ in range(COMMIT_SIZE):
            db.execute(insert, (LISTENER, str(uuid.uuid4()), "E", NOW, NOW - WINDOW_MS))
        db.execute(expire, (NOW - WINDOW_MS,))
        n = db.execute("SELECT changes()").fetchone()[0]
        db.execute("COMMIT")
        took = (time.perf_counter() - started) * 1000
        deleted += n
        (draining if n > 0 else drained).append(took)
    db.close()
    return draining, drained, deleted


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    work = tempfile.mkdtemp(prefix="evr-dedup-")
    try:
        print(f"sqlite {sqlite3.sqlite_version}, {ROWS} keys ({EXPIRED} expired), commits of {COMMIT_SIZE} "
              f"new keys, load avg {open('/proc/loadavg').read().split()[0]}")
        old_src, new_src = os.path.join(work, "old.db"), os.path.join(work, "new.db")
        build(old_src, False)
        build(new_src, True)
        olds, drains, idles = [], [], []
        for rep in range(REPEATS):
            for mode in ("old", "chunk"):
                path = os.path.join(work, "run.db")
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(path + suffix):
                        os.remove(path + suffix)
                shutil.copy(old_src if mode == "old" else new_src, path)
                if mode == "old":
                    took, deleted = old_pass(path)
                    olds.append(took)
                    print(f"run {rep + 1} old    one pass {took:8.1f} ms, {deleted} keys deleted")
                else:
                    draining, drained, deleted = chunked(path)
                    drains += draining
                    idles += drained
                    print(f"run {rep + 1} chunk  {len(draining)} commits drained {deleted} keys: commit p50 "
                          f"{statistics.median(draining):.2f} ms p99 {pct(draining, 99):.2f} max {max(draining):.2f}; "
                          f"after: p50 {statistics.median(drained):.2f} p99 {pct(drained, 99):.2f}")
        print()
        print(f"old: the writer stops for {statistics.median(olds):.0f} ms (median of {len(olds)}) every 5 minutes")
        print(f"chunk: commits while draining p50 {statistics.median(drains):.2f} ms, p99 {pct(drains, 99):.2f}, "
              f"max {max(drains):.2f}; with nothing to drain p50 {statistics.median(idles):.2f}, "
              f"p99 {pct(idles, 99):.2f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
