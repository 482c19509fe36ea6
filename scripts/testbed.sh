#!/usr/bin/env bash
# A veth testbed for bond-dp.
#
#   scripts/testbed.sh up PREFIX [MEMBERS]   namespaces PREFIX-bond and PREFIX-peer; members
#                                            m0..mN-1 in PREFIX-bond, their peers p0..pN-1 in
#                                            PREFIX-peer joined by the Linux bridge br0
#                                            (10.77.0.2/24 on it: the far end to ping)
#   scripts/testbed.sh down PREFIX           removes both namespaces and all in them
#
# PREFIX must be unique per run (tests and the demo use their pid). Needs root.
set -euo pipefail

usage() { echo "usage: $0 up PREFIX [MEMBERS] | down PREFIX" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd=$1 prefix=$2 members=${3:-2}
bond_ns=$prefix-bond peer_ns=$prefix-peer

case $cmd in
up)
    [[ $members =~ ^[1-9][0-9]?$ ]] || { echo "testbed: MEMBERS must be 1-99, got '$members'" >&2; exit 2; }
    ip netns add "$bond_ns"
    ip netns add "$peer_ns"
    ip -n "$bond_ns" link set lo up
    ip -n "$peer_ns" link set lo up
    # IPv4 only: no IPv6 autoconfiguration chatter mixed into what tests count.
    for ns in "$bond_ns" "$peer_ns"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$peer_ns" link add br0 type bridge
    for ((i = 0; i < members; i++)); do
        ip -n "$bond_ns" link add "m$i" type veth peer name "p$i" netns "$peer_ns"
        ip -n "$bond_ns" link set "m$i" up
        ip -n "$peer_ns" link set "p$i" master br0 up
    done
    ip -n "$peer_ns" addr add 10.77.0.2/24 dev br0
    ip -n "$peer_ns" link set br0 up
    # veth hands frames over with checksums left to "hardware"; XDP on the bond side sees
    # them unfinished. Real NICs deliver complete checksums: make the peer side compute them.
    for dev in br0 $(seq -f 'p%g' 0 $((members - 1))); do
        ip netns exec "$peer_ns" ethtool -K "$dev" tx off >/dev/null
    done
    ;;
down)
    ip netns del "$bond_ns" 2>/dev/null || true
    ip netns del "$peer_ns" 2>/dev/null || true
    ;;
*) usage ;;
esac
