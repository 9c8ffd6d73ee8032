#!/usr/bin/env python3
"""Time a traffic switch from the outside (bench/deploy/run.sh).

  switch.py URL EXPECT TIMEOUT_S POLL_MS -- CMD...

Polls URL (GET, one keep-alive connection, reconnecting when the server
closes it) until it answers, then starts CMD and keeps polling, POLL_MS
between requests, until an answer's body holds EXPECT (or TIMEOUT_S pass);
then waits for CMD. Prints one JSON object:
  switch_ms  from the start of CMD to the first answer holding EXPECT (its
             arrival), null when none came
  cmd_ms     from the start of CMD to its exit; rc its exit status
  stdout     what CMD printed on stdout (the last 64 KB)
  polls, errors, non_2xx: requests made while CMD ran, failed ones (no
             answer), answers with a status outside 2xx
"""
import http.client, json, subprocess, sys, threading, time
from urllib.parse import urlsplit


def main():
    url, expect, timeout, poll_ms = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    if sys.argv[5] != "--":
        sys.exit("usage: switch.py URL EXPECT TIMEOUT_S POLL_MS -- CMD...")
    cmd = sys.argv[6:]
    u = urlsplit(url)
    conn = None

    def get():
        nonlocal conn
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn.request("GET", u.path or "/")
            r = conn.getresponse()
            body = r.read().decode(errors="replace")
            if r.will_close:
                conn.close()
                conn = None
            return r.status, body
        except Exception:
            if conn is not None:
                conn.close()
            conn = None
            return None, ""

    deadline = time.monotonic() + 10
    while get()[0] is None:
        if time.monotonic() > deadline:
            sys.exit("switch.py: %s does not answer" % url)
        time.sleep(0.01)
    res = {}

    def run():
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate()
        res["cmd_ms"] = (time.monotonic() - t0) * 1000
        res["rc"] = p.returncode
        res["stdout"] = out.decode(errors="replace")[-65536:]
        res["stderr"] = err.decode(errors="replace")[-65536:]

    t0 = time.monotonic()
    th = threading.Thread(target=run)
    th.start()
    switch_ms = None
    polls = errors = non_2xx = 0
    end = t0 + timeout
    while time.monotonic() < end:
        status, body = get()
        now = time.monotonic()
        polls += 1
        if status is None:
            errors += 1
        elif not 200 <= status < 300:
            non_2xx += 1
        elif expect in body:
            switch_ms = (now - t0) * 1000
            break
        if not th.is_alive() and switch_ms is None and now - t0 > 2 + res.get("cmd_ms", 0) / 1000:
            break  # the command ended long ago and the answer never changed
        time.sleep(poll_ms / 1000)
    th.join()
    if conn is not None:
        conn.close()
    print(json.dumps({"switch_ms": switch_ms, "cmd_ms": res.get("cmd_ms"), "rc": res.get("rc"),
                      "stdout": res.get("stdout", ""), "stderr": res.get("stderr", ""),
                      "polls": polls, "errors": errors, "non_2xx": non_2xx}))


main()
