#!/usr/bin/env python3
"""Time an admin API list walk page by page, following next_cursor.

    bench/admin_pages.py ADMIN_URL QUERY [events|dlq] [REPEATS] [MAX_PAGES]

e.g. bench/admin_pages.py http://127.0.0.1:8081 'type=orders/none' events 3

Runs against an evrouter that is already serving (any store); EVROUTER_ADMIN_TOKEN is sent as a bearer token
when set. For each walk prints the number of pages, the median and slowest page and the sum of page times
(the time the daemon spent answering, without this script's own work between pages). Results:
docs/admin-api.md (Events).
"""
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def walk(base, query, endpoint, max_pages=10000):
    times, cursor, rows = [], None, 0
    token = os.environ.get("EVROUTER_ADMIN_TOKEN")
    while len(times) < max_pages:
        url = f"{base}/v1/{endpoint}?{query}"
        if cursor:
            url += "&cursor=" + urllib.parse.quote(cursor)
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request) as response:
                body = response.read()
        except urllib.error.HTTPError as e:
            sys.exit(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}")
        except urllib.error.URLError as e:
            sys.exit(f"{url}: {e.reason}")
        times.append(time.perf_counter() - start)
        page = json.loads(body)
        rows += len(page.get("events", page.get("dead_letters", page.get("items", []))))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return times, rows


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, query = sys.argv[1].rstrip("/"), sys.argv[2]
    endpoint = sys.argv[3] if len(sys.argv) > 3 else "events"
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    max_pages = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    for _ in range(repeats):
        times, rows = walk(base, query, endpoint, max_pages)
        print(f"{endpoint}?{query}: {len(times)} pages, {rows} rows, page median "
              f"{statistics.median(times) * 1000:.1f} ms, slowest {max(times) * 1000:.1f} ms, "
              f"sum {sum(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
