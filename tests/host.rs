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
    let launcher = tb.child(bond).id();
    let children = std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
        .unwrap_or_default();
    let pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(launcher);
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
