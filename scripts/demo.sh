#!/usr/bin/env bash
# The main job on an embedded default: builds bond-dp, creates a two-member veth testbed,
# runs a bond on it with a TAP port bond0 (10.77.0.1) that the kernel stack uses, pings the
# far end (10.77.0.2) through it, pulls the active member's cable while the ping runs and
# shows the failover in the kernel's /proc/net/bonding format, then removes everything.
# Needs root. Options can be changed: BOND_OPTIONS="mode=802.3ad,miimon=100" scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --release -q -p bond-dp
bin=$PWD/target/release/bond-dp
prefix=bdpdemo-$$
run_dir=$(mktemp -d)
options=${BOND_OPTIONS:-mode=active-backup,miimon=100,primary=m0}
pid=

cleanup() {
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    scripts/testbed.sh down "$prefix"
    rm -rf "$run_dir"
}
trap cleanup EXIT

scripts/testbed.sh up "$prefix" 2
echo "== bond-dp run --bond bond0 --members m0,m1 --options $options"
ip netns exec "$prefix-bond" "$bin" run --bond bond0 --members m0,m1 --options "$options" \
    --run-dir "$run_dir" &
pid=$!
in_bond() { ip netns exec "$prefix-bond" "$@"; }
status() { in_bond "$bin" status bond0 --run-dir "$run_dir"; }
for _ in $(seq 50); do status >/dev/null 2>&1 && break; sleep 0.1; done
in_bond ip addr add 10.77.0.1/24 dev bond0

echo; echo "== ping 10.77.0.2 through bond0"
in_bond ping -c 3 -i 0.2 10.77.0.2
echo; echo "== bond-dp status bond0"; status
echo; echo "== a ping runs (100 x 20 ms) while the cable of m0 comes loose (its peer goes down)"
in_bond ping -q -c 100 -i 0.02 10.77.0.2 &
ping_pid=$!
sleep 0.5
ip -n "$prefix-peer" link set p0 down
wait "$ping_pid" || true
status
echo; echo "== frames per member (bond-dp status --json)"
in_bond "$bin" status bond0 --json --run-dir "$run_dir" | python3 -c '
import json, sys
s = json.load(sys.stdin)
for m, c in zip(s["members"], s["data_plane"]["counters"]["members"]):
    print("%s: tx %d rx %d frames" % (m["name"], c["tx_packets"], c["rx_packets"]))'
echo; echo "== the cable is back"
ip -n "$prefix-peer" link set p0 up
sleep 0.5
status
echo; echo "== stopping bond-dp (SIGTERM)"
kill -TERM "$pid"; wait "$pid"; pid=
echo "done: bond-dp exited cleanly; the testbed is removed"
