#!/usr/bin/env python3
"""The end-to-end veth benchmark: bond-dp against raw AF_XDP and DPDK's bonding PMD.

60-byte UDP frames (64 on the wire) of 1024 flows; one core (1) for the data plane under test,
the other (0) for the generator. Every round runs each contender once, alternating, so the
ratios compare figures measured minutes apart on the same machine. Frames are counted where
they leave: an XDP program that drops and counts them on the far veth ends.

Topology (namespaces made here, removed at exit):
    H: h0 ==== a0 :B: m0 ==== p0 :P
                      m1 ==== p1

  forward   generator on h0 -> a0 -> (contender) -> m0/m1 -> sink on p0,p1
  txonly    frames made in the contender's process -> m0/m1 -> sink on p0,p1
  receive   generator on p0,p1 -> m0/m1 -> (contender) -> a0 -> sink on h0

With --latency, the forward contenders also run at 10% and 80% of the rate each reached in
the same round, with the send time in every frame: a sink on AF_XDP sockets reports the
one-way latency from the generator's send to the sink's receive (p50, p99, p99.9), which
includes the veth hops every contender shares.

Run as root, through bench/e2e.sh (it installs DPDK and builds the release binaries).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E2E = os.path.join(ROOT, "target/release/e2e")
BOND_DP = os.path.join(ROOT, "target/release/bond-dp")
PREFIX = f"bdpe2e{os.getpid()}"
NS = {k: f"{PREFIX}-{k}" for k in "bhp"}
RUN_DIR = f"/tmp/{PREFIX}-run"
WORKER_CORE, GEN_CORE = 1, 0
BOND_OPTIONS = "mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4"
LACP_OPTIONS = "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4"


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def in_ns(ns, args):
    return ["ip", "netns", "exec", NS[ns]] + args


def testbed_up():
    for ns in NS.values():
        sh(f"ip netns add {ns} && ip -n {ns} link set lo up")
    sh(f"ip -n {NS['b']} link add m0 type veth peer name p0 netns {NS['p']}")
    sh(f"ip -n {NS['b']} link add m1 type veth peer name p1 netns {NS['p']}")
    sh(f"ip -n {NS['b']} link add a0 type veth peer name h0 netns {NS['h']}")
    for ns, ifaces in (("b", "m0 m1 a0"), ("p", "p0 p1"), ("h", "h0")):
        for i in ifaces.split():
            sh(f"ip -n {NS[ns]} link set {i} up")


def testbed_down():
    for ns in NS.values():
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    shutil.rmtree(RUN_DIR, ignore_errors=True)


class Sink:
    """Counts frames dropped in XDP on `ifaces` between `warmup` and `warmup + seconds`."""

    def __init__(self, ns, ifaces, warmup, seconds):
        self.proc = subprocess.Popen(
            in_ns(ns, [E2E, "sink", "--ifaces", ifaces, "--warmup", str(warmup),
                       "--seconds", str(seconds)]),
            stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # attached before traffic starts

    def result(self):
        """Frames per second."""
        out, _ = self.proc.communicate(timeout=60)
        m = re.search(r"^pps (\d+)", out, re.M)
        if not m:
            raise RuntimeError(f"sink printed nothing usable: {out!r}")
        return int(m.group(1))


class LatencySink:
    """One-way latency of stamped frames arriving on `ifaces`, between `warmup` and
    `warmup + seconds`."""

    def __init__(self, ns, ifaces, warmup, seconds):
        self.proc = subprocess.Popen(
            in_ns(ns, [E2E, "lsink", "--ifaces", ifaces, "--warmup", str(warmup),
                       "--seconds", str(seconds)]),
            stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)

    def result(self):
        out, _ = self.proc.communicate(timeout=60)
        m = re.search(r"^latency_ns n (\d+) p50 (\d+) p99 (\d+) p999 (\d+)", out, re.M)
        if not m:
            raise RuntimeError(f"lsink printed nothing usable: {out!r}")
        n, p50, p99, p999 = map(int, m.groups())
        return {"n": n, "p50": p50 / 1e3, "p99": p99 / 1e3, "p999": p999 / 1e3}


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def testpmd(mode, vdevs, extra=()):
    args = ["dpdk-testpmd", "-l", f"{GEN_CORE},{WORKER_CORE}", "--main-lcore", str(GEN_CORE),
            "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", PREFIX,
            "--log-level", "*:error"]
    for v in vdevs:
        args += ["--vdev", v]
    args += ["--", f"--forward-mode={mode}", "--stats-period", "1", "--auto-start",
             "--nb-cores=1", *extra]
    return subprocess.Popen(in_ns("b", args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


AF_PACKET_BOND = [
    "net_af_packet1,iface=m0", "net_af_packet2,iface=m1",
    "net_bonding0,mode=2,slave=net_af_packet1,slave=net_af_packet2,xmit_policy=l34",
]


# Forward between the access port (0) and the bond (3), not its members (1, 2).
BOND_PORTS = ["--portlist=0,3"]


def bond_dp_daemon(options=BOND_OPTIONS, extra=(), binary=BOND_DP, log_level="warn", log=None):
    """bond-dp on m0,m1 with the access port a0, once its control socket is up; its log goes
    to the file `log` when given."""
    proc = subprocess.Popen(
        in_ns("b", [binary, "run", "--bond", "bond0", "--members", "m0,m1", "--host", "xdp:a0",
                    "--options", options, "--cores", str(WORKER_CORE),
                    "--run-dir", RUN_DIR, "--log-level", log_level, *extra]),
        stdout=log, stderr=log)
    deadline = time.time() + 10
    while not os.path.exists(f"{RUN_DIR}/bond0.sock"):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("bond-dp did not start")
        time.sleep(0.05)
    return proc


class Together:
    """Processes started and stopped as one contender."""

    def __init__(self, *procs):
        self.procs = procs
        self.args = [a for p in procs for a in p.args]

    def poll(self):
        return None if any(p.poll() is None for p in self.procs) else 0

    def send_signal(self, sig):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)

    def wait(self, timeout=None):
        for p in self.procs:
            p.wait(timeout=timeout)

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()


def bond_dp_lacp(seconds):
    """bond-dp in 802.3ad against an LACP partner on p0,p1, once both members distribute."""
    partner = subprocess.Popen(in_ns("p", [E2E, "lacp-partner", "--ifaces", "p0,p1",
                                           "--seconds", str(seconds + 30)]))
    daemon = bond_dp_daemon(LACP_OPTIONS)
    both = Together(daemon, partner)
    deadline = time.time() + 20
    while time.time() < deadline:
        status = subprocess.run(
            in_ns("b", [BOND_DP, "status", "bond0", "--run-dir", RUN_DIR, "--json"]),
            capture_output=True, text=True).stdout
        states = re.findall(r'"actor": \{[^}]*"port_state": (\d+)', status)
        # Both members collecting and distributing (0x10 | 0x20).
        if len(states) == 2 and all(int(s) & 0x30 == 0x30 for s in states):
            return both
        time.sleep(0.2)
    stop(both)
    raise RuntimeError("bond-dp did not negotiate LACP with the partner")


def raw_forward(src, dst, seconds):
    return subprocess.Popen(in_ns("b", [E2E, "fwd", "--from", src, "--to", dst, "--seconds",
                                        str(seconds), "--core", str(WORKER_CORE)]),
                            stdout=subprocess.DEVNULL)


# Where traffic enters and leaves: (generator namespace, interfaces, sink namespace, interfaces).
FORWARD = ("h", "h0", "p", "p0,p1")
RECEIVE = ("p", "p0,p1", "h", "h0")


def dpdk_bond_io():
    """testpmd forwarding between the access port and its bonding PMD over af_packet."""
    return testpmd("io", ["net_af_packet0,iface=a0", *AF_PACKET_BOND], BOND_PORTS)


def dpdk_txonly(vdevs):
    return testpmd("txonly", vdevs, ["--txpkts=60", "--txonly-multi-flow"])


def through(start_contender, path, seconds, sink, gen_args=()):
    """Starts the contender, then `sink` on the path's far end and the generator on its near
    end (with `gen_args`); what the sink reports."""
    gen_ns, gen_ifaces, sink_ns, sink_ifaces = path
    contender = start_contender(seconds + 4)
    time.sleep(1.5 if "dpdk-testpmd" in contender.args else 0.3)
    try:
        reading = sink(sink_ns, sink_ifaces, 1, seconds)
        subprocess.run(in_ns(gen_ns, [E2E, "gen", "--ifaces", gen_ifaces, "--seconds",
                                      str(seconds + 1.5), "--core", str(GEN_CORE),
                                      *gen_args]),
                       check=True, stdout=subprocess.DEVNULL)
        return reading.result()
    finally:
        stop(contender)


def measure_through(start_contender, path, seconds):
    """Frames per second through the contender on `path`, as the sink counts them."""
    return through(start_contender, path, seconds, Sink)


def measure_latency(start_contender, path, seconds, rate):
    """As `measure_through`, with the generator at `rate` frames/s stamping its frames; the
    latency sink's figures."""
    return through(start_contender, path, seconds, LatencySink,
                   ("--rate", str(int(rate)), "--stamp"))


# The forward contenders whose latency --latency measures: name, how to start them.
LATENCY_CONTENDERS = [
    ("bond-dp (access port -> 2-member xor l3+4)", lambda _: bond_dp_daemon()),
    ("raw AF_XDP forward to one member (ceiling)", lambda t: raw_forward("a0", "m0", t)),
    ("DPDK testpmd io, bonding PMD mode 2 l34 over af_packet", lambda _: dpdk_bond_io()),
]
LOADS = (0.1, 0.8)


def run_latency(args, have_dpdk):
    """Per round and contender: the rate it reaches, then latency at each load of it."""
    results = {}
    for r in range(args.rounds):
        for name, start in LATENCY_CONTENDERS:
            if "DPDK" in name and not have_dpdk:
                continue
            top = measure_through(start, FORWARD, args.seconds)
            for load in LOADS:
                lat = measure_latency(start, FORWARD, args.seconds, top * load)
                results.setdefault((name, load), []).append((top * load, lat))
                print(f"round {r + 1} latency {load:.0%} of {top / 1e6:.3f} Mpps: p50 "
                      f"{lat['p50']:.1f} p99 {lat['p99']:.1f} p99.9 {lat['p999']:.1f} us "
                      f"({lat['n']} frames)  {name}", flush=True)
    print(f"\n### forward: one-way latency (us), generator -> contender -> sink; "
          f"{args.rounds} rounds of {args.seconds:g} s, medians of the rounds\n")
    print("| contender | load | rate (Mpps) | p50 | p99 | p99.9 | frames measured |")
    print("|---|---|---|---|---|---|---|")
    for (name, load), runs in results.items():
        med = lambda k: statistics.median(lat[k] for _, lat in runs)
        rate = statistics.median(rate for rate, _ in runs)
        print(f"| {name} | {load:.0%} | {rate / 1e6:.3f} | {med('p50'):.1f} | "
              f"{med('p99'):.1f} | {med('p999'):.1f} | {int(med('n'))} |")


def measure_sender(start_sender, seconds):
    """Starts the sink, then the sender; the sink's figure."""
    sink = Sink("p", "p0,p1", 2.5, seconds)
    sender = start_sender(seconds + 3)
    try:
        return sink.result()
    finally:
        stop(sender)


CONTENDERS = {
    "forward": [
        ("bond-dp (access port -> 2-member xor l3+4)",
         lambda s: measure_through(lambda _: bond_dp_daemon(), FORWARD, s)),
        ("raw AF_XDP forward to one member (ceiling)",
         lambda s: measure_through(lambda t: raw_forward("a0", "m0", t), FORWARD, s)),
        ("bond-dp (access port -> 2-member 802.3ad l3+4, LACP partner on p0,p1)",
         lambda s: measure_through(bond_dp_lacp, FORWARD, s)),
        ("DPDK testpmd io, bonding PMD mode 2 l34 over af_packet",
         lambda s: measure_through(lambda _: dpdk_bond_io(), FORWARD, s)),
    ],
    "txonly": [
        ("bond-dp in-process API -> 2-member xor l3+4",
         lambda s: measure_sender(lambda t: subprocess.Popen(
             in_ns("b", [E2E, "txonly", "--members", "m0,m1", "--options", BOND_OPTIONS,
                         "--seconds", str(t), "--core", str(WORKER_CORE)]),
             stdout=subprocess.DEVNULL), s)),
        ("raw AF_XDP TX on both members, one core (ceiling)",
         lambda s: measure_sender(lambda t: subprocess.Popen(
             in_ns("b", [E2E, "gen", "--ifaces", "m0,m1", "--seconds", str(t),
                         "--core", str(WORKER_CORE)]),
             stdout=subprocess.DEVNULL), s)),
        ("DPDK testpmd txonly, two net_af_xdp ports (raw)",
         lambda s: measure_sender(
             lambda _: dpdk_txonly(["net_af_xdp0,iface=m0", "net_af_xdp1,iface=m1"]), s)),
        ("DPDK testpmd txonly, bonding PMD mode 2 l34 over af_packet",
         lambda s: measure_sender(lambda _: dpdk_txonly(AF_PACKET_BOND), s)),
    ],
    "receive": [
        ("bond-dp (2-member xor bond -> access port)",
         lambda s: measure_through(lambda _: bond_dp_daemon(), RECEIVE, s)),
        ("raw AF_XDP forward from both members (ceiling)",
         lambda s: measure_through(lambda t: raw_forward("m0,m1", "a0", t), RECEIVE, s)),
        ("DPDK testpmd io, bonding PMD mode 2 over af_packet",
         lambda s: measure_through(lambda _: dpdk_bond_io(), RECEIVE, s)),
        ("bond-dp (2-member 802.3ad -> access port, LACP partner on p0,p1)",
         lambda s: measure_through(bond_dp_lacp, RECEIVE, s)),
    ],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    ap.add_argument("--only", choices=list(CONTENDERS), action="append",
                    help="run only these directions")
    ap.add_argument("--no-dpdk", action="store_true", help="leave DPDK out")
    ap.add_argument("--latency", action="store_true",
                    help="one-way latency of the forward contenders at 10%% and 80%% load")
    ap.add_argument("--baseline", metavar="BOND_DP",
                    help="another build of bond-dp (say, the commit before a fast-path change) "
                         "as a contender in forward and receive")
    args = ap.parse_args()
    if args.baseline:
        for d in ("forward", "receive"):
            path = FORWARD if d == "forward" else RECEIVE
            CONTENDERS[d].insert(1, (
                f"baseline {args.baseline}",
                lambda s, path=path: measure_through(
                    lambda _: bond_dp_daemon(binary=args.baseline), path, s)))
    have_dpdk = shutil.which("dpdk-testpmd") and not args.no_dpdk
    directions = args.only or list(CONTENDERS)

    if args.latency:
        testbed_up()
        try:
            run_latency(args, have_dpdk)
        finally:
            testbed_down()
        return
    results = {(d, name): [] for d in directions for name, _ in CONTENDERS[d]}
    testbed_up()
    try:
        for r in range(args.rounds):
            for d in directions:
                for name, run in CONTENDERS[d]:
                    if "DPDK" in name and not have_dpdk:
                        continue
                    pps = run(args.seconds)
                    results[(d, name)].append(pps)
                    print(f"round {r + 1} {d:8} {pps / 1e6:6.3f} Mpps  {name}", flush=True)
    finally:
        testbed_down()
    report(results, directions, args)


def report(results, directions, args):
    print()
    print(f"{args.rounds} rounds of {args.seconds:g} s. Mpps: median of the rounds. Ratio: "
          "bond-dp / contender, taken in each round (runs minutes apart), then the median.")
    for d in directions:
        rows = [(name, v) for (dd, name), v in results.items() if dd == d and v]
        ours = [(n, v) for n, v in rows if n.startswith("bond-dp")]
        others = [(n, v) for n, v in rows if not n.startswith("bond-dp")]
        for our_name, our_runs in ours:
            print(f"\n### {d}: {our_name}\n")
            print("| contender | Mpps (median) | runs | bond-dp / this (per-round ratios) |")
            print("|---|---|---|---|")
            for name, runs in [(our_name, our_runs)] + others:
                text = ", ".join(f"{x / 1e6:.3f}" for x in runs)
                if runs is our_runs:
                    ratio = "-"
                else:
                    per_round = [a / b for a, b in zip(our_runs, runs) if b]
                    ratio = (f"**{statistics.median(per_round):.2f}x** ("
                             + ", ".join(f"{x:.2f}" for x in per_round) + ")")
                print(f"| {name} | {statistics.median(runs) / 1e6:.3f} | {text} | {ratio} |")

if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("e2e.py: needs root (namespaces, XDP)")
    for binary in (E2E, BOND_DP):
        if not os.path.exists(binary):
            sys.exit(f"e2e.py: {binary} missing: cargo build --release --workspace")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
