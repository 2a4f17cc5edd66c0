#!/usr/bin/env python3
"""Hold the frames an interface receives in a packet socket, unread, then report them.

holdsock.py IFACE PORT GOFILE: binds an AF_PACKET socket (no ring: each frame it takes is a
clone sharing the received packet's data until read), prints "holding", waits until GOFILE
exists (at most 60 s), then reads what it holds and prints the TCP flags of the first frame
to or from PORT ("S", "SA", ...) as "first=FLAGS frames=N", "first=none" if there was none.
"""
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 3
FLAGS = "FSRPAUEC"


def tcp_of(frame):
    """(sport, dport, flags) of an Ethernet frame's TCP segment, or None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 6:
        off = 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and len(frame) >= 54 and frame[20] == 6:
        off = 54
    else:
        return None
    if len(frame) < off + 14:
        return None
    sport, dport = struct.unpack_from("!HH", frame, off)
    return sport, dport, frame[off + 13]


def main():
    iface, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((iface, ETH_P_ALL))
    print("holding", flush=True)
    end = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < end:
        time.sleep(0.05)
    s.setblocking(False)
    first, n = None, 0
    while True:
        try:
            frame, addr = s.recvfrom(65536)
        except BlockingIOError:
            break
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        t = tcp_of(frame)
        if t is None or port not in t[:2]:
            continue
        n += 1
        if first is None:
            first = "".join(c for i, c in enumerate(FLAGS) if t[2] & (1 << i))
    print(f"first={first or 'none'} frames={n}", flush=True)


if __name__ == "__main__":
    main()
