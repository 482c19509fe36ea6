//! Helpers shared by the integration tests: the binary, a deterministic random source,
//! network namespaces that clean up after themselves, and bounded waits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bond_dp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bond-dp"))
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// xorshift64: reproducible test data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Runs a command and fails the test with its output if it fails.
pub fn sh(cmd: &str) -> Output {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command; `Some` if it succeeded (for bounded waits on set-up steps).
pub fn sh_ok(cmd: &str) -> Option<Output> {
    let out = Command::new("sh").arg("-c").arg(cmd).output().ok()?;
    out.status.success().then_some(out)
}

/// The testbed tests need root (namespaces, veth). Without it they fail, unless the run
/// explicitly opts out with BOND_DP_SKIP_NETNS=1 (for unprivileged developer machines).
pub fn require_root() -> bool {
    // SAFETY-free check: /proc/self/status carries the effective uid.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid_zero = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if euid_zero {
        return true;
    }
    if std::env::var("BOND_DP_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("skipping: needs root (BOND_DP_SKIP_NETNS=1)");
        return false;
    }
    panic!("testbed tests need root; run as root or set BOND_DP_SKIP_NETNS=1 to skip them");
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Processes a test started, with their output captured; killed and reaped by `kill_all` and
/// when dropped — also when the test fails.
#[derive(Default)]
pub struct Children(Vec<Option<Child>>);

impl Children {
    pub fn spawn(&mut self, mut cmd: Command) -> usize {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        self.0.push(Some(child));
        self.0.len() - 1
    }

    pub fn get(&mut self, i: usize) -> &mut Child {
        self.0[i].as_mut().expect("child already taken")
    }

    /// Takes a child out, to wait for its output.
    pub fn take(&mut self, i: usize) -> Child {
        self.0[i].take().expect("child already taken")
    }

    pub fn kill_all(&mut self) {
        for c in self.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A network namespace with a name unique to this test run, deleted (with every process
/// started in it through [`Netns::spawn`]) when dropped — also when the test fails.
pub struct Netns {
    pub name: String,
    children: Children,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("bdpt-{tag}-{}-{n}", std::process::id());
        sh(&format!("ip netns add {name}"));
        let ns = Netns {
            name,
            children: Children::default(),
        };
        ns.exec("ip link set lo up");
        ns
    }

    /// Runs a shell command inside the namespace, failing the test if it fails.
    pub fn exec(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} sh -c '{cmd}'", self.name))
    }

    /// A veth pair inside the namespace, both ends up.
    pub fn veth(&self, a: &str, b: &str) {
        self.exec(&format!(
            "ip link add {a} type veth peer name {b} && ip link set {a} up && ip link set {b} up"
        ));
    }

    /// A command to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Starts bond-dp inside the namespace; it is killed when the namespace is dropped.
    pub fn spawn_bond_dp(&mut self, args: &[&str]) -> usize {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_bond-dp"));
        cmd.args(args);
        self.children.spawn(cmd)
    }

    pub fn child(&mut self, i: usize) -> &mut Child {
        self.children.get(i)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.children.kill_all();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A field of /proc/PID/status, as a number (VmRSS in kB, Threads); 0 when absent.
pub fn proc_status_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The descriptors process `pid` holds open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What a finished child wrote to its (piped) stderr.
pub fn stderr_of(mut child: Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// Polls `f` until it returns Some, for at most `limit`; panics with `what` otherwise.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to a child and waits for it to exit (bounded).
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    sh(&format!("kill -TERM {}", child.id()));
    wait_for("process exit", Duration::from_secs(10), || {
        child.try_wait().ok().flatten()
    })
}

/// One ping to the peer (10.77.0.2) from namespace `ns`; `Some` when it was answered.
pub fn ping_once(ns: &str) -> Option<Output> {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "10.77.0.2",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
}

/// The block of `member` in a status page.
pub fn member_block<'a>(page: &'a str, member: &str) -> &'a str {
    let start = page
        .find(&format!("Slave Interface: {member}\n"))
        .expect("member block");
    let rest = &page[start..];
    &rest[..rest[1..]
        .find("\nSlave Interface")
        .map_or(rest.len(), |e| e + 1)]
}

/// The count of replies in ping's summary line ("200 packets transmitted, 198 received").
pub fn ping_received(output: &str) -> usize {
    output
        .split(", ")
        .find(|p| p.ends_with("received"))
        .and_then(|p| p.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `bond-dp run` arguments for bond0 on m0,m1 with a TAP port and these options.
pub const fn tap_bond_args(options: &str) -> [&str; 7] {
    [
        "run",
        "--bond",
        "bond0",
        "--members",
        "m0,m1",
        "--options",
        options,
    ]
}

/// The testbed of scripts/testbed.sh: namespaces `<prefix>-bond` (members m0..) and
/// `<prefix>-peer` (peers p0.. on bridge br0, 10.77.0.2/24), unique per test run, removed
/// with every process started in them when dropped — also when the test fails.
pub struct Testbed {
    pub bond_ns: String,
    pub peer_ns: String,
    prefix: String,
    children: Children,
    pub run_dir: tempfile::TempDir,
}

impl Testbed {
    pub fn new(tag: &str, members: usize) -> Testbed {
        Testbed::with(tag, members, "")
    }

    /// A testbed with more of testbed.sh's options: "--queues 2", "--peer ovs-slb".
    pub fn with(tag: &str, members: usize, options: &str) -> Testbed {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("bdp{tag}{}x{n}", std::process::id());
        let script = repo_path("scripts/testbed.sh");
        let up = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} up {prefix} {members} {options}",
                script.display()
            ))
            .output()
            .unwrap();
        if !up.status.success() {
            let _ = Command::new(&script).args(["down", &prefix]).status();
            panic!(
                "testbed.sh up {prefix} {members} {options}: {}",
                String::from_utf8_lossy(&up.stderr)
            );
        }
        Testbed {
            bond_ns: format!("{prefix}-bond"),
            peer_ns: format!("{prefix}-peer"),
            prefix,
            children: Children::default(),
            run_dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn in_bond(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} sh -c '{cmd}'", self.bond_ns))
    }

    /// Open vSwitch's answer to an ovs-appctl command (testbeds with an OVS peer).
    pub fn ovs_appctl(&self, args: &str) -> String {
        let out = sh(&format!(
            "ovs-appctl -t /tmp/bond-dp-ovs-{}/vswitchd.ctl {args}",
            self.prefix
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// ovs-vsctl against this testbed's Open vSwitch database.
    pub fn ovs_vsctl(&self, args: &str) -> Output {
        sh(&format!(
            "ovs-vsctl --db=unix:/tmp/bond-dp-ovs-{}/db.sock {args}",
            self.prefix
        ))
    }

    /// scripts/testbed.sh on this testbed: `ovs-stop`, `ovs-start`.
    pub fn testbed_sh(&self, command: &str) {
        sh(&format!(
            "{} {command} {}",
            repo_path("scripts/testbed.sh").display(),
            self.prefix
        ));
    }

    pub fn in_peer(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} sh -c '{cmd}'", self.peer_ns))
    }

    /// A command to run in one of the namespaces, not waited for.
    pub fn spawn_in(&mut self, ns: &str, program: &str, args: &[&str]) -> usize {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        self.children.spawn(cmd)
    }

    /// bond-dp in the bond namespace with this testbed's run directory.
    pub fn spawn_bond_dp(&mut self, args: &[&str]) -> usize {
        self.spawn_bond_dp_env(args, &[])
    }

    /// As `spawn_bond_dp`, with environment variables set for it.
    pub fn spawn_bond_dp_env(&mut self, args: &[&str], env: &[(&str, &str)]) -> usize {
        self.spawn_bond_dp_limited(args, env, None)
    }

    /// As `spawn_bond_dp_env`, with at most `nofile` file descriptors (prlimit).
    pub fn spawn_bond_dp_limited(
        &mut self,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> usize {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.bond_ns]);
        if let Some(n) = nofile {
            cmd.args([
                "prlimit".to_string(),
                format!("--nofile={n}:{n}"),
                "--".into(),
            ]);
        }
        cmd.arg(env!("CARGO_BIN_EXE_bond-dp"))
            .args(args)
            .arg("--run-dir")
            .arg(self.run_dir.path())
            .envs(env.iter().copied());

        self.children.spawn(cmd)
    }

    pub fn child(&mut self, i: usize) -> &mut Child {
        self.children.get(i)
    }

    /// Takes a child out, to wait for its output.
    pub fn take(&mut self, i: usize) -> Child {
        self.children.take(i)
    }

    /// bond-dp on m0,m1 with a TAP port bond0 at 10.77.0.1, once it reaches the peer.
    pub fn start_tap_bond(&mut self, options: &str) -> usize {
        self.start_tap_bond_with(options, &[])
    }

    /// As `start_tap_bond`, with more arguments for `bond-dp run`.
    pub fn start_tap_bond_with(&mut self, options: &str, extra: &[&str]) -> usize {
        let mut args = tap_bond_args(options).to_vec();
        args.extend(extra);
        self.start_bond0(&args)
    }

    /// `bond-dp ARGS` for a bond named bond0 with a TAP port: once the TAP exists it gets
    /// 10.77.0.1 and must reach the peer.
    pub fn start_bond0(&mut self, args: &[&str]) -> usize {
        self.start_bond0_with_limit(args, None)
    }

    /// As `start_bond0`, with at most `nofile` file descriptors for the daemon.
    pub fn start_bond0_with_limit(&mut self, args: &[&str], nofile: Option<u64>) -> usize {
        let bond = self.spawn_bond_dp_limited(args, &[], nofile);
        let ns = self.bond_ns.clone();
        wait_for("bond0 TAP device", Duration::from_secs(10), || {
            Command::new("ip")
                .args(["netns", "exec", &ns, "ip", "link", "show", "bond0", "up"])
                .output()
                .ok()
                .filter(|o| o.status.success() && !o.stdout.is_empty())
        });
        self.in_bond("ip addr replace 10.77.0.1/24 dev bond0");
        // An OVS peer takes broadcasts only on its active member (as a switch's SLB bond
        // does): ARP may need a retry before the first answer.
        wait_for("ping through the bond", Duration::from_secs(15), || {
            ping_once(&ns)
        });
        bond
    }

    /// `bond-dp status BOND` with `extra` flags, if the bond answers.
    pub fn status(&self, bond: &str, extra: &[&str]) -> Option<String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.bond_ns,
                env!("CARGO_BIN_EXE_bond-dp"),
            ])
            .args(["status", bond, "--run-dir"])
            .arg(self.run_dir.path())
            .args(extra)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The status page of `bond` once `pred` holds for it (bounded wait).
    pub fn status_when(&self, bond: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_for(what, Duration::from_secs(10), || {
            self.status(bond, &[]).filter(|s| pred(s))
        })
    }

    /// The id of the XDP program on `iface` in the bond's namespace ("prog/xdp id N" in
    /// `ip -d link`), if it has one: a data plane rebuilt loads a new program.
    pub fn xdp_program_id(&self, iface: &str) -> Option<String> {
        let out = self.in_bond(&format!("ip -d link show {iface}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let rest = &text[text.find("prog/xdp id ")? + "prog/xdp id ".len()..];
        Some(rest.split_whitespace().next()?.to_string())
    }

    /// `bond-dp set bond0 ARGS` against the testbed's running bond0.
    pub fn set(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.bond_ns,
                env!("CARGO_BIN_EXE_bond-dp"),
                "set",
                "bond0",
            ])
            .args(args)
            .arg("--run-dir")
            .arg(self.run_dir.path())
            .output()
            .unwrap()
    }

    pub fn status_json(&self, bond: &str) -> serde_json::Value {
        let text = self.status(bond, &["--json"]).expect("bond answers status");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.children.kill_all();
        let script = repo_path("scripts/testbed.sh");
        let _ = Command::new(script).args(["down", &self.prefix]).status();
    }
}

/// The bond-dp process `ip netns exec` (pid `launcher`) became or started: its first child if
/// it has one, else itself (`ip netns exec` execs the program in place).
pub fn daemon_pid(launcher: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(launcher)
}
