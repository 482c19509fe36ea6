//! What the kernel drops is seen, and counters never go backwards (root, veth testbeds).

mod common;

use std::time::Duration;

use common::{require_root, tap_bond_args, terminate, wait_for, Testbed};

fn set(tb: &Testbed, args: &[&str]) {
    let out = tb.set(args);
    assert!(out.status.success(), "set {args:?}: {out:?}");
}

fn member(json: &serde_json::Value, m: usize, field: &str) -> u64 {
    json["data_plane"]["counters"]["members"][m][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} for member {m}: {json}"))
}

#[test]
fn a_storm_the_kernel_drops_shows_in_status_and_metrics() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("storm", 2);
    let mut args = tap_bond_args("mode=balance-xor,miimon=100").to_vec();
    args.extend(["--ring-size", "64", "--metrics", "127.0.0.1:9624"]);
    // Workers that nap 50 ms a loop: 20,000 frames overrun a 64-frame ring on any machine.
    let bond = tb.spawn_bond_dp_env(&args, &[("BOND_DP_FAULT", "worker-slow")]);
    wait_for("bond0", Duration::from_secs(10), || {
        tb.status("bond0", &[])
            .filter(|s| s.contains("MII Status: up"))
    });
    let storm = "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('p0', 0))\n\
         f = bytes.fromhex('ffffffffffff02000000aa010800') + bytes(50)\n\
         for _ in range(20000):\n    s.send(f)\n";
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "python3", "-c", storm])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = wait_for("kernel drops counted", Duration::from_secs(10), || {
        let json = tb.status_json("bond0");
        (member(&json, 0, "kernel_rx_dropped") + member(&json, 0, "kernel_rx_ring_full") > 0)
            .then_some(json)
    });
    let redirected = json["data_plane"]["xdp"][0]["redirected"].as_u64().unwrap();
    let delivered = member(&json, 0, "rx_packets");
    assert!(
        delivered < redirected,
        "the program redirected {redirected}, the bond saw {delivered}: {json}"
    );
    let scrape = "import urllib.request; \
         print(urllib.request.urlopen('http://127.0.0.1:9624/metrics', timeout=5).read().decode())";
    let page = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.bond_ns, "python3", "-c", scrape])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.lines().any(|l| l.starts_with(
            "bond_dp_member_kernel_drops_total{bond=\"bond0\",member=\"m0\",reason=\"rx_dropped\"}"
        ) && !l.ends_with(" 0")),
        "{page}"
    );
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn counters_carry_on_across_member_changes() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("mono", 3);
    let bond = tb.start_tap_bond("mode=balance-rr,miimon=50");
    let out = tb.in_bond("ping -c 40 -i 0.01 -q 10.77.0.2");
    assert!(out.status.success(), "{out:?}");
    let before = tb.status_json("bond0");
    let (tx, rx) = (
        member(&before, 0, "tx_packets"),
        member(&before, 0, "rx_packets"),
    );
    let redirected = before["data_plane"]["xdp"][0]["redirected"]
        .as_u64()
        .unwrap();
    assert!(tx >= 10, "{before}");
    set(&tb, &["slaves", "+m2"]);
    set(&tb, &["slaves", "-m2"]);
    let after = tb.status_json("bond0");
    assert!(
        member(&after, 0, "tx_packets") >= tx,
        "tx went back: {before}\n{after}"
    );
    assert!(
        member(&after, 0, "rx_packets") >= rx,
        "rx went back: {after}"
    );
    assert!(
        after["data_plane"]["xdp"][0]["redirected"]
            .as_u64()
            .unwrap()
            >= redirected,
        "XDP counts went back: {after}"
    );
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_log_nobody_reads_never_stops_the_bond() {
    if !require_root() {
        return;
    }
    // The daemon's stderr is a pipe this test never reads (64 KiB), and every bad
    // slow-protocol frame is logged at debug (about 140 bytes): 600 of them fill it. They
    // are sent at about 2,500 a second, which the packet socket's buffer takes.
    let mut tb = Testbed::new("stall", 2);
    let bond = tb.start_tap_bond_with(
        "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4",
        &["--log-level", "debug"],
    );
    let flood = "import socket, time\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('p0', 0))\n\
         f = bytes.fromhex('0180c200000202000000aa0188090901') + bytes(44)\n\
         for i in range(2000):\n    s.send(f)\n    time.sleep(0.0004)\n";
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "python3", "-c", flood])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = wait_for("bad frames counted", Duration::from_secs(10), || {
        let json = tb.status_json("bond0");
        let bad = json["members"][0]["lacp"]["frames"]["unknown_subtype"]
            .as_u64()
            .unwrap_or(0);
        (bad >= 600).then_some(json)
    });
    assert!(json["members"][0]["lacp"]["frames"].is_object(), "{json}");
    // The bond still answers and carries traffic (status goes through the bond's lock).
    for _ in 0..3 {
        assert!(tb.status("bond0", &[]).is_some(), "status answers");
    }
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_broadcast_storm_does_not_fail_the_arp_monitor_over() {
    if !require_root() {
        return;
    }
    // The ARP monitor validates every member's replies; the workers nap 50 ms a loop and
    // the rings hold 64 frames (1,280 frames a second at most), so a storm of 100 frames
    // every 5 ms fills the data queues whatever the machine's speed, while the kernel's own
    // queues (a veth's 256-frame ring) keep up: the replies reach the monitor past the full
    // data queues, copied by the XDP program. (A storm as fast as the sender can go would
    // also overrun the kernel's queues on a slow machine, as it would the kernel's bond.)
    let mut tb = Testbed::new("arpstorm", 2);
    let mut args = tap_bond_args(
        "mode=active-backup,arp_interval=100,arp_ip_target=10.77.0.2,arp_validate=all,primary=m0",
    )
    .to_vec();
    args.extend(["--ring-size", "64"]);
    let bond = tb.spawn_bond_dp_env(&args, &[("BOND_DP_FAULT", "worker-slow")]);
    // The address first: replies prove a member only when they answer one of the bond's own
    // addresses, so until it is there the monitor takes both members down (as the kernel's
    // does), and the members it started with as up prove nothing.
    wait_for("bond0 with its address", Duration::from_secs(10), || {
        common::sh_ok(&format!(
            "ip netns exec {} ip addr replace 10.77.0.1/24 dev bond0",
            tb.bond_ns
        ))
    });
    std::thread::sleep(Duration::from_millis(500));
    wait_for(
        "bond0 with both members proven",
        Duration::from_secs(15),
        || {
            tb.status("bond0", &[]).filter(|s| {
                s.contains("Currently Active Slave: m0") && s.matches("MII Status: up").count() == 3
            })
        },
    );
    // Past the monitor's first intervals, whatever they decided.
    std::thread::sleep(Duration::from_secs(1));
    let before = tb.status_json("bond0");
    assert_eq!(before["active"], "m0", "{before}");
    let storm = "import socket, time\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('br0', 0))\n\
         f = bytes.fromhex('ffffffffffff02000000aa010800') + bytes(50)\n\
         end = time.time() + 3\n\
         while time.time() < end:\n    for _ in range(100):\n        s.send(f)\n    time.sleep(0.005)\n";
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "python3", "-c", storm])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = tb.status_json("bond0");
    let dropped: u64 = (0..2)
        .map(|m| member(&after, m, "kernel_rx_dropped") + member(&after, m, "kernel_rx_ring_full"))
        .sum();
    assert!(dropped > 0, "the storm overran the data queues: {after}");
    // Where frames were lost before bond-dp saw them, should this fail: the peer's veth
    // ends count what the kernel's rings refused.
    let peer_links = String::from_utf8_lossy(&tb.in_peer("ip -s link show").stdout).into_owned();
    assert_eq!(
        after["failovers"], before["failovers"],
        "no failover: {before}\n{after}\n{peer_links}"
    );
    for m in 0..2 {
        assert_eq!(
            after["members"][m]["link_failure_count"], before["members"][m]["link_failure_count"],
            "member {m} never failed: {after}"
        );
    }
    assert!(terminate(tb.child(bond)).success());
}
