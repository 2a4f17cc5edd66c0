#!/usr/bin/env python3
"""What a capture shows, in terms two proxies can be compared by (Python 3.11, stdlib only).

  wire.py conns --port P CLIENT.pcap [BACKEND.pcap]
      One block of lines per connection to port P, in the order of the client's SYNs:
        conn N synack: the proxy's SYN-ACK as the client saw it
        conn N wupd:   the first packet to the client after it (the proxy's window update)
        conn N bsyn:   the proxy's SYN as the backend saw it        (with BACKEND.pcap)
        conn N bfin:   the proxy's ACK that completes the backend handshake (ditto)
        conn N tsecr:  echoed | echo+tsoff | none | other(...)   (forward mode: needs the
                       backend's SYN-ACK in BACKEND.pcap)
        conn N rst:    the RSTs the client got, seq relative to the SYN-ACK's (synack+K)
      Numbers that differ per connection (ISNs, cookies, timestamps) are written as their
      relation to earlier packets of the same connection (e.g. "ack=syn+1", "ecr=ack3",
      "val=cookie/23": a timestamp cookie whose low 6 bits are 23), so the lines of two runs
      are equal exactly when the packets are the same up to those per-connection numbers.
      A packet the connection must have and that is missing is an error (exit 1).
  wire.py synacks R1.json C.json R2.json
      Each file holds the JSON lines of `rawtcp.py synack-options` for the same SYNs, in the
      same order, sent to RSYNPROXY, then SYNPROXY, then RSYNPROXY again (each SYN identical:
      same ports, ISN, TSval). Compares the SYN-ACKs byte for byte, IP header on: only the
      TSval's high 26 bits may differ (they are the millisecond clock; the low 6 carry the
      options). The TCP checksum is compared as it is and must be either complete and valid
      ("full") or the pseudo-header sum left for the device ("partial": CHECKSUM_PARTIAL, as
      a veth delivers it); each SYN's line shows the three kinds. The cookie depends on
      a minute counter: C must equal R1 or R2, and R1 must equal R2 unless a minute boundary
      passed (then C equals one of them). Exit 1 on any other difference.
  wire.py reopen --port P CLIENT.pcap BACKEND.pcap
      Two connections from one client port (the second reopening the first's conntrack
      entry): where the ACK that completes the second backend handshake points. Prints
      final-ack=bsynack+1 (right), final-ack=bsynack+1-(cookie1-bsynack1) (translated with
      the first connection's sequence offset, as C leaves it), -(cookie1+1) (the offset of
      a RST answering the first SYN), another offset, or none.
  wire.py pcap FILE   every TCP packet of a capture as a JSON line (for debugging)
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawtcp import (ACK, RST, SYN, flags_str, inet_checksum, parse_ip_tcp,  # noqa: E402
                    parse_options, pseudo_header)

MOD = 1 << 32


class WireError(Exception):
    pass


# --- pcap -------------------------------------------------------------------------------

def read_pcap(path):
    """IP packets of a classic pcap file (what tcpdump -w writes), as a list of bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise WireError(f"{path}: empty capture ({len(data)} bytes)")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise WireError(f"{path}: not a pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = link_payload(linktype, frame)
        if ip is not None:
            out.append(ip)
    return out


def link_payload(linktype, frame):
    if linktype == 1:                                  # Ethernet (veth, lo)
        proto, off = struct.unpack("!H", frame[12:14])[0], 14
        while proto in (0x8100, 0x88A8) and len(frame) >= off + 4:
            proto, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
        return frame[off:] if proto in (0x0800, 0x86DD) else None
    if linktype == 113:                                # Linux cooked v1
        return frame[16:] if struct.unpack("!H", frame[14:16])[0] in (0x0800, 0x86DD) else None
    if linktype == 276:                                # Linux cooked v2
        return frame[20:] if struct.unpack("!H", frame[0:2])[0] in (0x0800, 0x86DD) else None
    if linktype in (12, 101):                          # raw IP
        return frame
    raise WireError(f"unsupported link type {linktype}")


def tcp_packets(path):
    pkts = []
    for raw in read_pcap(path):
        p = parse_ip_tcp(raw)
        if p is not None:
            p.opts = parse_options(p.options)
            pkts.append(p)
    return pkts


# --- relations ----------------------------------------------------------------------------

def rel(value, cands, near=1 << 16):
    """value as NAME, NAME+K or NAME-K for the closest named value (|K| < near), else '?'."""
    best = None
    for name, v in cands:
        if v is None:
            continue
        d = (value - v) % MOD
        k = d if d < MOD // 2 else d - MOD
        if abs(k) < near and (best is None or abs(k) < abs(best[1])):
            best = (name, k)
    if best is None:
        return "?"
    name, k = best
    return name if k == 0 else f"{name}{k:+d}"


def exact(value, cands):
    for name, v in cands:
        if v is not None and v == value:
            return name
    return None


def ts(p):
    d = p.opts[1]
    return (d["tsval"], d["tsecr"]) if d["ts"] else (None, None)


def opts_desc(p, val_cands, ecr_cands, cookie_val=False):
    items = []
    for item in p.opts[0]:
        if item == "TS":
            val, ecr = ts(p)
            v = exact(val, val_cands)
            if v is None:
                v = f"cookie/{val & 63}" if cookie_val else "?"
            if ecr_cands is None:
                e = "*"      # reported on a line of its own
            else:
                e = exact(ecr, ecr_cands) or ("0" if ecr == 0 else "?")
            item = f"TS val={v} ecr={e}"
        items.append(item)
    return "[" + ",".join(items) + "]"


def desc(p, seq_c, ack_c, val_c, ecr_c, win_c=(), cookie_val=False):
    win = f"{p.window}"
    w = exact(p.window, win_c)
    if w:
        win += f"(={w})"
    return (f"flags={flags_str(p.flags)} win={win} seq={rel(p.seq, seq_c)} "
            f"ack={rel(p.ack, ack_c)} len={len(p.payload)} opts={opts_desc(p, val_c, ecr_c, cookie_val)}")


def segment(pkts, to_srv, to_cli, isn):
    """The packets of one connection: from the SYN with this ISN (client or proxy SYN) to the
    next SYN with another ISN on the same ports."""
    out, inside = [], False
    for p in pkts:
        if not (to_srv(p) or to_cli(p)):
            continue
        if to_srv(p) and p.flags & (SYN | ACK) == SYN:
            inside = p.seq == isn
        if inside:
            out.append(p)
    return out


# --- conns --------------------------------------------------------------------------------

def conns(port, client_pcap, backend_pcap=None):
    cp = tcp_packets(client_pcap)
    bp = tcp_packets(backend_pcap) if backend_pcap else None
    if not cp:
        raise WireError(f"{client_pcap}: no TCP packet")
    if bp is not None and not bp:
        raise WireError(f"{backend_pcap}: no TCP packet")
    # Connections: the client's SYNs to the port, in order; a SYN with a new ISN from a
    # port already seen starts a new connection (retransmissions are folded in).
    order, seen = [], set()
    for p in cp:
        if p.dport == port and p.flags & (SYN | ACK) == SYN and (p.src, p.sport, p.seq) not in seen:
            seen.add((p.src, p.sport, p.seq))
            order.append((p.src, p.sport, p.seq))
    if not order:
        raise WireError(f"{client_pcap}: no SYN to port {port}")
    lines = []
    for n, (caddr, cport, isn) in enumerate(order, 1):
        def to_srv(p):
            return p.src == caddr and p.sport == cport and p.dport == port

        def to_cli(p):
            return p.dst == caddr and p.dport == cport and p.sport == port

        c = segment(cp, to_srv, to_cli, isn)
        syn = c[0]
        i_sa = next((i for i, p in enumerate(c) if to_cli(p) and p.flags & (SYN | ACK) == SYN | ACK), None)
        if i_sa is None:
            raise WireError(f"conn {n}: no SYN-ACK in {client_pcap}")
        sa = c[i_sa]
        ack3 = next((p for p in c[i_sa + 1:] if to_srv(p) and p.flags & (SYN | ACK | RST) == ACK), None)
        wupd = next((p for p in c[i_sa + 1:] if to_cli(p) and not p.flags & SYN), None)
        syn_v, _ = ts(syn)
        sa_v, _ = ts(sa)
        a3_v = ts(ack3)[0] if ack3 else None
        s_seq = [("syn", syn.seq)]
        lines.append(f"conn {n} synack: " + desc(sa, [("cookie", sa.seq)], s_seq, [], [("syn", syn_v)],
                                                 cookie_val=True))
        rsts = [p for p in c[i_sa + 1:] if to_cli(p) and p.flags & RST]
        lines.append(f"conn {n} rst: " + (" ".join(rel(p.seq, [("synack", sa.seq)], near=MOD // 2)
                                                   for p in rsts) or "none"))
        if ack3 is None:
            lines.append(f"conn {n} wupd: no ACK from the client")
        elif wupd is None:
            lines.append(f"conn {n} wupd: none")
        else:
            lines.append(f"conn {n} wupd: " + desc(wupd, [("synack", sa.seq)], s_seq,
                                                   [("synack", sa_v), ("ack3", a3_v)],
                                                   [("ack3", a3_v), ("syn", syn_v)]))
        if bp is None:
            continue
        b = segment(bp, to_srv, to_cli, isn)
        i_bs = next((i for i, p in enumerate(b) if to_srv(p) and p.flags & (SYN | ACK) == SYN), None)
        if i_bs is None:
            lines.append(f"conn {n} bsyn: none")
            continue
        bsyn = b[i_bs]
        lines.append(f"conn {n} bsyn: " + desc(bsyn, s_seq, [("synack", sa.seq)],
                                               [("ack3", a3_v), ("syn", syn_v)], [("synack", sa_v)],
                                               win_c=[("ack3", ack3.window if ack3 else None)]))
        i_bsa = next((i for i, p in enumerate(b) if i > i_bs and to_cli(p)
                      and p.flags & (SYN | ACK) == SYN | ACK), None)
        bsa = b[i_bsa] if i_bsa is not None else None
        start = i_bsa if i_bsa is not None else i_bs
        bfin = next((p for p in b[start + 1:] if to_srv(p) and p.flags & (SYN | ACK | RST) == ACK), None)
        if bfin is None:
            lines.append(f"conn {n} bfin: none")
            continue
        bsa_seq = bsa.seq if bsa else None
        bsa_v = ts(bsa)[0] if bsa else None
        # Its TSecr is the tsecr line. In INPUT mode the backend's SYN-ACK is stolen before
        # any wire: the ack is then "?".
        lines.append(f"conn {n} bfin: " + desc(bfin, s_seq, [("bsynack", bsa_seq)],
                                               [("ack3", a3_v)], None))
        if bsa is None:
            lines.append(f"conn {n} tsecr: no backend SYN-ACK captured")
            continue
        _, bfin_ecr = ts(bfin)
        if bsa_v is None and bfin_ecr is None:
            lines.append(f"conn {n} tsecr: none")
        elif bsa_v is None or bfin_ecr is None:
            lines.append(f"conn {n} tsecr: other(backend val {bsa_v}, ecr {bfin_ecr})")
        else:
            its = ts(bsyn)[1]
            tsoff = (bsa_v - its) % MOD if its is not None else None
            if bfin_ecr == bsa_v:
                lines.append(f"conn {n} tsecr: echoed")
            elif tsoff is not None and bfin_ecr == (bsa_v + tsoff) % MOD:
                lines.append(f"conn {n} tsecr: echo+tsoff")
            else:
                lines.append(f"conn {n} tsecr: other(val {bsa_v} ecr {bfin_ecr} its {its})")
    return lines


# --- reopen -------------------------------------------------------------------------------

def reopen(port, client_pcap, backend_pcap):
    """Two connections from the same client port: where the ACK completing the second backend
    handshake points, relative to the backend's ISN + 1 and to the first cookie."""
    cp, bp = tcp_packets(client_pcap), tcp_packets(backend_pcap)
    syns = []
    for p in cp:
        if p.dport == port and p.flags & (SYN | ACK) == SYN and p.seq not in [s.seq for s in syns]:
            syns.append(p)
    if len(syns) != 2 or syns[0].sport != syns[1].sport:
        raise WireError(f"want two connections from one port, got SYNs {[(s.sport, s.seq) for s in syns]}")
    caddr, cport = syns[0].src, syns[0].sport

    def to_srv(p):
        return p.src == caddr and p.sport == cport and p.dport == port

    def to_cli(p):
        return p.dst == caddr and p.dport == cport and p.sport == port

    c1 = segment(cp, to_srv, to_cli, syns[0].seq)
    sa1 = next((p for p in c1 if to_cli(p) and p.flags & (SYN | ACK) == SYN | ACK), None)
    if sa1 is None:
        raise WireError("no SYN-ACK for the first connection")
    b1 = segment(bp, to_srv, to_cli, syns[0].seq)
    bsa1 = next((p for p in b1 if to_cli(p) and p.flags & (SYN | ACK) == SYN | ACK), None)
    b2 = segment(bp, to_srv, to_cli, syns[1].seq)
    bsa = next((p for p in b2 if to_cli(p) and p.flags & (SYN | ACK) == SYN | ACK), None)
    if bsa is None:
        return "final-ack=none(no backend SYN-ACK)" if b2 else "final-ack=none(no backend SYN)"
    fin = next((p for p in b2[b2.index(bsa) + 1:] if to_srv(p) and p.flags & (SYN | ACK | RST) == ACK), None)
    if fin is None:
        return "final-ack=none"
    d = (fin.ack - (bsa.seq + 1)) % MOD
    if d == 0:
        return "final-ack=bsynack+1"
    # The first connection's sequence offset: its cookie minus its backend's ISN.
    if bsa1 is not None and d == -(sa1.seq - bsa1.seq) % MOD:
        return "final-ack=bsynack+1-(cookie1-bsynack1)"
    if d == -(sa1.seq + 1) % MOD:
        return "final-ack=bsynack+1-(cookie1+1)"
    return f"final-ack=bsynack+1+{d}"


# --- synacks ------------------------------------------------------------------------------

def tcp_offset(raw):
    return (raw[0] & 0x0F) * 4 if raw[0] >> 4 == 4 else 40


def addrs(raw):
    return (raw[12:16], raw[16:20]) if raw[0] >> 4 == 4 else (raw[8:24], raw[24:40])


def tsval_offset(raw):
    t = tcp_offset(raw)
    end = t + (raw[t + 12] >> 4) * 4
    i = t + 20
    while i < end:
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or raw[i + 1] < 2:
            break
        if kind == 8 and raw[i + 1] == 10:
            return i + 2
        i += raw[i + 1]
    return None


def checksum_kind(raw):
    """'full' (valid complete checksum) or 'partial' (pseudo-header sum), else 'bad:XXXX'."""
    t = tcp_offset(raw)
    seg = raw[t:]
    src, dst = addrs(raw)
    if inet_checksum(pseudo_header(src, dst, len(seg)) + seg) == 0:
        return "full"
    field = struct.unpack("!H", seg[16:18])[0]
    # ~tcp_v4_check(len, saddr, daddr, 0): the folded pseudo-header sum, not complemented.
    if field == (~inet_checksum(pseudo_header(src, dst, len(seg))) & 0xFFFF):
        return "partial"
    return f"bad:{field:04x}"


def masked(raw):
    """The packet with the TSval's high 26 bits (the clock) zeroed. The checksum stays: both
    targets leave it to the device, so it is the pseudo-header sum, the same for both."""
    b = bytearray(raw)
    o = tsval_offset(raw)
    if o is not None:
        v = struct.unpack("!I", b[o:o + 4])[0] & 0x3F
        b[o:o + 4] = struct.pack("!I", v)
    return bytes(b)


def diff_bytes(a, b):
    if len(a) != len(b):
        return f"lengths {len(a)} and {len(b)}"
    d = [f"@{i}: {x:02x}/{y:02x}" for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return ", ".join(d[:12])


def synacks(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append([json.loads(line) for line in f if line.strip()])
    r1, c, r2 = runs
    if not (len(r1) == len(c) == len(r2)) or not r1:
        raise WireError(f"SYN-ACK counts differ or are zero: {len(r1)} {len(c)} {len(r2)}")
    bad = 0
    for i, (a, x, z) in enumerate(zip(r1, c, r2), 1):
        for name, o in (("RSYNPROXY", a), ("SYNPROXY", x), ("RSYNPROXY again", z)):
            if o.get("error") or not o.get("raw"):
                raise WireError(f"SYN {i} to {name}: {o.get('error', 'no SYN-ACK')}")
        ra, rc, rz = (bytes.fromhex(o["raw"]) for o in (a, x, z))
        kinds = [checksum_kind(r) for r in (ra, rc, rz)]
        ma, mc, mz = masked(ra), masked(rc), masked(rz)
        what = f"SYN {i} ({' '.join(x['syn_option_list']) or 'no options'}): "
        if any(k.startswith("bad") for k in kinds):
            print(what + f"bad checksum: RSYNPROXY {kinds[0]}, SYNPROXY {kinds[1]}, again {kinds[2]}")
            bad += 1
        elif mc == ma or mc == mz:
            boundary = "" if ma == mz else " (a minute boundary passed between the RSYNPROXY runs)"
            tslow = x['options']['tsval'] & 63 if x['options']['ts'] else '-'
            print(what + f"identical: flags={x['flags']} opts=[{','.join(x['option_list'])}] "
                  f"tslow={tslow} csum={'/'.join(kinds)} (cookie {x['seq']:#010x}{boundary})")
        else:
            print(what + f"SYNPROXY differs from RSYNPROXY: {diff_bytes(ma, mc)}\n"
                  f"  RSYNPROXY {ra.hex()}\n  SYNPROXY  {rc.hex()}\n  again     {rz.hex()}")
            bad += 1
    return bad == 0


def main(argv):
    try:
        if len(argv) >= 3 and argv[0] == "conns" and argv[1] == "--port":
            print("\n".join(conns(int(argv[2]), *argv[3:5])))
            return 0
        if len(argv) == 5 and argv[0] == "reopen" and argv[1] == "--port":
            print(reopen(int(argv[2]), argv[3], argv[4]))
            return 0
        if len(argv) == 4 and argv[0] == "synacks":
            return 0 if synacks(argv[1:]) else 1
        if len(argv) == 2 and argv[0] == "pcap":
            for p in tcp_packets(argv[1]):
                print(json.dumps({"src": p.src.hex(), "dst": p.dst.hex(), "sport": p.sport,
                                  "dport": p.dport, "seq": p.seq, "ack": p.ack,
                                  "flags": flags_str(p.flags), "window": p.window,
                                  "options": p.opts[0], "len": len(p.payload)}))
            return 0
    except (WireError, OSError, StopIteration) as e:
        print(f"wire.py: {e or type(e).__name__}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
