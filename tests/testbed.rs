//! `bond-dp run` and `bond-dp status` on real interfaces: veth pairs in a network namespace
//! made for each test (root). Failover follows carrier; status reads like the kernel's page.

mod common;

use std::time::Duration;

use common::{bond_dp, member_block, require_root, terminate, wait_for, Netns};

fn status(ns: &Netns, run_dir: &str, args: &[&str]) -> Option<String> {
    let out = ns
        .command(env!("CARGO_BIN_EXE_bond-dp"))
        .args(["status", "--run-dir", run_dir])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The status page once `pred` holds for it (bounded wait: state changes follow miimon).
fn status_when(ns: &Netns, run_dir: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    wait_for(what, Duration::from_secs(10), || {
        status(ns, run_dir, &["bond0"]).filter(|s| pred(s))
    })
}

#[test]
fn active_backup_follows_carrier_and_reports_like_the_kernel() {
    if !require_root() {
        return;
    }
    let mut ns = Netns::new("ab");
    ns.veth("m0", "p0");
    ns.veth("m1", "p1");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_str().unwrap().to_string();
    let bond = ns.spawn_bond_dp(&[
        "run",
        "--bond",
        "bond0",
        "--members",
        "m0,m1",
        "--host",
        "none",
        "--run-dir",
        &run_dir,
        "--options",
        "mode=active-backup,miimon=10,primary=m0",
    ]);

    let page = status_when(&ns, &run_dir, "bond up", |s| s.contains("MII Status: up"));
    assert!(page.starts_with("Ethernet Channel Bonding Driver: v"));
    assert!(page.contains("Bonding Mode: fault-tolerance (active-backup)\nPrimary Slave: m0 (primary_reselect always)\nCurrently Active Slave: m0\nMII Status: up\nMII Polling Interval (ms): 10\n"));
    let m0 = member_block(&page, "m0");
    assert!(m0.contains("MII Status: up\nSpeed: 10000 Mbps\nDuplex: full\nLink Failure Count: 0\nPermanent HW addr: "));

    // The cable "wiggles loose": the peer goes down, m0 loses carrier.
    ns.exec("ip link set p0 down");
    let page = status_when(&ns, &run_dir, "failover to m1", |s| {
        s.contains("Currently Active Slave: m1")
    });
    let m0 = member_block(&page, "m0");
    assert!(
        m0.contains("MII Status: down") && m0.contains("Link Failure Count: 1"),
        "{m0}"
    );
    assert!(
        page.contains("MII Status: up\n"),
        "the bond keeps carrier on m1"
    );

    // Back: primary_reselect=always returns to the primary.
    ns.exec("ip link set p0 up");
    status_when(&ns, &run_dir, "primary back", |s| {
        s.contains("Currently Active Slave: m0")
    });

    // Setting the member itself down is a failure too; both down leaves the bond down.
    ns.exec("ip link set m0 down; ip link set m1 down");
    let page = status_when(&ns, &run_dir, "bond down", |s| {
        s.contains("Currently Active Slave: None")
    });
    assert!(
        page.contains("\nMII Status: down\nMII Polling Interval"),
        "{page}"
    );

    // JSON carries the same facts.
    ns.exec("ip link set m1 up");
    let json = wait_for("json with m1 active", Duration::from_secs(10), || {
        status(&ns, &run_dir, &["bond0", "--json"]).filter(|s| s.contains("\"active\": \"m1\""))
    });
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mode"], "active-backup");
    assert_eq!(v["members"][0]["link_failure_count"], 2);

    let exit = terminate(ns.child(bond));
    assert!(exit.success(), "SIGTERM ends the daemon cleanly: {exit:?}");
    assert!(
        !dir.path().join("bond0.sock").exists(),
        "control socket removed on exit"
    );
}

#[test]
fn one_process_runs_several_bonds_and_status_shows_them_all() {
    if !require_root() {
        return;
    }
    let mut ns = Netns::new("multi");
    for i in 0..4 {
        ns.veth(&format!("m{i}"), &format!("p{i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_str().unwrap().to_string();
    let config = dir.path().join("bonds.toml");
    std::fs::write(
        &config,
        format!(
            "run_dir = \"{run_dir}\"\n\n[bond.bond0]\nmembers = [\"m0\", \"m1\"]\nhost = \"none\"\nmode = \"balance-xor\"\nmiimon = 20\nxmit_hash_policy = \"layer3+4\"\n\n\
             [bond.bond1]\nmembers = [\"m2\", \"m3\"]\nhost = \"none\"\noptions = \"mode=802.3ad,lacp_rate=fast,min_links=1\"\n"
        ),
    )
    .unwrap();
    let bond = ns.spawn_bond_dp(&["run", "--config", config.to_str().unwrap()]);
    let all = wait_for("both bonds", Duration::from_secs(10), || {
        status(&ns, &run_dir, &[])
            .filter(|s| s.contains("bond1") || s.matches("Bonding Mode").count() == 2)
    });
    assert!(
        all.contains("Bonding Mode: load balancing (xor)\nTransmit Hash Policy: layer3+4 (1)\n")
    );
    assert!(all.contains(
        "Bonding Mode: IEEE 802.3ad Dynamic link aggregation\nTransmit Hash Policy: layer2 (0)\n"
    ));
    assert!(all.contains("\n802.3ad info\nLACP active: on\nLACP rate: fast\nMin links: 1\n"));
    let json: serde_json::Value =
        serde_json::from_str(&status(&ns, &run_dir, &["--json"]).unwrap()).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    // A second process for the same bonds is refused.
    let second = ns
        .command(env!("CARGO_BIN_EXE_bond-dp"))
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("bond bond0 is already running"));

    assert!(terminate(ns.child(bond)).success());
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".sock")));
}

#[test]
fn status_of_a_bond_that_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let out = bond_dp()
        .args(["status", "bond7", "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bond bond7 is not running"));
}
