#!/usr/bin/env bash
# Backlog memory and drain rate: a destination down while EVENTS events arrive, then up with a rate limit.
#
#   bench/backlog.sh
#
# One evrouter (Release build), a bus flow delivering every event to one connection whose port refuses
# connections. Ingest EVENTS small events through the publish API (BATCH entries per request, RATE
# requests/s open loop: faster than evrouter takes them, so "as fast as it can"), sampling evrouter's RSS
# (VmRSS, /proc/PID/status) every 0.5 s. Then nginx starts on the refused port and the backlog drains at
# the connection's rate limit for DRAIN s; the drain rate is measured at the sink after the first 2 s.
# Docs and results: docs/benchmarks.md.
#
# Environment: EVENTS (1000000), BATCH (100), RATE (requests/s, 400), PER_SECOND (5000), BURST (100),
# CONCURRENCY (32), DRAIN (40), DURABILITY (fsync), BUILD_DIR (build-release), KEEP=1 keeps the directory.
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-100}
RATE=${RATE:-400}
PER_SECOND=${PER_SECOND:-5000}
BURST=${BURST:-100}
CONCURRENCY=${CONCURRENCY:-32}
DRAIN=${DRAIN:-40}
DURABILITY=${DURABILITY:-fsync}

SINK_PORT=$(free_port)  # refused until the drain phase
EVR_PORT=$(free_port)
python3 - "$WORK/batch.json" "$BATCH" <<'PY'
import json, sys
entry = {"source": "bench.load", "detail-type": "bench.tick",
         "detail": {"order": 123456, "shop": "bench-shop", "total": "42.50", "note": "a small event"}}
json.dump({"entries": [entry] * int(sys.argv[2])}, open(sys.argv[1], "w"), separators=(",", ":"))
PY
echo "machine     $(machine_line | cut -c13-)"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings    $EVENTS events in batches of $BATCH ($(stat -c %s "$WORK/batch.json") bytes per request), durability $DURABILITY; rate_limit {per_second: $PER_SECOND, burst: $BURST}, concurrency $CONCURRENCY"

dir=$WORK/evrouter
write_config "$dir" "$DURABILITY" \
  "  down: {base_uri: http://127.0.0.1:$SINK_PORT/ok/backlog, rate_limit: {per_second: $PER_SECOND, burst: $BURST}, concurrency: $CONCURRENCY, breaker: {failures: 5, cooldown: 1s}, retry: {max_attempts: 1000000, backoff_base: 1s, backoff_cap: 5s}}" \
  "    - {connection: down, path: /e}"
start_evrouter "$dir"

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$EVR_PID/status"; }
(
  while kill -0 "$EVR_PID" 2>/dev/null; do
    echo "$(date +%s.%N) $(rss_mb)"
    sleep 0.5
  done
) >"$WORK/rss.txt" 2>/dev/null &
PIDS+=($!)
echo "rss         at start: $(rss_mb) MB"

requests=$(( (EVENTS + BATCH - 1) / BATCH ))
duration=$(echo "scale=3; $requests / $RATE" | bc)
t0=$(date +%s.%N)
"$LOADGEN" --port "$EVR_PORT" --path /v1/events --body-file "$WORK/batch.json" --rate "$RATE" \
  --duration "$duration" --connections 8 --drain 600 --header 'Content-Type: application/json' \
  --header "Authorization: Bearer $PUBLISH_KEY" >"$WORK/loadgen.txt" || true
t1=$(date +%s.%N)
ok=$(grep -o ' ok=[0-9]*' "$WORK/loadgen.txt" | cut -d= -f2)
echo "ingest      $((ok * BATCH)) events accepted in $(echo "scale=1; ($t1 - $t0) / 1" | bc) s: $(echo "$ok * $BATCH / ($t1 - $t0)" | bc) events/s ($(grep -o 'non2xx=[0-9]* errors=[0-9]*' "$WORK/loadgen.txt"))"
peak_ingest=$(awk -v t="$t1" '$1 <= t && $2 > m {m = $2} END {print m}' "$WORK/rss.txt")
echo "rss         after ingest: $(rss_mb) MB; peak during ingest: $peak_ingest MB"
sleep 5
echo "rss         5 s later (idle backlog): $(rss_mb) MB"
python3 - "$dir/state/evrouter.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print("store       %d events, %d pending deliveries" % (db.execute("select count(*) from events").fetchone()[0],
      db.execute("select count(*) from deliveries where state = 0").fetchone()[0]))
PY
echo "disk        $(du -sh "$dir/state" | cut -f1) in the state directory"

start_nginx sink "$SINK_PORT"
t2=$(date +%s.%N)
sleep "$DRAIN"
t3=$(date +%s.%N)
echo "rss         during drain: peak $(awk -v t="$t2" '$1 >= t && $2 > m {m = $2} END {print m}' "$WORK/rss.txt") MB, now $(rss_mb) MB"
echo "rss         overall peak: $(awk '$2 > m {m = $2} END {print m}' "$WORK/rss.txt") MB"
stop_pid "$EVR_PID"
sleep 1.5  # nginx flushes its log every second
drain=$(python3 "$ROOT/bench/delivery_stats.py" "$WORK/sink/arrivals.log" --prefix /ok/backlog --to "$t3")
python3 - "$drain" "$PER_SECOND" "$t2" <<'PY'
import json, sys
d, limit, t2 = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
ps = d["per_second"]
steady = ps[2:-1] if len(ps) > 4 else ps
rate = sum(steady) / len(steady)
print("drain       %d delivered; per second: %s" % (d["count"], " ".join(map(str, ps))))
print("drain rate  %.0f/s over %d whole seconds after the first 2 (limit %.0f/s, %+.2f %%)" % (rate, len(steady), limit, (rate / limit - 1) * 100))
PY
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
cp "$WORK/rss.txt" "${RSS_OUT:-/dev/null}" 2>/dev/null || true
