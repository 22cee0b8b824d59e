#!/usr/bin/env python3
"""Statistics of deliveries logged by the benchmark sink (bench/delivery_lib.sh: nginx access log lines
"<arrival epoch s.ms> <X-Evrouter-Event-Id> <uri> <status>").

Latency is arrival minus the time in the event id: a ULID whose first 48 bits are the millisecond at which
evrouter received the event (before its commit), so it covers commit, routing, queueing and the request.
Prints one JSON object.
"""
import argparse
import json
import sys

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_ms(ulid):
    v = 0
    for ch in ulid[:10]:
        v = v * 32 + CROCKFORD.index(ch.upper())
    return v


def pct(sorted_values, p):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--prefix", default="/", help="count only URIs starting with this")
    ap.add_argument("--status", default="200")
    ap.add_argument("--from", dest="t_from", type=float, default=0, help="epoch seconds: window start")
    ap.add_argument("--to", dest="t_to", type=float, default=float("inf"), help="epoch seconds: window end")
    a = ap.parse_args()

    arrivals = []  # (arrival ms, latency ms)
    for line in open(a.log):
        parts = line.split()
        if len(parts) != 4 or not parts[2].startswith(a.prefix) or parts[3] != a.status:
            continue
        t = float(parts[0]) * 1000.0
        if not (a.t_from * 1000.0 <= t <= a.t_to * 1000.0):
            continue
        arrivals.append((t, t - ulid_ms(parts[1])))
    arrivals.sort()
    out = {"count": len(arrivals)}
    if len(arrivals) >= 2:
        span = (arrivals[-1][0] - arrivals[0][0]) / 1000.0
        out["span_s"] = round(span, 3)
        out["rate"] = round((len(arrivals) - 1) / span, 2) if span > 0 else None
        lat = sorted(x[1] for x in arrivals)
        out.update({"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": lat[-1]})
        # Most arrivals in any one second (a sliding window starting at each arrival).
        times = [x[0] for x in arrivals]
        worst, j = 0, 0
        for i in range(len(times)):
            while j < len(times) and times[j] < times[i] + 1000.0:
                j += 1
            worst = max(worst, j - i)
        out["max_in_1s"] = worst
        # Arrivals per whole second since the first.
        per_second = {}
        for t in times:
            k = int((t - times[0]) // 1000)
            per_second[k] = per_second.get(k, 0) + 1
        out["per_second"] = [per_second.get(k, 0) for k in range(max(per_second) + 1)]
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
