#!/usr/bin/env python3
"""Byte-exact TCP transfer in both directions, for the in-VM tests.

server ADDR PORT [--count N]: accept N connections (default 1); from each, read until the
    client shuts down its side, answer with the SHA-256 of what arrived, then with the number
    of bytes the client asked for, generated from its seed.
client ADDR PORT BYTES BACK [--seed S] [--timeout T]: send BYTES bytes, ask for BACK bytes
    back, check the server's digest and the bytes that come back; exit 0 only if all match.
"""
import argparse
import hashlib
import random
import socket
import struct
import sys


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


def server(args):
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.addr, args.port))
    ls.listen(64)
    print("listening", flush=True)
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
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    s.connect((args.addr, args.port))
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
    args = p.parse_args()
    server(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    main()
