#!/usr/bin/env python3
"""TCP windows on the wire, for the backend option mismatch tests (Python 3.11, stdlib only).

Reads the raw header bytes of classic pcap files (snap length may cut the payload: lengths
come from the IP header).

  windows.py wscale --port P PCAP
      The window scale of the first SYN to port P and of the first SYN-ACK from it, as
      announced on the wire: {"syn": N|null, "synack": N|null} (null: no option; absent
      packet: exit 1).
  windows.py compare --port P --bws B --aws A [--identity] CLIENT.pcap BACKEND.pcap
      The segments from port P (but SYN-ACKs) as the backend sent them and as the client
      got them, matched in order by acknowledgment number, and sequence number and TSval
      shifted by the connection's constant offsets (either capture may miss segments). Each client window must be
      min((backend window << B) >> A, 65535) (--identity: equal, as SYNPROXY leaves it).
      The proxy's window update (its first segment to the client, no backend
      counterpart) must carry min(((SYN-ACK window >> B) << B) >> A, 65535) (--identity:
      SYN-ACK window >> B). Prints one JSON line: matched, changed (client window differs
      from the backend's), bad (first five wrong ones), the window update, and the largest
      window the client believes (window << A) against the largest the backend offers
      (window << B), in bytes. Exit 1 if any is wrong or fewer than 10 matched.
  windows.py report --port P --bws B --aws A [--identity] CLIENT.pcap BACKEND.pcap
      All of it for one run in one JSON line: {"compare": …, "flow": (of CLIENT.pcap),
      "backend": (wscale of BACKEND.pcap), "client": (wscale of CLIENT.pcap)}; exit 1 as
      compare, or if a capture lacks its SYN or SYN-ACK.
  windows.py flow --port P PCAP
      The data segments to port P: bytes, retransmitted segments (ending at or before the
      highest sequence sent before), seconds from the first to the last; one JSON line.
"""
import argparse
import collections
import json
import os
import struct
import sys


def read_pcap(path, times=None):
    """IP packets of a classic pcap file, as bytes (capture timestamps appended to `times`).
    Not wire.py's reader: its import of rawtcp.py costs seconds of startup under TCG."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, want Ethernet")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl = struct.unpack(endian + "III", data[off:off + 12])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) >= 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
            out.append(frame[14:])
            if times is not None:
                times.append(sec + frac / (1e9 if nano else 1e6))
    return out

SYN, ACK = 0x02, 0x10
MOD = 1 << 32


class Seg:
    __slots__ = ("sport", "dport", "seq", "ack", "flags", "win", "plen", "wscale", "tsval")


def parse(raw):
    """The TCP header fields of an IP packet, from what the capture kept; None if not TCP."""
    if not raw:
        return None
    v = raw[0] >> 4
    if v == 4 and len(raw) >= 20:
        ihl = (raw[0] & 0xF) * 4
        if raw[9] != 6:
            return None
        total = struct.unpack("!H", raw[2:4])[0]
        t = raw[ihl:]
        iplen = total - ihl
    elif v == 6 and len(raw) >= 40:
        if raw[6] != 6:
            return None
        t = raw[40:]
        iplen = struct.unpack("!H", raw[4:6])[0]
    else:
        return None
    if len(t) < 20:
        return None
    s = Seg()
    s.sport, s.dport, s.seq, s.ack = struct.unpack("!HHII", t[:12])
    doff = (t[12] >> 4) * 4
    s.flags = t[13]
    s.win = struct.unpack("!H", t[14:16])[0]
    s.plen = max(iplen - doff, 0)
    s.wscale = s.tsval = None
    opts, i = t[20:doff], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if kind == 3 and opts[i + 1] == 3 and i + 2 < len(opts):
            s.wscale = opts[i + 2]
        if kind == 8 and opts[i + 1] == 10 and i + 6 <= len(opts):
            s.tsval = struct.unpack("!I", opts[i + 2:i + 6])[0]
        i += opts[i + 1]
    return s


def segs(path):
    out = []
    for raw in read_pcap(path):
        s = parse(raw)
        if s is not None:
            out.append(s)
    return out


def announced(path, port):
    """{"syn": wscale, "synack": wscale} of the first SYN and SYN-ACK; None if one is missing."""
    out = {}
    for s in segs(path):
        if s.flags & (SYN | ACK) == SYN and s.dport == port:
            out.setdefault("syn", s.wscale)
        if s.flags & (SYN | ACK) == SYN | ACK and s.sport == port:
            out.setdefault("synack", s.wscale)
    return out if len(out) == 2 else None


def wscale(args):
    out = announced(args.pcap, args.port)
    print(json.dumps(out))
    return 0 if out else 1


def translate(win, bws, aws):
    return min((win << bws) >> aws, 0xFFFF)


def compare(args):
    out = windows(args)
    print(json.dumps(out))
    return 0 if out.get("ok") else 1


def windows(args):
    def from_port(path):
        return [s for s in segs(path) if s.sport == args.port]

    cli, bak = from_port(args.client), from_port(args.backend)
    synacks = [s for s in bak if s.flags & SYN]
    if not synacks:
        return {"error": "no backend SYN-ACK in the backend capture"}
    synack = synacks[0]
    cli = [s for s in cli if not s.flags & SYN]
    bak = [s for s in bak if not s.flags & SYN]
    if not cli:
        return {"error": "nothing from the backend in the client capture"}
    # The window update: the first segment to the client, acknowledging what the backend's
    # SYN-ACK acknowledged.
    wupd = cli[0]
    base = synack.win >> args.bws
    want_wupd = base if args.identity else translate(base, args.bws, args.aws)
    # The proxy shifts the sequence numbers and the TSvals of this direction by constants:
    # the most common difference between segments acknowledging the same byte.
    def diff(c, b):
        ts = None if c.tsval is None or b.tsval is None else (c.tsval - b.tsval) % MOD
        return ((c.seq - b.seq) % MOD, ts)

    first = collections.defaultdict(list)
    for b in bak[:400]:
        first[b.ack].append(b)
    votes = collections.Counter(diff(c, b) for c in cli[1:400] for b in first.get(c.ack, ()))
    if not votes:
        return {"error": "no segment of the backend's in both captures"}
    shift = votes.most_common(1)[0][0]
    # Both captures list the same segments in the same order, but either may have lost some
    # (tcpdump under TCG): match each client segment with the next backend one of the same
    # acknowledgment, shifted sequence number and shifted TSval.
    # Segments alike in all but the window (window updates: same sequence number,
    # acknowledgment and TSval) may cross each other on the proxy's CPUs: among those, the
    # one whose translated window the client got is its match.
    def want_of(b):
        return b.win if args.identity else translate(b.win, args.bws, args.aws)

    matched = changed = 0
    bad = []
    believed = offered = 0
    j = 0
    used = set()
    for s in cli[1:]:
        cands = [k for k in range(j, min(j + 200, len(bak)))
                 if k not in used and bak[k].ack == s.ack and diff(s, bak[k]) == shift]
        if not cands:
            continue
        first_k = cands[0]
        alike = [k for k in cands[:8]
                 if bak[k].seq == bak[first_k].seq and bak[k].tsval == bak[first_k].tsval]
        k = next((k for k in alike if want_of(bak[k]) == s.win), first_k)
        used.add(k)
        # Backend segments before the first candidate are ones the client capture lost.
        j = first_k + 1 if k == first_k else first_k
        while j in used:
            j += 1
        b = bak[k]
        matched += 1
        want = want_of(b)
        if s.win != b.win:
            changed += 1
        if s.win != want and len(bad) < 5:
            bad.append({"ack": s.ack, "backend": b.win, "client": s.win, "want": want})
        elif s.win != want:
            bad.append(None)
        believed = max(believed, s.win << args.aws)
        offered = max(offered, b.win << args.bws)
    nbad = len(bad)
    out = {
        "matched": matched,
        "changed": changed,
        "wrong": nbad,
        "bad": [b for b in bad if b][:5],
        "wupd": wupd.win,
        "wupd_want": want_wupd,
        "believed_max": believed,
        "offered_max": offered,
    }
    out["ok"] = nbad == 0 and matched >= 10 and wupd.win == want_wupd
    return out


def flow(args):
    print(json.dumps(flow_of(args.pcap, args.port)))
    return 0


def flow_of(path, port):
    times = []
    raws = read_pcap(path, times)
    high = None
    nbytes = retrans = segsn = 0
    first = last = None
    for raw, t in zip(raws, times):
        s = parse(raw)
        if s is None or s.dport != port or s.plen == 0 or s.flags & SYN:
            continue
        end = (s.seq + s.plen) % (1 << 32)
        segsn += 1
        if high is not None and (end == high or (end - high) % (1 << 32) >= 1 << 31):
            retrans += 1
        else:
            nbytes += s.plen if high is None else (end - high) % (1 << 32)
            high = end
        first = t if first is None else first
        last = t
    return {"bytes": nbytes, "segments": segsn, "retransmitted": retrans,
            "seconds": round((last or 0) - (first or 0), 3)}


def report(args):
    """Everything a test asks of one run, in one process (a start costs seconds under TCG)."""
    out = {"compare": windows(args), "flow": flow_of(args.client, args.port),
           "backend": announced(args.backend, args.port), "client": announced(args.client, args.port)}
    print(json.dumps(out))
    return 0 if out["compare"].get("ok") and out["backend"] and out["client"] else 1


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    w = sp.add_parser("wscale")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("pcap")
    c = sp.add_parser("compare")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--bws", type=int, required=True)
    c.add_argument("--aws", type=int, required=True)
    c.add_argument("--identity", action="store_true")
    c.add_argument("client")
    c.add_argument("backend")
    r = sp.add_parser("report")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--bws", type=int, required=True)
    r.add_argument("--aws", type=int, required=True)
    r.add_argument("--identity", action="store_true")
    r.add_argument("client")
    r.add_argument("backend")
    f = sp.add_parser("flow")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("pcap")
    args = ap.parse_args(argv)
    return {"wscale": wscale, "compare": compare, "flow": flow, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
