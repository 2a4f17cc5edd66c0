#!/usr/bin/python3
"""Wire fuzzing for tests/guest/hostile/fuzz.sh: packet structures built with scapy, sent by
trafgen (netsniff-ng), which fills the randomised fields and the checksums per frame.

  fuzzwire.py hold --out JSON --ready FILE CONN...
      CONN is FAMILY:SERVER_NS:ADDR:PORT:N. Listen on ADDR:PORT in namespace SERVER_NS, open
      N connections to it from namespace c (through the proxy), write their addresses and
      sequence numbers to JSON (read with TCP_REPAIR, on both ends), create FILE, and keep
      them open until SIGTERM.
  fuzzwire.py gen --phase target|conns --count N --macs c0=M,r0=M,r1=M,s0=M --out DIR
                  [--conns JSON] [--seed S]
      Writes DIR/c.cfg (frames sent from c's veth0 to the proxy), DIR/s.cfg (conns phase:
      frames from the backend s to the proxy) and DIR/expect.json: how many frames each
      stream must send (a whole number of rounds over its templates, so every template is sent
      equally often) and what the proxy's counters must show afterwards.
  fuzzwire.py gen --phase flood --port P ...
      The flood of tests/guest/hostile/flood.sh: well-formed SYNs and ACKs (invalid cookies)
      from spoofed sources to s:P, IPv4 and IPv6, in equal numbers.
  fuzzwire.py inject --conns JSON [--index I]
      From the client of held connection I, one in-window data segment (its next sequence
      number, the ACK number it would send) whose timestamp option follows a single NOP, so
      that TSval and TSecr sit at odd offsets (tests/guest/30-fixes.sh, C bug 6).
  fuzzwire.py verify DIR PCAP
      Offline check of the model: PCAP is what `trafgen -o PCAP` made of DIR/c.cfg; each
      frame is classified again from its bytes by scapy and the counts must equal expect.json.

Target phase: frames to the proxy's rules from spoofed sources (10.0.3.0/24, fd00:3::/64):
SYNs (untracked by the raw rule) and ACKs to no connection (INVALID with
nf_conntrack_tcp_loose=0), with every kind of option area, doff 0-15, flags, IPv4 options,
IPv6 extension headers, fragments, bad checksums and truncated headers. A frame counts as
syn_received when its IP header is valid, its TCP header complete, its checksum right,
5 <= doff and doff*4 <= the TCP length, and its flags are SYN without ACK/FIN/RST; as
cookie_invalid under the same conditions with ACK without SYN/FIN/RST (its random ACK
number is a valid cookie with probability 2^-29). Everything else must count nothing.

Conns phase: frames with the 4-tuples of live proxied connections, both directions, with
sequence and ACK numbers near the live ones (in window, the low byte random) or at the wrap
boundaries, and option areas that the hooks parse (timestamps, SACK blocks, duplicates,
truncations). Each valid SYN-class frame from the client side must count syn_received (the
raw rule untracks it whatever its tuple); ACK-class frames may reach the target as INVALID,
so cookie_invalid + cookie_valid is at most their number.
"""
import argparse
import ctypes
import json
import os
import random
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawtcp  # noqa: E402 (beside this file: checksums, builders, raw sending)

CLONE_NEWNET = 0x40000000
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
TCP_REPAIR_OFF_NO_WP = -1

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128


# --- hold: live proxied connections -------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def setns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {name}: {os.strerror(e)}")
    finally:
        os.close(fd)


def seqs(s):
    """(next sequence number to send, next expected) of an established socket."""
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    try:
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        snd = struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
        rcv = struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
    finally:
        s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
    return snd, rcv


def cmd_hold(args):
    keep, conns, listeners = [], [], {}
    for spec in args.conn:
        fam, ns, rest = spec.split(":", 2)
        addr, port, n = rest.rsplit(":", 2)
        af = socket.AF_INET6 if fam == "6" else socket.AF_INET
        key = (ns, addr, int(port))
        if key not in listeners:
            setns(ns)
            ls = socket.socket(af, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((addr, int(port)))
            ls.listen(64)
            listeners[key] = ls
        for _ in range(int(n)):
            setns("c")
            c = socket.socket(af, socket.SOCK_STREAM)
            c.settimeout(30)
            c.connect((addr, int(port)))
            srv, _ = listeners[key].accept()
            keep += [c, srv]
            c_snd, c_rcv = seqs(c)
            s_snd, s_rcv = seqs(srv)
            caddr, cport = c.getsockname()[:2]
            conns.append({"family": int(fam), "server_ns": ns, "client": [caddr, cport],
                          "server": [addr, int(port)], "c_snd": c_snd, "c_rcv": c_rcv,
                          "s_snd": s_snd, "s_rcv": s_rcv})
    with open(args.out, "w") as f:
        json.dump(conns, f)
    open(args.ready, "w").close()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        signal.pause()


# --- templates ------------------------------------------------------------------------------
# A template is a frame (bytes) with dynamic fields: ("rnd", off, n) random bytes per frame,
# ("csumip", pos, start, end), ("csumtcp", pos, ipoff, tcpoff), ("csumtcp6", pos, ipoff,
# tcpoff): trafgen's functions, each written at pos in place of the bytes there.

class Tpl:
    def __init__(self, frame, dyn, klass, what):
        self.frame, self.dyn, self.klass, self.what = bytes(frame), dyn, klass, what

    def cfg(self):
        ops = {}
        for d in self.dyn:
            if d[0] == "rnd":
                ops[d[1]] = (d[2], f"drnd({d[2]})")
            else:
                ops[d[1]] = (2, f"{d[0]}({d[2]}, {d[3]})")
        out, i = [], 0
        while i < len(self.frame):
            if i in ops:
                n, text = ops[i]
                out.append(text)
                i += n
            else:
                out.append(f"0x{self.frame[i]:02x}")
                i += 1
        return f"/* {self.klass}: {self.what} */\n{{ " + ", ".join(out) + " }\n"


# Option areas: lists of bytes objects and ("rnd", n) fields.
def R(n):
    return ("rnd", n)


MSS = [b"\x02\x04", R(2)]
WS = [b"\x03\x03", R(1)]
SACKP = [b"\x04\x02"]
TS = [b"\x08\x0a", R(8)]
NOP, EOL = b"\x01", b"\x00"

SYN_OPTIONS = {
    "none": [],
    "linux": MSS + SACKP + TS + [NOP] + WS,
    "windows": MSS + [NOP] + WS + [NOP, NOP] + SACKP,
    "mss-only": MSS,
    "eol-first": [EOL, b"\x02\x04\x05\xb4", EOL, EOL, EOL],
    "nop-run": [NOP * 20],
    "nop-run-40": [NOP * 40],
    "eol-run-40": [EOL * 40],
    "len0": [b"\x02\x00", R(6)],
    "len1": [b"\x03\x01", R(2)],
    "ts-len0": [b"\x08\x00", R(10)],
    "overlong": [b"\x02\x28", R(2)],
    "overlong-ts": [b"\x08\x1e", R(8)],
    "truncated-kind": [NOP, NOP, NOP, b"\x08"],
    "truncated-mss": [NOP, NOP, b"\x02\x04\x05"],
    "truncated-ts": [NOP, NOP, b"\x08\x0a", R(4), NOP, NOP],
    "dup-mss": MSS + MSS + [NOP * 4],
    "dup-ws": WS + WS + [NOP, NOP],
    "dup-ts": TS + TS + [NOP * 4],
    "dup-sackperm": SACKP * 4,
    "mss-0": [b"\x02\x04\x00\x00"],
    "mss-max": [b"\x02\x04\xff\xff"],
    "ws-15-255": [b"\x03\x03\x0f\x03\x03\xff", NOP, NOP],
    "ts-len9-11": [b"\x08\x09", R(7), b"\x08\x0b", R(9), NOP, NOP, NOP],
    "ts-unaligned": [NOP] + TS + [NOP] + MSS + WS,
    "sack-blocks": [NOP, NOP, b"\x05\x22", R(32)],
    "sack-odd": [b"\x05\x0b", R(9), b"\x05\x02"],
    "unknown-kinds": [b"\xfe\x06", R(4), b"\x1e\x04", R(2), b"\x22\x02"],
    "sackperm-len3": [b"\x04\x03\x00", NOP],
    "random-4": [R(4)],
    "random-12": [R(12)],
    "random-24": [R(24)],
    "random-40": [R(40)],
}
CONN_OPTIONS = {
    "none": [],
    "ts": [NOP, NOP] + TS,
    "ts-first": TS + [NOP, NOP],
    "ts-unaligned": [NOP] + TS + [NOP, NOP, NOP],
    "ts-sack": [NOP, NOP] + TS + [NOP, NOP, b"\x05\x0a", R(8)],
    "sack-4": [NOP, NOP, b"\x05\x22", R(32)],
    "dup-ts": TS + TS,
    "ts-truncated": [NOP, NOP, NOP, NOP, NOP, NOP, b"\x08\x0a", R(2)],
    "ts-len9": [b"\x08\x09", R(7), NOP, NOP, NOP],
    "ts-len0": [b"\x08\x00", R(10)],
    "overlong": [b"\x05\x28", R(10)],
    "eol-ts": [EOL] + TS + [NOP],
    "nop-40": [NOP * 40],
    "random-12": [R(12)],
    "random-40": [R(40)],
}


def flat(parts):
    """(bytes with zeros for random fields, [(offset, n) random])"""
    out, rnd = bytearray(), []
    for p in parts:
        if isinstance(p, tuple):
            if p[1] == 0:
                continue
            rnd.append((len(out), p[1]))
            out += bytes(p[1])
        else:
            out += p
    return bytes(out), rnd


def pad4(opts, rnd):
    n = (-len(opts)) % 4
    return opts + EOL * n, rnd


class Builder:
    def __init__(self, macs, rng):
        self.macs, self.rng = macs, rng
        self.tpls = {"c": [], "s": []}

    def eth(self, stream, family):
        src, dst = (self.macs["c0"], self.macs["r0"]) if stream == "c" else (self.macs["s0"], self.macs["r1"])
        return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + \
            (b"\x86\xdd" if family == 6 else b"\x08\x00")

    def tcp(self, sport, dport, seq, ack, flags, window, opts=(), payload=0, doff=None, res=0,
            urg=0):
        """A TCP header (+ options, + random payload) with its random fields:
        each of sport/dport/seq/ack/window/urg is an int or None (random)."""
        ob, orand = pad4(*flat(opts))
        hdr = bytearray(20)
        rnd = []
        for off, size, v in ((0, 2, sport), (2, 2, dport), (4, 4, seq), (8, 4, ack),
                             (14, 2, window), (18, 2, urg)):
            if v is None:
                rnd.append((off, size))
            elif isinstance(v, tuple):        # (fixed high bytes value, random low bytes)
                hdr[off:off + size] = v[0].to_bytes(size, "big")
                rnd.append((off + size - v[1], v[1]))
            else:
                hdr[off:off + size] = v.to_bytes(size, "big")
        d = doff if doff is not None else (20 + len(ob)) // 4
        hdr[12] = (d << 4) | res
        hdr[13] = flags
        seg = bytes(hdr) + ob + bytes(payload)
        rnd += [(20 + o, n) for o, n in orand]
        if payload:
            rnd.append((20 + len(ob), payload))
        return seg, rnd

    def add(self, stream, family, src, dst, seg_rnd, klass, what, csum="ok", ipopts=b"",
            ext=b"", ext_nh=None, src_rnd=0, tot_adjust=0, ip_csum_ok=True, ihl=None):
        """Frame = Ethernet + IP (+ options / extension headers) + TCP segment.
        csum: ok (trafgen computes it), bad (a fixed wrong value, no random field),
        static (computed here, no random fields), raw (left as it is: a cut header)."""
        seg, srnd = seg_rnd
        e = self.eth(stream, family)
        dyn = []
        if family == 4:
            io = bytes(ipopts) + b"\0" * ((-len(ipopts)) % 4)
            hl = 20 + len(io)
            total = hl + len(seg) + tot_adjust
            iph = struct.pack("!BBHHHBBH4s4s", 0x40 | (ihl if ihl is not None else hl // 4), 0, total,
                              self.rng.randrange(1, 65535), 0x4000, 64, 6, 0,
                              socket.inet_aton(src), socket.inet_aton(dst)) + io
            if src_rnd:
                dyn.append(("rnd", len(e) + 12 + 4 - src_rnd, src_rnd))
            frame = bytearray(e + bytes(iph) + seg)
            ipoff, tcpoff = len(e), len(e) + hl
            if ip_csum_ok:
                if src_rnd:
                    dyn.append(("csumip", ipoff + 10, ipoff, ipoff + hl - 1))
                else:
                    c = rawtcp.inet_checksum(bytes(frame[ipoff:ipoff + hl]))
                    frame[ipoff + 10:ipoff + 12] = c.to_bytes(2, "big")
            else:
                frame[ipoff + 10:ipoff + 12] = ((rawtcp.inet_checksum(bytes(frame[ipoff:ipoff + hl])) + 1) & 0xffff or 1).to_bytes(2, "big")
                assert not src_rnd
            ctype = "csumtcp"
        else:
            plen = len(ext) + len(seg) + tot_adjust
            nh = ext_nh if ext else 6
            iph = struct.pack("!IHBB16s16s", 0x60000000, plen, nh, 64,
                              socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
            if src_rnd:
                dyn.append(("rnd", len(e) + 8 + 16 - src_rnd, src_rnd))
            frame = bytearray(e + iph + ext + seg)
            ipoff, tcpoff = len(e), len(e) + 40 + len(ext)
            ctype = "csumtcp6"
        dyn += [("rnd", tcpoff + o, n) for o, n in srnd]
        if csum == "ok":
            dyn.append((ctype, tcpoff + 16, ipoff, tcpoff))
        elif csum in ("bad", "static"):
            assert not srnd and not src_rnd, what
            c = tcp_csum(family, bytes(frame[ipoff:]), tcpoff - ipoff)
            if csum == "bad":
                c = (c + 0x1111) & 0xffff
            frame[tcpoff + 16:tcpoff + 18] = c.to_bytes(2, "big")
        self.tpls[stream].append(Tpl(frame, dyn, klass, what))

    def add_frames(self, stream, frames, klass, what):
        """Static frames (fragments): raw IP packets built by scapy."""
        for i, f in enumerate(frames):
            fam = 6 if f[0] >> 4 == 6 else 4
            self.tpls[stream].append(Tpl(self.eth(stream, fam) + f, [], klass if i == len(frames) - 1 else "none",
                                         f"{what} [{i + 1}/{len(frames)}]"))


def tcp_csum(family, ippkt, tcpoff):
    """The TCP checksum of the segment at tcpoff of an IP packet (its field taken as 0)."""
    seg = bytearray(ippkt[tcpoff:])
    seg[16:18] = b"\0\0"
    src, dst = (ippkt[12:16], ippkt[16:20]) if family == 4 else (ippkt[8:24], ippkt[24:40])
    return rawtcp.tcp_checksum(src, dst, bytes(seg))


# Flags and their class: what the target does with a frame of these flags.
SYN_FLAGS = [SYN, SYN | ECE | CWR, SYN | PSH, SYN | URG]
ACK_FLAGS = [ACK, ACK | PSH, ACK | URG, ACK | ECE, ACK | CWR | PSH]
OTHER_FLAGS = [SYN | ACK, SYN | FIN, FIN, RST, RST | ACK, 0, 0xff, FIN | ACK, SYN | RST, FIN | PSH | URG]


def klass_of(flags):
    if flags & SYN and not flags & (ACK | FIN | RST):
        return "syn"
    if flags & ACK and not flags & (SYN | FIN | RST):
        return "ack"
    return "none"


TARGETS = [  # family, destination, port (r: INPUT, s: FORWARD)
    (4, "10.0.1.1", 8081), (4, "10.0.2.99", 8080),
    (6, "fd00:1::1", 8081), (6, "fd00:2::99", 8080),
]


def spoofed(family):
    return ("10.0.3.1", 1) if family == 4 else ("fd00:3::1", 2)


def target_phase(b):
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
    rng = b.rng
    for fam, dst, port in TARGETS:
        src, srnd = spoofed(fam)
        # Option areas with SYN and ACK flags (random ports, sequence, ACK, window, urgent).
        for name, opts in SYN_OPTIONS.items():
            fl = rng.choice(SYN_FLAGS)
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, fl, None, opts, res=rng.choice([0, 1, 15]), urg=None),
                  "syn", f"SYN {name}", src_rnd=srnd)
            fl = rng.choice(ACK_FLAGS)
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, fl, None, opts, payload=rng.choice([0, 0, 7])),
                  "ack", f"ACK {name}", src_rnd=srnd)
        for fl in SYN_FLAGS + ACK_FLAGS + OTHER_FLAGS:
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, fl, None, SYN_OPTIONS["linux"]),
                  klass_of(fl), f"flags {fl:#04x}", src_rnd=srnd)
        # Boundaries: sequence and ACK numbers at the wrap, zero and full windows, data on SYN.
        for seq in (0, 0x7fffffff, 0x80000000, 0xffffffff):
            b.add("c", fam, src, dst, b.tcp(None, port, seq, 0, SYN, 0, SYN_OPTIONS["linux"]), "syn",
                  f"SYN seq {seq:#x} window 0", src_rnd=srnd)
            b.add("c", fam, src, dst, b.tcp(None, port, seq, seq ^ 0x80000000, ACK, 0xffff), "ack",
                  f"ACK seq {seq:#x}", src_rnd=srnd)
        b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, SYN_OPTIONS["linux"], payload=100), "syn",
              "SYN with 100 bytes of data", src_rnd=srnd)
        # doff: below 5, above the segment, every value with a matching option area.
        for d in range(0, 5):
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, [R(20)], doff=d), "none",
                  f"SYN doff {d}", src_rnd=srnd)
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, ACK, None, [], doff=d), "none",
                  f"ACK doff {d}", src_rnd=srnd)
        for d in range(6, 16):
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, [R(4 * d - 24)], doff=15), "none",
                  f"SYN doff 15 over {4 * d - 4} bytes", src_rnd=srnd)
            b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, [R(4 * d - 20)]), "syn",
                  f"SYN doff {d} random options", src_rnd=srnd)
        # Bad checksums (static frames: no random field may fix them by chance).
        sa = "10.0.3.77" if fam == 4 else "fd00:3::77"
        for fl, k in ((SYN, "SYN"), (ACK, "ACK"), (SYN | ACK, "SYN-ACK")):
            b.add("c", fam, sa, dst, b.tcp(40000 + fl, port, 12345, 777, fl, 1000, [b"\x02\x04\x05\xb4"]), "none",
                  f"{k} bad checksum", csum="bad")
            b.add("c", fam, sa, dst, b.tcp(41000 + fl, port, 12345, 777, fl, 1000, [b"\x02\x04\x05\xb4"]),
                  klass_of(fl), f"{k} static, checksum right", csum="static")
        # Truncated TCP header: the IP length ends inside it.
        for cut in (1, 8, 13, 19):
            seg = b.tcp(42000, port, 1, 2, SYN, 1000)[0][:cut]
            b.add("c", fam, sa, dst, (seg, []), "none", f"TCP header cut at {cut} bytes", csum="raw")
        if fam == 4:
            for name, io, k in (("NOPs", b"\x01\x01\x01\x00", "syn"), ("record route", b"\x07\x07\x04" + bytes(4) + b"\x00", "syn"),
                                ("router alert", b"\x94\x04\x00\x00", "syn"),
                                ("option length 0", b"\x07\x00\x01\x01", "none"), ("option length 1", b"\x44\x01\x01\x01", "none"),
                                ("overlong option", b"\x07\x28\x04\x00", "none")):
                b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, SYN_OPTIONS["linux"]), k,
                      f"SYN with IPv4 {name}", ipopts=io, src_rnd=srnd)
            b.add("c", fam, sa, dst, b.tcp(43000, port, 5, 0, SYN, 100), "none", "IPv4 header checksum wrong",
                  csum="static", ip_csum_ok=False)
            b.add("c", fam, sa, dst, b.tcp(43001, port, 5, 0, SYN, 100), "none", "IPv4 total length past the frame",
                  csum="static", tot_adjust=40)
            b.add("c", fam, sa, dst, b.tcp(43002, port, 5, 0, SYN, 100), "none", "IPv4 ihl 15 over a 20-byte header",
                  csum="static", ihl=15)
            full = IP(src="10.0.3.88", dst=dst, id=4242) / TCP(sport=44000, dport=port, flags="S", seq=99,
                                                             options=[("MSS", 1460), ("NOP", None), ("NOP", None),
                                                                      ("Timestamp", (5, 0))]) / (b"x" * 40)
            frags = [bytes(f) for f in fragment(IP(bytes(full)), fragsize=24)]
            b.add_frames("c", frags, "syn", "IPv4 SYN in 3 fragments")
            lone = IP(src="10.0.3.89", dst=dst, id=4343, flags="MF") / TCP(sport=44001, dport=port, flags="S")
            b.add_frames("c", [bytes(lone)], "none", "IPv4 first fragment alone")
        else:
            hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])   # next: destination options; PadN
            dst_o = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next: TCP; PadN
            hbh_tcp = bytes([6, 0, 1, 4, 0, 0, 0, 0])
            for name, ext, nh in (("hop-by-hop", hbh_tcp, 0), ("destination options", dst_o, 60),
                                  ("hop-by-hop + destination options", hbh + dst_o, 0)):
                b.add("c", fam, src, dst, b.tcp(None, port, None, None, SYN, None, SYN_OPTIONS["linux"]), "syn",
                      f"SYN after {name}", ext=ext, ext_nh=nh, src_rnd=srnd)
                b.add("c", fam, src, dst, b.tcp(None, port, None, None, ACK, None, CONN_OPTIONS["ts"]), "ack",
                      f"ACK after {name}", ext=ext, ext_nh=nh, src_rnd=srnd)
            b.add("c", fam, sa, dst, b.tcp(43001, port, 5, 0, SYN, 100), "none", "IPv6 payload length past the frame",
                  csum="static", tot_adjust=40)
            full = IPv6(src="fd00:3::88", dst=dst) / IPv6ExtHdrFragment(id=4242) / TCP(
                sport=44000, dport=port, flags="S", seq=99, options=[("MSS", 1440), ("NOP", None), ("NOP", None),
                                                                     ("Timestamp", (5, 0))]) / (b"x" * 100)
            frags = [bytes(f) for f in fragment6(IPv6(bytes(full)), 100)]
            b.add_frames("c", frags, "syn", f"IPv6 SYN in {len(frags)} fragments")
            lone = IPv6(src="fd00:3::89", dst=dst) / IPv6ExtHdrFragment(id=4343, m=1) / TCP(sport=44001, dport=port, flags="S")
            b.add_frames("c", [bytes(lone)], "none", "IPv6 first fragment alone")
            atomic = IPv6(src="fd00:3::90", dst=dst) / IPv6ExtHdrFragment(id=4444, m=0) / TCP(sport=44002, dport=port, flags="S")
            b.add_frames("c", [bytes(atomic)], "syn", "IPv6 atomic fragment")


def flood_phase(b, port):
    """A spoofed flood of well-formed SYNs and ACKs (invalid cookies) to s:PORT, both families."""
    for fam, dst in ((4, "10.0.2.99"), (6, "fd00:2::99")):
        src, srnd = spoofed(fam)
        b.add("c", fam, src, dst, b.tcp(None, port, None, 0, SYN, None, SYN_OPTIONS["linux"]), "syn",
              "flood SYN", src_rnd=srnd)
        b.add("c", fam, src, dst, b.tcp(None, port, None, None, ACK, None, CONN_OPTIONS["ts"]), "ack",
              "flood ACK", src_rnd=srnd)


def conns_phase(b, conns):
    rng = b.rng
    for cn in conns:
        fam = cn["family"]
        (caddr, cport), (saddr, sport) = cn["client"], cn["server"]
        sides = [("c", caddr, saddr, cport, sport, cn["c_snd"], cn["c_rcv"])]
        if cn["server_ns"] == "s":
            sides.append(("s", saddr, caddr, sport, cport, cn["s_snd"], cn["s_rcv"]))
        for stream, src, dst, sp, dp, snd, rcv in sides:
            near = lambda v: (v & ~0xff, 1)   # noqa: E731 (the low byte random: in window)
            for name, opts in CONN_OPTIONS.items():
                for fl in (ACK, ACK | PSH, FIN | ACK, rng.choice(ACK_FLAGS + OTHER_FLAGS)):
                    k = klass_of(fl) if stream == "c" else "none"
                    b.add(stream, fam, src, dst, b.tcp(sp, dp, near(snd), near(rcv), fl, None, opts,
                                                       payload=rng.choice([0, 0, 1, 200])),
                          "ack" if k == "ack" else "none", f"{stream}: {fl:#04x} {name}")
            for seq in (0, 0x7fffffff, 0x80000000, 0xffffffff, snd ^ 0x80000000):
                b.add(stream, fam, src, dst, b.tcp(sp, dp, seq, None, ACK, 0, CONN_OPTIONS["ts"]),
                      "ack" if stream == "c" else "none", f"{stream}: ACK seq {seq:#x}")
            for fl in (SYN, RST, RST | ACK):
                k = klass_of(fl) if stream == "c" else "none"
                b.add(stream, fam, src, dst, b.tcp(sp, dp, near(snd), near(rcv), fl, None, CONN_OPTIONS["ts"]), k,
                      f"{stream}: {fl:#04x} near the live numbers")


def cmd_gen(args):
    macs = dict(kv.split("=", 1) for kv in args.macs.split(","))
    b = Builder(macs, random.Random(args.seed))
    if args.phase == "target":
        target_phase(b)
    elif args.phase == "flood":
        flood_phase(b, args.port)
    else:
        with open(args.conns) as f:
            conns_phase(b, json.load(f))
    os.makedirs(args.out, exist_ok=True)
    exp = {"phase": args.phase, "streams": {}, "syn": 0, "ack": 0}
    for stream, tpls in b.tpls.items():
        if not tpls:
            continue
        rounds = max(1, -(-args.count // len(tpls)))  # at least --count frames in all
        with open(os.path.join(args.out, f"{stream}.cfg"), "w") as f:
            f.write(f"/* fuzzwire.py gen --phase {args.phase} --seed {args.seed}: {len(tpls)} templates */\n")
            for t in tpls:
                f.write(t.cfg())
        exp["streams"][stream] = {"templates": len(tpls), "rounds": rounds, "frames": rounds * len(tpls)}
        if stream == "c":
            exp["syn"] += rounds * sum(t.klass == "syn" for t in tpls)
            exp["ack"] += rounds * sum(t.klass == "ack" for t in tpls)
        exp.setdefault("kinds", {})[stream] = [f"{t.klass}: {t.what}" for t in tpls]
    with open(os.path.join(args.out, "expect.json"), "w") as f:
        json.dump(exp, f, indent=1)
    print(json.dumps({k: v for k, v in exp.items() if k != "kinds"}))


# --- verify: classify trafgen's frames independently -----------------------------------------

def classify(frame):
    """What the target must count for this frame, from its bytes alone."""
    from scapy.layers.l2 import Ether
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    p = Ether(frame)
    if IP in p:
        ip = p[IP]
        raw = bytes(ip)
        hl = ip.ihl * 4
        if ip.ihl < 5 or ip.len > len(raw) or hl > ip.len or rawtcp.inet_checksum(raw[:hl]) != 0:
            return "none"
        if ip.flags.MF or ip.frag:
            return "frag"
        if ip.options:
            # Options the kernel rejects (ip_options_compile): a length below 2 or past the end.
            o, i = raw[20:hl], 0
            while i < len(o):
                if o[i] == 0:
                    break
                if o[i] == 1:
                    i += 1
                    continue
                if i + 1 >= len(o) or o[i + 1] < 2 or o[i + 1] > len(o) - i:
                    return "none"
                i += o[i + 1]
        seg = raw[hl:ip.len]
        src, dst = raw[12:16], raw[16:20]
    elif IPv6 in p:
        raw = bytes(p[IPv6])
        plen = struct.unpack("!H", raw[4:6])[0]
        if plen + 40 > len(raw):
            return "none"
        nh, off = raw[6], 40
        while nh in (0, 60, 43, 44):
            if nh == 44:
                fo = struct.unpack("!H", raw[off + 2:off + 4])[0]
                if fo & 0xfff9:
                    return "frag"
            nh, off = raw[off], off + (8 if nh == 44 else (raw[off + 1] + 1) * 8)
        seg = raw[off:40 + plen]
        src, dst = raw[8:24], raw[24:40]
    else:
        return "none"
    if len(seg) < 20 or rawtcp.tcp_checksum(src, dst, seg) != 0:
        return "none"
    doff = seg[12] >> 4
    if doff < 5 or doff * 4 > len(seg):
        return "none"
    return klass_of(seg[13])


def cmd_inject(args):
    with open(args.conns) as f:
        cn = json.load(f)[args.index]
    af = socket.AF_INET6 if cn["family"] == 6 else socket.AF_INET
    (caddr, cport), (saddr, sport) = cn["client"], cn["server"]
    src, dst = socket.inet_pton(af, caddr), socket.inet_pton(af, saddr)
    opts = b"\x01\x08\x0a" + struct.pack("!II", 0x11223344, 0x55667788) + b"\x01"
    seg = rawtcp.build_tcp(src, dst, cport, sport, cn["c_snd"], cn["c_rcv"], ACK | PSH, 1000, opts,
                           b"odd-offset")
    rawtcp.RawSender(af).send(rawtcp.build_packet(src, dst, seg), saddr)


def cmd_verify(args):
    from scapy.utils import rdpcap
    with open(os.path.join(args.dir, "expect.json")) as f:
        exp = json.load(f)
    frames = [bytes(p) for p in rdpcap(args.pcap)]
    want = exp["streams"]["c"]["frames"]
    counts = {"syn": 0, "ack": 0, "none": 0, "frag": 0}
    for fr in frames:
        counts[classify(fr)] += 1
    # A fragment set counts once, as its last frame (the model's convention).
    kinds = exp["kinds"]["c"]
    rounds = exp["streams"]["c"]["rounds"]
    frag_syn = rounds * sum(1 for k in kinds if k.startswith("syn: ") and "fragments [" in k)
    got = {"frames": len(frames), "syn": counts["syn"] + frag_syn, "ack": counts["ack"]}
    ok = got == {"frames": want, "syn": exp["syn"], "ack": exp["ack"]}
    print(json.dumps({"got": got, "model": {"frames": want, "syn": exp["syn"], "ack": exp["ack"]}, "ok": ok}))
    sys.exit(0 if ok else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--out", required=True)
    h.add_argument("--ready", required=True)
    h.add_argument("conn", nargs="+")
    g = sub.add_parser("gen")
    g.add_argument("--phase", choices=("target", "conns", "flood"), required=True)
    g.add_argument("--port", type=int, default=8090)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--macs", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--conns")
    g.add_argument("--seed", type=int, default=1)
    i = sub.add_parser("inject")
    i.add_argument("--conns", required=True)
    i.add_argument("--index", type=int, default=0)
    v = sub.add_parser("verify")
    v.add_argument("dir")
    v.add_argument("pcap")
    args = p.parse_args()
    {"hold": cmd_hold, "gen": cmd_gen, "verify": cmd_verify, "inject": cmd_inject}[args.cmd](args)


if __name__ == "__main__":
    main()
