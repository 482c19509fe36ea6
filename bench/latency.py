#!/usr/bin/env python3
"""Round-trip latency through bond-dp's TAP against a plain veth pair (issue 13).

Pings from the bond's namespace to the peer through bond0 (active-backup over two veth
members, release build), and the same across a plain veth pair, at two paces: one ping every
200 ms (each one finds the bond idle: what the first frame after a quiet spell costs) and one
every millisecond (a busy bond). Reports p50, p99 and the worst round trip of each; with
--baseline, another bond-dp build is measured in the same run. Root.
"""
import argparse
import os
import re
import statistics
import sys

from tapbed import BOND_DP, sh, tap_bond, veth_pair

PREFIX = f"bdplat{os.getpid()}"


def rtts(ns, target, count, interval):
    out = sh(f"ip netns exec {ns} ping -n -c {count} -i {interval} -W 1 {target}",
             check=False).stdout
    return [float(t) * 1000 for t in re.findall(r"time=([\d.]+) ms", out)]


def summary(samples):
    s = sorted(samples)
    if not s:
        return "no answers"
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return f"{statistics.median(s):.0f} | {p(0.99):.0f} | {s[-1]:.0f} | {len(s)}"


def measure_bond(binary, paces):
    with tap_bond(PREFIX, binary, "mode=active-backup,miimon=100"):
        return {pace: rtts(f"{PREFIX}-bond", "10.77.0.2", n, i) for pace, (n, i) in paces.items()}


def measure_veth(paces):
    with veth_pair(PREFIX) as (a, _):
        rtts(a, "10.78.0.2", 3, 0.2)
        return {pace: rtts(a, "10.78.0.2", n, i) for pace, (n, i) in paces.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quiet-pings", type=int, default=100)
    ap.add_argument("--busy-pings", type=int, default=3000)
    ap.add_argument("--baseline", metavar="BOND_DP", help="another bond-dp build, same run")
    args = ap.parse_args()
    paces = {"one every 200 ms (quiet)": (args.quiet_pings, 0.2),
             "one every 1 ms (busy)": (args.busy_pings, 0.001)}
    rows = [("plain veth pair", measure_veth(paces)),
            ("bond-dp TAP, active-backup", measure_bond(BOND_DP, paces))]
    if args.baseline:
        rows.append((f"baseline {args.baseline}", measure_bond(args.baseline, paces)))
    for pace in paces:
        print(f"\n### {pace}\n")
        print("| path | RTT p50 (µs) | p99 (µs) | worst (µs) | answers |")
        print("|---|---|---|---|---|")
        for name, results in rows:
            print(f"| {name} | {summary(results[pace])} |")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("latency.py: needs root (namespaces, XDP)")
    main()
