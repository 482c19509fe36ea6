#!/usr/bin/env python3
"""Where a failover's lost frames go: for each round, the frames lost, when the monitor
logged the member down (after `ip link set p0 down` began), and how long after that the
worker took the new member snapshot (its debug log). Root; the e2e testbed.

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
import e2e
from e2e import NS, in_ns, sh, stop
PPS = 100_000
PCAP = f"/tmp/{e2e.PREFIX}-flows.pcap"
def m0_stats():
    """m0's (the veth's) transmit counts: packets handed to its peer p0, and dropped."""
    out = subprocess.run(in_ns("b", ["ip", "-s", "-j", "link", "show", "m0"]),
                         capture_output=True, text=True).stdout
    tx = json.loads(out)[0]["stats64"]["tx"]
    return tx["packets"], tx["dropped"]


def run(binary, seconds=2.0):
    sh(f"ip -n {NS['p']} link set p0 up")
    log = open("/tmp/fo_probe.log", "w")
    proc = subprocess.Popen(in_ns("b", [binary, "run", "--bond", "bond0", "--members", "m0,m1", "--host", "xdp:a0",
                    "--options", "mode=active-backup,miimon=100,primary=m0", "--cores", str(e2e.WORKER_CORE),
                    "--run-dir", e2e.RUN_DIR, "--log-level", "debug", "--carrier-watch", "fast"]), stderr=log, stdout=log)
    while not os.path.exists(f"{e2e.RUN_DIR}/bond0.sock"):
        time.sleep(0.05)
    try:
        time.sleep(0.5)
        sink = subprocess.Popen(in_ns("p", [e2e.E2E, "sink", "--ifaces", "p0,p1", "--warmup", "0", "--seconds", str(seconds + 2)]), stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        m0_before = m0_stats()
        loops = int(PPS * seconds / 1024)
        replay = subprocess.Popen(in_ns("h", ["tcpreplay", "-i", "h0", f"--pps={PPS}", f"--loop={loops}", "-q", PCAP]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(seconds / 2)
        t0 = time.time()
        sh(f"ip -n {NS['p']} link set p0 down")
        t0b = time.time()
        out, _ = replay.communicate(timeout=60)
        sent = int(re.search(r"Actual: (\d+) packets", out).group(1))
        counted, _ = sink.communicate(timeout=30)
        received = sum(int(n) for n in re.findall(r"^p\d (\d+)$", counted, re.M))
        on_p0 = int((re.findall(r"^p0 (\d+)$", counted, re.M) or ["0"])[0])
        # What m0 handed its veth peer that p0's XDP never counted: frames queued on p0
        # when it went down.
        m0_after = m0_stats()
        stranded = m0_after[0] - m0_before[0] - on_p0
        dropped_at_m0 = m0_after[1] - m0_before[1]
    finally:
        stop(proc)
        log.close()
    text = open("/tmp/fo_probe.log").read()
    m = re.search(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z\s+WARN.*definitely down", text)
    t1 = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp() if m else float("nan")
    ms = [m for m in re.finditer(r"(\d{4}-\d\d-\d\dT[\d:.]+)Z\s+DEBUG.*new member snapshot active=Some\(1\)", text)]
    t2 = datetime.datetime.fromisoformat(ms[0].group(1)).replace(tzinfo=datetime.timezone.utc).timestamp() if ms else float("nan")
    return sent - received, (t1 - t0) * 1000, (t0b - t0) * 1000, (t2 - t1) * 1000, stranded, dropped_at_m0
sh(f"{e2e.E2E} pcap --out {PCAP} --flows 1024")
e2e.testbed_up()
try:
    for r in range(int(sys.argv[2])):
        lost, detect_ms, cmd_ms, worker_ms, stranded, dropped = run(sys.argv[1])
        print(f"lost {lost:5d}  detected {detect_ms:7.2f} ms (command {cmd_ms:.1f} ms); "
              f"worker switched {worker_ms*1000:5.0f} us after detection; "
              f"sent by m0 but not counted on p0: {stranded}; dropped by m0: {dropped}", flush=True)
finally:
    e2e.testbed_down()
