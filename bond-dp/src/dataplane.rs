//! One bond's data plane: bond-dp's XDP program on every member, an AF_XDP socket per member
//! on one shared UMEM, the host port, and the worker thread that moves frames between them.
//! Dropping it stops the worker and detaches the program from every member.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use thiserror::Error;
use tracing::info;

use crate::bond::Bond;
use crate::config::HostSpec;
use crate::engine::{BondCounters, HostSide, SnapshotCell, Worker};
use crate::host::{AppPort, AppRings, TapPort};
use crate::policy::TxSelector;
use crate::xdp::port::PortError;
use crate::xdp::program::XdpError;
use crate::xdp::{AttachMode, MemberAction, MemberPort, PortConfig, UmemArea, XdpProgram};

#[derive(Debug, Error)]
pub enum DataPlaneError {
    #[error(transparent)]
    Xdp(#[from] XdpError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("host port {host}: {reason}")]
    Host { host: String, reason: String },
}

pub struct DataPlane {
    bond: String,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    pub snapshots: Arc<SnapshotCell>,
    pub counters: Arc<BondCounters>,
    pub attach_modes: Vec<AttachMode>,
    /// Frames in the bond's UMEM.
    pub frame_count: usize,
    // Dropped last (after the worker stopped): detaches from the members.
    program: XdpProgram,
}

impl DataPlane {
    /// Brings the data plane up for `bond` with its configured host port; `None` for
    /// `--host none` (the daemon has no application to hand the in-process API to).
    pub fn start(bond: &Bond, core: Option<usize>) -> Result<Option<DataPlane>, DataPlaneError> {
        if bond.config.host == HostSpec::None {
            return Ok(None);
        }
        Self::start_with(bond, core, false).map(|(plane, _)| Some(plane))
    }

    /// For appliances: brings the data plane up with the in-process API as the host side.
    /// The application sends and receives frames in the bond's UMEM through the [`AppPort`].
    pub fn start_in_process(
        bond: &Bond,
        core: Option<usize>,
    ) -> Result<(DataPlane, AppPort), DataPlaneError> {
        let (plane, app) = Self::start_with(bond, core, true)?;
        Ok((plane, app.expect("in-process host requested")))
    }

    fn start_with(
        bond: &Bond,
        core: Option<usize>,
        in_process: bool,
    ) -> Result<(DataPlane, Option<AppPort>), DataPlaneError> {
        let cfg = &bond.config;
        let mut program = XdpProgram::load()?;
        let port_cfg = PortConfig::default();
        let (umem, pool) = UmemArea::new(&port_cfg)?;
        let umem_frames = umem.frame_count();
        let mut ports = Vec::new();
        let mut attach_modes = Vec::new();
        for (slot, member) in cfg.members.iter().enumerate() {
            let slot = slot as u32;
            attach_modes.push(program.attach(member, None)?);
            program.set_member(member, slot, action(bond, slot as usize))?;
            ports.push(MemberPort::bind(
                &umem, member, 0, slot, &port_cfg, &program,
            )?);
        }
        let mut app = None;
        let host = match &cfg.host {
            _ if in_process => {
                let rings = AppRings::new(umem.frame_count());
                app = Some(AppPort::new(umem.clone(), Arc::clone(&rings)));
                HostSide::App(rings)
            }
            HostSpec::Tap => HostSide::Copy(Box::new(open_tap(&cfg.name, bond)?)),
            HostSpec::TapNamed(name) => HostSide::Copy(Box::new(open_tap(name, bond)?)),
            HostSpec::Xdp(iface) => {
                // The access port takes the slot after the members; it always delivers.
                let slot = cfg.members.len() as u32;
                program.attach(iface, None)?;
                program.set_member(iface, slot, MemberAction::Deliver)?;
                let port = MemberPort::bind(&umem, iface, 0, slot, &port_cfg, &program)?;
                HostSide::Xsk(Box::new(port))
            }
            HostSpec::None => unreachable!("handled above"),
        };
        let o = &cfg.options;
        let selector = TxSelector::new(
            o.mode,
            o.xmit_hash_policy,
            o.packets_per_slave,
            o.tlb_dynamic_lb,
            0x5eed,
        );
        let snapshots = Arc::new(SnapshotCell::new(bond.snapshot(bond.bond_mac())));
        let counters = Arc::new(BondCounters::new(cfg.members.len()));
        let worker = Worker::new(
            umem,
            pool,
            ports,
            host,
            selector,
            Arc::clone(&snapshots),
            Arc::clone(&counters),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("worker-{}", cfg.name))
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    worker.run(&stop);
                })
                .map_err(|e| DataPlaneError::Host {
                    host: cfg.host.to_string(),
                    reason: format!("starting the worker thread: {e}"),
                })?
        };
        info!(bond = %cfg.name, host = %cfg.host, modes = ?attach_modes, "data plane up");
        let plane = DataPlane {
            bond: cfg.name.clone(),
            stop,
            worker: Some(worker),
            snapshots,
            counters,
            attach_modes,
            frame_count: umem_frames,
            program,
        };
        Ok((plane, app))
    }

    /// Publishes the bond's current members to the worker and the XDP program.
    pub fn update(&self, bond: &Bond) {
        self.snapshots.publish(bond.snapshot(bond.bond_mac()));
        for (slot, member) in bond.config.members.iter().enumerate() {
            if let Err(e) = self
                .program
                .set_member(member, slot as u32, action(bond, slot))
            {
                tracing::warn!(bond = %self.bond, "{e}");
            }
        }
    }
}

fn action(bond: &Bond, member: usize) -> MemberAction {
    if bond.delivers(member) {
        MemberAction::Deliver
    } else {
        MemberAction::Drop
    }
}

fn open_tap(name: &str, bond: &Bond) -> Result<TapPort, DataPlaneError> {
    TapPort::open(name, bond.bond_mac()).map_err(|e| DataPlaneError::Host {
        host: format!("tap:{name}"),
        reason: e.to_string(),
    })
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        info!(bond = %self.bond, "data plane stopped, XDP detached");
    }
}
