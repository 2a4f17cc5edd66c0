#!/usr/bin/env python3
"""Raw-socket TCP packet tool for the SYN-proxy tests (Python 3.11, standard library only).

Run as root in the client network namespace.  The address family (IPv4 or IPv6) follows
the syntax of --dst.  Every subcommand that talks to the network prints exactly one JSON
object on stdout when it ends; exit status 0 means "the scenario ran", 1 means something
unexpected happened (no SYN-ACK in time, deadline reached, send error...) and is explained
on stderr (the JSON then carries an "error" member), 2 means bad usage.

  handshake       SYN -> wait for the SYN-ACK (syncookie) -> ACK [-> keep-alive] -> collect
  synack-options  SYN -> print the SYN-ACK and its options; the handshake is not completed
  flood           N SYNs from random sources of a CIDR, optionally rate limited
  selftest        offline checks of the checksum and option code (no network, no root)

Sending: raw sockets with headers built here, so any source address can be used.
  IPv4: socket(AF_INET, SOCK_RAW, IPPROTO_RAW) + IP_HDRINCL.  We build the IPv4 header,
        including its checksum, and the TCP checksum.  (Linux rewrites the IP total length
        and the IP header checksum of IP_HDRINCL packets with the same values anyway.)
  IPv6: socket(AF_INET6, SOCK_RAW, IPPROTO_RAW).  On Linux IPPROTO_RAW implies IPV6_HDRINCL:
        we build the whole IPv6 header and compute the TCP checksum ourselves.  This one
        path serves both the client's own address and spoofed flood sources, so the kernel
        never picks or checks the source address and never touches the checksum.

Receiving: socket(AF_PACKET, SOCK_DGRAM) bound to --iface for ETH_P_IP or ETH_P_IPV6, so
  every frame arrives without its link-layer header (a socket bound to one protocol sees
  only incoming frames).  A small classic-BPF filter passes, in the kernel, only frames whose
  IP source is --dst (and never outgoing ones), which keeps floods on the same interface
  from filling the socket; the IP and TCP headers are then parsed here and the flow is
  matched exactly (dst:dport -> src:sport).  Received checksums
  are not verified: on veth they may legitimately be partial (CHECKSUM_PARTIAL).
  Frames are seen before the client's netfilter, so INPUT rules there do not hide them.

The client kernel has no socket for the source port we use.  When the SYN-ACK arrives it
answers it with a RST of its own, which would reset the proxy's state.  The tests therefore
drop those in the client namespace before running handshake or synack-options, e.g.
    iptables  -A OUTPUT -p tcp --tcp-flags RST RST -d DST --dport DPORT -j DROP
    ip6tables -A OUTPUT -p tcp --tcp-flags RST RST -d DST --dport DPORT -j DROP
(this tool itself never sends RST, so the rule cannot swallow anything it sends).

No wait is unbounded: every receive has a timeout, and --deadline caps the whole run (a
SIGALRM one second after the deadline is the last-resort backstop).
"""

import argparse
import ctypes
import errno
import ipaddress
import json
import math
import random
import signal
import socket
import struct
import sys
import textwrap
import time
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------
# Constants

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4           # sll_pkttype of frames this host sends
SO_ATTACH_FILTER = 26         # <asm-generic/socket.h>
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
IPPROTO_TCP = 6

SEQ_MOD = 1 << 32

# TCP flag bits (byte 13 of the TCP header)
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
# Letter order used in the "flags" strings: a SYN-ACK is "SA", a RST-ACK "RA".
FLAG_LETTERS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "A"), (URG, "U"),
                (ECE, "E"), (CWR, "C"))

# TCP option kinds
OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACKPERM, OPT_SACK, OPT_TS = 0, 1, 2, 3, 4, 5, 8

SYN_WINDOW = 64240            # window of our SYNs
ACK_WINDOW = 502              # window of the handshake-completing ACK and the keep-alive
BAD_COOKIE_DELTA = 12345      # added to the ACK number by --bad-cookie
MAX_FLOOD = 10_000_000


class ToolError(Exception):
    """The scenario could not run as asked; the message goes to stderr."""


class DeadlineExceeded(ToolError):
    pass


def seq_add(a, b):
    """Sequence-number arithmetic, modulo 2**32."""
    return (a + b) % SEQ_MOD


def flags_str(flags):
    return "".join(letter for bit, letter in FLAG_LETTERS if flags & bit)


# ---------------------------------------------------------------------------------------
# Checksums (RFC 1071)

def inet_checksum(data):
    """Internet checksum: one's complement of the one's complement sum of 16-bit words.

    An odd trailing byte is padded on the right with a zero byte.  To build a header, call
    this with the checksum field zeroed; over data that already contains a correct checksum
    it returns 0.
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:                       # fold the carries back in (end-around carry)
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src, dst, length):
    """TCP pseudo-header; src and dst are packed addresses (4 or 16 bytes)."""
    if len(src) == 4:
        # RFC 793: source, destination, zero, protocol, TCP length (16 bits)
        return src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, length)
    # RFC 8200 8.1: source, destination, upper-layer length (32 bits), 3 zero bytes, next header
    return src + dst + struct.pack("!I3xB", length, IPPROTO_TCP)


def tcp_checksum(src, dst, segment):
    """Checksum of a TCP segment (header + options + payload) whose checksum field is 0."""
    return inet_checksum(pseudo_header(src, dst, len(segment)) + segment)


# ---------------------------------------------------------------------------------------
# TCP options

def build_syn_options(mss=None, wscale=None, sackperm=False, ts=None):
    """Options of a SYN, in the layout Linux uses, every option aligned as RFC 7323 App. A asks.

    ts is None or (tsval, tsecr).  With everything requested the result is
      MSS(4) | SACK_PERM(2) TS(10) | NOP WSCALE(3)             (20 bytes)
    i.e. "mss, sackOK, TS, nop, wscale"; without timestamps SACK_PERM becomes NOP NOP SACK_PERM,
    and without SACK_PERM the timestamps become NOP NOP TS.
    """
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", OPT_MSS, 4, mss)
    if ts is not None:
        lead = struct.pack("!BB", OPT_SACKPERM, 2) if sackperm else bytes((OPT_NOP, OPT_NOP))
        out += lead + struct.pack("!BBII", OPT_TS, 10, ts[0] % SEQ_MOD, ts[1] % SEQ_MOD)
    elif sackperm:
        out += bytes((OPT_NOP, OPT_NOP, OPT_SACKPERM, 2))
    if wscale is not None:
        out += struct.pack("!BBBB", OPT_NOP, OPT_WSCALE, 3, wscale)
    assert len(out) % 4 == 0 and len(out) <= 40, out
    return out


def build_ts_option(tsval, tsecr):
    """NOP NOP TS: the 12-byte timestamp block of non-SYN segments (RFC 7323 App. A)."""
    return bytes((OPT_NOP, OPT_NOP)) + struct.pack("!BBII", OPT_TS, 10, tsval % SEQ_MOD,
                                                   tsecr % SEQ_MOD)


def parse_options(raw):
    """Parse TCP options.  Returns (list in wire order, dict).

    List items: "mss N", "wscale N", "sackOK", "TS", "nop", "eol", "sack L-R[,L-R...]",
    "opt K len L" (unknown kind, or a known kind with the wrong length) and "malformed"
    (a length byte that is missing, below 2 or runs past the end: parsing stops there, as
    no later option can be located).
    Dict: {"mss", "wscale", "sackperm", "ts", "tsval", "tsecr", "sack", "malformed"}, where
    absent values are null/false/[].
    """
    items = []
    d = {"mss": None, "wscale": None, "sackperm": False, "ts": False, "tsval": None,
         "tsecr": None, "sack": [], "malformed": False}
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == OPT_EOL:
            items.append("eol")            # the rest is padding
            break
        if kind == OPT_NOP:
            items.append("nop")
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            items.append("malformed")
            d["malformed"] = True
            break
        olen = raw[i + 1]
        body = raw[i + 2:i + olen]
        if kind == OPT_MSS and olen == 4:
            d["mss"] = struct.unpack("!H", body)[0]
            items.append(f"mss {d['mss']}")
        elif kind == OPT_WSCALE and olen == 3:
            d["wscale"] = body[0]
            items.append(f"wscale {d['wscale']}")
        elif kind == OPT_SACKPERM and olen == 2:
            d["sackperm"] = True
            items.append("sackOK")
        elif kind == OPT_TS and olen == 10:
            d["ts"] = True
            d["tsval"], d["tsecr"] = struct.unpack("!II", body)
            items.append("TS")
        elif kind == OPT_SACK and olen > 2 and (olen - 2) % 8 == 0:
            blocks = [list(struct.unpack("!II", body[j:j + 8])) for j in range(0, olen - 2, 8)]
            d["sack"].extend(blocks)
            items.append("sack " + ",".join(f"{l}-{r}" for l, r in blocks))
        else:
            items.append(f"opt {kind} len {olen}")
        i += olen
    return items, d


# ---------------------------------------------------------------------------------------
# Packet building

def build_tcp(src, dst, sport, dport, seq, ack, flags, window, options=b"", payload=b"",
              urg_ptr=0):
    """A TCP segment with a correct checksum; src/dst are the packed IP addresses."""
    if len(options) % 4 or len(options) > 40:
        raise ValueError("TCP options must be a multiple of 4 bytes, at most 40")
    doff = (20 + len(options)) // 4                  # header length in 32-bit words
    header = struct.pack("!HHIIHHHH", sport, dport, seq % SEQ_MOD, ack % SEQ_MOD,
                         (doff << 12) | (flags & 0xFF), window, 0, urg_ptr)
    seg = header + options + payload
    csum = tcp_checksum(src, dst, seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]   # checksum at offset 16


def build_ipv4(src, dst, payload, ident=None, ttl=64, df=True, tos=0):
    """IPv4 header (20 bytes, no options, checksum filled in) + payload (a TCP segment)."""
    if ident is None:
        ident = random.getrandbits(16)
    header = struct.pack("!BBHHHBBH4s4s",
                         0x45,                     # version 4, IHL 5 words
                         tos, 20 + len(payload), ident,
                         0x4000 if df else 0,      # flags (DF) + fragment offset 0
                         ttl, IPPROTO_TCP, 0, src, dst)
    csum = inet_checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def build_ipv6(src, dst, payload, hop_limit=64, flow_label=0, tclass=0):
    """IPv6 header (40 bytes, next header TCP, no extension headers) + payload."""
    first = (6 << 28) | (tclass << 20) | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB16s16s", first, len(payload), IPPROTO_TCP, hop_limit,
                       src, dst) + payload


def build_packet(src, dst, segment):
    return build_ipv4(src, dst, segment) if len(src) == 4 else build_ipv6(src, dst, segment)


# ---------------------------------------------------------------------------------------
# Packet parsing

@dataclass
class TcpPacket:
    src: bytes          # packed addresses
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    checksum: int
    options: bytes
    payload: bytes
    rx_time: float = 0.0   # time.monotonic() when it was read from the socket
    raw: bytes = b""       # the IP packet as received (IP header on, link padding dropped)

    def report(self, t0):
        items, d = parse_options(self.options)
        return {"t": round(self.rx_time - t0, 6), "seq": self.seq, "ack": self.ack,
                "window": self.window, "flags": flags_str(self.flags), "options": d,
                "option_list": items, "payload_len": len(self.payload),
                "raw": self.raw.hex()}


def parse_tcp(src, dst, seg):
    if len(seg) < 20:
        return None
    sport, dport, seq, ack, off_flags, window, csum, _urg = struct.unpack("!HHIIHHHH", seg[:20])
    hlen = (off_flags >> 12) * 4
    if hlen < 20 or hlen > len(seg):
        return None
    return TcpPacket(src, dst, sport, dport, seq, ack, off_flags & 0xFF, window, csum,
                     bytes(seg[20:hlen]), bytes(seg[hlen:]))


def parse_ip_tcp(pkt):
    """Parse an IPv4 or IPv6 packet (no link-layer header) carrying TCP, else None."""
    if len(pkt) < 1:
        return None
    version = pkt[0] >> 4
    if version == 4:
        if len(pkt) < 20:
            return None
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack("!H", pkt[2:4])[0]
        frag = struct.unpack("!H", pkt[6:8])[0]          # flags + fragment offset
        proto = pkt[9]
        if ihl < 20 or total < ihl or total > len(pkt):
            return None
        if proto != IPPROTO_TCP or frag & 0x1FFF:          # not TCP, or a non-first fragment
            return None
        pkt = pkt[:total]                                   # drop Ethernet padding
        return parse_tcp(bytes(pkt[12:16]), bytes(pkt[16:20]), pkt[ihl:])
    if version == 6:
        if len(pkt) < 40:
            return None
        plen = struct.unpack("!H", pkt[4:6])[0]
        if plen == 0 or 40 + plen > len(pkt):               # jumbogram or truncated
            return None
        pkt = pkt[:40 + plen]
        nxt, off = pkt[6], 40
        for _ in range(8):                                  # walk extension headers
            if nxt == IPPROTO_TCP:
                return parse_tcp(bytes(pkt[8:24]), bytes(pkt[24:40]), pkt[off:])
            if off + 8 > len(pkt):
                return None
            if nxt in (0, 43, 60):                          # hop-by-hop, routing, dest. options
                nxt, off = pkt[off], off + (pkt[off + 1] + 1) * 8
            elif nxt == 44:                                 # fragment header
                if struct.unpack("!H", pkt[off + 2:off + 4])[0] & 0xFFF8:
                    return None                             # non-first fragment
                nxt, off = pkt[off], off + 8
            elif nxt == 51:                                 # authentication header
                nxt, off = pkt[off], off + (pkt[off + 1] + 2) * 4
            else:
                return None
        return None
    return None


def ip_packet_bytes(pkt):
    """The IP packet without link-layer padding (its own length field says where it ends)."""
    if pkt and pkt[0] >> 4 == 4 and len(pkt) >= 20:
        return bytes(pkt[:struct.unpack("!H", pkt[2:4])[0]])
    if pkt and pkt[0] >> 4 == 6 and len(pkt) >= 40:
        return bytes(pkt[:40 + struct.unpack("!H", pkt[4:6])[0]])
    return bytes(pkt)


# ---------------------------------------------------------------------------------------
# Addresses

def family_of(addr):
    """AF_INET6 if the text contains ':', else AF_INET; raises ValueError if invalid."""
    ip = ipaddress.ip_address(addr)
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def packed(addr):
    return ipaddress.ip_address(addr).packed


class RandomHost:
    """Uniformly random addresses of a network, skipping the network address and, for IPv4,
    the broadcast address when the network is large enough to have other addresses."""

    def __init__(self, net, rng):
        self.rng = rng
        self.nbytes = 4 if net.version == 4 else 16
        base, n = int(net.network_address), net.num_addresses
        if net.version == 4 and n > 2:
            self.lo, self.count = base + 1, n - 2
        elif net.version == 6 and n > 1:
            self.lo, self.count = base + 1, n - 1
        else:
            self.lo, self.count = base, n

    def __call__(self):
        return (self.lo + self.rng.randrange(self.count)).to_bytes(self.nbytes, "big")


# ---------------------------------------------------------------------------------------
# Sockets

class Deadline:
    """Absolute time limit of the whole run."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def clamp(self, t):
        return min(t, self.end)

    def passed(self):
        return time.monotonic() >= self.end


def _alarm(signum, frame):
    raise DeadlineExceeded("hard deadline reached (SIGALRM)")


def arm_backstop(seconds):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, math.ceil(seconds) + 1))


class RawSender:
    """Sends complete IP packets (headers built by the caller)."""

    def __init__(self, family, sndbuf=None):
        self.family = family
        if family == socket.AF_INET:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            # Implied by IPPROTO_RAW on Linux; set explicitly as documentation.
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        else:
            # IPPROTO_RAW on AF_INET6 sets hdrincl: the buffer starts with our IPv6 header.
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        if sndbuf:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)

    def send(self, packet, dst, scope_id=0):
        """dst is the destination as text; the kernel uses it only for the route lookup."""
        if self.family == socket.AF_INET:
            self.sock.sendto(packet, (dst, 0))
        else:
            # port must be 0 (or equal to the socket's protocol) on raw IPv6 sockets
            self.sock.sendto(packet, (dst, 0, 0, scope_id))

    def close(self):
        self.sock.close()


def bpf_program(peer):
    """Classic BPF: accept frames not sent by this host whose IP source address is peer.

    On a SOCK_DGRAM packet socket the filter sees the packet from the network header on, so
    offset 12 is the IPv4 source address and offsets 8..23 the IPv6 source address.  This
    only thins out what reaches user space; every frame is still parsed and matched exactly.
    """
    LD_W_ABS, LD_B_ABS, JEQ_K, RET_K = 0x20, 0x30, 0x15, 0x06
    SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF       # SKF_AD_OFF + SKF_AD_PKTTYPE
    words = [int.from_bytes(peer[i:i + 4], "big") for i in range(0, len(peer), 4)]
    first = 12 if len(peer) == 4 else 8
    n = len(words)
    # Layout: [0] ld pkttype, [1] jeq OUTGOING -> drop, then for each word: ld, jeq else drop,
    # then accept, drop.  Jump offsets are relative to the next instruction.
    prog = [(LD_B_ABS, 0, 0, SKF_AD_PKTTYPE)]
    total = 2 + 2 * n + 2
    drop = total - 1
    prog.append((JEQ_K, drop - 2, 0, PACKET_OUTGOING))          # at index 1
    for i, w in enumerate(words):
        idx = 2 + 2 * i
        prog.append((LD_W_ABS, 0, 0, first + 4 * i))
        prog.append((JEQ_K, 0, drop - (idx + 2), w))            # at index idx + 1
    prog.append((RET_K, 0, 0, 0x40000))                         # accept (snap 256 KiB)
    prog.append((RET_K, 0, 0, 0))                               # drop
    assert len(prog) == total
    return prog


class Receiver:
    """AF_PACKET/SOCK_DGRAM socket on one interface, for one IP version."""

    def __init__(self, iface, family, peer):
        proto = ETH_P_IP if family == socket.AF_INET else ETH_P_IPV6
        # Protocol 0: the socket receives nothing until bind(), so the filter is in place
        # before the first frame is queued.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
        except OSError:
            pass
        self._attach(bpf_program(peer))
        self.sock.bind((iface, proto))          # Python converts proto to network order

    def _attach(self, prog):
        raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)   # struct sock_filter
        buf = ctypes.create_string_buffer(raw, len(raw))
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native layout)
        fprog = struct.pack("HP", len(prog), ctypes.addressof(buf))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # copied by the kernel

    def recv(self, match, until):
        """Next packet for which match(pkt) is true, or None once time.monotonic() >= until."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(1 << 18)
            except TimeoutError:
                return None
            now = time.monotonic()
            if addr[2] == PACKET_OUTGOING:
                continue
            pkt = parse_ip_tcp(data)
            if pkt is not None and match(pkt):
                pkt.rx_time = now
                pkt.raw = ip_packet_bytes(data)
                return pkt

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------
# Scenarios

class Flow:
    """Our side of one connection: src:sport -> dst:dport."""

    def __init__(self, args):
        fam = family_of(args.dst)
        if family_of(args.src) != fam:
            raise ToolError("--src and --dst are not of the same address family")
        self.family, self.dst_text = fam, args.dst
        self.src, self.dst = packed(args.src), packed(args.dst)
        self.sport = args.sport if args.sport is not None else random.randint(32768, 60999)
        self.dport = args.dport
        self.scope_id = 0
        if fam == socket.AF_INET6 and ipaddress.ip_address(args.dst).is_link_local:
            self.scope_id = socket.if_nametoindex(args.iface)

    def incoming(self, pkt):
        """True for packets of the reverse direction dst:dport -> src:sport."""
        return (pkt.src == self.dst and pkt.dst == self.src and pkt.sport == self.dport
                and pkt.dport == self.sport)

    def packet(self, seq, ack, flags, window, options=b""):
        seg = build_tcp(self.src, self.dst, self.sport, self.dport, seq, ack, flags, window,
                        options)
        return build_packet(self.src, self.dst, seg)


def open_and_syn(args, result, deadline):
    """Common start of handshake and synack-options: send the SYN, wait for the SYN-ACK.

    Fills result and returns (flow, sender, receiver, t0, isn, tsval, synack-or-None).
    """
    flow = Flow(args)
    isn = args.isn if args.isn is not None else random.getrandbits(32)
    # Our timestamp clock: arbitrary start, kept below 2**31 so increments never wrap.
    tsval = args.tsval if args.tsval is not None else random.randint(1, (1 << 31) - 1000)
    syn_opts = build_syn_options(args.mss, args.wscale, args.sackperm,
                                 (tsval, 0) if args.ts else None)
    result.update({"family": 4 if flow.family == socket.AF_INET else 6, "sport": flow.sport,
                   "dport": flow.dport, "isn": isn, "syn_tsval": tsval if args.ts else None,
                   "syn_option_list": parse_options(syn_opts)[0]})
    rx = Receiver(args.iface, flow.family, flow.dst)      # open before sending the SYN
    tx = RawSender(flow.family)
    t0 = time.monotonic()
    syn_flags = SYN | (ECE | CWR if args.ecn else 0)
    tx.send(flow.packet(isn, 0, syn_flags, SYN_WINDOW, syn_opts), flow.dst_text, flow.scope_id)
    early = []
    result["early"] = early          # packets of the flow that came instead of a SYN-ACK
    until = deadline.clamp(t0 + args.timeout)
    synack = None
    while True:
        pkt = rx.recv(flow.incoming, until)
        if pkt is None:
            break
        if (pkt.flags & (SYN | ACK)) == (SYN | ACK):
            synack = pkt
            break
        early.append(pkt.report(t0))
        if pkt.flags & RST:
            break
    return flow, tx, rx, t0, isn, tsval, synack


def no_synack_error(args, result, deadline):
    peer = f"[{args.dst}]:{args.dport} to port {result['sport']}"
    if result["early"]:
        got = ", ".join(p["flags"] for p in result["early"])
        return f"got {got} instead of a SYN-ACK from {peer}"
    msg = f"no SYN-ACK from {peer} within {args.timeout} s"
    return msg + (" (overall deadline reached)" if deadline.passed() else "")


def cmd_handshake(args, result):
    deadline = Deadline(args.deadline)
    result.update({"synack": None, "ack_sent": None, "keepalive_sent": None, "after": []})
    flow, tx, rx, t0, isn, tsval, synack = open_and_syn(args, result, deadline)
    if synack is None:
        raise ToolError(no_synack_error(args, result, deadline))
    result["synack"] = synack.report(t0)
    _, sa_opts = parse_options(synack.options)
    cookie = synack.seq

    def ts_block(val):
        # Echo the SYN-ACK's TSval when the SYN-ACK carried timestamps (RFC 7323 3.2).
        return build_ts_option(val, sa_opts["tsval"]) if sa_opts["ts"] else b""

    # Third packet of the handshake: SND.NXT = ISN + 1, acknowledging the cookie (+1 for SYN).
    ack_seq = seq_add(isn, 1)
    ack_ack = seq_add(cookie, 1 + (BAD_COOKIE_DELTA if args.bad_cookie else 0) + args.ack_delta)
    tsval += 1
    tx.send(flow.packet(ack_seq, ack_ack, ACK, ACK_WINDOW, ts_block(tsval)),
            flow.dst_text, flow.scope_id)
    t_last = time.monotonic()
    result["ack_sent"] = {"t": round(t_last - t0, 6), "seq": ack_seq, "ack": ack_ack,
                          "window": ACK_WINDOW, "tsval": tsval if sa_opts["ts"] else None,
                          "tsecr": sa_opts["tsval"] if sa_opts["ts"] else None}
    after = result["after"]

    def collect(until):
        """Record every packet of the flow until the given time (which must not be clamped)."""
        end = deadline.clamp(until)
        while (pkt := rx.recv(flow.incoming, end)) is not None:
            after.append(pkt.report(t0))
        if end < until:
            raise DeadlineExceeded(f"overall deadline of {args.deadline} s reached")

    if args.keepalive_after is not None:
        collect(t_last + args.keepalive_after)             # "sleep", but keep listening
        # Keep-alive (RFC 9293 3.8.4): SEG.SEQ = SND.NXT - 1 = ISN, no data, ACK only.
        ka_ack = seq_add(cookie, 1)
        tsval += 1
        tx.send(flow.packet(isn, ka_ack, ACK, ACK_WINDOW, ts_block(tsval)),
                flow.dst_text, flow.scope_id)
        t_last = time.monotonic()
        result["keepalive_sent"] = {"t": round(t_last - t0, 6), "seq": isn, "ack": ka_ack,
                                    "window": ACK_WINDOW,
                                    "tsval": tsval if sa_opts["ts"] else None,
                                    "tsecr": sa_opts["tsval"] if sa_opts["ts"] else None}
    collect(t_last + args.timeout)
    tx.close()
    rx.close()


def cmd_synack_options(args, result):
    deadline = Deadline(args.deadline)
    flow, tx, rx, t0, isn, tsval, synack = open_and_syn(args, result, deadline)
    tx.close()
    rx.close()
    if synack is None:
        raise ToolError(no_synack_error(args, result, deadline))
    result.update(synack.report(t0))


def cmd_flood(args, result):
    deadline = Deadline(args.deadline)
    try:
        net = ipaddress.ip_network(args.src_net, strict=False)
        dst_ip = ipaddress.ip_address(args.dst)
    except ValueError as e:
        raise ToolError(str(e)) from None
    if net.version != dst_ip.version:
        raise ToolError("--src-net and --dst are not of the same address family")
    rng = random.Random()
    pick_src = RandomHost(net, rng)
    dst, dst_text = dst_ip.packed, args.dst
    family = socket.AF_INET if dst_ip.version == 4 else socket.AF_INET6
    tx = RawSender(family, sndbuf=4 << 20)
    errors = {}
    sent = 0
    result.update({"requested": args.count, "sent": 0, "seconds": 0.0, "complete": False,
                   "errors": errors})
    start = time.monotonic()
    for i in range(args.count):
        if args.rate:
            # Packet i leaves no earlier than start + i/rate: at most --rate per second.
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, max(0.0, deadline.end - time.monotonic())))
        if deadline.passed():
            break
        src = pick_src()
        opts = build_syn_options(args.mss, args.wscale, args.sackperm,
                                 (rng.getrandbits(31), 0) if args.ts else None)
        seg = build_tcp(src, dst, rng.randint(1024, 65535), args.dport, rng.getrandbits(32), 0,
                        SYN, SYN_WINDOW, opts)
        pkt = build_packet(src, dst, seg)
        for attempt in range(100):
            try:
                tx.send(pkt, dst_text)
                sent += 1
                break
            except OSError as e:
                # ENOBUFS: a queue is full; back off briefly and retry the same packet.
                if e.errno in (errno.ENOBUFS, errno.EAGAIN) and attempt < 99 \
                        and not deadline.passed():
                    time.sleep(0.001)
                    continue
                name = errno.errorcode.get(e.errno, str(e.errno))
                errors[name] = errors.get(name, 0) + 1
                break
    elapsed = time.monotonic() - start
    tx.close()
    result.update({"sent": sent, "seconds": round(elapsed, 6), "complete": sent == args.count,
                   "pps": round(sent / elapsed, 1) if elapsed > 0 else None})
    if sent != args.count:
        why = f"overall deadline of {args.deadline} s reached" if deadline.passed() else \
            f"send errors {errors}"
        raise ToolError(f"sent {sent} of {args.count} SYNs: {why}")


# ---------------------------------------------------------------------------------------
# Self test (offline)

def selftest():
    checks = 0

    def check(cond, what):
        nonlocal checks
        if not cond:
            raise AssertionError(what)
        checks += 1

    # 1. IPv4 header checksum, the classic example (RFC 1071 style): 0xb861.
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    check(inet_checksum(hdr) == 0xB861, "IPv4 header checksum example != 0xb861")
    check(inet_checksum(hdr[:10] + b"\xb8\x61" + hdr[12:]) == 0, "verify-to-zero property")
    check(inet_checksum(b"\x01") == 0xFEFF, "odd length pads on the right")
    print("ok  RFC 1071 checksum: IPv4 header example 0xb861, odd-length padding")

    # 2. A known IPv4 TCP SYN (smoltcp's wire/tcp.rs test vector, 192.168.1.1 ->
    #    192.168.1.2, sport 48896 dport 80 seq 0x01234567 win 0x0123, 4 payload bytes):
    #    TCP checksum 0x7a8d.  And the same vector rebuilt by build_tcp.
    a, b = packed("192.168.1.1"), packed("192.168.1.2")
    syn = bytes.fromhex("bf0000500123456700000000500201237a8d0000aa0000ff")
    check(tcp_checksum(a, b, syn[:16] + b"\0\0" + syn[18:]) == 0x7A8D, "SYN checksum != 0x7a8d")
    check(tcp_checksum(a, b, syn) == 0, "SYN verifies to 0")
    check(build_tcp(a, b, 48896, 80, 0x01234567, 0, SYN, 0x0123,
                    payload=bytes.fromhex("aa0000ff")) == syn, "build_tcp(SYN) byte-exact")
    other = bytes.fromhex("bf0000500123456789abcdef6035012301b6020103030c01aa0000ff")
    check(tcp_checksum(a, b, other[:16] + b"\0\0" + other[18:]) == 0x01B6, "FRAU checksum")
    print("ok  IPv4 TCP SYN test vector: checksum 0x7a8d, rebuilt byte-exact; "
          "second vector 0x01b6")

    # 3. A captured IPv4 ACK with timestamps (IP checksum 0x4eb6, TCP checksum 0x37a6),
    #    rebuilt byte-exact with build_ipv4 + build_tcp + build_ts_option.
    cap4 = bytes.fromhex("45000034eda5400040064eb6ac16686d4a7d9f67af1f0050e8338b62fc13da66"
                         "8010005c37a600000101080a04b866f74add9045")
    s4, d4 = cap4[12:16], cap4[16:20]
    seg = build_tcp(s4, d4, 0xAF1F, 80, 0xE8338B62, 0xFC13DA66, ACK, 0x5C,
                    build_ts_option(0x04B866F7, 0x4ADD9045))
    check(build_ipv4(s4, d4, seg, ident=0xEDA5, ttl=64) == cap4, "captured IPv4 ACK byte-exact")
    print("ok  captured IPv4 ACK+TS rebuilt byte-exact (IP csum 0x4eb6, TCP csum 0x37a6)")

    # 4. A captured IPv6 SYN from Linux (mss 1432, sackOK, TS, nop, wscale 7; TCP checksum
    #    0xca84), rebuilt byte-exact: checks the v6 pseudo-header and the Linux option layout.
    cap6 = bytes.fromhex("600488ff0028063f240e037926cb4a040000000000000058200148380000001b"
                         "0000000000000201e5600050ab0db01400000000a002fbb8ca84000002040598"
                         "0402080afccc413b0000000001030307")
    s6, d6 = cap6[8:24], cap6[24:40]
    opts = build_syn_options(mss=1432, wscale=7, sackperm=True, ts=(0xFCCC413B, 0))
    seg = build_tcp(s6, d6, 0xE560, 80, 0xAB0DB014, 0, SYN, 0xFBB8, opts)
    check(build_ipv6(s6, d6, seg, hop_limit=0x3F, flow_label=0x488FF) == cap6,
          "captured IPv6 SYN byte-exact")
    check(parse_options(opts)[0] == ["mss 1432", "sackOK", "TS", "nop", "wscale 7"],
          "IPv6 SYN option list")
    print("ok  captured IPv6 SYN rebuilt byte-exact (TCP csum 0xca84, "
          "options mss,sackOK,TS,nop,wscale)")

    # 5. Option build/parse round trips over every combination.
    combos = 0
    for mss in (None, 536, 1460, 65495):
        for wscale in (None, 0, 7, 14):
            for sackperm in (False, True):
                for ts in (None, (1, 0), (0xFFFFFFFF, 0x12345678)):
                    raw = build_syn_options(mss, wscale, sackperm, ts)
                    check(len(raw) % 4 == 0 and len(raw) <= 40, "options aligned")
                    items, d = parse_options(raw)
                    want = ([f"mss {mss}"] if mss is not None else [])
                    if ts:
                        want += (["sackOK"] if sackperm else ["nop", "nop"]) + ["TS"]
                    elif sackperm:
                        want += ["nop", "nop", "sackOK"]
                    if wscale is not None:
                        want += ["nop", f"wscale {wscale}"]
                    check(items == want, f"option list {items} != {want}")
                    check(d["mss"] == mss and d["wscale"] == wscale
                          and d["sackperm"] == sackperm and d["ts"] == (ts is not None)
                          and (d["tsval"], d["tsecr"]) == (ts or (None, None))
                          and not d["malformed"], f"option dict {d}")
                    combos += 1
    items, d = parse_options(build_ts_option(7, 9))
    check(items == ["nop", "nop", "TS"] and (d["tsval"], d["tsecr"]) == (7, 9), "ACK TS block")
    print(f"ok  option build/parse round trip, {combos} combinations + ACK timestamp block")

    # 6. Parsing of odd options.
    items, d = parse_options(bytes([2, 4, 5, 0xB4, 0, 1, 1, 1]))
    check(items == ["mss 1460", "eol"] and d["mss"] == 1460, "EOL stops parsing")
    check(parse_options(bytes([2, 4, 5]))[0] == ["malformed"], "truncated option")
    check(parse_options(bytes([1, 30, 0]))[0] == ["nop", "malformed"], "length < 2")
    check(parse_options(bytes([30, 4, 0, 0]))[0] == ["opt 30 len 4"], "unknown kind")
    check(parse_options(bytes([2, 3, 0, 1, 1]))[0] == ["opt 2 len 3", "nop", "nop"],
          "MSS with a wrong length")
    items, d = parse_options(bytes([1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9]))
    check(items == ["nop", "nop", "sack 1-9"] and d["sack"] == [[1, 9]], "SACK block")
    print("ok  option parsing: eol, malformed lengths, unknown kinds, SACK blocks")

    # 7. Flags, sequence arithmetic.
    check([flags_str(f) for f in (SYN | ACK, ACK, RST, RST | ACK, FIN | ACK, PSH | ACK)]
          == ["SA", "A", "R", "RA", "FA", "PA"], "flag strings")
    check(seq_add(0xFFFFFFFF, 1) == 0 and seq_add(0xFFFFFFF0, 1 + BAD_COOKIE_DELTA) == 12330,
          "sequence wrap")
    print("ok  flag strings (SA, A, R, RA, FA, PA) and sequence wrap-around")

    # 8. Build -> parse round trips through the IP layer, as the receiver sees them.
    for s, d in ((packed("10.0.1.99"), packed("10.0.1.1")),
                 (packed("fd00:1::99"), packed("fd00:1::1"))):
        opts = build_syn_options(1460, 7, True, (123, 0))
        pkt = build_packet(d, s, build_tcp(d, s, 80, 40000, 0xFFFFFFFF, 0x80000000,
                                           SYN | ACK, 65160, opts))
        if len(s) == 4:
            pkt += b"\0" * 6                                   # Ethernet minimum-size padding
            check(inet_checksum(pkt[:20]) == 0, "IPv4 header verifies")
        p = parse_ip_tcp(pkt)
        check(p is not None and (p.src, p.dst, p.sport, p.dport) == (d, s, 80, 40000),
              "addresses/ports parsed")
        check((p.seq, p.ack, flags_str(p.flags), p.window, p.options, p.payload)
              == (0xFFFFFFFF, 0x80000000, "SA", 65160, opts, b""), "fields parsed")
        seg = pkt[20:20 + 20 + len(opts)] if len(s) == 4 else pkt[40:]
        check(tcp_checksum(d, s, seg) == 0, "TCP checksum verifies")
    # IPv6 with a hop-by-hop extension header in front of TCP.
    seg = build_tcp(d, s, 80, 40000, 1, 2, RST, 0)
    hbh = bytes([IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0])            # next=TCP, len 0, PadN
    v6 = struct.pack("!IHBB16s16s", 6 << 28, len(hbh) + len(seg), 0, 64, d, s) + hbh + seg
    p = parse_ip_tcp(v6)
    check(p is not None and flags_str(p.flags) == "R" and p.seq == 1, "IPv6 hop-by-hop")
    check(parse_ip_tcp(pkt[:30]) is None and parse_ip_tcp(b"") is None, "truncated packets")
    print("ok  IPv4/IPv6 build -> parse round trips (padding, extension header, truncation)")

    # 9. Random flood sources stay inside the network, off network/broadcast addresses.
    rng = random.Random(1)
    for cidr, lo, hi in (("10.0.3.0/24", "10.0.3.1", "10.0.3.254"),
                         ("10.0.3.0/30", "10.0.3.1", "10.0.3.2"),
                         ("10.0.3.7/32", "10.0.3.7", "10.0.3.7"),
                         ("fd00:3::/64", "fd00:3::1", "fd00:3::ffff:ffff:ffff:ffff"),
                         ("fd00:3::/127", "fd00:3::1", "fd00:3::1")):
        net = ipaddress.ip_network(cidr)
        pick = RandomHost(net, rng)
        seen = {ipaddress.ip_address(pick()) for _ in range(2000)}
        check(all(ipaddress.ip_address(lo) <= x <= ipaddress.ip_address(hi) for x in seen),
              f"random host in {cidr}")
    check(len({RandomHost(ipaddress.ip_network("10.0.3.0/24"), rng)() for _ in range(5000)})
          > 200, "random hosts spread over the /24")
    print("ok  random source addresses within CIDR, skipping network/broadcast")

    # 10. BPF program shape: jumps land on the final drop, outgoing frames are dropped.
    for peer in (packed("10.0.1.1"), packed("fd00:1::1")):
        prog = bpf_program(peer)
        drop = len(prog) - 1
        check(prog[drop] == (0x06, 0, 0, 0) and prog[drop - 1][0] == 0x06, "BPF returns")
        check(1 + 1 + prog[1][1] == drop, "BPF outgoing -> drop")
        for i in range(3, drop - 1, 2):
            check(i + 1 + prog[i][2] == drop and prog[i][1] == 0, f"BPF jump at {i}")
        check(bpf_sim(prog, build_packet(peer, packed("10.0.1.99") if len(peer) == 4
                                         else packed("fd00:1::99"), b"x" * 20), 0) > 0,
              "BPF accepts peer")
        other = bytearray(build_packet(peer, peer, b"x" * 20))
        other[15 if len(peer) == 4 else 23] ^= 1                # last byte of the source
        check(bpf_sim(prog, bytes(other), 0) == 0, "BPF drops other sources")
        check(bpf_sim(prog, build_packet(peer, peer, b""), PACKET_OUTGOING) == 0,
              "BPF drops outgoing")
    print("ok  BPF filter: accepts the peer's frames, drops others and outgoing ones")

    print(f"selftest: {checks} checks passed")


def bpf_sim(prog, pkt, pkttype):
    """Tiny interpreter of the instructions bpf_program uses (for selftest only)."""
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == 0x30:                                   # ld b [k]
            acc = pkttype if k == (-0x1000 + 4) & 0xFFFFFFFF else pkt[k]
        elif code == 0x20:                                 # ld w [k]
            acc = int.from_bytes(pkt[k:k + 4], "big")
        elif code == 0x15:                                 # jeq #k
            pc += jt if acc == k else jf
        elif code == 0x06:                                 # ret #k
            return k
        pc += 1


# ---------------------------------------------------------------------------------------
# Command line

def _int_range(lo, hi):
    def conv(text):
        v = int(text, 0)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be in [{lo}, {hi}]")
        return v
    return conv


def _positive_float(text):
    v = float(text)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError("must be a positive number")
    return v


def _nonneg_float(text):
    v = float(text)
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError("must be a non-negative number")
    return v


def _addr(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4/IPv6 address: {text!r}") from None
    return text


def add_syn_option_flags(p):
    g = p.add_argument_group("options of the SYN (none unless asked; layout as Linux sends them)")
    g.add_argument("--mss", type=_int_range(0, 65535), help="MSS option (kind 2) with this value")
    g.add_argument("--wscale", type=_int_range(0, 255),
                   help="window scale option (kind 3), preceded by a NOP")
    g.add_argument("--sackperm", action="store_true", help="SACK-permitted option (kind 4)")
    g.add_argument("--ts", action="store_true",
                   help="timestamps option (kind 8), TSval chosen at random, TSecr 0")


class _Formatter(argparse.HelpFormatter):
    """Wraps every line of a description or epilog on its own, keeping the line breaks."""

    def _fill_text(self, text, width, indent):
        return "\n".join(textwrap.fill(line, width, initial_indent=indent,
                                       subsequent_indent=indent + "    ",
                                       break_long_words=False, break_on_hyphens=False)
                         for line in text.splitlines())


def build_parser():
    p = argparse.ArgumentParser(
        formatter_class=_Formatter,
        description="Raw-socket TCP tool for the SYN-proxy tests, run as root in the client "
                    "namespace. Prints one JSON object; exit 0 = scenario ran, 1 = failure "
                    "explained on stderr, 2 = usage.\n"
                    "handshake and synack-options need the client kernel's RSTs for the "
                    "flow dropped, e.g. iptables -A OUTPUT -p tcp --tcp-flags RST RST "
                    "-d DST --dport DPORT -j DROP (ip6tables for IPv6).")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    conn = argparse.ArgumentParser(add_help=False)
    g = conn.add_argument_group("connection")
    g.add_argument("--iface", required=True, help="interface the replies arrive on")
    g.add_argument("--src", required=True, type=_addr, help="our (source) address")
    g.add_argument("--dst", required=True, type=_addr,
                   help="destination address; its syntax selects IPv4 or IPv6")
    g.add_argument("--dport", required=True, type=_int_range(1, 65535))
    g.add_argument("--sport", type=_int_range(1, 65535),
                   help="source port (default: random in 32768-60999)")
    g.add_argument("--isn", type=_int_range(0, SEQ_MOD - 1),
                   help="sequence number of the SYN (default: random)")
    g.add_argument("--tsval", type=_int_range(1, (1 << 31) - 1000),
                   help="TSval of the SYN with --ts (default: random)")
    g.add_argument("--ecn", action="store_true",
                   help="ECN setup SYN: ECE and CWR set (RFC 3168 6.1.1)")
    g.add_argument("--timeout", type=_positive_float, default=3.0,
                   help="seconds to wait for the SYN-ACK; for handshake also how long "
                        "replies are collected after the last packet sent (default 3)")
    g.add_argument("--deadline", type=_positive_float, default=60.0,
                   help="overall limit of the run in seconds (default 60)")
    add_syn_option_flags(conn)

    h = sub.add_parser(
        "handshake", parents=[conn], formatter_class=_Formatter,
        help="SYN, SYN-ACK, ACK [, keep-alive], then collect replies",
        description="Send a SYN (window 64240, random ISN), wait for the SYN-ACK, send the ACK "
                    "(seq ISN+1, ack cookie+1, window 502, timestamps echoed if the SYN-ACK had "
                    "them), optionally a keep-alive, then report every packet of the flow that "
                    "arrives until --timeout after the last one sent.",
        epilog='JSON: {"family", "sport", "dport", "isn", "syn_tsval", "syn_option_list", '
               '"early": [PKT...], "synack": PKT|null, "ack_sent": SENT|null, '
               '"keepalive_sent": SENT|null, "after": [PKT...] [, "error"]}\n'
               'PKT: {"t", "seq", "ack", "window", "flags", "options": {"mss", "wscale", '
               '"sackperm", "ts", "tsval", "tsecr", "sack", "malformed"}, "option_list": [...], '
               '"payload_len"}\n'
               'SENT: {"t", "seq", "ack", "window", "tsval", "tsecr"}\n'
               '"t" = seconds since the SYN was sent; "early" = packets of the flow that came '
               'instead of the SYN-ACK.')
    h.add_argument("--keepalive-after", type=_nonneg_float, metavar="SECONDS",
                   help="after the ACK, wait this long (still collecting), then send a "
                        "keep-alive: ACK, seq ISN (SND.NXT-1), ack cookie+1, no data")
    h.add_argument("--ack-delta", type=int, default=0, metavar="N",
                   help="acknowledge cookie+1+N (modulo 2**32; N may be negative): to ACK "
                        "the value a SYN-ACK had before a middlebox shifted it")
    h.add_argument("--bad-cookie", action="store_true",
                   help=f"acknowledge cookie+1+{BAD_COOKIE_DELTA} instead of cookie+1")
    h.set_defaults(func=cmd_handshake)

    s = sub.add_parser(
        "synack-options", parents=[conn], formatter_class=_Formatter,
        help="send one SYN and print the SYN-ACK with its options",
        description="Send one SYN and print the SYN-ACK; the handshake is not completed.",
        epilog='JSON: {"family", "sport", "dport", "isn", "syn_tsval", "syn_option_list", '
               '"early", "t", "seq", "ack", "window", "flags", "options": {...}, '
               '"option_list": [...], "payload_len" [, "error"]}\n'
               'options and option_list as in handshake; option_list is in wire order, '
               'e.g. ["mss 1460", "sackOK", "TS", "nop", "wscale 7"].')
    s.set_defaults(func=cmd_synack_options)

    f = sub.add_parser(
        "flood", formatter_class=_Formatter,
        help="send N SYNs from random addresses of a network",
        description="Send --count SYNs from random addresses of --src-net, random source "
                    "ports and ISNs, at most --rate per second (default: as fast as possible).",
        epilog='JSON: {"requested", "sent", "seconds", "pps", "complete", '
               '"errors": {ERRNO: count} [, "error"]}')
    f.add_argument("--src-net", required=True, help="CIDR the source addresses are drawn from")
    f.add_argument("--dst", required=True, type=_addr)
    f.add_argument("--dport", required=True, type=_int_range(1, 65535))
    f.add_argument("--count", required=True, type=_int_range(1, MAX_FLOOD))
    f.add_argument("--rate", type=_positive_float, metavar="PPS",
                   help="at most this many packets per second")
    f.add_argument("--deadline", type=_positive_float, default=600.0,
                   help="overall limit in seconds (default 600); stopping early is a failure")
    add_syn_option_flags(f)
    f.set_defaults(func=cmd_flood)

    t = sub.add_parser("selftest", help="offline checks of checksums and options",
                       formatter_class=_Formatter,
                       description="Check the checksum and option code against known packets; "
                                   "needs no network and no privileges.")
    t.set_defaults(func=None)
    return p


# Key order of the JSON output (keys not listed follow in the order they were set).
KEY_ORDER = ("family", "sport", "dport", "isn", "syn_tsval", "syn_option_list", "early",
             "synack", "ack_sent", "keepalive_sent", "after", "requested", "sent", "seconds",
             "pps", "complete", "errors")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd in ("handshake", "synack-options") and family_of(args.src) != family_of(args.dst):
        parser.error("--src and --dst are not of the same address family")
    if args.cmd == "flood":
        try:
            net = ipaddress.ip_network(args.src_net, strict=False)
        except ValueError as e:
            parser.error(f"--src-net: {e}")
        if net.version != ipaddress.ip_address(args.dst).version:
            parser.error("--src-net and --dst are not of the same address family")
    if args.cmd == "selftest":
        try:
            selftest()
        except AssertionError as e:
            print(f"selftest FAILED: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "handshake" and args.keepalive_after is not None \
            and args.keepalive_after + args.timeout >= args.deadline:
        parser.error("--keepalive-after + --timeout must be below --deadline")
    arm_backstop(args.deadline)
    result = {}
    rc = 0
    try:
        args.func(args, result)
    except (ToolError, OSError) as e:
        msg = str(e) if isinstance(e, ToolError) else f"{type(e).__name__}: {e}"
        result["error"] = msg
        print(f"rawtcp {args.cmd}: {msg}", file=sys.stderr)
        rc = 1
    finally:
        signal.alarm(0)
    ordered = {k: result[k] for k in KEY_ORDER if k in result}
    ordered.update(result)
    print(json.dumps(ordered), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
