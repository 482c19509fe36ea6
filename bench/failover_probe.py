#!/usr/bin/env python3
"""Where a failover's lost frames go: for each round of the failover benchmark's run
(bench/failover.py), the frames lost; when the monitor logged the member down, after
`ip link set p0 down` began; how long after that the worker took the new member snapshot
(its debug log); what m0 handed its veth peer p0 that p0's sink did not count; and what m0
dropped on transmit. Root; the e2e testbed.

    python3 bench/failover_probe.py target/release/bond-dp ROUNDS
"""
import datetime
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
import failover  # noqa: E402
from e2e import in_ns, sh  # noqa: E402

LOG = "/tmp/bond-dp-failover-probe.log"


def m0_stats():
    """m0's (the veth's) transmit counts: packets handed to its peer p0, and dropped."""
    out = subprocess.run(in_ns("b", ["ip", "-s", "-j", "link", "show", "m0"]),
                         capture_output=True, text=True).stdout
    tx = json.loads(out)[0]["stats64"]["tx"]
    return tx["packets"], tx["dropped"]


def logged(text, pattern):
    """When the first log line matching `pattern` was written (Unix time), or NaN."""
    m = re.search(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z\s+" + pattern, text)
    if not m:
        return float("nan")
    stamp = datetime.datetime.fromisoformat(m.group(1))
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


class Probe:
    """What failover.run tells it, kept for one round."""

    def __init__(self):
        self.log = open(LOG, "w")

    def starting(self):
        self.m0_before = m0_stats()

    def going_down(self):
        self.t_down = time.time()

    def down(self):
        self.t_command_done = time.time()

    def counted(self, counted):
        self.on_p0 = int((re.findall(r"^p0 (\d+)$", counted, re.M) or ["0"])[0])
        self.m0_after = m0_stats()

    def report(self, lost):
        self.log.close()
        text = open(LOG).read()
        detected = logged(text, r"WARN.*definitely down")
        switched = logged(text, r"DEBUG.*new member snapshot active=Some\(1\)")
        stranded = self.m0_after[0] - self.m0_before[0] - self.on_p0
        dropped = self.m0_after[1] - self.m0_before[1]
        print(f"lost {lost:5d}  detected {(detected - self.t_down) * 1000:7.2f} ms "
              f"(command {(self.t_command_done - self.t_down) * 1000:.1f} ms); "
              f"worker switched {(switched - detected) * 1e6:5.0f} us after detection; "
              f"sent by m0 but not counted on p0: {stranded}; dropped by m0: {dropped}",
              flush=True)


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2])
    sh(f"{e2e.E2E} pcap --out {failover.PCAP} --flows 1024")
    e2e.testbed_up()
    try:
        for _ in range(rounds):
            probe = Probe()
            sent, received = failover.run("fast", 2.0, True, binary=binary, probe=probe)
            probe.report(sent - received)
    finally:
        e2e.testbed_down()
        os.unlink(failover.PCAP)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("failover_probe.py: needs root (namespaces, XDP)")
    main()
