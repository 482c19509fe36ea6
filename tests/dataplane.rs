//! The AF_XDP data plane on veth testbeds (root): traffic through the bond's TAP port in
//! every mode, counted on the peer side per member. Each flow must leave on the member that
//! `bond-dp hash` names, and nothing may be lost at the rate the testbed carries.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{
    bond_dp, ping_once, ping_received, repo_path, require_root, terminate, wait_for, Testbed,
};

const FLOWS: usize = 32;
const PER_FLOW: usize = 5;

/// A bond over m0,m1 with a TAP port bond0 at 10.77.0.1 that can reach the peer.
fn bond_up(tag: &str, options: &str) -> (Testbed, usize) {
    let mut tb = Testbed::new(tag, 2);
    let bond = tb.start_tap_bond(options);
    (tb, bond)
}

/// Sends FLOWS × PER_FLOW UDP datagrams from the bond side; returns (member, frame hex) for
/// each one seen arriving on the peers p0 / p1.
fn send_flows(tb: &mut Testbed) -> Vec<(usize, String)> {
    let ns = tb.bond_ns.clone();
    send_flows_from(tb, &ns)
}

fn send_flows_from(tb: &mut Testbed, sender_ns: &str) -> Vec<(usize, String)> {
    let script = repo_path("tests/flows.py");
    let peer = tb.peer_ns.clone();
    let cap = tb.spawn_in(
        &peer,
        "python3",
        &[
            script.to_str().unwrap(),
            "capture",
            "p0",
            "p1",
            "--seconds",
            "4",
        ],
    );
    let mut capture = tb.take(cap);
    let mut lines = BufReader::new(capture.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("ready"));
    common::sh(&format!(
        "ip netns exec {sender_ns} python3 {} send 10.77.0.2 --flows {FLOWS} --per-flow {PER_FLOW}",
        script.display()
    ));
    let mut seen = Vec::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let member = if v["iface"] == "p0" { 0 } else { 1 };
        seen.push((member, v["hex"].as_str().unwrap().to_string()));
    }
    capture.wait().unwrap();
    seen
}

/// The member `bond-dp hash` gives each frame under these options, 2 members.
fn expected_members(options: &str, frames: &[String]) -> Vec<usize> {
    let mut child = bond_dp()
        .args([
            "hash",
            "--options",
            options,
            "--members",
            "2",
            "--frame",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(frames.join("\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn per_member(seen: &[(usize, String)]) -> [usize; 2] {
    let mut n = [0; 2];
    for (m, _) in seen {
        n[*m] += 1;
    }
    n
}

/// Every frame left on the member `bond-dp hash` names under `policy`.
fn assert_hashed(policy: &str, seen: &[(usize, String)]) {
    let frames: Vec<String> = seen.iter().map(|(_, f)| f.clone()).collect();
    let expected = expected_members(&format!("xmit_hash_policy={policy}"), &frames);
    for ((member, frame), want) in seen.iter().zip(&expected) {
        assert_eq!(
            member, want,
            "{policy}: frame {frame} left on m{member}, bond-dp hash says m{want}"
        );
    }
}

fn check_xor(tag: &str, policy: &str) {
    if !require_root() {
        return;
    }
    let options = format!("mode=balance-xor,miimon=50,xmit_hash_policy={policy}");
    let (mut tb, _) = bond_up(tag, &options);
    let seen = send_flows(&mut tb);
    assert_eq!(
        seen.len(),
        FLOWS * PER_FLOW,
        "every datagram arrives exactly once"
    );
    assert_hashed(policy, &seen);
    let counts = per_member(&seen);
    if policy == "layer3+4" {
        // Many flows between two hosts spread over both members only when ports count.
        assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");
    }
}

#[test]
fn balance_xor_layer2() {
    check_xor("x2", "layer2");
}

#[test]
fn balance_xor_layer23() {
    check_xor("x23", "layer2+3");
}

#[test]
fn balance_xor_layer34() {
    check_xor("x34", "layer3+4");
}

#[test]
fn balance_rr_spreads_every_frame() {
    if !require_root() {
        return;
    }
    let (mut tb, _) = bond_up("rr", "mode=balance-rr,miimon=50");
    let seen = send_flows(&mut tb);
    assert_eq!(seen.len(), FLOWS * PER_FLOW);
    let counts = per_member(&seen);
    // Frames alternate between the members (the ARP and ping in between shift the phase).
    for c in counts {
        assert!(c >= FLOWS * PER_FLOW * 2 / 5, "{counts:?}");
    }
}

#[test]
fn broadcast_sends_every_frame_on_every_member() {
    if !require_root() {
        return;
    }
    let (mut tb, _) = bond_up("bc", "mode=broadcast,miimon=50");
    let seen = send_flows(&mut tb);
    assert_eq!(per_member(&seen), [FLOWS * PER_FLOW; 2]);
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for (_, f) in &seen {
        *copies.entry(f).or_default() += 1;
    }
    assert!(copies.values().all(|&n| n == 2));
}

#[test]
fn active_backup_carries_ping_and_tcp_and_fails_over() {
    if !require_root() {
        return;
    }
    let (mut tb, bond) = bond_up("ab", "mode=active-backup,miimon=10,primary=m0");
    let seen = send_flows(&mut tb);
    assert_eq!(
        per_member(&seen),
        [FLOWS * PER_FLOW, 0],
        "all on the active member"
    );

    // A TCP transfer through the TAP host port.
    let peer = tb.peer_ns.clone();
    tb.spawn_in(&peer, "iperf3", &["-s", "-1", "-B", "10.77.0.2"]);
    // iperf3 -J exits 0 even when it could not connect: retry until the report has a total.
    let bytes = wait_for("iperf3 transfer", Duration::from_secs(20), || {
        let o = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &tb.bond_ns,
                "iperf3",
                "-c",
                "10.77.0.2",
                "-t",
                "1",
                "-J",
            ])
            .output()
            .ok()?;
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        report["end"]["sum_received"]["bytes"].as_u64()
    });
    assert!(bytes > 1_000_000, "TCP moved {bytes} bytes");

    // The cable of the active member comes loose while a ping runs.
    let ns = tb.bond_ns.clone();
    let ping = tb.spawn_in(
        &ns,
        "ping",
        &["-c", "200", "-i", "0.01", "-W", "1", "10.77.0.2"],
    );
    std::thread::sleep(Duration::from_millis(500));
    tb.in_peer("ip link set p0 down");
    let out = tb.take(ping).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        ping_received(&text) >= 190,
        "ping kept going through the failover: {text}"
    );
    let seen = send_flows(&mut tb);
    assert_eq!(
        per_member(&seen),
        [0, FLOWS * PER_FLOW],
        "all on the new active member"
    );

    assert!(terminate(tb.child(bond)).success());
    let xdp = tb.in_bond("ip -d link show m0; ip -d link show m1; ip link show bond0 2>&1 || true");
    let text = String::from_utf8_lossy(&xdp.stdout);
    assert!(!text.contains("prog/xdp"), "XDP detached on exit: {text}");
    assert!(
        text.contains("does not exist"),
        "TAP removed on exit: {text}"
    );
}

/// A host namespace whose h0 (10.77.0.1) reaches the bond's access port a0; `queues` RX and
/// TX queues on each end.
fn access_host(tb: &Testbed, tag: &str, queues: usize) -> common::Netns {
    let host = common::Netns::new(tag);
    let q = format!("numtxqueues {queues} numrxqueues {queues}");
    tb.in_bond(&format!(
        "ip link add a0 {q} type veth peer name h0 netns {} {q} && ip link set a0 up",
        host.name
    ));
    host.exec(
        "ip link set h0 up && ip addr add 10.77.0.1/24 dev h0 && ethtool -K h0 tx off >/dev/null",
    );
    host
}

/// bond-dp with m0,m1 in balance-xor layer3+4 and access port a0 (plus `extra` flags); once
/// the host namespace reaches the peer through it, sends the flows from there. Every datagram
/// must arrive once, on the member `bond-dp hash` names. Returns the bond and what was seen.
fn access_bond_flows(
    tb: &mut Testbed,
    host: &common::Netns,
    extra: &[&str],
) -> (usize, Vec<(usize, String)>) {
    let mut args = vec![
        "run",
        "--bond",
        "bond0",
        "--members",
        "m0,m1",
        "--host",
        "xdp:a0",
        "--options",
        "mode=balance-xor,miimon=50,xmit_hash_policy=layer3+4",
    ];
    args.extend_from_slice(extra);
    let bond = tb.spawn_bond_dp(&args);
    let host_ns = host.name.clone();
    wait_for(
        "ping from the host namespace through the access port",
        Duration::from_secs(10),
        || ping_once(&host_ns),
    );
    let seen = send_flows_from(tb, &host_ns);
    assert_eq!(
        seen.len(),
        FLOWS * PER_FLOW,
        "every datagram arrives exactly once"
    );
    assert_hashed("layer3+4", &seen);
    (bond, seen)
}

/// `bond-dp status NAME --json` of the testbed's bond.
#[test]
fn access_port_is_a_bump_in_the_wire() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("acc", 2);
    let host = access_host(&tb, "acch", 1);
    let (bond, seen) = access_bond_flows(&mut tb, &host, &[]);
    let counts = per_member(&seen);
    assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");
    assert!(terminate(tb.child(bond)).success());
    let a0 = tb.in_bond("ip -d link show a0");
    assert!(
        !String::from_utf8_lossy(&a0.stdout).contains("prog/xdp"),
        "XDP detached from the access port"
    );
}

#[test]
fn a_member_joins_and_leaves_an_access_port_bond_in_place() {
    if !require_root() {
        return;
    }
    // The access port has a slot of its own in the program's maps, so members that come and
    // go never take it: after m2 joined and left twice, on the same program, every datagram
    // still arrives once, on the member `bond-dp hash` names.
    let mut tb = Testbed::new("accmc", 3);
    let host = access_host(&tb, "accmch", 1);
    let (bond, _) = access_bond_flows(&mut tb, &host, &[]);
    let before = ["m0", "m1", "a0"].map(|i| tb.xdp_program_id(i));
    for change in ["+m2", "-m2", "+m2", "-m2"] {
        let out = tb.set(&["slaves", change]);
        assert!(out.status.success(), "{change}: {out:?}");
    }
    assert_eq!(
        ["m0", "m1", "a0"].map(|i| tb.xdp_program_id(i)),
        before,
        "rebuilt instead of changed in place"
    );
    let seen = send_flows_from(&mut tb, &host.name.clone());
    assert_eq!(
        seen.len(),
        FLOWS * PER_FLOW,
        "every datagram arrives exactly once"
    );
    assert_hashed("layer3+4", &seen);
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn two_workers_serve_the_queues_of_multi_queue_members() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("mq", 2, "--queues 2");
    let host = access_host(&tb, "mqh", 2);
    let (bond, _) = access_bond_flows(&mut tb, &host, &["--workers", "2"]);

    // Every member queue has a socket, each worker moved some of the flows, and the XDP
    // program found a socket for every frame.
    let status = tb.status_json("bond0");
    let plane = &status["data_plane"];
    assert_eq!(plane["workers"], 2);
    let queues = plane["counters"]["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 4, "2 members x 2 queues: {queues:?}");
    for w in 0..2 {
        let sent: u64 = queues
            .iter()
            .filter(|q| q["worker"] == w)
            .map(|q| q["tx_packets"].as_u64().unwrap())
            .sum();
        assert!(sent > 0, "worker {w} sent nothing: {queues:?}");
    }
    for m in plane["xdp"].as_array().unwrap() {
        assert_eq!(m["no_socket_dropped"], 0, "{m}");
    }
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn open_vswitch_static_lag_peer() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("ovs", 2, "--peer ovs-slb");
    assert!(tb
        .ovs_appctl("bond/show bond0")
        .contains("bond_mode: balance-slb"));
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=50,xmit_hash_policy=layer3+4");
    let seen = send_flows(&mut tb);
    assert_eq!(seen.len(), FLOWS * PER_FLOW, "every datagram arrives once");
    assert_hashed("layer3+4", &seen);
    let counts = per_member(&seen);
    assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");
    assert!(terminate(tb.child(bond)).success());
}
