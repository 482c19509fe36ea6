//! The ordinary host's path through the TAP (root, veth testbeds): what an idle bond costs.

mod common;

use std::time::Duration;

use common::{require_root, terminate, wait_for, Testbed};

/// CPU time (user + system) of process `pid` and its threads, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).unwrap_or(100)
}

#[test]
fn an_idle_bond_costs_almost_nothing() {
    if !require_root() {
        return;
    }
    // Default settings: the fast carrier watch and a polling worker.
    let mut tb = Testbed::new("idle", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=100");
    let pid = common::daemon_pid(tb.child(bond).id());
    // Quiet: past the start and the last ping.
    std::thread::sleep(Duration::from_secs(1));
    let seconds = 4;
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(seconds));
    let used = cpu_ticks(pid) - before;
    let percent = 100 * used / (ticks_per_second() * seconds);
    // The target is 2% of a core (bench/RESULTS.md); a test build on a busy CI machine gets
    // a generous bound. A polling worker alone took 20-30%.
    assert!(percent <= 8, "an idle bond used {percent}% of a core");
    assert!(terminate(tb.child(bond)).success());
}

/// A bond-wide counter of the data plane in `status --json`.
fn plane_counter(json: &serde_json::Value, name: &str) -> u64 {
    json["data_plane"]["counters"][name].as_u64().unwrap_or(0)
}

/// The seven modes.
const MODES: [&str; 7] = [
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];

/// Bytes iperf3 moved in `seconds` from the bond's side to the peer (`reverse`: back).
fn iperf(tb: &Testbed, seconds: u32, reverse: bool) -> u64 {
    iperf_streams(tb, seconds, reverse, 1)
}

/// As `iperf`, with `streams` TCP streams at once.
fn iperf_streams(tb: &Testbed, seconds: u32, reverse: bool, streams: u32) -> u64 {
    let server = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "iperf3", "-s", "-1", "-J"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (t, p) = (seconds.to_string(), streams.to_string());
    let mut args = vec!["-c", "10.77.0.2", "-J", "-t", &t, "-P", &p];
    if reverse {
        args.push("-R");
    }
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.bond_ns, "iperf3"])
        .args(&args)
        .output()
        .unwrap();
    let mut server = server;
    let _ = server.kill();
    let _ = server.wait();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0)
}

#[test]
fn tcp_crosses_the_tap_with_the_peers_checksum_offload_on() {
    if !require_root() {
        return;
    }
    // The peer leaves TCP checksums to "hardware" (the veth default): what reaches the bond
    // carries only the pseudo-header's sum, which the data plane must finish.
    let mut tb = Testbed::new("tcp", 2);
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4");
    let out = iperf(&tb, 2, false);
    let back = iperf(&tb, 2, true);
    assert!(out > 1 << 20, "bond to peer: {out} bytes");
    assert!(back > 1 << 20, "peer to bond: {back} bytes");
    let json = tb.status_json("bond0");
    let completed: u64 = (0..2)
        .filter_map(|m| {
            json["data_plane"]["counters"]["members"][m]["rx_checksum_completed"].as_u64()
        })
        .sum();
    assert!(completed > 100, "partial checksums finished: {json}");
    // The peer's segments reached the host merged into super-frames (GRO), and the host
    // took them: the stream above could not have carried a megabyte otherwise.
    let coalesced = plane_counter(&json, "to_host_coalesced");
    assert!(coalesced > 100, "segments merged toward the host: {json}");
    // The host's super-frames went to the members' devices whole, to be segmented there.
    let whole = plane_counter(&json, "to_members_whole");
    assert!(whole > 100, "super-frames handed to the devices: {json}");
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn tcp_crosses_the_tap_in_every_mode_with_super_frames_whole_on_one_member() {
    if !require_root() {
        return;
    }
    // Each mode picks the member a super-frame goes to whole (tlb and alb rewrite its source
    // MAC first); only broadcast, which sends on every member, cuts them in bond-dp.
    for mode in MODES.into_iter().filter(|&m| m != "broadcast") {
        let mut tb = Testbed::new("tcpmode", 2);
        let bond = tb.start_tap_bond(&format!("mode={mode},miimon=100"));
        let out = iperf(&tb, 1, false);
        assert!(out > 1 << 20, "{mode}: bond to peer moved {out} bytes");
        let json = tb.status_json("bond0");
        let whole = plane_counter(&json, "to_members_whole");
        assert!(
            whole > 10,
            "{mode}: super-frames handed to the devices: {json}"
        );
        assert!(terminate(tb.child(bond)).success(), "{mode}");
    }
}

#[test]
fn in_broadcast_the_hosts_super_frames_are_cut_and_every_member_carries_them() {
    if !require_root() {
        return;
    }
    // A super-frame goes to a device whole only where one member sends it; a broadcast
    // bond cuts it into segments itself and sends each on every member.
    let mut tb = Testbed::new("bcast", 2);
    let bond = tb.start_tap_bond("mode=broadcast,miimon=100");
    let out = iperf(&tb, 2, false);
    assert!(out > 1 << 20, "bond to peer: {out} bytes");
    let json = tb.status_json("bond0");
    let c = &json["data_plane"]["counters"];
    assert_eq!(c["to_members_whole"].as_u64(), Some(0), "{json}");
    let tx = |m: usize| c["members"][m]["tx_bytes"].as_u64().unwrap();
    assert!(
        tx(0) > out && tx(1) > out,
        "each member carried the stream: {json}"
    );
    assert!(terminate(tb.child(bond)).success());
}

/// Sets MTU `mtu` on the peer's side of the testbed (br0 and every port on it), as an
/// operator sets it on the switch.
fn peer_mtu(tb: &Testbed, members: usize, mtu: u32) {
    for i in 0..members {
        tb.in_peer(&format!("ip link set p{i} mtu {mtu}"));
    }
    tb.in_peer(&format!("ip link set br0 mtu {mtu}"));
}

/// A ping of `size` bytes of payload that must not be fragmented, through the TAP.
fn big_ping(tb: &Testbed, size: u32) -> bool {
    tb.in_bond(&format!("ping -c 3 -i 0.2 -W 1 -M do -s {size} 10.77.0.2"))
        .status
        .success()
}

#[test]
fn jumbo_frames_cross_every_mode_through_the_tap() {
    if !require_root() {
        return;
    }
    for mode in MODES {
        let mut tb = Testbed::new("jumbo", 2);
        peer_mtu(&tb, 2, 9000);
        let bond = tb.start_tap_bond(&format!("mode={mode},miimon=100"));
        // As an operator does: the bond's MTU, which the kernel's bond passes on to its
        // members and bond-dp passes on too.
        tb.in_bond("ip link set bond0 mtu 9000");
        wait_for("members at MTU 9000", Duration::from_secs(5), || {
            let m = tb.in_bond("cat /sys/class/net/m0/mtu /sys/class/net/m1/mtu");
            (String::from_utf8_lossy(&m.stdout)
                .split_whitespace()
                .all(|v| v == "9000"))
            .then_some(())
        });
        assert!(
            big_ping(&tb, 8972),
            "{mode}: a 9000-byte ping through the bond"
        );
        let json = tb.status_json("bond0");
        assert_eq!(json["data_plane"]["max_mtu"], 9216, "{json}");
        let too_long: u64 = plane_counter(&json, "drop_too_long");
        assert_eq!(too_long, 0, "{mode}: {json}");
        assert!(terminate(tb.child(bond)).success());
    }
}

#[test]
fn tcp_at_mtu_9000_crosses_the_tap_both_ways() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("jtcp", 2);
    peer_mtu(&tb, 2, 9000);
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4");
    tb.in_bond("ip link set bond0 mtu 9000");
    wait_for("a 9000-byte ping", Duration::from_secs(5), || {
        big_ping(&tb, 8972).then_some(())
    });
    // The frames really were jumbo: on the member that carried most of each direction's
    // data, more than 4 KB a packet on average while that direction ran (the other
    // direction's ACKs come in between, so each is counted on its own).
    let counts = |tb: &Testbed, bytes: &str, packets: &str| -> Vec<(u64, u64)> {
        let json = tb.status_json("bond0");
        let members = &json["data_plane"]["counters"]["members"];
        (0..2)
            .map(|m| {
                let get = |k: &str| members[m][k].as_u64().unwrap();
                (get(bytes), get(packets))
            })
            .collect()
    };
    for (reverse, bytes, packets) in [
        (false, "tx_bytes", "tx_packets"),
        (true, "rx_bytes", "rx_packets"),
    ] {
        let before = counts(&tb, bytes, packets);
        let moved = iperf(&tb, 2, reverse);
        assert!(moved > 1 << 20, "reverse {reverse}: {moved} bytes");
        let after = counts(&tb, bytes, packets);
        let (b, p) = (0..2)
            .map(|m| (after[m].0 - before[m].0, after[m].1 - before[m].1))
            .max()
            .unwrap();
        assert!(
            b > 4096 * p,
            "{bytes}/{packets}: {b}/{p} while reverse {reverse}"
        );
    }
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn without_jumbo_frames_a_larger_mtu_is_set_back_and_said() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("nojumbo", 2);
    let bond = tb.start_tap_bond_with("mode=active-backup,miimon=100", &["--jumbo", "off"]);
    tb.in_bond("ip link set bond0 mtu 9000");
    wait_for("bond0's MTU set back", Duration::from_secs(5), || {
        let m = tb.in_bond("cat /sys/class/net/bond0/mtu");
        (String::from_utf8_lossy(&m.stdout).trim() == "1500").then_some(())
    });
    let json = tb.status_json("bond0");
    assert_eq!(json["data_plane"]["max_mtu"], 2048 - 256 - 18, "{json}");
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_multiqueue_tap_spreads_flows_over_the_workers() {
    if !require_root() {
        return;
    }
    // Two queues on every veth, two workers: each worker serves one queue of each member and
    // one queue of the TAP.
    let mut tb = Testbed::with("mqtap", 2, "--queues 2");
    let bond = tb.start_tap_bond_with(
        "mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4",
        &["--workers", "2"],
    );
    let queues = tb.in_bond("ls /sys/class/net/bond0/queues");
    let listing = String::from_utf8_lossy(&queues.stdout);
    assert!(
        listing.contains("tx-0") && listing.contains("tx-1"),
        "bond0's queues: {listing}"
    );
    let out = iperf_streams(&tb, 2, false, 8);
    let back = iperf_streams(&tb, 2, true, 8);
    assert!(out > 1 << 20, "bond to peer: {out} bytes");
    assert!(back > 1 << 20, "peer to bond: {back} bytes");
    // Both workers carried traffic both ways.
    let json = tb.status_json("bond0");
    for w in 0..2 {
        let on = |key: &str| {
            json["data_plane"]["counters"]["queues"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| q["worker"] == w)
                .filter_map(|q| q[key].as_u64())
                .sum::<u64>()
        };
        assert!(on("tx_packets") > 100, "worker {w} sent little: {json}");
        assert!(on("rx_packets") > 100, "worker {w} received little: {json}");
    }
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_single_queue_tap_left_by_an_older_bond_dp_is_made_again() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("oldtap", 2);
    // What an older bond-dp left: a persistent single-queue TAP named as the bond.
    tb.in_bond("ip tuntap add bond0 mode tap");
    let bond = tb.start_tap_bond("mode=active-backup,miimon=100");
    let flags = tb.in_bond("ip -details link show bond0");
    let details = String::from_utf8_lossy(&flags.stdout);
    assert!(details.contains("multi_queue"), "{details}");
    assert!(terminate(tb.child(bond)).success());
    let log = common::stderr_of(tb.take(bond));
    assert!(log.contains("exists without multi-queue"), "{log}");
}
