#!/usr/bin/env python3
"""Writes the named seed inputs of the fuzz targets into corpus/<target>/seed-*.

Run it to (re)seed the corpus (`python3 seeds.py`): real SYN option areas (Linux, Windows,
macOS, FreeBSD, SYNPROXY's own), EOL/NOP runs, duplicated, truncated and malformed options,
and whole handshakes for the flow target. tests/fuzz-proto --merge keeps every seed-* file
and adds what brings more coverage. Layouts: see the head of each target.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def ts(val, ecr):
    return bytes([8, 10]) + be32(val) + be32(ecr)


MSS = bytes([2, 4]) + be16(1460)
NOP, EOL, SACKOK = b"\x01", b"\x00", b"\x04\x02"


def ws(n):
    return bytes([1, 3, 3, n])  # NOP, WSCALE


# Option areas, as hosts send them and as they should not.
AREAS = {
    # Linux SYN: mss, sackOK, TS, nop, wscale.
    "linux-syn": MSS + SACKOK + ts(0x9C2D4E11, 0) + ws(7),
    "linux-synack": MSS + SACKOK + ts(0x1A2B3C4D, 0x9C2D4E11) + ws(10),
    "linux-ack": NOP + NOP + ts(0x9C2D4E20, 0x1A2B3C50),
    # Windows: mss, nop, wscale, nop, nop, sackOK; with timestamps enabled.
    "windows-syn": MSS + ws(8) + NOP + NOP + SACKOK,
    "windows-syn-ts": MSS + NOP + bytes([3, 3, 8]) + NOP + NOP + ts(12345, 0) + NOP + NOP + SACKOK,
    # macOS: mss, nop, wscale, nop, nop, TS, sackOK, eol, eol.
    "macos-syn": MSS + NOP + bytes([3, 3, 6]) + NOP + NOP + ts(0x5F5E100, 0) + SACKOK + EOL + EOL,
    # FreeBSD: mss, nop, wscale, sackOK, TS.
    "freebsd-syn": MSS + NOP + bytes([3, 3, 6]) + SACKOK + ts(0xDEADBEEF, 0),
    # What SYNPROXY itself writes: MSS; SACK_PERM+TS; NOP,WSCALE.
    "synproxy-synack": MSS + SACKOK + ts(0xC11E4700 | 0x17, 0x9C2D4E11) + ws(7),
    "mss-only": MSS,
    "mss-536": bytes([2, 4]) + be16(536),
    "data-sack-blocks": NOP + NOP + ts(1, 2) + NOP + NOP + bytes([5, 10]) + be32(1000) + be32(2000),
    "md5-ts": bytes([19, 18]) + bytes(range(16)) + NOP + NOP + ts(7, 8) + EOL + EOL,
    "fastopen": MSS + SACKOK + ts(5, 0) + ws(7) + bytes([34, 10]) + bytes(8),
    "mptcp-capable": MSS + SACKOK + ts(5, 0) + ws(7) + bytes([30, 12, 0x01, 0x81]) + bytes(8),
    "exp-254": bytes([254, 6, 0xF9, 0x89, 0, 0]) + MSS,
    "eol": EOL,
    "eol-then-ts": EOL + NOP + ts(1, 2),
    "nops-40": NOP * 40,
    "nops-then-ts-odd": NOP + ts(0x80000000, 0x7FFFFFFF) + NOP * 3,
    "ts-odd-eol": NOP * 3 + ts(0xFFFFFFFF, 1) + EOL * 3,
    "four-ts": ts(1, 2) + ts(3, 4) + ts(5, 6) + ts(7, 8),
    "dup-mss": MSS + bytes([2, 4]) + be16(9000),
    "dup-wscale-big": ws(7) + ws(200),
    "wscale-15": ws(15),
    "wrong-lengths": bytes([2, 5]) + be16(1460) + b"\x00" + bytes([3, 4, 7, 0]) + bytes([4, 3, 0]) + bytes([8, 8]) + bytes(6),
    "trunc-ts": MSS + ts(1, 2)[:9],
    "trunc-mss": bytes([2, 4, 5]),
    "len-0": bytes([8, 0]) + ts(1, 2),
    "len-1": bytes([2, 1]) + MSS,
    "len-255": bytes([8, 255]) + bytes(20),
    "kind-only": bytes([8]),
    "sackok-ts-wscale-40": MSS + SACKOK + ts(1, 2) + ws(14) + NOP * 20,
    "long-60": MSS + SACKOK + ts(1, 2) + ws(7) + NOP * 20 + ts(3, 4) + EOL * 10,
}


def header(sport, dport, seq, ack, doff, flags, window):
    return be16(sport) + be16(dport) + be32(seq) + be32(ack) + bytes([doff << 4, flags]) + be16(window) + bytes(4)


def flow(name, syn_flags=0x02, client="linux-syn", rule=(0x1F, 7, 1460), now=0x12345678,
         isn=0xA1B2C3D4, cookie_mss=1460, sel=0x02, ack_tsval=0x9C2D4E20, forged=0,
         server_isn=0x55667788, server_window=65160, max_win=64240, server="linux-synack"):
    area = AREAS[client] if isinstance(client, str) else client
    h = header(40000, 80, 0x01020304, 0, 5 + len(area) // 4, syn_flags, 64240)
    return name, (h + bytes([rule[0], rule[1]]) + be16(rule[2]) + be32(now) + be32(isn)
                  + be16(cookie_mss) + bytes([sel]) + be32(ack_tsval) + be32(forged)
                  + be32(server_isn) + be16(server_window) + be16(max_win) + bytes([len(area)])
                  + area + (AREAS[server] if isinstance(server, str) else server))


FLOWS = [
    flow("linux"),
    flow("linux-ecn", syn_flags=0xC2),
    flow("linux-v6", sel=0x0A),
    flow("keepalive", sel=0x03),
    flow("forged-tsecr", sel=0x06, forged=0x0000002F),
    flow("forged-all-bits", sel=0x06, forged=0xFFFFFFFF),
    flow("ack-without-ts", sel=0x00),
    flow("windows-no-ts", client="windows-syn", sel=0x00, server="mss-only"),
    flow("windows-ts", client="windows-syn-ts"),
    flow("macos", client="macos-syn"),
    flow("rule-no-ts", rule=(0x05, 0, 1400)),
    flow("rule-none", rule=(0x00, 0, 0)),
    flow("rule-invalid", rule=(0xFF, 15, 0)),
    flow("rule-wscale-255", rule=(0x0A, 255, 1460)),
    flow("backend-no-ts", server="windows-syn"),
    flow("backend-wscale-14", server=MSS + SACKOK + ts(1, 2) + ws(14)),
    flow("tsoff-wraps", now=0xFFFFFFC0, server=MSS + ts(5, 0)),
    flow("seq-wraps", isn=0xFFFFFFFF, server_isn=0xFFFFFFFF),
    flow("not-a-syn", syn_flags=0x12),
    flow("syn-fin", syn_flags=0x03),
    flow("empty-options", client=b"", server=b""),
    flow("client-40", client=AREAS["sackok-ts-wscale-40"], server=AREAS["four-ts"]),
]


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    for name, area in AREAS.items():
        write("parse_options", name, area)
    tsoffs = [1, 0x80000000, 0xFFFFFFFF, 0x1234567]
    for i, (name, area) in enumerate(AREAS.items()):
        for sel, d in ((1, "reply"), (0, "orig")):
            write("timestamps", f"{name}-{d}", bytes([sel | (i & 2)]) + be32(tsoffs[i % 4]) + area)
    write("timestamps", "tsoff-0", bytes([1]) + be32(0) + AREAS["linux-ack"])
    for name, data in FLOWS:
        write("flow", name, data)


if __name__ == "__main__":
    main()
