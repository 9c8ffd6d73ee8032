#!/usr/bin/env python3
"""Talk to cairn's router over its control socket (ROOT/router.sock, a unix
SOCK_SEQPACKET socket; one JSON message per packet, network-namespace fds
passed with SCM_RIGHTS). Used by bench/router/run.sh.

  ctl.py SOCK env NAME LISTEN MODE PORT   one backend: 127.0.0.1:PORT in the
                                          namespace of this process (the host's)
  ctl.py SOCK wait-healthy NAME SECONDS   until that env's backend is healthy
  ctl.py SOCK stats                       the router's stats (JSON)
  ctl.py SOCK ping                        the router's pid
  ctl.py SOCK workers                     how many worker threads it runs
"""
import json, os, socket, sys, time


def call(path, msg, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    data = json.dumps(msg).encode()
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.send(data)
    ans = json.loads(s.recv(1 << 20))
    s.close()
    return ans


def main():
    path, op = sys.argv[1], sys.argv[2]
    if op == "env":
        name, listen, mode, port = sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
        ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        msg = {
            "op": "env", "env": name, "listen": listen, "mode": mode,
            "drain_timeout_ms": 1000,
            "health": {"kind": "http" if mode == "http" else "tcp", "path": "/",
                       "interval_ms": 1000, "timeout_ms": 1000,
                       "healthy_after": 1, "unhealthy_after": 3},
            "backends": [{"id": "nginx-" + name, "release": 1, "port": port,
                          "active": True, "fd": 0}],
        }
        ans = call(path, msg, [ns])
        os.close(ns)
        print(json.dumps(ans))
        sys.exit(0 if ans.get("ok") else 1)
    if op == "wait-healthy":
        name, deadline = sys.argv[3], time.monotonic() + float(sys.argv[4])
        while time.monotonic() < deadline:
            st = call(path, {"op": "stats"})
            bes = st.get("envs", {}).get(name, {}).get("backends", [])
            if bes and all(b.get("health") == "healthy" for b in bes):
                return
            time.sleep(0.02)
        print(json.dumps(st), file=sys.stderr)
        sys.exit(1)
    if op == "stats":
        print(json.dumps(call(path, {"op": "stats"})))
        return
    if op == "ping":
        print(call(path, {"op": "ping"})["pid"])
        return
    if op == "workers":
        print(call(path, {"op": "ping"}).get("workers", 1))
        return
    sys.exit("unknown op " + op)


main()
