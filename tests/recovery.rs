//! A bond that never takes the host off the network when bond-dp itself fails: killed
//! outright, restarted, hung up on, a worker that dies, a second copy started by mistake.
//! Root only (veth testbeds); each test fails on a bond-dp that leaves its XDP program, MACs
//! or TAP behind, or cannot start again over them.

mod common;

use std::time::{Duration, Instant};

use common::{ping_once, require_root, stderr_of, terminate, wait_for, Testbed};

const OPTIONS: &str = "mode=active-backup,miimon=100,primary=m0";
const RUN: [&str; 7] = common::tap_bond_args(OPTIONS);

/// A command in the bond namespace that may fail (the test looks at its status).
fn try_in_bond(tb: &Testbed, cmd: &str) -> std::process::Output {
    std::process::Command::new("ip")
        .args(["netns", "exec", &tb.bond_ns, "sh", "-c", cmd])
        .output()
        .expect("ip netns exec")
}

fn mac_of(tb: &Testbed, iface: &str) -> String {
    let out = tb.in_bond(&format!("cat /sys/class/net/{iface}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn has_xdp(tb: &Testbed, iface: &str) -> bool {
    let out = tb.in_bond(&format!("ip -d link show {iface}"));
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

fn bond0_addresses(tb: &Testbed) -> String {
    let out = tb.in_bond("ip -4 addr show dev bond0");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a ping through the bond without touching bond0's addresses.
fn reachable(tb: &Testbed, what: &str) {
    wait_for(what, Duration::from_secs(15), || ping_once(&tb.bond_ns));
}

#[test]
fn kill_9_leaves_no_black_hole_and_the_same_command_starts_again() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("kill9", 2);
    let own = (mac_of(&tb, "m0"), mac_of(&tb, "m1"));
    let first = tb.start_tap_bond(OPTIONS);
    // m1 carries the bond's MAC (m0's) while bond-dp runs.
    assert_eq!(mac_of(&tb, "m1"), own.0);

    tb.child(first).kill().unwrap(); // SIGKILL: no clean-up code runs
    tb.child(first).wait().unwrap();
    // The kernel removed the program with the process's bpf_links: nothing drops frames.
    wait_for("XDP gone from the members", Duration::from_secs(5), || {
        (!has_xdp(&tb, "m0") && !has_xdp(&tb, "m1")).then_some(())
    });
    // The persistent TAP stays, without carrier, with the operator's address.
    let kept = bond0_addresses(&tb);
    assert!(kept.contains("10.77.0.1/24"), "{kept}");
    assert!(kept.contains("NO-CARRIER"), "{kept}");

    // The same command again: it takes over and traffic flows, with no address re-added.
    let second = tb.spawn_bond_dp(&RUN);
    reachable(&tb, "ping after the restart");
    assert!(has_xdp(&tb, "m0") && has_xdp(&tb, "m1"));
    let status = tb.status("bond0", &[]).expect("status after the restart");
    assert!(status.contains("Currently Active Slave: m0"), "{status}");
    // m1's own MAC came from the record, not from what the dead process left on it.
    let m1 = common::member_block(&status, "m1");
    assert!(
        m1.contains(&format!("Permanent HW addr: {}", own.1)),
        "{status}"
    );
    assert!(terminate(tb.child(second)).success());
    assert_eq!((mac_of(&tb, "m0"), mac_of(&tb, "m1")), own);
    let log = stderr_of(tb.take(second));
    assert!(log.contains("died without cleaning up"), "{log}");
}

#[test]
fn a_clean_restart_keeps_the_hosts_addresses() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("restart", 2);
    let first = tb.start_tap_bond(OPTIONS);
    assert!(terminate(tb.child(first)).success());
    // A clean stop removes the TAP and gives everything back...
    assert!(!try_in_bond(&tb, "ip link show bond0").status.success());
    assert!(!has_xdp(&tb, "m0"));
    // ...and the next start puts the operator's address back on the new TAP.
    let second = tb.spawn_bond_dp(&RUN);
    reachable(&tb, "ping after a clean restart");
    assert!(bond0_addresses(&tb).contains("10.77.0.1/24"));
    assert!(terminate(tb.child(second)).success());
}

#[test]
fn sighup_does_not_stop_the_bond() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("hup", 2);
    let bond = tb.start_tap_bond(OPTIONS);
    let pid = tb.child(bond).id();
    tb.in_bond(&format!("kill -HUP {pid}"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tb.child(bond).try_wait().unwrap().is_none(),
        "SIGHUP killed it"
    );
    reachable(&tb, "ping after SIGHUP");
    assert!(terminate(tb.child(bond)).success());
    let log = stderr_of(tb.take(bond));
    assert!(log.contains("SIGHUP received"), "{log}");
}

#[test]
fn a_worker_that_panics_takes_the_daemon_down_for_a_restart() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("panic", 2);
    let bond = tb.spawn_bond_dp_env(&RUN, &[("BOND_DP_FAULT", "worker-panic")]);
    wait_for("bond0", Duration::from_secs(10), || {
        try_in_bond(&tb, "ip link show bond0")
            .status
            .success()
            .then_some(())
    });
    tb.in_bond("ip addr add 10.77.0.1/24 dev bond0");
    let _ = ping_once(&tb.bond_ns); // the first frames make the worker panic
    let start = Instant::now();
    let status = wait_for("the daemon to exit", Duration::from_secs(10), || {
        let _ = ping_once(&tb.bond_ns);
        tb.child(bond).try_wait().ok().flatten()
    });
    assert!(!status.success(), "a dead worker must make the daemon fail");
    assert!(start.elapsed() < Duration::from_secs(10));
    let log = stderr_of(tb.take(bond));
    assert!(log.contains("worker thread bond0-w0 died"), "{log}");
    // It did not leave a black hole, and a restart (without the fault) just works.
    assert!(!has_xdp(&tb, "m0") && !has_xdp(&tb, "m1"));
    let again = tb.spawn_bond_dp(&RUN);
    reachable(&tb, "ping after the restart");
    assert!(terminate(tb.child(again)).success());
}

#[test]
fn a_second_copy_is_refused_and_names_the_running_one() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("twice", 3);
    let first = tb.start_tap_bond(OPTIONS);
    let pid = tb.child(first).id();
    let run_dir = tb.run_dir.path().display().to_string();
    let try_run = |args: &str| {
        let out = try_in_bond(
            &tb,
            &format!(
                "{} run {args} --run-dir {run_dir}",
                env!("CARGO_BIN_EXE_bond-dp")
            ),
        );
        assert!(!out.status.success(), "{args} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let again = try_run("--bond bond0 --members m0,m1");
    assert!(
        again.contains(&format!("bond bond0 is already running (pid {pid})")),
        "{again}"
    );
    let shared = try_run("--bond bond1 --members m2,m1");
    assert!(
        shared.contains(&format!(
            "member m1 is held by bond bond0 of another bond-dp (pid {pid})"
        )),
        "{shared}"
    );
    let tap = try_run("--bond bond1 --members m2 --host tap:bond0");
    assert!(tap.contains("bond0"), "{tap}");
    // Devices that must never be members.
    let lo = try_run("--bond bond1 --members lo");
    assert!(lo.contains("lo is the loopback device"), "{lo}");
    for (member, why) in [("+lo", "loopback"), ("+bond0", "host device")] {
        let out = try_in_bond(
            &tb,
            &format!(
                "{} set bond0 slaves {member} --run-dir {run_dir}",
                env!("CARGO_BIN_EXE_bond-dp")
            ),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && text.contains(why),
            "{member}: {text}"
        );
    }
    // The running bond did not notice any of it.
    reachable(&tb, "ping through the first bond");
    assert!(has_xdp(&tb, "m0"));
    assert!(terminate(tb.child(first)).success());
}

fn mtu_of(tb: &Testbed, iface: &str) -> u32 {
    let out = tb.in_bond(&format!("cat /sys/class/net/{iface}/mtu"));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn mtu_and_mac_changed_from_outside_are_followed() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("mtumac", 2);
    let bond = tb.start_bond0(&RUN);
    let bond_mac = mac_of(&tb, "m0");
    // A MAC changed from outside is put back: m1 would stop receiving the bond's frames.
    tb.in_bond("ip link set m1 address 02:00:00:00:99:99");
    wait_for("m1's MAC put back", Duration::from_secs(5), || {
        (mac_of(&tb, "m1") == bond_mac).then_some(())
    });
    // An MTU changed from outside is kept, as the kernel keeps it; frames longer than it
    // allows are dropped and counted.
    tb.in_bond("ip link set m0 mtu 1000");
    std::thread::sleep(Duration::from_millis(500));
    let _ = try_in_bond(&tb, "ping -c 3 -i 0.2 -W 1 -s 1200 10.77.0.2");
    let json = tb.status_json("bond0");
    let too_big = json["data_plane"]["counters"]["members"][0]["tx_too_big"]
        .as_u64()
        .unwrap();
    assert!(too_big >= 3, "{json}");
    assert_eq!(mtu_of(&tb, "m0"), 1000, "kept");
    // The host side's MTU reaches every member, as the kernel's bond passes its MTU on.
    tb.in_bond("ip link set bond0 mtu 1400");
    wait_for("members at MTU 1400", Duration::from_secs(5), || {
        (mtu_of(&tb, "m0") == 1400 && mtu_of(&tb, "m1") == 1400).then_some(())
    });
    reachable(&tb, "after the MTU change");
    // More than the engine carries (9216 with jumbo frames) is set back.
    tb.in_bond("ip link set bond0 mtu 9500");
    wait_for("bond0 set back", Duration::from_secs(5), || {
        (mtu_of(&tb, "bond0") == 1400).then_some(())
    });
    assert_eq!(mtu_of(&tb, "m0"), 1400);
    let log = {
        assert!(terminate(tb.child(bond)).success());
        stderr_of(tb.take(bond))
    };
    assert!(log.contains("changed from outside"), "{log}");
    assert!(log.contains("larger than the engine carries"), "{log}");
}

#[test]
fn a_member_deleted_and_created_again_is_attached_afresh() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("recreate", 3);
    let bond = tb.start_bond0(&RUN);
    // m1 goes: the bond reports it, and members still join the data plane.
    tb.in_bond("ip link del m1");
    tb.status_when("bond0", "m1 down", |s| {
        common::member_block(s, "m1").contains("MII Status: down")
    });
    reachable(&tb, "over m0 with m1 gone");
    let out = tb.set(&["slaves", "+m2"]);
    assert!(out.status.success(), "{out:?}");
    reachable(&tb, "after m2 joined without m1");
    // A new device of m1's name: attached to as the member (XDP on it, its link up), in
    // place: the other members keep their program.
    let program = ["m0", "m2"].map(|m| tb.xdp_program_id(m));
    tb.in_bond(&format!(
        "ip link add m1 type veth peer name p1 netns {}; ip link set m1 up",
        tb.peer_ns
    ));
    tb.in_peer("ip link set p1 master br0; ethtool -K p1 tx off >/dev/null; ip link set p1 up");
    tb.status_when("bond0", "m1 up again", |s| {
        common::member_block(s, "m1").contains("MII Status: up")
    });
    wait_for("XDP on the new m1", Duration::from_secs(5), || {
        has_xdp(&tb, "m1").then_some(())
    });
    assert_eq!(
        ["m0", "m2"].map(|m| tb.xdp_program_id(m)),
        program,
        "the data plane was rebuilt around the new m1"
    );
    // m0 and m2 go down: traffic goes over the new m1.
    tb.in_peer("ip link set p0 down; ip link set p2 down");
    tb.status_when("bond0", "m1 active", |s| {
        s.contains("Currently Active Slave: m1")
    });
    reachable(&tb, "over the new m1");
    assert!(terminate(tb.child(bond)).success());
}
