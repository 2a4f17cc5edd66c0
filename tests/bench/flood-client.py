#!/usr/bin/env python3
"""The legitimate client of tests/bench/flood: new connections at a fixed rate.

flood-client.py ADDR PORT --seconds S --rate R --timeout T

Starts R connection attempts per second for S seconds, each in its own thread, whatever
became of the earlier ones (a client population, not one client waiting on the last). An
attempt succeeds when connect() returns and one byte sent after it is acknowledged
(TCP_INFO tcpi_bytes_acked) within T seconds of the start: through a proxy connect() only
proves that the proxy answered, the acknowledgement that the backend's kernel has the
connection (not whether its application got to run, which a flood on the backend's CPUs
decides). Prints one JSON line: attempts, successes, the connect() times and the
acknowledgement times of the successes in ms (sorted), and the first errors.
"""
import argparse
import json
import socket
import struct
import threading
import time

# struct tcp_info up to tcpi_bytes_acked (linux/tcp.h): 8 u8, 24 u32, then u64 pacing_rate,
# max_pacing_rate, bytes_acked.
TCP_INFO_FMT = "8B24I3Q"


def bytes_acked(s):
    return struct.unpack(TCP_INFO_FMT, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, struct.calcsize(TCP_INFO_FMT)))[-1]


def attempt(addr, port, timeout, out, lock):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    res = {"ok": False}
    try:
        s.settimeout(timeout)
        s.connect((addr, port))
        res["connect_ms"] = (time.monotonic() - t0) * 1000
        base = bytes_acked(s)
        s.send(b"x")
        while bytes_acked(s) <= base:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("the byte after connect() was not acknowledged")
            time.sleep(0.005)
        res["ok"] = True
        res["acked_ms"] = (time.monotonic() - t0) * 1000
    except OSError as e:
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
    with lock:
        out.append(res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--timeout", type=float, default=5)
    a = ap.parse_args()
    out, lock, threads = [], threading.Lock(), []
    n = max(1, int(a.seconds * a.rate))
    start = time.monotonic()
    for i in range(n):
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        th = threading.Thread(target=attempt, args=(a.addr, a.port, a.timeout, out, lock), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join(a.timeout + 5)
    with lock:
        done = list(out)
    ok = [r for r in done if r["ok"]]
    errors = sorted({r["error"] for r in done if "error" in r})
    print(json.dumps({
        "attempts": n,
        "successes": len(ok),
        "connect_ms": sorted(round(r["connect_ms"], 3) for r in ok),
        "acked_ms": sorted(round(r["acked_ms"], 3) for r in ok),
        "errors": errors[:5],
    }))


if __name__ == "__main__":
    main()
