//! Soak: member flaps at random 1-50 ms intervals under traffic, in active-backup,
//! balance-xor and 802.3ad (Open vSwitch as the switch), then the bond must be whole: the
//! process alive (a debug build's workers check every loop that no UMEM frame is lost or in
//! two places, and a worker that finds one takes the daemon down), status right, traffic on
//! every member, and threads, descriptors and memory flat. Root only.
//!
//! CI runs 100 flaps per mode; `BOND_DP_SOAK_FLAPS=1000 cargo test --test soak` is the long
//! run (bench/RESULTS.md).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    daemon_pid, member_block, ping_once, require_root, terminate, wait_for, Rng, Testbed,
};

fn flaps() -> usize {
    std::env::var("BOND_DP_SOAK_FLAPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

/// What the daemon holds: (threads, open descriptors, resident kB).
fn footprint(pid: u32) -> (usize, usize, u64) {
    let threads = common::proc_status_field(pid, "Threads") as usize;
    (
        threads,
        common::open_fds(pid),
        common::proc_status_field(pid, "VmRSS"),
    )
}

/// Traffic through the bond for the whole soak: a ping every 5 ms.
fn traffic(tb: &Testbed) -> Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &tb.bond_ns,
            "ping",
            "-q",
            "-i",
            "0.005",
            "10.77.0.2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn soak(tag: &str, options: &str, peer: &str, seed: u64) {
    let mut tb = Testbed::with(tag, 2, peer);
    let bond = tb.start_tap_bond(options);
    let pid = daemon_pid(tb.child(bond).id());
    let settled = |tb: &Testbed| {
        let whole = |s: &str| {
            ["m0", "m1"].iter().all(|m| {
                let block = member_block(s, m);
                block.contains("MII Status: up")
                    && (!s.contains("802.3ad") || block.contains("port state: 63"))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let page = tb.status("bond0", &[]).unwrap_or_default();
            if whole(&page) {
                return;
            }
            if std::time::Instant::now() > deadline {
                let links = tb.in_bond("ip -br link; ip -d link show m0; ip -d link show m1");
                let peer = tb.in_peer("ip -br link");
                panic!(
                    "the members did not come back up:\n{page}\n{}\n{}",
                    String::from_utf8_lossy(&links.stdout),
                    String::from_utf8_lossy(&peer.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    settled(&tb);
    let before = footprint(pid);
    let mut ping = traffic(&tb);
    let mut rng = Rng(seed);
    for _ in 0..flaps() {
        let port = format!("p{}", rng.below(2));
        tb.in_peer(&format!("ip link set {port} down"));
        std::thread::sleep(Duration::from_millis(1 + rng.below(50)));
        tb.in_peer(&format!("ip link set {port} up"));
        std::thread::sleep(Duration::from_millis(1 + rng.below(50)));
    }
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(
        tb.child(bond).try_wait().unwrap().is_none(),
        "bond-dp died during the flaps"
    );
    settled(&tb);
    // Each member carries traffic alone.
    for (down, up) in [("p1", "m0"), ("p0", "m1")] {
        tb.in_peer(&format!("ip link set {down} down"));
        wait_for(
            &format!("ping over {up} alone"),
            Duration::from_secs(20),
            || ping_once(&tb.bond_ns),
        );
        tb.in_peer(&format!("ip link set {down} up"));
        settled(&tb);
    }
    let after = footprint(pid);
    assert_eq!(after.0, before.0, "threads: {before:?} -> {after:?}");
    assert!(
        after.1 <= before.1 + 2,
        "descriptors grew: {before:?} -> {after:?}"
    );
    assert!(
        after.2 <= before.2 + 16 * 1024,
        "RSS grew by more than 16 MiB: {before:?} -> {after:?}"
    );
    let page = tb.status("bond0", &[]).unwrap();
    assert!(page.contains("MII Status: up\n"), "{page}");
    assert!(
        terminate(tb.child(bond)).success(),
        "clean exit after the soak"
    );
}

#[test]
fn active_backup_survives_flaps() {
    if require_root() {
        soak("sab", "mode=active-backup,miimon=10,primary=m0", "", 1);
    }
}

#[test]
fn balance_xor_survives_flaps() {
    if require_root() {
        soak(
            "sxor",
            "mode=balance-xor,miimon=10,xmit_hash_policy=layer3+4",
            "",
            2,
        );
    }
}

#[test]
fn lacp_with_open_vswitch_survives_flaps() {
    if require_root() {
        soak(
            "slacp",
            "mode=802.3ad,miimon=10,lacp_rate=fast,xmit_hash_policy=layer3+4",
            "--peer ovs-lacp",
            3,
        );
    }
}
