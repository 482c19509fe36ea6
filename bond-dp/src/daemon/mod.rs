//! `bond-dp run`: brings bonds up, monitors their members and serves status until SIGINT or
//! SIGTERM. One process may run several bonds; one monitor thread serves them all.
//!
//! - `monitor`: the link monitor's loop and its I/O (carrier, ARP probes, peer
//!   notifications, MACs) around the pure state in [`Bond`];
//! - `control`: what each bond's control socket answers, and member changes.

mod control;
mod metrics;
mod monitor;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tracing::{info, warn};

use crate::bond::{Bond, Event};
use crate::config::BondConfig;
use crate::control::ControlServer;
use crate::dataplane::DataPlane;
use crate::monitor::read_link;
use control::Control;
use monitor::monitor_loop;

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
    #[error("control socket in {dir}: {source}")]
    Control { dir: String, source: std::io::Error },
    #[error("bond {bond}: data plane: {reason}")]
    DataPlane { bond: String, reason: String },
    #[error("{0}")]
    Metrics(String),
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
}

/// Reads every member's link facts and builds the bonds; refuses members that do not exist
/// or that two bonds claim.
pub fn prepare(configs: Vec<BondConfig>) -> Result<Vec<Bond>, DaemonError> {
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut bonds = Vec::new();
    for config in configs {
        if bonds.iter().any(|b: &Bond| b.name() == config.name) {
            return Err(DaemonError::DuplicateBond(config.name));
        }
        let mut facts = Vec::new();
        for member in &config.members {
            if let Some(first) = owner.insert(member.clone(), config.name.clone()) {
                return Err(DaemonError::SharedMember {
                    member: member.clone(),
                    first,
                    second: config.name.clone(),
                });
            }
            facts.push(read_link(member).map_err(|e| DaemonError::Member {
                bond: config.name.clone(),
                member: member.clone(),
                reason: match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("no such interface (/sys/class/net/{member})")
                    }
                    _ => e.to_string(),
                },
            })?);
        }
        bonds.push(Bond::new(config, facts));
    }
    Ok(bonds)
}

/// Runs the bonds until SIGINT or SIGTERM, then removes what it created (control sockets,
/// TAP devices, XDP programs on the members).
pub fn run(
    bonds: Vec<Bond>,
    run_dir: &Path,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<(), DaemonError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    let bonds: Vec<Arc<Mutex<Bond>>> = bonds.into_iter().map(|b| Arc::new(Mutex::new(b))).collect();
    // Workers go on the last cores, away from core 0 where the kernel does most of its work;
    // bonds take them in turn.
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .rev()
        .map(|c| c.id)
        .collect();
    let mut planes: Vec<SharedPlane> = Vec::new();
    let mut servers = Vec::new();
    for bond in &bonds {
        let b = bond.lock().expect("bond lock");
        for w in &b.config.warnings {
            warn!(bond = b.name(), "{w}");
        }
        let plane = DataPlane::start(&b, &cores).map_err(|e| DaemonError::DataPlane {
            bond: b.name().to_string(),
            reason: e.to_string(),
        })?;
        let rotate = (b.config.engine.workers as usize) % cores.len().max(1);
        cores.rotate_left(rotate);
        let plane: SharedPlane = Arc::new(Mutex::new(plane));
        let control = Control {
            bond: Arc::clone(bond),
            plane: Arc::clone(&plane),
            others: bonds
                .iter()
                .filter(|o| !Arc::ptr_eq(o, bond))
                .map(Arc::clone)
                .collect(),
        };
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
    let metrics = match metrics_addr {
        Some(addr) => {
            let shared = bonds.iter().cloned().zip(planes.iter().cloned()).collect();
            let handle = metrics::serve(addr, shared, started_unix, Arc::clone(&stop))
                .map_err(|e| DaemonError::Metrics(e.to_string()))?;
            info!(%addr, "metrics at http://{addr}/metrics");
            Some(handle)
        }
        None => None,
    };
    // The link monitor runs on this thread until SIGINT or SIGTERM.
    monitor_loop(&bonds, &planes, &stop, started);
    info!("signal received, shutting down");
    // The control threads hold the planes too: take each one out, so that it stops and
    // detaches from the members now, whoever else holds the cell.
    for plane in &planes {
        drop(plane.lock().expect("plane lock").take());
    }
    drop(servers);
    if let Some(handle) = metrics {
        let _ = handle.join();
    }
    Ok(())
}

/// A bond's data plane, shared by the monitor and the control socket (which rebuilds it when
/// members join or leave). Lock order: the bond, then its plane.
type SharedPlane = Arc<Mutex<Option<DataPlane>>>;

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

/// The run directory: the flag, else `$BOND_DP_RUN_DIR`, else the config file's, else
/// /run/bond-dp.
pub fn run_dir(flag: Option<PathBuf>, from_config: Option<PathBuf>) -> PathBuf {
    flag.or(from_config)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}
