#!/usr/bin/env python3
"""A small load generator for the demo: K keep-alive clients and K clients
opening a new connection per request, against URL, until STOPFILE exists
(or SECONDS pass). Prints one JSON line: ok (2xx), non_2xx, errors."""
import http.client, json, os, sys, threading, time, urllib.parse

url, stopfile, seconds, k = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlsplit(url)
counts = {"ok": 0, "non_2xx": 0, "errors": 0}
lock = threading.Lock()
deadline = time.monotonic() + seconds

def running():
    return time.monotonic() < deadline and not os.path.exists(stopfile)

def count(key):
    with lock:
        counts[key] += 1

def client(keepalive):
    conn = None
    while running():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn.request("GET", u.path or "/", headers={} if keepalive else {"Connection": "close"})
            r = conn.getresponse()
            r.read()
            count("ok" if 200 <= r.status < 300 else "non_2xx")
            if not keepalive or r.will_close:
                conn.close()
                conn = None
        except Exception:
            count("errors")
            if conn:
                conn.close()
            conn = None
    if conn:
        conn.close()

threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(2 * k)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(counts))
