#!/usr/bin/env bash
# Records the frames a bond member sees on the veth testbeds into fuzz/captures/*.pcap, the
# fuzzers' seeds: 802.3ad against Open vSwitch (LACPDUs, markers, data), and an
# active-backup bond with the ARP monitor (ARP probes and replies, pings). Root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p bond-dp --bin bond-dp
bin=target/debug/bond-dp
out=fuzz/captures
mkdir -p "$out"

record() { # NAME PEER OPTIONS
    local name=$1 peer=$2 options=$3 prefix="bdprec$$$1" run
    run=$(mktemp -d)
    scripts/testbed.sh up "$prefix" 2 $peer
    trap 'kill $(jobs -p) 2>/dev/null; scripts/testbed.sh down "$prefix"; rm -rf "$run"' RETURN
    ip netns exec "$prefix-bond" "$bin" run --bond bond0 --members m0,m1 --options "$options" \
        --run-dir "$run" --log-level warn &
    for _ in $(seq 100); do ip -n "$prefix-bond" link show bond0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$prefix-bond" addr replace 10.77.0.1/24 dev bond0
    ip netns exec "$prefix-peer" tcpdump -i p0 -w "$out/$name.pcap" -c 200 -U 2>/dev/null &
    local dump=$!
    sleep 1
    ip netns exec "$prefix-bond" ping -c 20 -i 0.2 -s 300 10.77.0.2 >/dev/null || true
    sleep 3
    kill "$dump" 2>/dev/null || true
    wait "$dump" 2>/dev/null || true
}

record lacp-ovs "--peer ovs-lacp" "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4"
record arp-monitor "" "mode=active-backup,arp_interval=100,arp_ip_target=10.77.0.2,arp_validate=all"
ls -l "$out"
