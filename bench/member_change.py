#!/usr/bin/env python3
"""Member changes under traffic: how long the traffic through the members that stay stops
while a member joins or leaves (`bond-dp set bond0 slaves +m2 / -m2`), and how long the
change takes.

A veth testbed of three members (scripts/testbed.sh, bridge peer at 10.77.0.2) and an
active-backup bond on m0 and m1 (primary m0) with a TAP bond0 at 10.77.0.1. The probe of
bench/restart.py sends an echo to the peer every millisecond and notes each reply. Each round
adds m2 and removes it again; the traffic never needs m2, so every gap in the replies is the
change's doing. Reported per build: the longest gap between replies across a change, and
the `set` command's time (the bond's locks are held for at most that).

Run as root, through bench/member_change.sh; `--baseline BIN` runs the same rounds with
another build, alternating, for a comparison in one run.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restart import PROBE, sh, teardown, wait_ping  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = f"bdpmc{os.getpid()}"
NS = f"{PREFIX}-bond"
RUN_DIR = f"/tmp/{PREFIX}-run"


def start(binary):
    daemon = subprocess.Popen(
        ["ip", "netns", "exec", NS, binary, "run", "--bond", "bond0", "--members", "m0,m1",
         "--options", "mode=active-backup,miimon=100,primary=m0", "--run-dir", RUN_DIR],
        stderr=subprocess.DEVNULL)
    time.sleep(1)
    sh(f"ip -n {NS} addr replace 10.77.0.1/24 dev bond0")
    wait_ping(NS)
    return daemon


def change(binary, value):
    """`bond-dp set bond0 slaves VALUE`; returns (start, end) monotonic times."""
    began = time.monotonic()
    subprocess.run(["ip", "netns", "exec", NS, binary, "set", "bond0", "slaves", value,
                    "--run-dir", RUN_DIR], check=True, stdout=subprocess.DEVNULL)
    return began, time.monotonic()


def one_round(binary):
    """m2 joins and leaves under the probe; returns (longest gap s, [set times s])."""
    seconds = 2.0
    probe = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", PROBE, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.4)
    windows = [change(binary, "+m2")]
    time.sleep(0.4)
    windows.append(change(binary, "-m2"))
    out, _ = probe.communicate(timeout=seconds + 10)
    backs = sorted(float(line.split()[1]) for line in out.splitlines())
    if not backs:
        sys.exit("member_change: no replies")
    # The longest gap between replies that overlaps a change (with 50 ms either side for
    # replies in flight).
    gap = 0.0
    for a, b in zip(backs, backs[1:]):
        if any(a < end + 0.05 and b > began - 0.05 for began, end in windows):
            gap = max(gap, b - a)
    return gap, [end - began for began, end in windows]


def summary(name, rounds):
    gaps = [g * 1000 for g, _ in rounds]
    sets = [t * 1000 for _, ts in rounds for t in ts]
    return (f"{name}: longest reply gap across a change median {statistics.median(gaps):.1f} ms"
            f" (worst {max(gaps):.1f}); `set` median {statistics.median(sets):.1f} ms "
            f"(worst {max(sets):.1f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/bond-dp"))
    parser.add_argument("--baseline", help="another bond-dp binary, run alternately")
    args = parser.parse_args()
    builds = [("bond-dp", args.binary)]
    if args.baseline:
        builds.append(("baseline", args.baseline))
    results = {name: [] for name, _ in builds}
    sh(f"{ROOT}/scripts/testbed.sh up {PREFIX} 3")
    daemon = None
    try:
        for r in range(args.rounds):
            for name, binary in builds if r % 2 == 0 else builds[::-1]:
                daemon = start(binary)
                results[name].append(one_round(binary))
                daemon.terminate()
                daemon.wait()
                daemon = None
        for name, _ in builds:
            print(summary(name, results[name]))
    finally:
        teardown(daemon, PREFIX, RUN_DIR)


if __name__ == "__main__":
    main()
