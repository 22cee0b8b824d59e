#!/usr/bin/env python3
"""End-to-end test of the dashboard in headless Chromium (Debian's chromium, driven over the DevTools
protocol with python3-websocket): a real daemon (the built binary), a real sink on 127.0.0.1, a real browser.

It loads the page with the admin token, checks a flow's counters change after webhooks are sent, replays a
dead letter by clicking its button (the sink first refuses, then accepts), and takes a screenshot.

usage: dashboard_test.py EVROUTER_BINARY OUTPUT_DIR
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket  # python3-websocket

DEADLINE = time.monotonic() + 120  # the whole test is bounded


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(cond, message):
    if not cond:
        fail(message)
    print("ok: " + message)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, predicate, timeout=20.0, every=0.1):
    end = min(time.monotonic() + timeout, DEADLINE)
    last = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    fail(f"timed out waiting for {what} (last: {last!r})")


class Sink(http.server.BaseHTTPRequestHandler):
    """Answers 400 (a final failure: the delivery goes dead at once) until `accept` is set."""
    accept = False
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 200 if Sink.accept else 400
        Sink.received.append((self.path, status, body))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


class Browser:
    def __init__(self, chromium, profile):
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "--window-size=1280,1000", "--user-data-dir=" + profile,
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        for line in self.proc.stderr:
            if "DevTools listening on ws://" in line:
                port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
                break
        if port is None:
            fail("chromium did not start its DevTools endpoint")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        pages = wait_until("a page target", lambda: [t for t in json.load(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list")) if t["type"] == "page"])
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30)
        self.seq = 0

    def call(self, method, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.seq:
                if "error" in msg:
                    fail(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            fail(f"page script error: {r['exceptionDetails']}")
        return r["result"].get("value")

    def click(self, selector):
        box = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                        " if (!e) return null; e.scrollIntoView(); const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if not box:
            fail(f"nothing to click at {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait()


def main():
    binary, out_dir = sys.argv[1], sys.argv[2]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        fail("chromium is not installed (scripts/bootstrap.sh installs it)")
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="evrouter-dashboard-")
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    port, admin_port = free_port(), free_port()
    secret, token = "dashboard-shopify-secret", "dashboard-admin-token"
    os.makedirs(os.path.join(tmp, "flows"))
    with open(os.path.join(tmp, "evrouter.yaml"), "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1
  port: {port}
store:
  state_dir: {tmp}/state
admin:
  listen: 127.0.0.1
  port: {admin_port}
  token: {{env: EVR_DASH_ADMIN_TOKEN}}
flows:
  - {tmp}/flows
connections:
  sink:
    base_uri: http://127.0.0.1:{sink.server_address[1]}
    retry: {{max_attempts: 2, backoff_base: 50ms, backoff_cap: 100ms}}
""")
    with open(os.path.join(tmp, "flows", "orders.yaml"), "w") as f:
        f.write("""name: orders
source:
  type: shopify
  listener_id: dashboard-listener-0000000000001
  secret: {env: EVR_DASH_SHOPIFY_SECRET}
  topics: [orders/create]
branches:
  - name: all
    destinations:
      - connection: sink
        path: /orders
""")
    env = dict(os.environ, EVR_DASH_ADMIN_TOKEN=token, EVR_DASH_SHOPIFY_SECRET=secret)
    log = open(os.path.join(out_dir, "dashboard-daemon.log"), "w")
    daemon = subprocess.Popen([binary, "serve", "--config", os.path.join(tmp, "evrouter.yaml")],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    browser = None
    try:
        def admin_up():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz").status == 200
            except OSError:
                return False
        wait_until("the daemon", admin_up)

        def webhook(n):
            body = json.dumps({"id": n, "total_price": "10.00"}).encode()
            sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/hooks/dashboard-listener-0000000000001", data=body, method="POST",
                headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                         "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Webhook-Id": f"dash-{n}",
                         "X-Shopify-Shop-Domain": "dash.myshopify.com"})
            return urllib.request.urlopen(req).status

        browser = Browser(chromium, os.path.join(tmp, "profile"))
        browser.call("Page.enable")
        browser.call("Page.navigate", url=f"http://127.0.0.1:{admin_port}/dashboard#token={token}")
        wait_until("the dashboard to load", lambda: browser.eval("document.body && document.body.dataset.ready") == "1")
        accepted = "document.querySelector('#flows tr[data-flow=\"orders\"] .accepted')?.textContent"
        check(browser.eval(accepted) == "0", "the orders flow is listed with 0 accepted")
        check(browser.eval("document.querySelector('a[href^=\"http\"], script[src], link[href]') === null"),
              "the page loads nothing from elsewhere")

        for n in range(3):
            check(webhook(n) == 200, f"webhook {n} accepted")
        wait_until("the accepted counter to reach 3", lambda: browser.eval(accepted) == "3")
        print("ok: the flow's counters changed after webhooks were sent")
        wait_until("3 dead deliveries on the page",
                   lambda: browser.eval("document.querySelector('#flows tr[data-flow=\"orders\"] .dead')"
                                        "?.textContent") == "3")

        # Dead letters: the sink refused them; fix the sink and replay one by clicking.
        wait_until("the dead letters list", lambda: browser.eval(
            "document.querySelectorAll('#dlq .dlq-replay').length") == 3)
        Sink.accept = True
        before = len(Sink.received)
        browser.click("#dlq .dlq-replay")
        wait_until("the replayed delivery at the sink",
                   lambda: any(s == 200 for _, s, _ in Sink.received[before:]))
        wait_until("the dead letters list to shrink", lambda: browser.eval(
            "document.querySelectorAll('#dlq .dlq-replay').length") == 2)
        print("ok: a dead letter was replayed by clicking its button")

        shot = browser.call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        path = os.path.join(out_dir, "dashboard.png")
        with open(path, "wb") as f:
            f.write(png)
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, f"screenshot saved to {path}")
    finally:
        if browser:
            browser.close()
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        sink.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
