#!/usr/bin/env python3
"""Traffic for bond-dp's testbed tests, only between the test's own namespaces.

  flows.py send DST_IP --flows N --per-flow K [--port BASE]
      N UDP flows (source ports BASE.., to destination port BASE+1000: many clients, one
      service) of K datagrams each.
  flows.py capture IFACE [IFACE...] --seconds S --port BASE
      Frames received on the interfaces (not the ones they send) that belong to the test's
      flows, one JSON object per line: {"iface": ..., "hex": ...}.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time


def send(args):
    for f in range(args.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", args.port + f))
        for _ in range(args.per_flow):
            s.sendto(b"bond-dp-test" * 4, (args.dst, args.port + 1000))
            time.sleep(args.gap)
        s.close()


def capture(args):
    socks = {}
    for iface in args.ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.bind((iface, 0))
        s.setblocking(False)
        socks[s] = iface
    print(json.dumps({"ready": True}), flush=True)
    end = time.time() + args.seconds
    lo, hi = args.port + 1000, args.port + 1000 + 10000
    while time.time() < end:
        ready, _, _ = select.select(list(socks), [], [], 0.05)
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:
                    # ENETDOWN and the like on a member whose cable the test pulled.
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                # IPv4/UDP to the test's destination ports only.
                if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
                    continue
                ihl = (frame[14] & 0xF) * 4
                dport = struct.unpack_from("!H", frame, 14 + ihl + 2)[0]
                if lo <= dport < hi:
                    print(json.dumps({"iface": socks[s], "hex": frame.hex()}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("dst")
    s.add_argument("--flows", type=int, default=32)
    s.add_argument("--per-flow", type=int, default=4)
    s.add_argument("--port", type=int, default=20000)
    s.add_argument("--gap", type=float, default=0.0005)
    c = sub.add_parser("capture")
    c.add_argument("ifaces", nargs="+")
    c.add_argument("--seconds", type=float, default=5)
    c.add_argument("--port", type=int, default=20000)
    args = ap.parse_args()
    send(args) if args.cmd == "send" else capture(args)


if __name__ == "__main__":
    sys.exit(main())
