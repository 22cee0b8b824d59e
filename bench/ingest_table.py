#!/usr/bin/env python3
"""Summarise bench/ingest.sh results: medians over repeats, ratios to nginx, the issue's targets.

  ingest_table.py RESULTS            print the table
  ingest_table.py --peak TARGET RESULTS
                                     print TARGET's peak req/s (best median over connection counts)

Each RESULTS line is `closed|open key=value ...` (closed: wrk; open: evrouter-loadgen at a fixed rate).
Targets ending in `-close` asked for `Connection: close` (a new connection per request); they are compared
with `nginx-close` and never count towards a keep-alive peak.
"""
import statistics
import sys
from collections import defaultdict


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            row = {"kind": words[0]}
            for w in words[1:]:
                k, _, v = w.partition("=")
                row[k] = v
            rows.append(row)
    return rows


def medians(rows, kind):
    groups = defaultdict(list)
    for r in rows:
        if r["kind"] == kind:
            groups[(r["target"], int(r["connections"]))].append(r)
    out = {}
    for key, rs in groups.items():
        m = {"n": len(rs)}
        for field in ("rps", "achieved_rps", "rate", "p50_us", "p99_us", "p999_us", "max_us",
                      "non2xx", "errors", "unfinished", "send_lag_p99_us"):
            vals = [float(r[field]) for r in rs if field in r]
            if vals:
                m[field] = statistics.median(vals)
        out[key] = m
    return out


def peak(closed, target):
    return max((m["rps"] for (t, _), m in closed.items() if t == target), default=0)


def baseline(target):
    return "nginx-close" if target.endswith("-close") else "nginx"


def ms(us):
    return f"{us / 1000:.2f}"


def main(argv):
    if len(argv) == 4 and argv[1] == "--peak":
        print(int(peak(medians(load(argv[3]), "closed"), argv[2])))
        return 0
    rows = load(argv[1])
    closed = medians(rows, "closed")
    opened = medians(rows, "open")
    order = lambda k: (k[0].endswith("-close"), not k[0].startswith("nginx"), k[0], k[1])

    print("Closed loop (wrk; keep-alive, then -close: a new connection per request; medians of %d runs)"
          % max((m["n"] for m in closed.values()), default=0))
    print(f"{'target':<20} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
          f"{'vs nginx':>8} {'non-2xx':>7} {'errors':>6}")
    for key in sorted(closed, key=order):
        m = closed[key]
        base = closed.get((baseline(key[0]), key[1]))
        ratio = f"{m['rps'] / base['rps']:.2f}" if base and not key[0].startswith("nginx") and base["rps"] else "-"
        print(f"{key[0]:<20} {key[1]:>5} {m['rps']:>8.0f} {ms(m['p50_us']):>8} {ms(m['p99_us']):>8} "
              f"{ms(m['p999_us']):>9} {ratio:>8} {m['non2xx']:>7.0f} {m['errors']:>6.0f}")

    if opened:
        print()
        print("Open loop at half of the peak (evrouter-loadgen; latency from the scheduled send time)")
        print(f"{'target':<20} {'conns':>5} {'rate':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'p99.9 ms':>9} {'max ms':>8} {'failed':>6}")
        for key in sorted(opened, key=order):
            m = opened[key]
            failed = m["non2xx"] + m["errors"] + m["unfinished"]
            print(f"{key[0]:<20} {key[1]:>5} {m['rate']:>8.0f} {m['achieved_rps']:>8.0f} {ms(m['p50_us']):>8} "
                  f"{ms(m['p99_us']):>8} {ms(m['p999_us']):>9} {ms(m['max_us']):>8} {failed:>6.0f}")

    print()
    nginx = peak(closed, "nginx")
    fsync = peak(closed, "evrouter-fsync")
    if nginx and fsync:
        ratio = fsync / nginx
        print(f"target 1: evrouter fsync peak {fsync:.0f} req/s / nginx peak {nginx:.0f} req/s = {ratio:.2f} "
              f"(>= 0.50): {'met' if ratio >= 0.5 else 'MISSED'}")
    nginx_close = peak(closed, "nginx-close")
    fsync_close = peak(closed, "evrouter-fsync-close")
    if nginx_close and fsync_close:
        print(f"new connection per request: evrouter fsync {fsync_close:.0f} req/s / nginx {nginx_close:.0f} req/s "
              f"= {fsync_close / nginx_close:.2f}")
    m = opened.get(next((k for k in opened if k[0] == "evrouter-fsync"), None))
    if m:
        print(f"target 2: evrouter fsync p99 at {m['rate']:.0f} req/s = {ms(m['p99_us'])} ms (< 10 ms): "
              f"{'met' if m['p99_us'] < 10000 else 'MISSED'}")
        n = opened.get(next((k for k in opened if k[0] == "nginx"), None))
        if n:
            print(f"          (nginx at {n['rate']:.0f} req/s on this machine: p99 {ms(n['p99_us'])} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
