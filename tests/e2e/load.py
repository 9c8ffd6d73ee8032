#!/usr/bin/env python3
"""Load and switch-time measurement for the cairn deploy end-to-end tests.

  load.py run --url URL [--keepalive K] [--fresh K] [--duration S]
              [--stop-file F] [--ready F] --out OUT
      K clients on one keep-alive connection each and K clients opening a new
      connection for every request (Connection: close), all GETting URL, until
      the stop file exists or S seconds passed. Every request is counted
      exactly once as 2xx, non-2xx (by status) or a connection error (by kind:
      refused, reset, closed without an answer, timeout, ...). --ready is
      created once every client has had an answer. At the end the counts are
      written to OUT (atomically) as JSON:
        {"requests", "ok", "non_2xx", "errors", "non_2xx_by_status",
         "errors_by_kind", "error_samples", "bodies": {BODY: {"count",
         "first_ms", "last_ms"}}, "seconds", "max_latency_ms", "stopped_by"}
      first_ms/last_ms are milliseconds since the epoch (when the answer
      arrived).

  load.py switch --url URL --expect TEXT [--timeout S] [--log FILE] -- CMD...
      Polls URL on a keep-alive connection (reconnecting on error), starts
      CMD once polling answers, and prints JSON: "switch_ms", the time from
      the start of CMD to the first answer whose body holds TEXT (null when
      none came within the timeout); "cmd_ms" and "rc" of CMD; "polls",
      "errors" (requests that failed while polling) and "non_2xx". With
      --check, exits 1 unless CMD exited 0, TEXT came and no poll failed.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

MAX_BODIES = 64  # distinct bodies kept; the rest count as "<other>"


def now_ms():
    return time.time() * 1000.0


def error_kind(e):
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, BrokenPipeError):
        return "broken-pipe"
    if isinstance(e, http.client.RemoteDisconnected):
        return "closed-without-answer"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(e, http.client.IncompleteRead):
        return "incomplete-body"
    if isinstance(e, http.client.HTTPException):
        return "bad-http:" + type(e).__name__
    if isinstance(e, OSError):
        return "oserror:%s" % (e.errno,)
    return type(e).__name__


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.ok = 0
        self.non_2xx = 0
        self.errors = 0
        self.by_status = {}
        self.by_kind = {}
        self.samples = []
        self.bodies = {}
        self.max_latency_ms = 0.0

    def answer(self, status, body, t0):
        t = now_ms()
        with self.lock:
            self.requests += 1
            self.max_latency_ms = max(self.max_latency_ms, t - t0)
            if 200 <= status < 300:
                self.ok += 1
                key = body if (body in self.bodies or len(self.bodies) < MAX_BODIES) else "<other>"
                b = self.bodies.setdefault(key, {"count": 0, "first_ms": t, "last_ms": t})
                b["count"] += 1
                b["last_ms"] = t
            else:
                self.non_2xx += 1
                self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
                if len(self.samples) < 20:
                    self.samples.append("%.0f HTTP %d: %s" % (t, status, body[:200]))

    def error(self, e, t0, where):
        t = now_ms()
        kind = error_kind(e)
        with self.lock:
            self.requests += 1
            self.errors += 1
            self.max_latency_ms = max(self.max_latency_ms, t - t0)
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if len(self.samples) < 20:
                self.samples.append("%.0f %s %s: %r" % (t, where, kind, e))


def connect(host, port, timeout):
    return http.client.HTTPConnection(host, port, timeout=timeout)


def keepalive_client(u, counts, stop, answered, timeout):
    conn = None
    path = u.path or "/"
    first = True
    while not stop.is_set():
        if conn is None:
            conn = connect(u.hostname, u.port, timeout)
        t0 = now_ms()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read().decode(errors="replace").strip()
            counts.answer(r.status, body, t0)
            if r.will_close:
                conn.close()
                conn = None
        except Exception as e:  # every failure is one counted error
            counts.error(e, t0, "keepalive")
            conn.close()
            conn = None
        if first:
            first = False
            answered.release()
    if conn is not None:
        conn.close()


def fresh_client(u, counts, stop, answered, timeout):
    path = u.path or "/"
    first = True
    while not stop.is_set():
        conn = connect(u.hostname, u.port, timeout)
        t0 = now_ms()
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            r = conn.getresponse()
            body = r.read().decode(errors="replace").strip()
            counts.answer(r.status, body, t0)
        except Exception as e:
            counts.error(e, t0, "fresh")
        finally:
            conn.close()
        if first:
            first = False
            answered.release()


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def cmd_run(a):
    u = urlsplit(a.url)
    counts = Counts()
    stop = threading.Event()
    answered = threading.Semaphore(0)
    threads = []
    for _ in range(a.keepalive):
        threads.append(threading.Thread(target=keepalive_client,
                                        args=(u, counts, stop, answered, a.timeout), daemon=True))
    for _ in range(a.fresh):
        threads.append(threading.Thread(target=fresh_client,
                                        args=(u, counts, stop, answered, a.timeout), daemon=True))
    t_start = time.monotonic()
    for t in threads:
        t.start()
    deadline = t_start + a.duration
    ready_left = len(threads)
    stopped_by = "duration"
    while True:
        while ready_left and answered.acquire(blocking=False):
            ready_left -= 1
            if not ready_left and a.ready:
                write_atomic(a.ready, "ready\n")
        if a.stop_file and os.path.exists(a.stop_file):
            stopped_by = "stop-file"
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(a.timeout + 5)
    with counts.lock:
        out = {
            "requests": counts.requests,
            "ok": counts.ok,
            "non_2xx": counts.non_2xx,
            "errors": counts.errors,
            "non_2xx_by_status": counts.by_status,
            "errors_by_kind": counts.by_kind,
            "error_samples": counts.samples,
            "bodies": counts.bodies,
            "seconds": round(time.monotonic() - t_start, 3),
            "max_latency_ms": round(counts.max_latency_ms, 1),
            "stopped_by": stopped_by,
        }
    write_atomic(a.out, json.dumps(out, sort_keys=True) + "\n")
    return 0


def cmd_switch(a):
    u = urlsplit(a.url)
    path = u.path or "/"
    state = {"polls": 0, "errors": 0, "non_2xx": 0, "hit": None, "started": None,
             "samples": []}
    lock = threading.Lock()
    polling = threading.Event()
    stop = threading.Event()

    def poll():
        conn = None
        while not stop.is_set():
            if conn is None:
                conn = connect(u.hostname, u.port, 2)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read().decode(errors="replace")
                t = time.monotonic()
                with lock:
                    state["polls"] += 1
                    if not 200 <= r.status < 300:
                        state["non_2xx"] += 1
                    elif (a.expect in body and state["started"] is not None
                          and state["hit"] is None):
                        state["hit"] = t
                polling.set()
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:
                with lock:
                    state["polls"] += 1
                    state["errors"] += 1
                    if len(state["samples"]) < 10:
                        state["samples"].append(repr(e))
                conn.close()
                conn = None
            with lock:
                if state["hit"] is not None:
                    break
        if conn is not None:
            conn.close()

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    if not polling.wait(a.timeout):
        print(json.dumps({"error": "no answer from %s before the command" % a.url}))
        return 1
    log = open(a.log, "w") if a.log else subprocess.DEVNULL
    with lock:
        state["started"] = time.monotonic()
    t0 = state["started"]
    p = subprocess.Popen(a.cmd, stdout=log, stderr=log)
    rc = p.wait()
    cmd_ms = (time.monotonic() - t0) * 1000.0
    th.join(a.timeout)
    stop.set()
    th.join(5)
    with lock:
        hit = state["hit"]
        out = {
            "switch_ms": None if hit is None else round((hit - t0) * 1000.0, 1),
            "cmd_ms": round(cmd_ms, 1),
            "rc": rc,
            "polls": state["polls"],
            "errors": state["errors"],
            "non_2xx": state["non_2xx"],
            "error_samples": state["samples"],
        }
    print(json.dumps(out, sort_keys=True))
    if a.check and (rc != 0 or hit is None or out["errors"] or out["non_2xx"]):
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--keepalive", type=int, default=4)
    r.add_argument("--fresh", type=int, default=4)
    r.add_argument("--duration", type=float, default=60)
    r.add_argument("--timeout", type=float, default=5)
    r.add_argument("--stop-file")
    r.add_argument("--ready")
    r.add_argument("--out", required=True)
    s = sub.add_parser("switch")
    s.add_argument("--url", required=True)
    s.add_argument("--expect", required=True)
    s.add_argument("--timeout", type=float, default=10)
    s.add_argument("--log")
    s.add_argument("--check", action="store_true",
                   help="exit 1 unless CMD exited 0, TEXT came, and no poll failed")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.what == "switch":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        if not a.cmd:
            ap.error("switch: expected -- CMD...")
        return cmd_switch(a)
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
