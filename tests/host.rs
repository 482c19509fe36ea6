//! The ordinary host's path through the TAP (root, veth testbeds): what an idle bond costs.

mod common;

use std::time::Duration;

use common::{require_root, terminate, Testbed};

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

/// Bytes iperf3 moved in `seconds` from the bond's side to the peer (`reverse`: back).
fn iperf(tb: &Testbed, seconds: u32, reverse: bool) -> u64 {
    let server = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.peer_ns, "iperf3", "-s", "-1", "-J"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let mut args = vec!["-c", "10.77.0.2", "-J", "-t"];
    let t = seconds.to_string();
    args.push(&t);
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
    assert!(terminate(tb.child(bond)).success());
}
