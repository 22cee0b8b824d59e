#!/usr/bin/env python3
"""The summary table of bench/all.sh: reads the outputs the benchmark scripts left in a directory
(<step>.txt) and prints one row per figure: metric, value, baseline, ratio, target, met/missed.
A step that did not run or whose output lacks a figure gives no row for it (its .err file says why)."""
import os
import re
import sys

rows = []


def row(metric, value, baseline="-", ratio=None, target="-", status="info"):
    rows.append((metric, value, baseline, "-" if ratio is None else "%.2f" % ratio, target, status))


def fmt(x, unit=""):
    if isinstance(x, float) and x < 100:
        return "%.1f%s" % (x, unit)
    return "%.0f%s" % (x, unit)


def read(out_dir, step):
    path = os.path.join(out_dir, step + ".txt")
    return open(path).read() if os.path.exists(path) else ""


def ingest(t):
    m = re.search(r"target 1: evrouter fsync peak (\d+) req/s / nginx peak (\d+) req/s = ([\d.]+)", t)
    if m:
        v, b = float(m.group(1)), float(m.group(2))
        row("ingest fsync peak (req/s)", fmt(v), "nginx " + fmt(b), v / b, ">= 0.50", "met" if v / b >= 0.5 else "MISSED")
    m = re.search(r"new connection per request: evrouter fsync (\d+) req/s / nginx (\d+) req/s", t)
    if m:
        v, b = float(m.group(1)), float(m.group(2))
        row("ingest fsync, new connection per request", fmt(v), "nginx " + fmt(b), v / b, "-", "info")
    m = re.search(r"target 2: evrouter fsync p99 at (\d+) req/s = ([\d.]+) ms", t)
    if m:
        p = float(m.group(2))
        n = re.search(r"\(nginx at \d+ req/s on this machine: p99 ([\d.]+) ms\)", t)
        row("ingest fsync p99 at half peak (ms)", "%.1f at %s/s" % (p, m.group(1)),
            "nginx %s" % n.group(1) if n else "-", None, "< 10 ms", "met" if p < 10 else "MISSED")


def isolation(t):
    a = re.search(r"A: four healthy\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", t)
    b = re.search(r"B: three failing\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", t)
    if a and b:
        ra, rb = float(a.group(1)), float(b.group(1))
        row("isolation: healthy deliveries/s, 3 failing", fmt(rb), "all healthy " + fmt(ra), rb / ra,
            ">= 0.90", "met" if rb / ra >= 0.9 else "MISSED")
        # Delivery latency is read in whole milliseconds (the event id's millisecond, nginx's $msec): a
        # difference of 1 ms is below what is measured, so the 10 % allowance is at least 1 ms.
        pa, pb = float(a.group(3)), float(b.group(3))
        if pa > 0:
            row("isolation: healthy p99 ms, 3 failing", fmt(pb), "all healthy " + fmt(pa), pb / pa,
                "<= 1.10, 1 ms", "met" if pb <= max(pa * 1.1, pa + 1.0) else "MISSED")


def rate(t):
    m = re.search(r"deliveries\s+\d+ in [\d.]+ s after warm-up: ([\d.]+)/s against a limit of (\d+)/s", t)
    if m:
        v, lim = float(m.group(1)), float(m.group(2))
        row("rate limit: deliveries/s", "%.2f" % v, "limit " + fmt(lim), v / lim, "within 2 %",
            "met" if abs(v / lim - 1) <= 0.02 else "MISSED")
    m = re.search(r"max in 1 s\s+(\d+) over the whole run, burst included \(per_second \+ burst = (\d+)\)", t)
    if m:
        v, lim = int(m.group(1)), int(m.group(2))
        row("rate limit: most in any 1 s", str(v), "limit+burst %d" % lim, v / lim, "<= 1.00",
            "met" if v <= lim else "MISSED")
    m = re.search(r"quiet lane\s+\d+ events, latency p50 ([\d.]+) ms", t)
    if m:
        row("rate limit: quiet lane p50 (ms)", m.group(1), "-", None, "not starved", "info")


def backlog(t):
    n = re.search(r"ingest\s+(\d+) events accepted", t)
    m = re.search(r"rss\s+overall peak: ([\d.]+) MB", t)
    if m:
        v = float(m.group(1))
        row("backlog: peak RSS with %s events (MB)" % (n.group(1) if n else "?"), fmt(v), "-", None,
            "< 256 MB", "met" if v < 256 else "MISSED")
    m = re.search(r"drain rate\s+(\d+)/s over \d+ whole seconds after the first 2 \(limit (\d+)/s", t)
    if m:
        v, lim = float(m.group(1)), float(m.group(2))
        row("backlog: drain rate (deliveries/s)", fmt(v), "limit " + fmt(lim), v / lim, "-", "info")


def kv(line):
    return dict(re.findall(r"(\w+)=([0-9.]+)", line))


def growth(t):
    starts = {}
    flows = {}
    backlogs = {}
    for line in t.splitlines():
        if line.startswith("startup kind="):
            k = re.search(r"kind=(\w+)", line).group(1)
            d = kv(line)
            starts[(k, int(d["flows"]))] = d
        elif line.startswith("flows flows="):
            d = kv(line)
            flows[int(d["flows"])] = d
        elif line.startswith("backlog backlog="):
            d = kv(line)
            backlogs[int(d["backlog"])] = d
    base = starts.get(("bus", 1))
    for (k, n), d in sorted(starts.items()):
        if n < 1000:
            continue
        for phase in ("cold", "warm"):
            v = float(d[phase + "_ms"])
            b = float(base[phase + "_ms"]) if base else None
            row("startup, %d %s flows, %s (ms)" % (n, k, phase), fmt(v), "1 flow " + fmt(b) if b else "-",
                v / b if b else None, "< 200 ms", "met" if v < 200 else "MISSED")
            if phase + "_cpu_ms" in d:
                c = float(d[phase + "_cpu_ms"])
                bc = float(base[phase + "_cpu_ms"]) if base and phase + "_cpu_ms" in base else None
                row("startup, %d %s flows, %s: CPU ms" % (n, k, phase), fmt(c), "1 flow " + fmt(bc) if bc else "-",
                    c / bc if bc else None, "< 200 ms", "met" if c < 200 else "MISSED")

    def per_s(d, key):
        return int(d[key]) / (int(d["duration_us"]) / 1e6)

    if flows:
        lo, hi = min(flows), max(flows)
        for n in sorted(flows):
            if n == lo:
                continue
            a, b = flows[n], flows[lo]
            row("growth: acked/s with %d flows" % n, fmt(per_s(a, "ok")), "%d flow %s" % (lo, fmt(per_s(b, "ok"))),
                per_s(a, "ok") / per_s(b, "ok"), "-", "info")
            row("growth: delivered/s with %d flows" % n, fmt(per_s(a, "sink_during")),
                "%d flow %s" % (lo, fmt(per_s(b, "sink_during"))),
                per_s(a, "sink_during") / max(per_s(b, "sink_during"), 1e-9), "-", "info")
            ra, rb = int(a["rss_peak_kb"]) / 1024, int(b["rss_peak_kb"]) / 1024
            row("growth: peak RSS with %d flows (MB)" % n, fmt(ra), "%d flow %s" % (lo, fmt(rb)), ra / rb, "-", "info")
    if backlogs and 0 in backlogs:
        b = backlogs[0]
        for n in sorted(backlogs):
            if n == 0:
                continue
            a = backlogs[n]
            row("backlog %d: acked/s while draining" % n, fmt(per_s(a, "ok")), "empty " + fmt(per_s(b, "ok")),
                per_s(a, "ok") / per_s(b, "ok"), "-", "info")
            row("backlog %d: delivered/s while draining" % n, fmt(per_s(a, "sink_during")),
                "empty " + fmt(per_s(b, "sink_during")),
                per_s(a, "sink_during") / max(per_s(b, "sink_during"), 1e-9), "-", "info")
            ra, rb = int(a["rss_peak_kb"]) / 1024, int(b["rss_peak_kb"]) / 1024
            row("backlog %d: peak RSS (MB)" % n, fmt(ra), "empty " + fmt(rb), ra / rb, "< 256 MB",
                "met" if ra < 256 else "MISSED")


def e2e(t):
    m = re.search(r"^sustained delivery, closed loop\s+(\d+) events/s", t, re.M)
    if m:
        row("e2e: sustained deliveries/s (closed loop)", fmt(float(m.group(1))), "-", None, "-", "info")
    m = re.search(r"^added latency \(2xx -> sink\)\s+p50 ([\d.]+) ms, p90 [\d.]+ ms, p99 ([\d.]+) ms", t, re.M)
    if m:
        p50, p99 = float(m.group(1)), float(m.group(2))
        row("e2e: added latency p50 at half peak (ms)", fmt(p50), "-", None, "-", "info")
        row("e2e: added latency p99 at half peak (ms)", fmt(p99), "-", None, "< 5 ms", "met" if p99 < 5 else "MISSED")


def nodered(t):
    for m in re.finditer(r"RATIO evrouter/(nodered-\w+) sink_per_s ([\d.]+) / ([\d.]+) = ([\d.inf]+)", t):
        e, n = float(m.group(2)), float(m.group(3))
        ratio = e / n if n else float("inf")
        row("e2e delivered/s vs %s" % m.group(1), "evrouter " + fmt(e), "node-red " + fmt(n), ratio, ">= 20",
            "met" if ratio >= 20 else "MISSED")
    for m in re.finditer(r"RATIO evrouter/(nodered-\w+) sink_per_cpu_s ([\d.]+) / ([\d.]+)", t):
        e, n = float(m.group(2)), float(m.group(3))
        row("deliveries per CPU s vs %s" % m.group(1), "evrouter " + fmt(e), "node-red " + fmt(n),
            e / n if n else None, "-", "info")


def stores(t):
    med = {}
    for m in re.finditer(r"^(sqlite|jetstream|jetstream-2)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", t, re.M):
        med[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    base = med.get("sqlite")
    for s in ("jetstream", "jetstream-2"):
        if s in med and base:
            row("store %s: ingest/s" % s, fmt(med[s][0]), "sqlite " + fmt(base[0]), med[s][0] / base[0], "-", "info")
            row("store %s: delivered/s" % s, fmt(med[s][1]), "sqlite " + fmt(base[1]), med[s][1] / base[1], "-", "info")
    if "jetstream" in med and "jetstream-2" in med:
        a, b = med["jetstream-2"][0], med["jetstream"][0]
        row("store jetstream: 2 replicas / 1 (ingest)", fmt(a), "1 replica " + fmt(b), a / b, "-", "info")


def main():
    out_dir = sys.argv[1]
    for step, parse in (("ingest", ingest), ("isolation", isolation), ("rate", rate), ("backlog", backlog),
                        ("growth", growth), ("e2e", e2e), ("nodered", nodered), ("stores", stores)):
        parse(read(out_dir, step))
    steps = os.path.join(out_dir, "steps.txt")
    if os.path.exists(steps):
        print("steps: " + ", ".join(l.strip() for l in open(steps)))
    header = ("metric", "value", "baseline", "ratio", "target", "met")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    met = sum(1 for r in rows if r[5] == "met")
    missed = sum(1 for r in rows if r[5] == "MISSED")
    print("targets: %d met, %d missed" % (met, missed))


if __name__ == "__main__":
    main()
