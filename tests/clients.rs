//! Local clients cannot starve the daemon (root, veth testbeds): idle, trickling and flooding
//! clients of the control socket and the metrics endpoint, and a daemon out of file
//! descriptors.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{daemon_pid, proc_status_field, repo_path, require_root, terminate, Testbed};

#[test]
fn idle_trickling_and_flooding_control_clients_block_nobody() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("ctlh", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=100");
    let pid = daemon_pid(tb.child(bond).id());
    let sock = tb.run_dir.path().join("bond0.sock");
    // Five clients that connect and say nothing, one that sends a byte now and then.
    let idle: Vec<UnixStream> = (0..5)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let mut trickler = UnixStream::connect(&sock).unwrap();
    trickler.write_all(b"s").unwrap();
    for _ in 0..3 {
        let page = tb
            .status("bond0", &[])
            .expect("status answers beside idle clients");
        assert!(page.contains("Currently Active Slave"), "{page}");
        let _ = trickler.write_all(b"t");
    }
    // A request line without end is cut off at the limit, not buffered.
    let rss_before = proc_status_field(pid, "VmRSS");
    let mut flood = UnixStream::connect(&sock).unwrap();
    flood
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let chunk = vec![b'a'; 1 << 16];
    let mut sent = 0usize;
    while sent < 64 << 20 && flood.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    assert!(sent < 64 << 20, "the daemon stopped reading a 64 MiB line");
    let mut answer = String::new();
    flood
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = flood.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.contains("longer than"),
        "{answer}"
    );
    let grown = proc_status_field(pid, "VmRSS").saturating_sub(rss_before);
    assert!(grown < 16 << 10, "RSS grew by {grown} kB for one long line");
    drop(idle);
    assert!(tb.status("bond0", &[]).is_some());
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn the_metrics_endpoint_survives_hostile_clients_and_running_out_of_descriptors() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("mth", 2);
    let addr = "127.0.0.1:9623";
    // 128 descriptors: 300 clients would run the daemon out of them.
    let mut args = common::tap_bond_args("mode=balance-xor,miimon=100").to_vec();
    args.extend(["--metrics", addr]);
    let launcher = tb.start_bond0_with_limit(&args, Some(128));
    let pid = daemon_pid(tb.child(launcher).id());
    let threads_before = proc_status_field(pid, "Threads");
    let out = tb.in_bond(&format!(
        "python3 {} metrics {addr}",
        repo_path("tests/hostile.py").display()
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("scrape_with_idle_clients 200 1"), "{text}");
    assert!(text.contains("scrape_after 200 1"), "{text}");
    let oversized = text
        .lines()
        .find_map(|l| l.strip_prefix("oversized_answer "))
        .unwrap_or("");
    assert!(oversized.contains("431") || oversized == "closed", "{text}");
    let threads = proc_status_field(pid, "Threads");
    assert!(
        threads <= threads_before + 1,
        "a thread per client: {threads_before} -> {threads}"
    );
    assert!(proc_status_field(pid, "VmRSS") < 256 << 10, "RSS bounded");
    assert!(terminate(tb.child(launcher)).success());
}
