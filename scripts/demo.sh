#!/usr/bin/env bash
# The main job on an embedded default: builds bond-dp, creates a two-member veth testbed,
# runs an active-backup bond on it, pulls the active member's cable and shows the failover in
# the kernel's /proc/net/bonding format, then puts everything back and removes the testbed.
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
    --host none --run-dir "$run_dir" &
pid=$!
status() { ip netns exec "$prefix-bond" "$bin" status bond0 --run-dir "$run_dir"; }
for _ in $(seq 50); do status >/dev/null 2>&1 && break; sleep 0.1; done

echo; echo "== bond-dp status bond0"; status
echo; echo "== the cable of m0 comes loose (its peer goes down)"
ip -n "$prefix-peer" link set p0 down
sleep 0.5
status
echo; echo "== the cable is back"
ip -n "$prefix-peer" link set p0 up
sleep 0.5
status
echo; echo "== stopping bond-dp (SIGTERM)"
kill -TERM "$pid"; wait "$pid"; pid=
echo "done: bond-dp exited cleanly; the testbed is removed"
