//! One bond's data plane: bond-dp's XDP program on every member, an AF_XDP socket per member
//! on one shared UMEM, the host port, and the worker thread that moves frames between them.
//! Dropping it stops the worker and detaches the program from every member.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use thiserror::Error;
use tracing::{info, warn};

use crate::monitor::read_ifindex;

use crate::bond::Bond;
use crate::config::{CopyMode, EngineConfig, HostSpec, XdpMode};

use crate::engine::{
    BondCounters, CarriedCounters, HostSide, QueueShare, SharedCounters, SnapshotCell, Worker,
    WorkerPort,
};
use crate::host::{AppPort, HostPort, TapPort};
use crate::limits::MAX_QUEUES;
use crate::policy::{Mode, TxSelector};
use crate::status::CountersView;
use crate::wire::NeighbourMsg;
use crate::xdp::ethtool;
use crate::xdp::port::PortError;
use crate::xdp::program::XdpError;
use crate::xdp::{
    rx_queue_count, AttachMode, DeviceTx, FramePool, MemberAction, PortConfig, UmemArea,
    XdpCounters, XdpCountersReader, XdpProgram, XskPort,
};

#[derive(Debug, Error)]
pub enum DataPlaneError {
    #[error(transparent)]
    Xdp(#[from] XdpError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("host port {host}: {reason}")]
    Host { host: String, reason: String },
    #[error("{0}")]
    Engine(String),
}

pub struct DataPlane {
    bond: String,
    stop: Arc<AtomicBool>,
    /// Each worker hands its host side back when it stops (a restart keeps the TAP).
    workers: Vec<JoinHandle<HostSide>>,
    /// The cores the workers go on when the engine settings name none.
    default_cores: Vec<usize>,
    pub snapshots: Arc<SnapshotCell>,
    /// This data plane's own counts: they start at zero (see `counters_view` for totals).
    pub counters: BondCounters,
    /// The members, in slot order, and what data planes before this one counted for them.
    names: Vec<String>,
    carried: CarriedCounters,
    /// Per member: how the program runs on it; `None` for a member whose device is absent.
    pub attach_modes: Vec<Option<AttachMode>>,
    /// Per member: the device the data plane attached to (its ifindex), `None` if absent.
    pub ifindexes: Vec<Option<u32>>,
    /// Frames in the bond's UMEM (all workers' shares).
    pub frame_count: usize,
    /// The XDP program's per-member counters.
    pub xdp: XdpCountersReader,
    /// The ARP and neighbour discovery the XDP program copies for the ARP monitor: the
    /// reader, what it read, and the targets the program copies for.
    neighbours: Mutex<libbpf_rs::RingBuffer<'static>>,
    /// Members whose rx-vlan offload was turned off, to turn on again at stop.
    rx_vlan_restore: Vec<String>,
    neighbours_read: Arc<Mutex<Vec<ArpReport>>>,
    targets: Mutex<Vec<IpAddr>>,
    // Dropped last (after the workers stopped): detaches from the members.
    program: XdpProgram,
}

/// The queues worker `w` of `workers` serves on an interface with `queues` queues.
fn worker_queues(w: u32, workers: u32, queues: u32) -> impl Iterator<Item = u32> {
    (0..queues).filter(move |q| q % workers == w)
}

impl DataPlane {
    /// Brings the data plane up for `bond` with its configured host port; `None` for
    /// `--host none` (the daemon has no application to hand the in-process API to).
    /// `default_cores` pins the workers when the bond's engine settings name no cores.
    pub fn start(
        bond: &Bond,
        default_cores: &[usize],
    ) -> Result<Option<DataPlane>, DataPlaneError> {
        if bond.config.host == HostSpec::None {
            return Ok(None);
        }
        Self::start_with(bond, default_cores, false, &mut Vec::new()).map(|(plane, _)| Some(plane))
    }

    /// Stops the workers and detaches the program from every interface, keeping the TAP
    /// device (and so its addresses and routes), to start again around new members.
    pub fn stop(mut self) -> Stopped {
        let tap = self
            .stop_workers()
            .into_iter()
            .filter_map(|host| match host {
                HostSide::Tap(port) => Some(port),
                HostSide::AccessPort(_) => None,
            })
            .collect();
        let mut carried = std::mem::take(&mut self.carried);
        carried.carry(&self.names, &self.counters.view());
        carried.carry_xdp(&self.names, &self.xdp_live());
        Stopped {
            tap,
            cores: std::mem::take(&mut self.default_cores),
            carried,
        }
    }

    /// The bond's counters since it started, over every data plane it had: they never go
    /// backwards when members come and go.
    pub fn counters_view(&self) -> CountersView {
        self.carried.add_to(&self.names, self.counters.view())
    }

    /// The XDP program's per-member counts since the bond started.
    pub fn xdp_counters(&self) -> Vec<XdpCounters> {
        self.carried.add_xdp_to(&self.names, self.xdp_live())
    }

    fn xdp_live(&self) -> Vec<XdpCounters> {
        (0..self.attach_modes.len() as u32)
            .map(|slot| self.xdp.read(slot))
            .collect()
    }

    fn stop_workers(&mut self) -> Vec<HostSide> {
        self.stop.store(true, Ordering::Relaxed);
        self.workers
            .drain(..)
            .filter_map(|w| w.join().ok())
            .collect()
    }

    /// A worker thread that ended while the data plane runs (it panicked): its name and
    /// why. Workers end only when told to, so any that ended died.
    pub fn dead_worker(&mut self) -> Option<(String, String)> {
        let i = self.workers.iter().position(|w| w.is_finished())?;
        let handle = self.workers.remove(i);
        let name = handle.thread().name().unwrap_or("worker").to_string();
        let reason = match handle.join() {
            Ok(_) => "it returned".to_string(),
            Err(payload) => payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "it panicked".into()),
        };
        Some((name, reason))
    }

    /// For appliances: brings the data plane up with the in-process API as the host side,
    /// one [`AppPort`] per share of the queues (`workers` of the engine settings). No worker
    /// thread runs: each port does the bond's work on the thread that calls it, so the
    /// application pins its threads itself. A frame must go back through the port it came
    /// from.
    pub fn start_in_process(bond: &Bond) -> Result<(DataPlane, Vec<AppPort>), DataPlaneError> {
        Self::start_with(bond, &[], true, &mut Vec::new())
    }

    /// `tap`: the TAP queues of a stopped data plane (one per worker), taken only when
    /// nothing can fail any more (they stay with the caller otherwise).
    fn start_with(
        bond: &Bond,
        default_cores: &[usize],
        in_process: bool,
        tap: &mut Vec<Box<dyn HostPort>>,
    ) -> Result<(DataPlane, Vec<AppPort>), DataPlaneError> {
        let cfg = &bond.config;
        let engine = &cfg.engine;
        let ifindexes = present_members(bond);
        let queue_counts = cfg
            .members
            .iter()
            .zip(&ifindexes)
            .map(|(iface, present)| match present {
                Some(_) => served_queues(engine, iface),
                None => Ok(0),
            })
            .chain(cfg.access_port().map(|iface| served_queues(engine, iface)))
            .collect::<Result<Vec<u32>, _>>()?;
        let attached = attach_program(bond, &ifindexes)?;
        let program = attached.program;
        let xdp = program.counters_reader()?;
        let neighbours_read: Arc<Mutex<Vec<ArpReport>>> = Arc::default();
        let neighbours = {
            let read = Arc::clone(&neighbours_read);
            program.neighbour_reader(move |slot, frame| {
                if let Some(msg) = NeighbourMsg::parse(frame) {
                    let member = slot as usize;
                    read.lock()
                        .expect("neighbour lock")
                        .push(ArpReport { member, msg });
                }
            })?
        };
        let port_cfg = port_config(bond);
        let (umem, pool) = UmemArea::new(&port_cfg)?;
        let umem_frames = umem.frame_count();
        let snapshots = Arc::new(SnapshotCell::new(bond.snapshot()));
        if let Some(name) = tap_name(bond).filter(|_| !in_process) {
            // A queue per worker; a worker that died took its queue with it.
            let workers = engine.workers as usize;
            let missing = workers.saturating_sub(tap.len());
            if missing > 0 {
                tap.extend(open_tap(name, bond, missing)?);
            }
            tap.truncate(workers);
        }
        let shares = Shares {
            bond,
            umem: &umem,
            port_cfg: &port_cfg,
            program: &program,
            queue_counts: &queue_counts,
            ifindexes: &ifindexes,
            snapshots: &snapshots,
        };
        let mut worker_counters = Vec::new();
        let mut apps = Vec::new();
        let mut hosts = Vec::new();
        for (w, pool) in (0..engine.workers).zip(pool.split(engine.workers as usize)) {
            let (queues, counters) = shares.share(w, pool)?;
            worker_counters.push(counters);
            if in_process {
                apps.push(AppPort::new(queues));
            } else {
                hosts.push((queues, shares.access_port(w)?));
            }
        }
        set_members(&program, bond, &ifindexes)?;
        // Nothing can fail any more: each worker without an access port takes its TAP queue.
        let mut taps = tap.drain(..);
        let built: Vec<Worker> = hosts
            .into_iter()
            .map(|(queues, host)| {
                let host = host.unwrap_or_else(|| {
                    HostSide::Tap(taps.next().expect("a TAP queue for every worker"))
                });
                Worker::new(queues, host)
            })
            .collect();
        drop(taps);
        let stop = Arc::new(AtomicBool::new(false));
        let handles = spawn_workers(bond, built, default_cores, &stop);
        info!(
            bond = %cfg.name,
            host = %cfg.host,
            modes = ?attached.modes,
            workers = engine.workers,
            queues = ?queue_counts,
            "data plane up"
        );
        let plane = DataPlane {
            bond: cfg.name.clone(),
            stop,
            workers: handles,
            default_cores: default_cores.to_vec(),
            snapshots,
            counters: BondCounters::new(cfg.members.len(), worker_counters),
            names: cfg.members.clone(),
            carried: CarriedCounters::default(),
            attach_modes: attached.modes,
            ifindexes,
            frame_count: umem_frames,
            neighbours: Mutex::new(neighbours),
            rx_vlan_restore: attached.rx_vlan_restore,
            neighbours_read,
            targets: Mutex::new(Vec::new()),
            xdp,
            program,
        };
        Ok((plane, apps))
    }

    /// The ARP and neighbour discovery messages to or from the ARP monitor's targets that
    /// members received since the last call.
    pub fn take_arp_reports(&self, out: &mut Vec<ArpReport>) {
        if let Err(e) = self.neighbours.lock().expect("neighbour lock").consume() {
            tracing::warn!(bond = %self.bond, "reading the ARP monitor's ring buffer: {e}");
        }
        out.append(&mut self.neighbours_read.lock().expect("neighbour lock"));
    }

    /// Publishes the bond's current members to the worker and the XDP program.
    pub fn update(&self, bond: &Bond) {
        self.snapshots.publish(bond.snapshot());
        for (slot, member) in bond.config.members.iter().enumerate() {
            if self.ifindexes.get(slot).copied().flatten().is_none() {
                continue;
            }
            if let Err(e) = self
                .program
                .set_member(member, slot as u32, action(bond, slot))
            {
                tracing::warn!(bond = %self.bond, "{e}");
            }
        }
        let mut targets = self.targets.lock().expect("targets lock");
        let wanted = bond.watched_targets();
        if *targets != wanted {
            match self.program.set_targets(&targets, wanted) {
                Ok(()) => *targets = wanted.to_vec(),
                Err(e) => tracing::warn!(bond = %self.bond, "{e}"),
            }
        }
    }
}

/// An ARP or neighbour discovery message a member received, for the ARP monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpReport {
    pub member: usize,
    pub msg: NeighbourMsg,
}

fn action(bond: &Bond, member: usize) -> MemberAction {
    if bond.delivers(member) {
        MemberAction::Deliver
    } else if bond.config.options.mode == Mode::BalanceAlb {
        MemberAction::DeliverUnicast
    } else {
        MemberAction::Drop
    }
}

/// Each member's device index, `None` for a member whose device is gone (deleted, moved to
/// another namespace): it is left out until it comes back, and the bond counts it as down.
/// The others carry on.
fn present_members(bond: &Bond) -> Vec<Option<u32>> {
    let cfg = &bond.config;
    let ifindexes: Vec<Option<u32>> = cfg.members.iter().map(|m| read_ifindex(m).ok()).collect();
    for (member, _) in cfg
        .members
        .iter()
        .zip(&ifindexes)
        .filter(|(_, i)| i.is_none())
    {
        warn!(bond = %cfg.name, member = %member, "no such device: left out of the data plane until it appears");
    }
    ifindexes
}

/// The sockets' and UMEM's sizes and modes, from the engine settings.
fn port_config(bond: &Bond) -> PortConfig {
    let engine = &bond.config.engine;
    PortConfig {
        frame_count: engine.frames_per_worker(bond.config.ports_per_worker()) * engine.workers,
        frame_size: engine.frame_size,
        ring_size: engine.ring_size,
        zero_copy: match engine.copy_mode {
            CopyMode::Auto => None,
            CopyMode::ZeroCopy => Some(true),
            CopyMode::Copy => Some(false),
        },
        multi_buffer: bond.config.multi_buffer(),
    }
}

/// The XDP program on every present member and the access port, and what it learnt there.
struct Attached {
    program: XdpProgram,
    /// Per member: how the program runs there (`None`: the device is absent).
    modes: Vec<Option<AttachMode>>,
    /// Members whose rx-vlan offload was turned off, to turn back on at stop.
    rx_vlan_restore: Vec<String>,
}

fn attach_program(bond: &Bond, ifindexes: &[Option<u32>]) -> Result<Attached, DataPlaneError> {
    let cfg = &bond.config;
    let xdp_mode = match cfg.engine.xdp_mode {
        XdpMode::Auto => None,
        XdpMode::Native => Some(AttachMode::Native),
        XdpMode::Generic => Some(AttachMode::Generic),
    };
    let mut program = XdpProgram::load_with(cfg.multi_buffer())?;
    let mut modes = Vec::new();
    let mut rx_vlan_restore = Vec::new();
    for (slot, member) in cfg.members.iter().enumerate() {
        if ifindexes[slot].is_none() {
            modes.push(None);
            continue;
        }
        let attached = program.attach(member, xdp_mode)?;
        if !attached.vlan_metadata && keep_vlan_tags_inline(&cfg.name, member) {
            rx_vlan_restore.push(member.clone());
        }
        modes.push(Some(attached.mode));
    }
    if let HostSpec::Xdp(iface) = &cfg.host {
        program.attach(iface, xdp_mode)?;
    }
    Ok(Attached {
        program,
        modes,
        rx_vlan_restore,
    })
}

/// Gives the program each present member's action, and the access port's (the slot after the
/// members; it always delivers). Called once every socket is bound: until then the program
/// knows no member and passes their frames to the kernel, rather than count them as frames
/// with no socket.
fn set_members(
    program: &XdpProgram,
    bond: &Bond,
    ifindexes: &[Option<u32>],
) -> Result<(), DataPlaneError> {
    let cfg = &bond.config;
    for (slot, member) in cfg.members.iter().enumerate() {
        if ifindexes[slot].is_some() {
            program.set_member(member, slot as u32, action(bond, slot))?;
        }
    }
    if let HostSpec::Xdp(iface) = &cfg.host {
        program.set_member(iface, cfg.members.len() as u32, MemberAction::Deliver)?;
    }
    Ok(())
}

/// The bond's TAP device name, if its host side is a TAP.
fn tap_name(bond: &Bond) -> Option<&str> {
    match &bond.config.host {
        HostSpec::Tap => Some(bond.config.name.as_str()),
        HostSpec::TapNamed(name) => Some(name.as_str()),
        _ => None,
    }
}

/// What every worker's share of the queues is bound from.
struct Shares<'a> {
    bond: &'a Bond,
    umem: &'a UmemArea,
    port_cfg: &'a PortConfig,
    program: &'a XdpProgram,
    /// Per member (and the access port last): the queues served.
    queue_counts: &'a [u32],
    /// Per member: its device's index, `None` where it is absent.
    ifindexes: &'a [Option<u32>],
    snapshots: &'a Arc<SnapshotCell>,
}

impl Shares<'_> {
    /// Worker `w`'s share: its queue of each member, bound, and its transmit selector.
    fn share(
        &self,
        w: u32,
        pool: FramePool,
    ) -> Result<(QueueShare, SharedCounters), DataPlaneError> {
        let cfg = &self.bond.config;
        let workers = cfg.engine.workers;
        let mut ports = Vec::new();
        for (slot, member) in cfg.members.iter().enumerate() {
            for queue in worker_queues(w, workers, self.queue_counts[slot]) {
                let port = XskPort::bind(
                    self.umem,
                    member,
                    queue,
                    slot as u32,
                    self.port_cfg,
                    self.program,
                )?;
                ports.push(WorkerPort {
                    member: slot,
                    queue,
                    port,
                });
            }
        }
        let o = &cfg.options;
        let selector = TxSelector::new(
            o.mode,
            o.xmit_hash_policy,
            o.packets_per_slave,
            o.tlb_dynamic_lb,
            0x5eed + u64::from(w),
        );
        let (queues, counters) = QueueShare::new(
            self.umem.clone(),
            pool,
            cfg.members.len(),
            ports,
            selector,
            Arc::clone(self.snapshots),
        );
        let queues = match cfg.host {
            HostSpec::Tap | HostSpec::TapNamed(_) => queues.with_device_tx(self.device_tx()),
            _ => queues,
        };
        Ok((queues, counters))
    }

    /// Per member, a socket that hands the TAP's TCP super-frames to its device whole; where
    /// one cannot be had, the worker cuts them (as it does without).
    fn device_tx(&self) -> Vec<Option<DeviceTx>> {
        let cfg = &self.bond.config;
        cfg.members
            .iter()
            .zip(self.ifindexes)
            .map(|(member, ifindex)| {
                DeviceTx::open((*ifindex)?)
                    .map_err(|e| {
                        tracing::warn!(
                            bond = %cfg.name,
                            member = %member,
                            "a socket to hand TCP super-frames to the device: {e}; they are \
                             cut into segments instead"
                        )
                    })
                    .ok()
            })
            .collect()
    }

    /// Worker `w`'s queues of the access port, bound; `None` where the host side is a TAP
    /// (its queue is handed over once nothing can fail).
    fn access_port(&self, w: u32) -> Result<Option<HostSide>, DataPlaneError> {
        let cfg = &self.bond.config;
        match &cfg.host {
            HostSpec::Xdp(iface) => {
                let slot = cfg.members.len();
                let access = worker_queues(w, cfg.engine.workers, self.queue_counts[slot])
                    .map(|q| {
                        XskPort::bind(
                            self.umem,
                            iface,
                            q,
                            slot as u32,
                            self.port_cfg,
                            self.program,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(HostSide::AccessPort(access)))
            }
            HostSpec::Tap | HostSpec::TapNamed(_) => Ok(None),
            HostSpec::None => unreachable!("handled in start"),
        }
    }
}

/// The core worker `w` goes on: the engine's `cores` setting, or else one of `defaults` in
/// turn; `None` when there are neither.
pub fn worker_core(engine: &EngineConfig, defaults: &[usize], w: usize) -> Option<usize> {
    engine
        .cores
        .get(w)
        .or_else(|| defaults.get(w % defaults.len().max(1)))
        .copied()
}

/// Starts a thread per worker, each on its core. Threads start only once everything could
/// be set up, so that a failure leaves nothing running.
fn spawn_workers(
    bond: &Bond,
    built: Vec<Worker>,
    default_cores: &[usize],
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<HostSide>> {
    let engine = &bond.config.engine;
    built
        .into_iter()
        .enumerate()
        .map(|(w, worker)| {
            let core = worker_core(engine, default_cores, w);
            let stop = Arc::clone(stop);
            std::thread::Builder::new()
                .name(format!("{}-w{w}", bond.config.name))
                .spawn(move || {
                    if let Some(id) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id });
                    }
                    worker.run(&stop)
                })
                .expect("spawning a worker thread")
        })
        .collect()
}

/// A data plane stopped to start again: what outlives it.
pub struct Stopped {
    /// The TAP's queues, in worker order.
    tap: Vec<Box<dyn HostPort>>,
    cores: Vec<usize>,
    carried: CarriedCounters,
}

impl Stopped {
    /// Brings the data plane up again for the bond's current members. On failure the TAP is
    /// still here, for another try (with the members that worked).
    pub fn start(&mut self, bond: &Bond) -> Result<DataPlane, DataPlaneError> {
        let (mut plane, _) = DataPlane::start_with(bond, &self.cores, false, &mut self.tap)?;
        plane.carried = self.carried.clone();
        Ok(plane)
    }
}

/// `queues` more queues of the bond's TAP device (created with the first).
fn open_tap(
    name: &str,
    bond: &Bond,
    queues: usize,
) -> Result<Vec<Box<dyn HostPort>>, DataPlaneError> {
    let ports =
        TapPort::open_queues(name, bond.macs().host, queues).map_err(|e| DataPlaneError::Host {
            host: format!("tap:{name}"),
            reason: e.to_string(),
        })?;
    Ok(ports
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn HostPort>)
        .collect())
}

/// How many queues of `iface` the bond serves: the configured number, or all it has; never
/// more than it has, and at least one per worker.
fn served_queues(engine: &EngineConfig, iface: &str) -> Result<u32, DataPlaneError> {
    let has = rx_queue_count(iface)
        .map_err(|e| DataPlaneError::Engine(format!("{iface}: reading its queues: {e}")))?;
    let want = engine.queues.unwrap_or(has);
    if want > MAX_QUEUES {
        return Err(DataPlaneError::Engine(format!(
            "{iface} has {has} RX queues; bond-dp serves at most {MAX_QUEUES} per member \
             (set queues={MAX_QUEUES} or fewer and steer traffic to them, or reduce them with \
             `ethtool -L {iface} combined {MAX_QUEUES}`)"
        )));
    }
    if want > has {
        return Err(DataPlaneError::Engine(format!(
            "queues={want} but {iface} has {has} RX queue(s)"
        )));
    }
    if want < engine.workers {
        return Err(DataPlaneError::Engine(format!(
            "workers={} need a queue each on every member, but {iface} has {has} RX queue(s) \
             (raise them with `ethtool -L {iface} combined N`, or lower workers)",
            engine.workers
        )));
    }
    Ok(want)
}

/// Where the program cannot put back a VLAN tag the driver keeps as RX metadata, the member's
/// rx-vlan offload goes off, so the NIC leaves tags in the frames; says so. True when it was
/// turned off (to turn on again when the data plane stops).
fn keep_vlan_tags_inline(bond: &str, member: &str) -> bool {
    if !ethtool::rx_vlan_offload(member).unwrap_or(false) {
        return false;
    }
    match ethtool::set_rx_vlan_offload(member, false) {
        Ok(()) => {
            info!(
                bond,
                member,
                "rx-vlan offload turned off: XDP cannot read the RX VLAN metadata here (generic \
                 XDP, or a driver without it), so VLAN tags must stay in the frames"
            );
            true
        }
        Err(e) => {
            warn!(
                bond,
                member,
                "VLAN tags the driver takes off on receive reach the host untagged: turning \
                 rx-vlan offload off failed ({e}); run `ethtool -K {member} rxvlan off`"
            );
            false
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.stop_workers();
        for member in &self.rx_vlan_restore {
            let _ = ethtool::set_rx_vlan_offload(member, true);
        }
        info!(bond = %self.bond, "data plane stopped, XDP detached");
    }
}
