//! 802.3ad against a second, independent implementation: DPDK's bonding PMD in mode 4
//! (tests/partners/dpdk_lacp.c, built here with the system's DPDK) on the peer's ends of the
//! veth pairs. Root; scripts/deps.sh --bench installs DPDK.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{member_block, repo_path, require_root, terminate, wait_for, Testbed};

/// Builds the partner program into `dir`.
fn build_partner(dir: &std::path::Path) -> std::path::PathBuf {
    let flags = |what: &str| -> Vec<String> {
        let out = Command::new("pkg-config")
            .args([what, "libdpdk"])
            .output()
            .expect("pkg-config (scripts/deps.sh --bench installs DPDK)");
        assert!(
            out.status.success(),
            "libdpdk not found: run scripts/deps.sh --bench"
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let bin = dir.join("dpdk_lacp");
    let out = Command::new("cc")
        .arg("-O2")
        .args(flags("--cflags"))
        .arg(repo_path("tests/partners/dpdk_lacp.c"))
        .arg("-o")
        .arg(&bin)
        .args(flags("--libs"))
        .arg("-lrte_net_bond")
        .output()
        .unwrap();
    assert!(out.status.success(), "building the DPDK partner: {out:?}");
    bin
}

/// The partner's latest state line per member, as (actor, partner) state bits.
type States = Arc<Mutex<[Option<(u8, u8)>; 2]>>;

fn follow(child: &mut std::process::Child) -> (States, Arc<Mutex<u64>>) {
    let states: States = Arc::default();
    let frames = Arc::new(Mutex::new(0u64));
    let stdout = child.stdout.take().unwrap();
    let (s, f) = (Arc::clone(&states), Arc::clone(&frames));
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let hex = |w: &str| u8::from_str_radix(w.trim_start_matches("0x"), 16).ok();
            match words.as_slice() {
                ["member", m, "actor", a, "partner", p] => {
                    if let (Ok(m), Some(a), Some(p)) = (m.parse::<usize>(), hex(a), hex(p)) {
                        s.lock().unwrap()[m.min(1)] = Some((a, p));
                    }
                }
                ["frames", n] => *f.lock().unwrap() = n.parse().unwrap_or(0),
                _ => {}
            }
        }
    });
    (states, frames)
}

const IN_SYNC_COLLECTING_DISTRIBUTING: u8 = 0x08 | 0x10 | 0x20;

#[test]
fn negotiates_with_dpdks_mode_4_bond_and_says_goodbye() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let partner_bin = build_partner(dir.path());
    let mut tb = Testbed::new("dpdk", 2);
    // The partner owns p0 and p1: off the bridge.
    tb.in_peer("ip link set p0 nomaster; ip link set p1 nomaster");
    let bond = tb.spawn_bond_dp(&common::tap_bond_args(
        "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4",
    ));
    let mut partner = Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns])
        .arg(&partner_bin)
        .args(["p0", "p1", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (states, frames) = follow(&mut partner);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Both sides: every member in sync, collecting and distributing, one aggregator.
        let page = tb.status_when("bond0", "bond-dp distributing with DPDK", |s| {
            s.contains("Number of ports: 2\n")
                && ["m0", "m1"].iter().all(|m| {
                    let b = member_block(s, m);
                    b.matches("port state: 63").count() >= 1
                        && !b.contains("system mac address: 00:00:00:00:00:00")
                })
        });
        wait_for(
            "DPDK distributing with bond-dp",
            Duration::from_secs(20),
            || {
                let s = *states.lock().unwrap();
                s.iter()
                    .all(|m| {
                        m.is_some_and(|(a, p)| {
                            a & IN_SYNC_COLLECTING_DISTRIBUTING == IN_SYNC_COLLECTING_DISTRIBUTING
                                && p & IN_SYNC_COLLECTING_DISTRIBUTING
                                    == IN_SYNC_COLLECTING_DISTRIBUTING
                        })
                    })
                    .then_some(())
            },
        );
        assert!(page.contains("Partner Mac Address: "), "{page}");
        // Frames cross: the host's ARP requests reach DPDK's bond.
        tb.in_bond("ip addr replace 10.77.0.1/24 dev bond0");
        let _ = tb.in_bond("ping -c 3 -i 0.2 -W 1 10.77.0.2 || true");
        wait_for("frames at DPDK", Duration::from_secs(5), || {
            (*frames.lock().unwrap() > 0).then_some(())
        });
        // m1 leaves: its last LACPDU tells DPDK at once, well before the 3 s fast timeout.
        *states.lock().unwrap() = [None, None];
        let out = tb.set(&["slaves", "-m1"]);
        assert!(out.status.success(), "{out:?}");
        wait_for(
            "DPDK stops distributing on m1",
            Duration::from_millis(2500),
            || {
                states.lock().unwrap()[1]
                    .is_some_and(|(a, _)| a & 0x20 == 0)
                    .then_some(())
            },
        );
        let s = states.lock().unwrap()[0];
        assert!(
            s.is_some_and(|(a, _)| a & 0x20 != 0),
            "m0 distributes on: {s:?}"
        );
    }));
    let _ = partner.kill();
    let _ = partner.wait();
    assert!(terminate(tb.child(bond)).success());
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
