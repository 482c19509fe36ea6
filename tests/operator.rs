//! What operators use around a running bond (root, veth testbeds): Prometheus metrics.

mod common;

use std::time::Duration;

use common::{ping_once, require_root, sh_ok, terminate, wait_for, Testbed};

/// The metrics page, scraped from inside the bond's namespace.
fn scrape(tb: &Testbed, addr: &str) -> Option<String> {
    let script = format!(
        "import urllib.request; print(urllib.request.urlopen('http://{addr}/metrics', timeout=2).read().decode())"
    );
    let out = sh_ok(&format!(
        "ip netns exec {} python3 -c \"{script}\"",
        tb.bond_ns
    ))?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_metrics_follow_the_bond() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("metrics", 2);
    tb.in_bond("ip link set lo up");
    let addr = "127.0.0.1:9464";
    let bond = tb.start_tap_bond_with(
        "mode=active-backup,miimon=50,primary=m0",
        &["--metrics", addr],
    );
    let page = wait_for("metrics", Duration::from_secs(10), || scrape(&tb, addr));
    assert!(
        page.contains("# TYPE bond_dp_bond_up gauge\nbond_dp_bond_up{bond=\"bond0\"} 1\n"),
        "{page}"
    );
    assert!(
        page.contains("bond_dp_member_active{bond=\"bond0\",member=\"m0\"} 1\n"),
        "{page}"
    );
    assert!(
        page.contains("bond_dp_failovers_total{bond=\"bond0\"} 0\n"),
        "{page}"
    );
    assert!(
        page.contains("bond_dp_drops_total{bond=\"bond0\",reason=\"no_member\"} 0\n"),
        "{page}"
    );

    let before_failover = unix_now();
    tb.in_peer("ip link set p0 down");
    wait_for("ping over m1", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    // A page is the monitor's last publication (at most 100 ms old): wait for one from
    // after the ping that crossed m1.
    let m1_carried = |p: &str| {
        p.lines()
            .find(|l| {
                l.starts_with("bond_dp_member_tx_packets_total{bond=\"bond0\",member=\"m1\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|tx| tx > 0.0)
    };
    let page = wait_for("failover in the metrics", Duration::from_secs(10), || {
        scrape(&tb, addr)
            .filter(|p| p.contains("bond_dp_failovers_total{bond=\"bond0\"} 1\n") && m1_carried(p))
    });
    assert!(
        page.contains("bond_dp_member_up{bond=\"bond0\",member=\"m0\"} 0\n"),
        "{page}"
    );
    assert!(
        page.contains("bond_dp_member_active{bond=\"bond0\",member=\"m1\"} 1\n"),
        "{page}"
    );
    assert!(page.contains("bond_dp_member_link_failures_total{bond=\"bond0\",member=\"m0\"} 1\n"));
    // The failover happened between the cable pull and this scrape, by the clock.
    let when = page
        .lines()
        .find(|l| l.starts_with("bond_dp_last_failover_timestamp_seconds{bond=\"bond0\"} "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no failover timestamp: {page}"));
    assert!(
        (before_failover - 1.0..=unix_now() + 1.0).contains(&when),
        "failover at {when}, cable pulled at {before_failover}: {page}"
    );
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn the_control_socket_answers_root_only() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("cred", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=100");
    let dir = tb.run_dir.path().display().to_string();
    // Even with the modes loosened, another user is refused by its credentials.
    sh_ok(&format!("chmod 755 {dir} && chmod 666 {dir}/bond0.sock")).expect("chmod");
    let script = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect('{dir}/bond0.sock'); \
         s.sendall(b'status\\n'); print(s.recv(4096).decode())"
    );
    let out = sh_ok(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c \"{script}\""
    ))
    .expect("nobody connects");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains(
            "error: permission denied: the control socket answers root only, not uid 65534"
        ),
        "{answer}"
    );
    assert!(tb.status("bond0", &[]).is_some(), "root is answered");
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn watch_shows_live_member_rates() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("watch", 2);
    let bond = tb.start_tap_bond("mode=balance-rr,miimon=100");
    // Traffic while watching: a ping every 10 ms over both members (balance-rr).
    let ns = tb.bond_ns.clone();
    tb.spawn_in(&ns, "ping", &["-c", "300", "-i", "0.01", "10.77.0.2"]);
    let out = sh_ok(&format!(
        "ip netns exec {} {} watch bond0 --count 2 --interval 0.5 --run-dir {}",
        tb.bond_ns,
        env!("CARGO_BIN_EXE_bond-dp"),
        tb.run_dir.path().display()
    ))
    .expect("watch runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("bond0 (balance-rr, up").count(), 2, "{text}");
    // The second refresh has rates: both members send about 50 pings a second.
    let second = &text[text.rfind("bond0 (").unwrap()..];
    for member in ["m0", "m1"] {
        let line = second
            .lines()
            .find(|l| l.contains(&format!(" {member} ")))
            .unwrap();
        // "[*] member link tx rx ...": the rate follows the link state.
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == member).unwrap();
        let tx: f64 = words[at + 2].parse().unwrap();
        assert!(tx > 10.0, "{member} sends: {line}\n{text}");
    }
    assert!(terminate(tb.child(bond)).success());
}

/// The sample files of one dialect, as paths.
fn samples(dir: &str) -> Vec<String> {
    let dir = common::repo_path(&format!("tests/samples/{dir}"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn imported_configs_of_every_dialect_run_on_a_testbed() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("import", 2);
    let own_m1 = String::from_utf8_lossy(&tb.in_bond("cat /sys/class/net/m1/address").stdout)
        .trim()
        .to_string();
    let work = tempfile::tempdir().unwrap();
    let mut ifcfg_members = samples("ifcfg");
    ifcfg_members.retain(|f| !f.ends_with("ifcfg-bond0"));
    let modprobe = [samples("modprobe"), ifcfg_members].concat();
    for (dialect, files, mode) in [
        (
            "proxmox",
            samples("proxmox"),
            "IEEE 802.3ad Dynamic link aggregation",
        ),
        (
            "networkd-ab",
            samples("networkd-ab"),
            "fault-tolerance (active-backup)",
        ),
        (
            "networkd-lacp",
            samples("networkd-lacp"),
            "IEEE 802.3ad Dynamic link aggregation",
        ),
        ("nmcli", samples("nmcli"), "fault-tolerance (active-backup)"),
        ("ifcfg", samples("ifcfg"), "load balancing (xor)"),
        ("modprobe", modprobe, "fault-tolerance (active-backup)"),
    ] {
        let mut cmd = common::bond_dp();
        cmd.arg("import").args(&files);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{dialect}: {out:?}");
        let toml = String::from_utf8(out.stdout).unwrap();
        assert!(
            toml.contains("members = [\"m0\", \"m1\"]"),
            "{dialect}: {toml}"
        );
        let config = work.path().join(format!("{dialect}.toml"));
        std::fs::write(&config, &toml).unwrap();
        let bond = tb.start_bond0(&["run", "--config", config.to_str().unwrap()]);
        let page = tb.status("bond0", &[]).unwrap();
        assert!(
            page.contains(&format!("Bonding Mode: {mode}\n")),
            "{dialect}: {page}"
        );
        // SIGTERM leaves nothing behind: XDP detached, the TAP gone, MACs given back.
        assert!(terminate(tb.child(bond)).success(), "{dialect}");
        let links = String::from_utf8_lossy(
            &tb.in_bond("ip -d link show m0; ip -d link show m1; ip link show bond0 2>&1 || true")
                .stdout,
        )
        .into_owned();
        assert!(!links.contains("prog/xdp"), "{dialect}: XDP left: {links}");
        assert!(
            links.contains("does not exist"),
            "{dialect}: TAP left: {links}"
        );
        assert!(
            links.contains(&own_m1),
            "{dialect}: m1's own MAC back: {links}"
        );
    }
    // The primary from networkd's PrimarySlave and from the modprobe options made it.
    let ab = std::fs::read_to_string(work.path().join("networkd-ab.toml")).unwrap();
    assert!(ab.contains("primary=m0"), "{ab}");
    let modprobe = std::fs::read_to_string(work.path().join("modprobe.toml")).unwrap();
    assert!(modprobe.contains("primary=m1"), "{modprobe}");
}

#[test]
fn systemd_hears_ready_once_bond0_exists_the_status_and_the_watchdog() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("sdnotify", 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // As systemd starts it: the socket, a 400 ms watchdog and the pid it is meant for.
    let launch = format!(
        "NOTIFY_SOCKET={} WATCHDOG_USEC=400000 WATCHDOG_PID=$$ exec \"$0\" \"$@\"",
        path.display()
    );
    let mut args = vec!["-c", &launch, env!("CARGO_BIN_EXE_bond-dp")];
    args.extend(common::tap_bond_args("mode=active-backup,miimon=100"));
    let run_dir = tb.run_dir.path().to_str().unwrap().to_string();
    args.extend(["--run-dir", &run_dir]);
    let ns = tb.bond_ns.clone();
    let bond = tb.spawn_in(&ns, "sh", &args);
    let mut buf = [0u8; 1024];
    let mut ready = false;
    let mut status = String::new();
    let mut watchdogs = 0;
    while watchdogs < 3 {
        let n = socket.recv(&mut buf).expect("bond-dp tells systemd");
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            match line {
                "READY=1" => {
                    ready = true;
                    // Before network.target means bond0 is there to configure.
                    assert!(
                        tb.in_bond("ip link show bond0").status.success(),
                        "READY before bond0 exists"
                    );
                }
                "WATCHDOG=1" => watchdogs += 1,
                _ => {
                    if let Some(s) = line.strip_prefix("STATUS=") {
                        status = s.to_string();
                    }
                }
            }
        }
    }
    assert!(ready, "no READY=1");
    assert!(status.starts_with("bond0: "), "{status}");
    assert!(status.contains("active m0"), "{status}");
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn reload_applies_a_changed_config_to_the_running_bond() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("reload", 3);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bond-dp.toml");
    let write = |members: &str, options: &str| {
        std::fs::write(
            &config,
            format!(
                "[bond.bond0]\nmembers = [{members}]\nhost = \"tap\"\noptions = \"{options}\"\n"
            ),
        )
        .unwrap()
    };
    write("\"m0\", \"m1\"", "mode=active-backup,miimon=100");
    let bond = tb.start_bond0(&["run", "--config", config.to_str().unwrap()]);
    let pid = tb.child(bond).id();
    // The operator edits the file: a faster miimon, m1 as primary, m2 in for m0, and a mode
    // change that cannot happen while the bond runs.
    write("\"m1\", \"m2\"", "mode=active-backup,miimon=50,primary=m1");
    tb.in_bond(&format!("kill -HUP {pid}"));
    let page = tb.status_when("bond0", "the new config applied", |s| {
        s.contains("MII Polling Interval (ms): 50\n")
            && s.contains("Primary Slave: m1")
            && s.contains("Slave Interface: m2\n")
            && !s.contains("Slave Interface: m0\n")
    });
    assert!(page.contains("Currently Active Slave: m1"), "{page}");
    wait_for("ping after the reload", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    write("\"m1\", \"m2\"", "mode=balance-xor,miimon=50");
    tb.in_bond(&format!("kill -HUP {pid}"));
    std::thread::sleep(Duration::from_millis(500));
    let page = tb.status("bond0", &[]).unwrap();
    assert!(page.contains("fault-tolerance (active-backup)"), "{page}");
    assert!(terminate(tb.child(bond)).success());
    let mut child = tb.take(bond);
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut log);
    }
    let _ = child.wait();
    assert!(
        log.contains(
            "reload: mode balance-xor refused: mode cannot be changed while the bond runs"
        ),
        "{log}"
    );
}

/// A stand-in journald: takes datagrams on `socket` and appends each to `out`, until its
/// parent (the shell that becomes bond-dp) has gone.
const JOURNAL_LISTENER: &str = r#"
import os, socket, sys
parent = os.getppid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.2)
with open(sys.argv[2], "ab", buffering=0) as out:
    while os.getppid() == parent:
        try:
            out.write(s.recv(65536) + b"\n\x1e\n")
        except socket.timeout:
            pass
"#;

#[test]
fn under_journald_bond_and_member_are_journal_fields() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("journal", 2);
    let dir = tempfile::tempdir().unwrap();
    let (err, out) = (dir.path().join("stderr"), dir.path().join("journal"));
    let listener = dir.path().join("journald.py");
    std::fs::write(&listener, JOURNAL_LISTENER).unwrap();
    // As systemd runs it: stderr is a stream journald knows by device and inode
    // ($JOURNAL_STREAM), and journald listens on its socket. A mount namespace of its own
    // gives the daemon a /run with the stand-in's socket there.
    let launch = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
         {{ python3 {listener} /run/systemd/journal/socket {out} & }} && \
         while [ ! -S /run/systemd/journal/socket ]; do sleep 0.05; done && \
         exec 2>{err} && JOURNAL_STREAM=$(stat -c %d:%i {err}) exec \"$0\" \"$@\"",
        listener = listener.display(),
        out = out.display(),
        err = err.display(),
    );
    let mut args = vec![
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &launch,
        env!("CARGO_BIN_EXE_bond-dp"),
    ];
    args.extend(common::tap_bond_args("mode=active-backup,miimon=100"));
    let run_dir = tb.run_dir.path().to_str().unwrap().to_string();
    args.extend(["--run-dir", &run_dir]);
    let ns = tb.bond_ns.clone();
    let bond = tb.spawn_in(&ns, "unshare", &args);
    let entries = || -> Vec<Vec<(String, String)>> {
        let bytes = std::fs::read(&out).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        text.split("\n\x1e\n")
            .filter(|e| !e.is_empty())
            .map(|e| journal_fields(e.as_bytes()))
            .collect()
    };
    let field = |entry: &[(String, String)], key: &str| {
        entry.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let up = wait_for(
        "the bond up, in the journal",
        Duration::from_secs(15),
        || {
            entries()
                .into_iter()
                .find(|e| field(e, "MESSAGE").as_deref() == Some("bond up"))
        },
    );
    assert_eq!(field(&up, "BOND").as_deref(), Some("bond0"), "{up:?}");
    assert_eq!(field(&up, "ACTIVE").as_deref(), Some("m0"), "{up:?}");
    assert_eq!(
        field(&up, "PRIORITY").as_deref(),
        Some("5"),
        "info is notice"
    );
    assert!(tb.set(&["slaves", "-m1"]).status.success());
    let removed = wait_for(
        "the member removed, in the journal",
        Duration::from_secs(10),
        || {
            entries()
                .into_iter()
                .find(|e| field(e, "MEMBER").as_deref() == Some("m1"))
        },
    );
    assert_eq!(
        field(&removed, "BOND").as_deref(),
        Some("bond0"),
        "{removed:?}"
    );
    assert!(terminate(tb.child(bond)).success());
    // Nothing went to plain stderr as text while the journal took the entries.
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(!text.contains("bond up"), "{text}");
}

/// The fields of one entry in journald's native protocol: `KEY=value` lines, or `KEY`, a
/// newline, a 64-bit little-endian length and that many bytes (the form for any value).
fn journal_fields(mut entry: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !entry.is_empty() {
        let end = entry
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(entry.len());
        let line = String::from_utf8_lossy(&entry[..end]).into_owned();
        if let Some((k, v)) = line.split_once('=') {
            fields.push((k.to_string(), v.to_string()));
            entry = &entry[(end + 1).min(entry.len())..];
            continue;
        }
        let rest = &entry[end + 1..];
        let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
        let value = String::from_utf8_lossy(&rest[8..8 + len]).into_owned();
        fields.push((line, value));
        entry = &rest[(8 + len + 1).min(rest.len())..];
    }
    fields
}
