#!/usr/bin/env python3
"""Byte-exact TCP transfer in both directions, for the in-VM tests.

server ADDR PORT [--count N]: accept N connections (default 1); from each, read until the
    client shuts down its side, answer with the SHA-256 of what arrived, then with the number
    of bytes the client asked for, generated from its seed.
client ADDR PORT BYTES BACK [--seed S] [--timeout T] [--sport P]: send BYTES bytes, ask for
    BACK bytes back, check the server's digest and the bytes that come back; exit 0 only if
    all match.
refused ADDR PORT [--sport P] [--timeout T]: connect, send one byte, read; prints "reset"
    (through a proxy, which completes the handshake first), "refused" (a RST to the SYN
    itself), "timeout", "closed" or "data"; exit 0 either way.
conns ADDR PORT N: open N connections one after the other (each sends 1 byte, asks 1 back);
    prints the rate.
listen ADDR PORT: accept and close connections until killed.
rst-server ADDR PORT BYTES: accept one connection, send BYTES bytes, then abort it (RST).
rst-client ADDR PORT BYTES [--timeout T]: read BYTES bytes, then expect the reset; prints
    "reset" or "timeout" (or "closed"), exit 0 either way.
"""
import argparse
import hashlib
import random
import socket
import struct
import sys
import time


def data(seed, n):
    return random.Random(seed).randbytes(n)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(1 << 16, n - len(buf)))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listener(addr, port):
    """A listening socket; "listening" on stdout tells the test it may connect."""
    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    print("listening", flush=True)
    return ls


def connect(addr, port, timeout, sport=None):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    if sport:
        # A fixed source port, to reuse a conntrack entry of an earlier connection.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family(addr) == socket.AF_INET6 else "0.0.0.0", sport))
    s.connect((addr, port))
    return s


def server(args):
    ls = listener(args.addr, args.port)
    for _ in range(args.count):
        s, _ = ls.accept()
        with s:
            hdr = recv_exact(s, 16)
            seed, back = struct.unpack("!QQ", hdr)
            h = hashlib.sha256()
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                h.update(chunk)
            s.sendall(h.digest())
            s.sendall(data(seed ^ 0x5A5A, back))


def client(args):
    s = connect(args.addr, args.port, args.timeout, args.sport)
    payload = data(args.seed, args.bytes)
    s.sendall(struct.pack("!QQ", args.seed, args.back))
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    digest = recv_exact(s, 32)
    back = recv_exact(s, args.back)
    if s.recv(1):
        sys.exit("extra bytes after the reply")
    if digest != hashlib.sha256(payload).digest():
        sys.exit("server saw different bytes")
    if back != data(args.seed ^ 0x5A5A, args.back):
        sys.exit("reply bytes differ")
    print(f"ok {args.bytes} sent, {args.back} received, byte-exact")


def listen(args):
    ls = listener(args.addr, args.port)
    while True:
        ls.accept()[0].close()


def rst_server(args):
    s, _ = listener(args.addr, args.port).accept()
    s.sendall(data(7, args.bytes))
    time.sleep(0.5)
    # Linger 0: close() sends a RST instead of a FIN.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def rst_client(args):
    s = connect(args.addr, args.port, args.timeout)
    if recv_exact(s, args.bytes) != data(7, args.bytes):
        sys.exit("data differ")
    try:
        print("closed" if not s.recv(1) else "data")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("timeout")


def refused(args):
    try:
        s = connect(args.addr, args.port, args.timeout, args.sport)
        s.sendall(b"x")
        print("closed" if not s.recv(1) else "data")
    except ConnectionResetError:
        print("reset")
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("timeout")


def conns(args):
    t0 = time.monotonic()
    for i in range(args.n):
        s = connect(args.addr, args.port, 5)
        s.sendall(struct.pack("!QQ", i, 1) + b"x")
        s.shutdown(socket.SHUT_WR)
        recv_exact(s, 33)
        s.close()
    dt = time.monotonic() - t0
    print(f"{args.n / dt:.1f}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("server")
    sp.add_argument("addr")
    sp.add_argument("port", type=int)
    sp.add_argument("--count", type=int, default=1)
    cp = sub.add_parser("client")
    cp.add_argument("addr")
    cp.add_argument("port", type=int)
    cp.add_argument("bytes", type=int)
    cp.add_argument("back", type=int)
    cp.add_argument("--seed", type=int, default=1)
    cp.add_argument("--timeout", type=float, default=10)
    cp.add_argument("--sport", type=int)
    fp = sub.add_parser("refused")
    fp.add_argument("addr")
    fp.add_argument("port", type=int)
    fp.add_argument("--sport", type=int)
    fp.add_argument("--timeout", type=float, default=4)
    lp = sub.add_parser("listen")
    lp.add_argument("addr")
    lp.add_argument("port", type=int)
    np = sub.add_parser("conns")
    np.add_argument("addr")
    np.add_argument("port", type=int)
    np.add_argument("n", type=int)
    for name in ("rst-server", "rst-client"):
        rp = sub.add_parser(name)
        rp.add_argument("addr")
        rp.add_argument("port", type=int)
        rp.add_argument("bytes", type=int)
        rp.add_argument("--timeout", type=float, default=4)
    args = p.parse_args()
    {"server": server, "client": client, "conns": conns, "listen": listen, "rst-server": rst_server, "rst-client": rst_client,
     "refused": refused}[args.cmd](args)


if __name__ == "__main__":
    main()
