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
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOND_DP = os.path.join(ROOT, "target/release/bond-dp")
PREFIX = f"bdplat{os.getpid()}"


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


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
    run = tempfile.mkdtemp()
    sh(f"{ROOT}/scripts/testbed.sh up {PREFIX} 2")
    bond = subprocess.Popen(
        ["ip", "netns", "exec", f"{PREFIX}-bond", binary, "run", "--bond", "bond0",
         "--members", "m0,m1", "--options", "mode=active-backup,miimon=100",
         "--run-dir", run, "--log-level", "warn"])
    try:
        for _ in range(100):
            if sh(f"ip -n {PREFIX}-bond link show bond0", check=False).returncode == 0:
                break
            time.sleep(0.1)
        sh(f"ip -n {PREFIX}-bond addr replace 10.77.0.1/24 dev bond0")
        rtts(f"{PREFIX}-bond", "10.77.0.2", 3, 0.2)  # ARP settled
        return {pace: rtts(f"{PREFIX}-bond", "10.77.0.2", n, i) for pace, (n, i) in paces.items()}
    finally:
        bond.terminate()
        bond.wait()
        sh(f"{ROOT}/scripts/testbed.sh down {PREFIX}", check=False)


def measure_veth(paces):
    a, b = f"{PREFIX}-va", f"{PREFIX}-vb"
    sh(f"ip netns add {a}; ip netns add {b}")
    try:
        sh(f"ip -n {a} link add v0 type veth peer name v1 netns {b}")
        sh(f"ip -n {a} addr add 10.78.0.1/24 dev v0; ip -n {a} link set v0 up")
        sh(f"ip -n {b} addr add 10.78.0.2/24 dev v1; ip -n {b} link set v1 up")
        rtts(a, "10.78.0.2", 3, 0.2)
        return {pace: rtts(a, "10.78.0.2", n, i) for pace, (n, i) in paces.items()}
    finally:
        sh(f"ip netns del {a}; ip netns del {b}", check=False)


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
