#!/usr/bin/env bash
# A veth testbed for bond-dp.
#
#   scripts/testbed.sh up PREFIX [MEMBERS] [--queues N] [--peer bridge|ovs-slb|ovs-lacp]
#       namespaces PREFIX-bond and PREFIX-peer; members m0..mN-1 in PREFIX-bond, their peers
#       p0..pN-1 in PREFIX-peer, joined by br0 (10.77.0.2/24 on it: the far end to ping).
#       --queues N   multi-queue veth pairs (N RX and TX queues each end; default 1)
#       --peer       what br0 is: a Linux bridge (default); Open vSwitch (userspace datapath)
#                    with p0.. as a static LAG (lacp=off bond_mode=balance-slb), or as an
#                    LACP bond (lacp=active bond_mode=balance-tcp, fast rate)
#       Open vSwitch's files are in /tmp/bond-dp-ovs-PREFIX; ask it with
#       ovs-appctl -t /tmp/bond-dp-ovs-PREFIX/vswitchd.ctl bond/show bond0
#   scripts/testbed.sh down PREFIX
#       stops the testbed's Open vSwitch, if any, and removes both namespaces and all in them
#   scripts/testbed.sh ovs-stop PREFIX / ovs-start PREFIX
#       stops Open vSwitch's switch daemon (the far end falls silent), and starts it again
#       from its database, with the peer address back on br0
#
# PREFIX must be unique per run (tests and the demo use their pid). Needs root; the OVS peers
# need openvswitch-switch (scripts/deps.sh installs it).
set -euo pipefail

usage() {
    echo "usage: $0 up PREFIX [MEMBERS] [--queues N] [--peer bridge|ovs-slb|ovs-lacp] | down PREFIX | ovs-stop PREFIX | ovs-start PREFIX" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
cmd=$1 prefix=$2
shift 2
members=2 queues=1 peer=bridge
if [[ $# -gt 0 && $1 != --* ]]; then members=$1; shift; fi
while [[ $# -gt 0 ]]; do
    case $1 in
    --queues) queues=${2:-}; shift 2 || usage ;;
    --peer) peer=${2:-}; shift 2 || usage ;;
    *) usage ;;
    esac
done
bond_ns=$prefix-bond peer_ns=$prefix-peer
ovs_dir=/tmp/bond-dp-ovs-$prefix

ovs() { ovs-vsctl --db="unix:$ovs_dir/db.sock" --no-wait "$@"; }
# Everything of this testbed's Open vSwitch stays in its own directory.
export OVS_RUNDIR=$ovs_dir OVS_LOGDIR=$ovs_dir OVS_DBDIR=$ovs_dir

start_vswitchd() {
    ip netns exec "$peer_ns" ovs-vswitchd "unix:$ovs_dir/db.sock" --pidfile="$ovs_dir/vswitchd.pid" \
        --log-file="$ovs_dir/vswitchd.log" --unixctl="$ovs_dir/vswitchd.ctl" -vconsole:off --detach
}

# The peer's address on br0. Its offloads stay as veth has them: frames reach the bond with
# TCP/UDP checksums left to "hardware", which bond-dp finishes as a NIC would.
peer_address() {
    ip -n "$peer_ns" addr replace 10.77.0.2/24 dev br0
    ip -n "$peer_ns" link set br0 up
}

start_ovs() {
    local bond_args=$1
    mkdir -p "$ovs_dir"
    ovsdb-tool create "$ovs_dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ip netns exec "$peer_ns" ovsdb-server "$ovs_dir/conf.db" --remote="punix:$ovs_dir/db.sock" \
        --pidfile="$ovs_dir/ovsdb.pid" --log-file="$ovs_dir/ovsdb.log" \
        --unixctl="$ovs_dir/ovsdb.ctl" -vconsole:off --detach
    ovs init
    start_vswitchd
    ovs add-br br0 -- set bridge br0 datapath_type=netdev
    local ports=()
    for ((i = 0; i < members; i++)); do ports+=("p$i"); done
    if [[ $members -eq 1 ]]; then
        ovs add-port br0 p0
    else
        # shellcheck disable=SC2086
        ovs add-bond br0 bond0 "${ports[@]}" $bond_args
    fi
    # The bridge's own port appears as a TAP device once vswitchd has built the bridge.
    for _ in $(seq 100); do
        ip -n "$peer_ns" link show br0 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "testbed: Open vSwitch did not create br0 (see $ovs_dir/vswitchd.log)" >&2
    return 1
}

case $cmd in
up)
    [[ $members =~ ^[1-9][0-9]?$ ]] || { echo "testbed: MEMBERS must be 1-99, got '$members'" >&2; exit 2; }
    [[ $queues =~ ^[1-9][0-9]?$ ]] || { echo "testbed: --queues must be 1-99, got '$queues'" >&2; exit 2; }
    case $peer in bridge | ovs-slb | ovs-lacp) ;; *)
        echo "testbed: --peer must be bridge, ovs-slb or ovs-lacp, got '$peer'" >&2; exit 2 ;;
    esac
    ip netns add "$bond_ns"
    ip netns add "$peer_ns"
    ip -n "$bond_ns" link set lo up
    ip -n "$peer_ns" link set lo up
    # IPv4 only: no IPv6 autoconfiguration chatter mixed into what tests count.
    for ns in "$bond_ns" "$peer_ns"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    for ((i = 0; i < members; i++)); do
        ip -n "$bond_ns" link add "m$i" numtxqueues "$queues" numrxqueues "$queues" type veth \
            peer name "p$i" netns "$peer_ns" numtxqueues "$queues" numrxqueues "$queues"
        ip -n "$bond_ns" link set "m$i" up
        ip -n "$peer_ns" link set "p$i" up
    done
    case $peer in
    bridge)
        # A fixed MAC: a bridge otherwise takes its lowest port's, which changes when a port
        # comes and goes and leaves the bond's ARP entry for the peer stale.
        ip -n "$peer_ns" link add br0 address 02:00:00:00:b0:00 type bridge
        for ((i = 0; i < members; i++)); do ip -n "$peer_ns" link set "p$i" master br0; done
        ;;
    ovs-slb) start_ovs "lacp=off bond_mode=balance-slb" ;;
    ovs-lacp) start_ovs "lacp=active bond_mode=balance-tcp other_config:lacp-time=fast" ;;
    esac
    peer_address
    ;;
ovs-stop)
    # The switch goes away (its bridge with it); its database stays for ovs-start.
    ovs-appctl -t "$ovs_dir/vswitchd.ctl" exit
    ;;
ovs-start)
    start_vswitchd
    for _ in $(seq 100); do
        ip -n "$peer_ns" link show br0 >/dev/null 2>&1 && break
        sleep 0.1
    done
    members=$(ip -n "$peer_ns" -o link show | grep -c ': p[0-9]*@')
    peer_address
    ;;
down)
    if [[ -d $ovs_dir ]]; then
        for daemon in vswitchd ovsdb; do
            if [[ -f $ovs_dir/$daemon.pid ]]; then
                kill "$(cat "$ovs_dir/$daemon.pid")" 2>/dev/null || true
            fi
        done
        sleep 0.2
        rm -rf "$ovs_dir"
    fi
    ip netns del "$bond_ns" 2>/dev/null || true
    ip netns del "$peer_ns" 2>/dev/null || true
    ;;
*) usage ;;
esac
