#!/usr/bin/env python3
"""TCP through bond-dp's TAP against a plain veth pair (issue 13).

One iperf3 stream each way between the bond's namespace (through bond0, a balance-xor
layer3+4 bond over two veth members, release build) and the peer, with the peer's default
offloads; the same across a plain veth pair between two namespaces. Reports Gbit/s, the
ratio to the veth pair taken in each round, and bond-dp's CPU seconds per GB moved. With
--baseline, another bond-dp build runs in the same rounds. Root.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from tapbed import BOND_DP, sh, tap_bond, veth_pair

PREFIX = f"bdptcp{os.getpid()}"
TICKS = os.sysconf("SC_CLK_TCK")


def iperf(client_ns, server_ns, server_ip, seconds, reverse):
    """Bytes per second the stream carried."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    out = sh(f"ip netns exec {client_ns} iperf3 -c {server_ip} -J -t {seconds}"
             + (" -R" if reverse else ""), check=False).stdout
    server.wait(timeout=10)
    end = json.loads(out or "{}").get("end", {}).get("sum_received", {})
    return end.get("bytes", 0) / max(end.get("seconds", 1), 1e-9)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure_veth(seconds):
    with veth_pair(PREFIX) as (a, b):
        return {d: (iperf(a, b, "10.78.0.2", seconds, d == "back"), None)
                for d in ("out", "back")}


def measure_bond(binary, seconds):
    options = "mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4"
    with tap_bond(PREFIX, binary, options) as bond:
        results = {}
        for d in ("out", "back"):
            cpu = cpu_seconds(bond.pid)
            start = time.monotonic()
            rate = iperf(f"{PREFIX}-bond", f"{PREFIX}-peer", "10.77.0.2", seconds, d == "back")
            moved_gb = rate * (time.monotonic() - start) / 1e9
            results[d] = (rate, (cpu_seconds(bond.pid) - cpu) / max(moved_gb, 1e-9))
        return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--baseline", metavar="BOND_DP", help="another bond-dp build, same rounds")
    args = ap.parse_args()
    contenders = [("bond-dp TAP, xor l3+4", BOND_DP)]
    if args.baseline:
        contenders.append((f"baseline {args.baseline}", args.baseline))
    runs = {name: [] for name, _ in contenders}
    veth = []
    for r in range(args.rounds):
        veth.append(measure_veth(args.seconds))
        for name, binary in contenders:
            runs[name].append(measure_bond(binary, args.seconds))
        print(f"round {r + 1} done", file=sys.stderr)
    for d, title in (("out", "bond -> peer"), ("back", "peer -> bond")):
        print(f"\n### {title}, one TCP stream ({args.rounds} rounds of {args.seconds} s)\n")
        print("| path | Gbit/s (median) | runs | / plain veth (per round) | bond-dp CPU s per GB |")
        print("|---|---|---|---|---|")
        v = [x[d][0] for x in veth]
        print(f"| plain veth pair | {statistics.median(v) * 8 / 1e9:.2f} | "
              f"{', '.join(f'{x * 8 / 1e9:.2f}' for x in v)} | - | - |")
        for name, rs in runs.items():
            g = [x[d][0] for x in rs]
            ratios = [a / b if b else 0 for a, b in zip(g, v)]
            cpu = statistics.median(x[d][1] for x in rs)
            print(f"| {name} | {statistics.median(g) * 8 / 1e9:.2f} | "
                  f"{', '.join(f'{x * 8 / 1e9:.2f}' for x in g)} | "
                  f"**{statistics.median(ratios):.2f}x** ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                  f"{cpu:.2f} |")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("tcp.py: needs root (namespaces, XDP)")
    main()
