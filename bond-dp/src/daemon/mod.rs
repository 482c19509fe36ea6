//! `bond-dp run`: brings bonds up, monitors their members and serves status until SIGINT or
//! SIGTERM. One process may run several bonds; one monitor thread serves them all.
//!
//! - `monitor`: the link monitor's loop and its I/O (carrier, ARP probes, peer
//!   notifications, MACs) around the pure state in [`Bond`];
//! - `control`: what each bond's control socket answers, and member changes.

mod board;
mod metrics;
mod monitor;
mod record;
mod reload;
mod requests;
mod systemd;
mod takeover;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tracing::{info, warn};

use crate::bond::{Bond, Event};
use crate::config::BondConfig;
use crate::control::ControlServer;
use crate::dataplane::DataPlane;
use crate::monitor::{read_link, PacketSocket};
use crate::policy::MemberId;
use monitor::monitor_loop;
use requests::Control;

pub const DEFAULT_RUN_DIR: &str = "/run/bond-dp";

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("bond {bond}: member {member}: {reason}")]
    Member {
        bond: String,
        member: String,
        reason: String,
    },
    #[error("member {member} is in both bond {first} and bond {second}")]
    SharedMember {
        member: String,
        first: String,
        second: String,
    },
    #[error("bond {0} is defined twice")]
    DuplicateBond(String),
    #[error("bond {bond} is already running (pid {pid})")]
    AlreadyRunning { bond: String, pid: u32 },
    #[error("{what} is held by bond {bond} of another bond-dp (pid {pid})")]
    HeldElsewhere {
        what: String,
        bond: String,
        pid: u32,
    },
    #[error("{0}")]
    Cores(String),
    #[error("bond {bond}: worker thread {thread} died: {reason}")]
    WorkerDied {
        bond: String,
        thread: String,
        reason: String,
    },
    #[error("control socket in {dir}: {source}")]
    Control { dir: String, source: std::io::Error },
    #[error("bond {bond}: data plane: {reason}")]
    DataPlane { bond: String, reason: String },
    #[error("{0}")]
    Metrics(String),
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
}

/// Reads every member's link facts and builds the bonds; refuses members that do not exist,
/// that two bonds claim, or that another live bond-dp holds. Takes over what a bond-dp that
/// died left in `run_dir` (its members' own MACs, its TAP, its XDP programs), and records
/// the new bonds there before anything is changed.
pub fn prepare(configs: Vec<BondConfig>, run_dir: &Path) -> Result<Vec<Bond>, DaemonError> {
    let (live, dead): (Vec<_>, Vec<_>) = record::read_all(run_dir)
        .into_iter()
        .partition(record::BondRecord::alive);
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut bonds = Vec::new();
    let records: Vec<_> = live.iter().chain(&dead).cloned().collect();
    let hosts: Vec<String> = takeover::host_devices(configs.iter(), &records)
        .into_iter()
        .map(String::from)
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    for config in configs {
        if bonds.iter().any(|b: &Bond| b.name() == config.name) {
            return Err(DaemonError::DuplicateBond(config.name));
        }
        takeover::refuse_held(&config, &live)?;
        let mut facts = Vec::new();
        for member in &config.members {
            takeover::refuse_device(member, &hosts).map_err(|reason| DaemonError::Member {
                bond: config.name.clone(),
                member: member.clone(),
                reason,
            })?;
            if let Some(first) = owner.insert(member.clone(), config.name.clone()) {
                return Err(DaemonError::SharedMember {
                    member: member.clone(),
                    first,
                    second: config.name.clone(),
                });
            }
            let mut link = read_member(&config.name, member)?;
            // A member still carrying the MAC a dead bond-dp gave it: its own is recorded.
            if let Some(own) = dead.iter().find_map(|r| r.member(member, link.ifindex)) {
                link.mac = own.mac;
            }
            facts.push(link);
        }
        bonds.push(Bond::new(config, facts));
    }
    takeover::take_over(&bonds, dead, run_dir)?;
    Ok(bonds)
}

/// A bond for the in-process API, which an application runs without the daemon: its members'
/// link facts read, nothing recorded.
pub fn in_process_bond(config: BondConfig) -> Result<Bond, DaemonError> {
    let links = config
        .members
        .iter()
        .map(|m| read_member(&config.name, m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Bond::new(config, links))
}

fn read_member(bond: &str, member: &str) -> Result<crate::monitor::LinkFacts, DaemonError> {
    read_link(member).map_err(|e| DaemonError::Member {
        bond: bond.to_string(),
        member: member.to_string(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => format!("no such interface (/sys/class/net/{member})"),
            _ => e.to_string(),
        },
    })
}

/// Each bond's default worker cores: the machine's last cores, which the bonds take in turn
/// (a bond's own `cores` setting goes before them).
fn default_cores(bonds: &[Arc<Mutex<Bond>>]) -> Vec<Vec<usize>> {
    // Away from core 0, where the kernel does most of its work.
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .rev()
        .map(|c| c.id)
        .collect();
    bonds
        .iter()
        .map(|bond| {
            let turn = cores.clone();
            let workers = bond.lock().expect("bond lock").config.engine.workers as usize;
            let rotate = workers % cores.len().max(1);
            cores.rotate_left(rotate);
            turn
        })
        .collect()
}

/// The cores the bonds' workers go on.
fn worker_cores(bonds: &[Arc<Mutex<Bond>>], defaults: &[Vec<usize>]) -> Vec<usize> {
    bonds
        .iter()
        .zip(defaults)
        .flat_map(|(bond, defaults)| {
            let engine = bond.lock().expect("bond lock").config.engine.clone();
            (0..engine.workers as usize)
                .filter_map(move |w| crate::dataplane::worker_core(&engine, defaults, w))
        })
        .collect()
}

/// Puts the calling thread (the link monitor) and the threads it starts later (control
/// sockets, metrics) on the cores no worker spins on, where there are any: a monitor that
/// wakes on a worker's core preempts it, and meanwhile frames wait, or go on to a link that
/// just died. Workers pin themselves to their own cores.
fn keep_off(busy: &[usize]) {
    let rest: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .filter(|c| !busy.contains(c))
        .collect();
    if rest.is_empty() {
        return;
    }
    // SAFETY: cpu_set_t is plain data (all-zero is the empty set); CPU_SET writes a bit
    // within it for core numbers below CPU_SETSIZE, which `get_core_ids` ones are.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &core in &rest {
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size given; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        warn!(
            "keeping the link monitor off the workers' cores: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Refuses worker cores this process cannot run on (`--cores 1024`, or 5 on two CPUs).
pub fn check_cores(configs: &[BondConfig]) -> Result<(), DaemonError> {
    let usable: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect();
    for config in configs {
        if let Some(bad) = config.engine.cores.iter().find(|c| !usable.contains(c)) {
            let list: Vec<String> = usable.iter().map(|c| c.to_string()).collect();
            return Err(DaemonError::Cores(format!(
                "bond {}: cores={bad}: no such CPU for bond-dp (it may run on CPUs {})",
                config.name,
                list.join(",")
            )));
        }
    }
    Ok(())
}

/// Runs the bonds until SIGINT or SIGTERM, then removes what it created (control sockets,
/// TAP devices, XDP programs on the members).
/// Reads the configuration again (SIGHUP, `systemctl reload`).
pub type Reload = Box<dyn Fn() -> Result<Vec<BondConfig>, String>>;

pub fn run(
    bonds: Vec<Bond>,
    run_dir: &Path,
    metrics_addr: Option<std::net::SocketAddr>,
    reload: Option<Reload>,
) -> Result<(), DaemonError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    // SIGHUP's default would kill the bond; it will mean "reload", and is ignored until then.
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
        .map_err(DaemonError::Signals)?;
    let bonds: Vec<Arc<Mutex<Bond>>> = bonds.into_iter().map(|b| Arc::new(Mutex::new(b))).collect();
    let default_cores = default_cores(&bonds);
    keep_off(&worker_cores(&bonds, &default_cores));
    let mut planes: Vec<SharedPlane> = Vec::new();
    let mut servers = Vec::new();
    // What a reload changes, through the same answers as `bond-dp set`.
    let mut controls = Vec::new();
    for (bond, cores) in bonds.iter().zip(&default_cores) {
        let b = bond.lock().expect("bond lock");
        for w in &b.config.warnings {
            warn!(bond = b.name(), "{w}");
        }
        let max = b.config.max_mtu();
        for (name, link) in b.member_links().filter(|(_, l)| l.mtu > max) {
            warn!(
                bond = b.name(),
                member = name,
                "MTU {} is larger than the engine carries ({max}): longer frames are dropped \
                 and counted{}",
                link.mtu,
                monitor::jumbo_hint(&b.config)
            );
        }
        let plane = DataPlane::start(&b, cores).map_err(|e| DaemonError::DataPlane {
            bond: b.name().to_string(),
            reason: e.to_string(),
        })?;
        takeover::restore_addresses(&b, run_dir);
        let plane: SharedPlane = Arc::new(Mutex::new(plane));
        let control = || Control {
            bond: Arc::clone(bond),
            plane: Arc::clone(&plane),
            others: bonds
                .iter()
                .filter(|o| !Arc::ptr_eq(o, bond))
                .map(Arc::clone)
                .collect(),
            run_dir: run_dir.to_path_buf(),
        };
        controls.push(control());
        let control = control();
        servers.push(
            ControlServer::start(run_dir, b.name(), move |req| control.answer(req)).map_err(
                |source| DaemonError::Control {
                    dir: run_dir.display().to_string(),
                    source,
                },
            )?,
        );
        info!(
            bond = b.name(),
            mode = %b.config.options.mode,
            members = %b.config.members.join(","),
            active = b.active().unwrap_or("none"),
            socket = %servers.last().map(|s| s.path().display().to_string()).unwrap_or_default(),
            "bond up"
        );
        planes.push(plane);
    }

    let started = std::time::Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // The monitor publishes status for the metrics endpoint only when there is one.
    let board = metrics_addr.map(|_| Arc::new(board::StatusBoard::default()));
    let metrics = match (metrics_addr, &board) {
        (Some(addr), Some(board)) => {
            let handle = metrics::serve(addr, Arc::clone(board), started_unix, Arc::clone(&stop))
                .map_err(|e| DaemonError::Metrics(e.to_string()))?;
            info!(%addr, "metrics at http://{addr}/metrics");
            Some(handle)
        }
        _ => None,
    };
    let mut systemd = systemd::Systemd::new();
    {
        let guards: Vec<_> = bonds.iter().map(|b| b.lock().expect("bond lock")).collect();
        let all: Vec<&Bond> = guards.iter().map(|g| &**g).collect();
        systemd.ready(&all);
    }
    // The link monitor runs on this thread until SIGINT or SIGTERM, or a worker dies.
    // Called on every pass of the monitor: a SIGHUP since the last one reloads.
    let mut reload_if_asked = || {
        if !hangup.swap(false, Ordering::Relaxed) {
            return;
        }
        match &reload {
            Some(load) => reload::apply(load, &controls),
            None => warn!("SIGHUP received: started without --config, nothing to reload"),
        }
    };
    let died = monitor_loop(
        &bonds,
        &planes,
        &stop,
        started,
        run_dir,
        monitor::Outlets {
            systemd: &mut systemd,
            board: board.as_deref(),
        },
        &mut reload_if_asked,
    );
    systemd.stopping();
    match &died {
        None => info!("signal received, shutting down"),
        Some(e) => tracing::error!("{e}: shutting down, to be restarted"),
    }
    // 802.3ad: tell the partner first, so it stops sending into links about to go quiet.
    for bond in &bonds {
        let mut b = bond.lock().expect("bond lock");
        for m in 0..b.member_count() {
            lacp_farewell(&mut b, m);
        }
    }
    // The control threads hold the planes too: take each one out, so that it stops and
    // detaches from the members now, whoever else holds the cell.
    for plane in &planes {
        drop(plane.lock().expect("plane lock").take());
    }
    drop(servers);
    if died.is_none() {
        for bond in &bonds {
            takeover::clean_stop(&bond.lock().expect("bond lock"), run_dir);
        }
    }
    if let Some(handle) = metrics {
        let _ = handle.join();
    }
    died.map_or(Ok(()), Err)
}

/// A bond's data plane, shared by the monitor and the control socket (which rebuilds it when
/// members join or leave). Lock order: the bond, then its plane.
type SharedPlane = Arc<Mutex<Option<DataPlane>>>;

/// 802.3ad: sends `member`'s last LACPDU (out of sync, not aggregating) on a packet socket of
/// its own, so that the partner stops using the link at once.
fn lacp_farewell(b: &mut Bond, member: MemberId) {
    let Some(frame) = b.lacp_farewell(member) else {
        return;
    };
    let name = b.member_name(member).to_string();
    if let Err(e) = PacketSocket::open(&name).and_then(|s| s.send(&frame)) {
        warn!(bond = b.name(), member = %name, "sending the last LACPDU: {e}");
    }
}

/// Logs a change as the kernel's bonding driver words it.
fn log_event(bond: &str, event: &Event) {
    match event {
        Event::MemberUp(m) => info!(bond, member = %m, "link status definitely up"),
        Event::MemberDown(m) => warn!(bond, member = %m, "link status definitely down"),
        Event::MemberPending(m, state) => info!(bond, member = %m, "link status {state}"),
        Event::ActiveChanged { from, to } => match to {
            Some(to) => warn!(
                bond,
                from = from.as_deref().unwrap_or("none"),
                "making interface {to} the new active one"
            ),
            None => warn!(bond, "now running without any active interface!"),
        },
        Event::Distributing(m, true) => {
            info!(bond, member = %m, "802.3ad: collecting and distributing")
        }
        Event::Distributing(m, false) => warn!(bond, member = %m, "802.3ad: stopped distributing"),
        Event::NoLacpPartner(true) => warn!(
            bond,
            "802.3ad: the partner MAC is 00:00:00:00:00:00: the far end is not speaking LACP"
        ),
        Event::NoLacpPartner(false) => info!(bond, "802.3ad: the partner speaks LACP"),
    }
}

/// What running a bond takes, by capability number (linux/capability.h): XDP programs and
/// links, AF_XDP sockets and their UMEM, TAP devices and MACs, packet sockets.
const NEEDED_CAPABILITIES: &[(u32, &str)] = &[
    (12, "CAP_NET_ADMIN"),
    (13, "CAP_NET_RAW"),
    (14, "CAP_IPC_LOCK"),
    (21, "CAP_SYS_ADMIN"),
    (39, "CAP_BPF"),
];

/// Refuses to start without root's powers, saying which are missing, before libbpf's own
/// messages and an EPERM would leave the operator guessing.
pub fn check_privileges() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = NEEDED_CAPABILITIES
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|&(_, name)| name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "running a bond needs root (or the capabilities {}); missing: {}",
        NEEDED_CAPABILITIES
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", "),
        missing.join(", ")
    ))
}

/// The run directory: the flag, else `$BOND_DP_RUN_DIR`, else the config file's, else
/// /run/bond-dp.
pub fn run_dir(flag: Option<PathBuf>, from_config: Option<PathBuf>) -> PathBuf {
    flag.or(from_config)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}
