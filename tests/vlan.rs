//! VLAN tags held as offload metadata (root, veth testbeds): a Linux bridge keeps a frame's
//! tag as skb metadata and the veth hands it over untagged, as a NIC with rx-vlan offload
//! does (and so does a tc program pushing a tag). The tag must reach the host all the same,
//! and slow-protocol frames in a VLAN are not LACP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{require_root, terminate, wait_for, Testbed};

/// A third port on the peer's bridge, q0 (in the peer namespace) behind q1: frames sent on
/// q0 with an inline tag cross br0 with the tag in metadata.
fn tagged_sender(tb: &Testbed) {
    tb.in_peer(
        "ip link add q0 type veth peer name q1; ip link set q1 master br0; \
         ip link set q1 up; ip link set q0 up",
    );
}

/// Sends `count` copies of the frame (hex) on the peer namespace's `iface`.
fn send_on(tb: &Testbed, iface: &str, hex: &str, count: usize) {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('{iface}', 0))\n\
         for _ in range({count}):\n    s.send(bytes.fromhex('{hex}'))\n"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "python3", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A broadcast ARP request in VLAN 100, from 02:00:00:00:0a:bc.
const TAGGED_ARP: &str = "ffffffffffff020000000abc8100006408060001080006040001020000000abc0a4d00630000000000000a4d0001000000000000000000000000000000000000";

#[test]
fn vlan_tags_offloaded_by_a_bridge_reach_the_host() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("vlan", 2);
    tagged_sender(&tb);
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=100");
    let capture = Command::new("ip")
        .args([
            "netns",
            "exec",
            &tb.bond_ns,
            "timeout",
            "5",
            "tcpdump",
            "-c",
            "3",
            "-e",
            "-nli",
            "bond0",
            "arp or vlan",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    send_on(&tb, "q0", TAGGED_ARP, 3);
    let out = capture.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let seen: Vec<&str> = text.lines().filter(|l| l.contains("10.77.0.99")).collect();
    assert!(!seen.is_empty(), "nothing arrived: {text}");
    for line in seen {
        assert!(line.contains("vlan 100"), "the tag was lost: {line}");
    }
    assert!(terminate(tb.child(bond)).success());
}

/// An LACPDU from a would-be partner (p0's tc program puts it in VLAN 100).
fn untagged_lacpdu() -> String {
    let mut f = String::from("0180c2000002020000000abc");
    f += "8809"; // slow protocols
    f += "0101"; // LACP, version 1
    f += "0114ffff020000000abc000f00ff0001"; // actor TLV: prio, system, key 15, port prio, port
    f += "3d000000"; // state: active, short timeout, aggregating, in sync, collecting, distributing
    f += "0214"; // partner TLV
    f += &"00".repeat(18);
    f += "0310"; // collector TLV
    f += &"00".repeat(14);
    f += "0000"; // terminator
    f += &"00".repeat(50);
    f
}

#[test]
fn slow_protocol_frames_in_a_vlan_are_not_lacp() {
    if !require_root() {
        return;
    }
    // Native XDP puts the tag back before it looks; generic XDP passes the frame to the
    // kernel, whose packet socket says it came in a VLAN.
    for mode in ["native", "generic"] {
        lacp_ignores_tagged_slow_protocols(mode);
    }
}

/// Every slow-protocol frame p0 sends gets VLAN 100 as offload metadata (a tc program): a
/// Linux bridge does not forward slow-protocol frames, so they cannot come through q0.
fn tag_what_p0_sends(tb: &Testbed, dir: &std::path::Path) {
    let obj = dir.join("vlan_push.o");
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .unwrap();
    let include = format!(
        "-I/usr/include/{}",
        String::from_utf8_lossy(&multiarch.stdout).trim()
    );
    let out = Command::new("clang")
        .args(["-O2", "-target", "bpf", &include, "-c"])
        .arg(common::repo_path("tests/vlan_push.c"))
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(out.status.success(), "clang: {out:?}");
    tb.in_peer(&format!(
        "tc qdisc add dev p0 clsact; tc filter add dev p0 egress bpf da obj {} sec tc",
        obj.display()
    ));
}

fn lacp_ignores_tagged_slow_protocols(mode: &str) {
    let mut tb = Testbed::new("vlacp", 2);
    let dir = tempfile::tempdir().unwrap();
    tag_what_p0_sends(&tb, dir.path());
    let bond = tb.start_tap_bond_with(
        "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4",
        &["--xdp-mode", mode],
    );
    let json = wait_for("LACP running", Duration::from_secs(10), || {
        let json = tb.status_json("bond0");
        json["members"][0]["lacp"]["frames"]["lacpdus_sent"]
            .as_u64()
            .is_some_and(|n| n > 0)
            .then_some(json)
    });
    let before = &json["members"];
    send_on(&tb, "p0", &untagged_lacpdu(), 20);
    std::thread::sleep(Duration::from_millis(500));
    let after = tb.status_json("bond0");
    for m in 0..2 {
        let partner = after["members"][m]["lacp"]["partner"]["system_mac"]
            .as_str()
            .unwrap();
        assert_ne!(
            partner, "02:00:00:00:0a:bc",
            "a tagged LACPDU was taken: {after}"
        );
        assert_eq!(
            after["members"][m]["lacp"]["frames"]["lacpdus_received"],
            before[m]["lacp"]["frames"]["lacpdus_received"],
            "{after}"
        );
    }
    assert!(terminate(tb.child(bond)).success());
}
