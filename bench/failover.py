#!/usr/bin/env python3
"""The failover benchmark: frames lost when the active member of an active-backup bond loses
carrier, with bond-dp's fast carrier watch against polling every miimon ms (the kernel's way).

tcpreplay sends 60-byte UDP frames at an exact rate (100,000 frames/s) from h0 into the bond's
access port a0; the bond (active-backup, miimon=100) sends them out of m0 or m1, and an XDP
sink counts them on p0 and p1. Halfway through, p0 goes down: m0 loses carrier. Lost frames =
frames sent - frames counted. A run without failover checks that nothing is lost otherwise.

Topology and helpers are the end-to-end benchmark's (bench/e2e.py). Run as root, through
bench/failover.sh.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import e2e
from e2e import NS, in_ns, sh, stop

PPS = 100_000
PCAP = f"/tmp/{e2e.PREFIX}-flows.pcap"


def run(carrier_watch, seconds, fail, binary=e2e.BOND_DP, probe=None):
    """Frames sent and frames counted at the sinks in one run. A `probe`
    (bench/failover_probe.py) gets the daemon's debug log and hears when the traffic starts,
    around p0 going down, and the sink's counts."""
    sh(f"ip -n {NS['p']} link set p0 up")
    daemon = e2e.bond_dp_daemon("mode=active-backup,miimon=100,primary=m0",
                                ["--carrier-watch", carrier_watch], binary=binary,
                                log_level="debug" if probe else "warn",
                                log=probe.log if probe else None)
    try:
        time.sleep(0.5)
        # The sink counts from the start to well after the last frame.
        sink = subprocess.Popen(
            in_ns("p", [e2e.E2E, "sink", "--ifaces", "p0,p1", "--warmup", "0",
                        "--seconds", str(seconds + 2)]),
            stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        if probe:
            probe.starting()
        loops = int(PPS * seconds / 1024)
        replay = subprocess.Popen(
            in_ns("h", ["tcpreplay", "-i", "h0", f"--pps={PPS}", f"--loop={loops}", "-q",
                        PCAP]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if fail:
            time.sleep(seconds / 2)
            if probe:
                probe.going_down()
            sh(f"ip -n {NS['p']} link set p0 down")
            if probe:
                probe.down()
        out, _ = replay.communicate(timeout=seconds * 3 + 10)
        m = re.search(r"Actual: (\d+) packets", out)
        if not m:
            raise RuntimeError(f"tcpreplay printed nothing usable: {out!r}")
        sent = int(m.group(1))
        counted, _ = sink.communicate(timeout=30)
        received = sum(int(n) for n in re.findall(r"^p\d (\d+)$", counted, re.M))
        if probe:
            probe.counted(counted)
        return sent, received
    finally:
        stop(daemon)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="sending time per run")
    ap.add_argument("--baseline", metavar="BOND_DP",
                    help="another build of bond-dp, run with the fast carrier watch as well")
    args = ap.parse_args()
    sh(f"{e2e.E2E} pcap --out {PCAP} --flows 1024")
    paths = [("fast", "carrier watch fast (link notifications + a look every 0.25 ms), miimon=100"),
             ("miimon", "carrier watch miimon: a poll every 100 ms, as the kernel's bond")]
    if args.baseline:
        paths.append(("baseline", f"baseline {args.baseline}, carrier watch fast"))
    lost = {p: [] for p, _ in paths}
    baseline = []
    e2e.testbed_up()
    try:
        for r in range(args.rounds):
            sent, received = run("fast", args.seconds, fail=False)
            baseline.append(sent - received)
            print(f"round {r + 1} no failover     sent {sent} lost {sent - received}", flush=True)
            for path, _ in paths:
                if path == "baseline":
                    sent, received = run("fast", args.seconds, True, binary=args.baseline)
                else:
                    sent, received = run(path, args.seconds, fail=True)
                lost[path].append(sent - received)
                print(f"round {r + 1} {path:14} sent {sent} lost {sent - received}", flush=True)
    finally:
        e2e.testbed_down()
        os.unlink(PCAP)

    print(f"\n{args.rounds} rounds; {PPS} frames/s for {args.seconds:g} s; the active member "
          "loses carrier halfway.\n")
    print("| path | frames lost (median) | runs | outage (median) |")
    print("|---|---|---|---|")
    for path, name in paths:
        runs = lost[path]
        med = statistics.median(runs)
        print(f"| {name} | {med:.0f} | {', '.join(map(str, runs))} | "
              f"{med / PPS * 1000:.2f} ms |")
    print(f"| no failover (control) | {statistics.median(baseline):.0f} | "
          f"{', '.join(map(str, baseline))} | - |")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("failover.py: needs root (namespaces, XDP)")
    main()
