#!/usr/bin/env python3
"""Kill-to-traffic: how long the host is cut off when bond-dp is killed with SIGKILL and the
same command is started again at once (what systemd's Restart= does, without its delay).

A veth testbed (scripts/testbed.sh, bridge peer at 10.77.0.2) and an active-backup bond with
a TAP bond0 at 10.77.0.1. A probe in the bond's namespace sends an ICMP echo to the peer
every millisecond and notes the time of every reply (CLOCK_MONOTONIC, shared by all
processes). Each round: kill -9, start the same command, and measure from the kill to the
first reply after it. The bond's address is never added again: it must survive the crash.

Run as root, through bench/restart.sh.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOND_DP = os.path.join(ROOT, "target/release/bond-dp")
PREFIX = f"bdprst{os.getpid()}"
NS = f"{PREFIX}-bond"
RUN_DIR = f"/tmp/{PREFIX}-run"
COMMAND = ["ip", "netns", "exec", NS, BOND_DP, "run", "--bond", "bond0", "--members",
           "m0,m1", "--options", "mode=active-backup,miimon=100,primary=m0",
           "--run-dir", RUN_DIR]

# Runs inside the bond's namespace: an echo every millisecond for argv[1] seconds, printing
# for each reply the monotonic times its echo was sent and it came back.
PROBE = r"""
import os, select, socket, struct, sys, time
end = time.monotonic() + float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setblocking(False)
ident = os.getpid() & 0xffff
def packet(seq):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xffff)
    data = head + b"bond-dp restart probe!"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return data[:2] + struct.pack("!H", ~total & 0xffff) + data[4:]
seq = 0
sent = {}
while time.monotonic() < end:
    sent[seq & 0xffff] = time.monotonic()
    try:
        s.sendto(packet(seq), ("10.77.0.2", 0))
    except OSError:
        pass  # no carrier on bond0 while bond-dp is down
    seq += 1
    deadline = time.monotonic() + 0.001
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([s], [], [], left)[0]:
            break
        reply = s.recv(2048)
        ihl = (reply[0] & 0xf) * 4
        rid, rseq = struct.unpack("!HH", reply[ihl + 4:ihl + 8])
        if reply[ihl] == 0 and rid == ident and rseq in sent:
            print(f"{sent[rseq]:.6f} {time.monotonic():.6f}", flush=True)
"""


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def wait_ping(ns=NS, limit=15):
    """Waits until the peer answers a ping from namespace `ns`, through the bond."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", "10.77.0.2"],
                          stdout=subprocess.DEVNULL).returncode == 0:
            return
    sys.exit(f"{os.path.basename(sys.argv[0])}: no ping through the bond")


def start():
    return subprocess.Popen(COMMAND, stderr=subprocess.DEVNULL)


def round_trip(daemon, seconds=3.0):
    """Kills the daemon mid-probe and starts it again; returns (new daemon, outage in s)."""
    probe = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", PROBE, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    killed = time.monotonic()
    daemon.kill()
    daemon.wait()
    daemon = start()
    out, _ = probe.communicate(timeout=seconds + 10)
    replies = [tuple(map(float, line.split())) for line in out.splitlines()]
    before = [back for sent, back in replies if back < killed]
    # The first answer to an echo sent after the kill (one in flight then proves nothing).
    after = [back for sent, back in replies if sent > killed]
    if not before or not after:
        sys.exit(f"restart: replies before the kill {len(before)}, after {len(after)}")
    return daemon, after[0] - killed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    sh(f"{ROOT}/scripts/testbed.sh up {PREFIX} 2")
    daemon = None
    try:
        daemon = start()
        time.sleep(1)
        sh(f"ip -n {NS} addr add 10.77.0.1/24 dev bond0")
        wait_ping()
        outages = []
        for _ in range(args.rounds):
            daemon, outage = round_trip(daemon)
            outages.append(outage)
            wait_ping()
        ms = [f"{o * 1000:.0f}" for o in outages]
        print(f"kill -9 to traffic (ms): median {statistics.median(outages) * 1000:.0f}, "
              f"worst {max(outages) * 1000:.0f}; runs {', '.join(ms)}")
    finally:
        teardown(daemon, PREFIX, RUN_DIR)


def teardown(daemon, prefix, run_dir):
    """Stops the daemon if it runs, and removes the testbed and the run directory."""
    if daemon:
        daemon.terminate()
        daemon.wait()
    subprocess.run([f"{ROOT}/scripts/testbed.sh", "down", prefix])
    subprocess.run(["rm", "-rf", run_dir])


if __name__ == "__main__":
    main()
