//! One bond's data plane: bond-dp's XDP program on every member, an AF_XDP socket per member
//! on one shared UMEM, the host port, and the worker thread that moves frames between them.
//! Dropping it stops the worker and detaches the program from every member.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use thiserror::Error;
use tracing::{info, warn};

use crate::monitor::read_ifindex;

use crate::bond::Bond;
use crate::config::{CopyMode, EngineConfig, HostSpec, XdpMode};

use crate::engine::{
    BondCounters, CarriedCounters, HostSide, QueueShare, Retired, SharedCounters, SnapshotCell,
    Waker, Worker, WorkerPort, BURST,
};
use crate::host::{AppPort, HostPort, TapPort};
use crate::limits::{MAX_MEMBERS, MAX_QUEUES};
use crate::policy::{Mode, TxSelector};
use crate::status::CountersView;
use crate::wire::NeighbourMsg;
use crate::xdp::ethtool;
use crate::xdp::port::{FrameReturns, PortError};
use crate::xdp::program::XdpError;
use crate::xdp::{
    rx_queue_count, AttachMode, DeviceTx, FramePool, MemberAction, PortConfig, UmemArea,
    XdpCounters, XdpCountersReader, XdpLink, XdpProgram, XskPort,
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
    /// Each worker hands itself back when it stops: to run again around changed members, or
    /// to give back its host side (a restart keeps the TAP).
    workers: Vec<JoinHandle<Worker>>,
    /// Wakes the workers from their idle sleep to stop (`None`: they stop within it).
    waker: Option<Arc<Waker>>,
    /// What the workers run with: the engine settings, and the cores they go on when those
    /// name none.
    engine: EngineConfig,
    default_cores: Vec<usize>,
    /// The UMEM and the sockets' settings, for the sockets of members that join.
    umem: UmemArea,
    port_cfg: PortConfig,
    /// Whether a member is being set up to join (one at a time: see `JoinTicket`).
    joining: Arc<AtomicBool>,
    /// The UMEM's own socket, with the worker it served, since its member left: it stays
    /// bound to its queue (no other socket binds there) and serves the member again if it
    /// comes back.
    umem_socket: Option<(usize, XskPort)>,
    pub snapshots: Arc<SnapshotCell>,
    /// This data plane's own counts: they start at zero (see `counters_view` for totals).
    pub counters: BondCounters,
    /// The members, in the bond's order, and what data planes before this one (and members
    /// that left) counted for them.
    names: Vec<String>,
    carried: CarriedCounters,
    /// Per member: its slot in the program's maps (sockets, counters, neighbour reports).
    /// A member keeps its slot while others come and go.
    slots: Vec<u32>,
    /// Per member: how the program runs on it; `None` for a member whose device is absent.
    pub attach_modes: Vec<Option<AttachMode>>,
    /// Per member: the device the data plane attached to (its ifindex), `None` if absent.
    pub ifindexes: Vec<Option<u32>>,
    /// Frames in the bond's UMEM (all workers' shares).
    pub frame_count: usize,
    /// The XDP program's per-member counters.
    pub xdp: XdpCountersReader,
    /// The ARP and neighbour discovery the XDP program copies for the ARP monitor: the
    /// reader, what it read (by slot), and the targets the program copies for.
    neighbours: Mutex<libbpf_rs::RingBuffer<'static>>,
    /// Members whose rx-vlan offload was turned off, to turn on again at stop.
    rx_vlan_restore: Vec<String>,
    neighbours_read: Arc<Mutex<Vec<(u32, NeighbourMsg)>>>,
    targets: Mutex<Vec<IpAddr>>,
    // Dropped last (after the workers stopped): detaches from the members.
    program: Arc<XdpProgram>,
}

/// The access port's slot in the program's maps: the last, so that members keep theirs.
const ACCESS_SLOT: u32 = MAX_MEMBERS - 1;

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
            .filter_map(|worker| match worker.into_host() {
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

    /// The XDP program's per-member counts, in the bond's member order, since this program
    /// was loaded (or since the member joined).
    pub fn xdp_live(&self) -> Vec<XdpCounters> {
        self.slots.iter().map(|&slot| self.xdp.read(slot)).collect()
    }

    fn stop_workers(&mut self) -> Vec<Worker> {
        self.join_workers()
            .into_iter()
            .filter_map(Result::ok)
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
        let neighbours_read: Arc<Mutex<Vec<(u32, NeighbourMsg)>>> = Arc::default();
        let neighbours = {
            let read = Arc::clone(&neighbours_read);
            program.neighbour_reader(move |slot, frame| {
                if let Some(msg) = NeighbourMsg::parse(frame) {
                    read.lock().expect("neighbour lock").push((slot, msg));
                }
            })?
        };
        let slots: Vec<u32> = (0..cfg.members.len() as u32).collect();
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
            binder: Binder {
                umem: &umem,
                port_cfg: &port_cfg,
                program: &program,
            },
            queue_counts: &queue_counts,
            ifindexes: &ifindexes,
            slots: &slots,
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
        set_members(&program, bond, &ifindexes, &slots)?;
        // Nothing can fail any more: each worker without an access port takes its TAP queue.
        let mut taps = tap.drain(..);
        let waker = Waker::new()
            .map_err(|e| warn!(bond = %cfg.name, "no eventfd to wake the workers ({e}): they stop within their idle sleep"))
            .ok()
            .map(Arc::new);
        let built: Vec<Worker> = hosts
            .into_iter()
            .map(|(queues, host)| {
                let host = host.unwrap_or_else(|| {
                    HostSide::Tap(taps.next().expect("a TAP queue for every worker"))
                });
                let worker = Worker::new(queues, host);
                match &waker {
                    Some(w) => worker.with_waker(Arc::clone(w)),
                    None => worker,
                }
            })
            .collect();
        drop(taps);
        let stop = Arc::new(AtomicBool::new(false));
        let handles = spawn_workers(&cfg.name, engine, built, default_cores, &stop);
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
            waker,
            engine: engine.clone(),
            default_cores: default_cores.to_vec(),
            umem,
            port_cfg,
            joining: Arc::default(),
            umem_socket: None,
            snapshots,
            counters: BondCounters::new(cfg.members.len(), worker_counters),
            names: cfg.members.clone(),
            carried: CarriedCounters::default(),
            slots,
            attach_modes: attached.modes,
            ifindexes,
            frame_count: umem_frames,
            neighbours: Mutex::new(neighbours),
            rx_vlan_restore: attached.rx_vlan_restore,
            neighbours_read,
            targets: Mutex::new(Vec::new()),
            xdp,
            program: Arc::new(program),
        };
        Ok((plane, apps))
    }

    /// Member `left` left the bond (`bond` is without it) while the data plane carries on:
    /// the program forgets its slot, and the workers stop only for the moment it takes to
    /// give up its sockets. The program, the UMEM, the host side and the other members'
    /// sockets stay. What is slow (the program's link to the device, the sockets' closing)
    /// comes back as `Leftovers`, to finish once the bond's locks are released. On an error
    /// (a worker died) the caller rebuilds the data plane instead.
    pub fn member_left(&mut self, bond: &Bond, left: usize) -> Result<Leftovers, DataPlaneError> {
        let (Some(&slot), Some(&ifindex)) = (self.slots.get(left), self.ifindexes.get(left)) else {
            return Err(DataPlaneError::Engine(format!(
                "no member {left} to remove"
            )));
        };
        // The member's counts carry on by name, should it come back; the program passes its
        // frames to the kernel from here, and its slot counts from zero for the next member.
        let name = self.names[left].clone();
        let counts = self.xdp.read(slot);
        self.program.forget_member(ifindex, slot)?;
        self.carried
            .carry_xdp(std::slice::from_ref(&name), &[counts]);
        let mut leftovers = Leftovers {
            links: ifindex
                .and_then(|i| self.program.take_link(i))
                .into_iter()
                .collect(),
            snapshots: Some(Arc::clone(&self.snapshots)),
            ..Leftovers::default()
        };
        let paused = Instant::now();
        let mut workers = self.pause_workers()?;
        self.carried.carry(&self.names, &self.counters.view());
        let mut counters = Vec::new();
        for (i, w) in workers.iter_mut().enumerate() {
            let (c, retired) = w.queues_mut().member_left(left);
            counters.push(c);
            self.set_aside(i, w, retired, true, &mut leftovers);
        }
        self.counters = BondCounters::new(bond.config.members.len(), counters);
        self.names.remove(left);
        self.slots.remove(left);
        self.ifindexes.remove(left);
        self.attach_modes.remove(left);
        self.snapshots.publish(bond.snapshot());
        self.resume_workers(workers);
        if let Some(i) = self.rx_vlan_restore.iter().position(|m| *m == name) {
            leftovers
                .rx_vlan_restore
                .push(self.rx_vlan_restore.remove(i));
        }
        info!(
            bond = %self.bond,
            member = %name,
            workers_paused_us = paused.elapsed().as_micros() as u64,
            "member left the running data plane"
        );
        Ok(leftovers)
    }

    /// What member `name` joining this data plane needs, to set it up (slowly) without the
    /// bond's locks; `None` while another member is being set up.
    pub fn joiner(&mut self, bond: &Bond, name: &str) -> Option<Joiner> {
        let slot = (0..MAX_MEMBERS).find(|s| *s != ACCESS_SLOT && !self.slots.contains(s))?;
        let mut joiner = self.joiner_at(bond, slot)?;
        // The first member, back: the UMEM's own socket still holds its queue.
        let device = read_ifindex(name).ok();
        joiner.umem_socket = self
            .umem_socket
            .take_if(|(_, socket)| Some(socket.ifindex) == device);
        Some(joiner)
    }

    /// What member `m`'s new device (deleted and created again, or back from another
    /// namespace) needs to be set up in its place; `None` while another member is being set
    /// up.
    pub fn joiner_for(&mut self, bond: &Bond, m: usize) -> Option<Joiner> {
        let slot = *self.slots.get(m)?;
        self.joiner_at(bond, slot)
    }

    fn joiner_at(&mut self, bond: &Bond, slot: u32) -> Option<Joiner> {
        if self.workers.is_empty() {
            return None;
        }
        let ticket = JoinTicket::take(&self.joining)?;
        Some(Joiner {
            ticket,
            program: Arc::clone(&self.program),
            umem: self.umem.clone(),
            port_cfg: self.port_cfg,
            engine: self.engine.clone(),
            bond: self.bond.clone(),
            tap_host: tap_name(bond).is_some(),
            slot,
            umem_socket: None,
        })
    }

    /// A member set up by a `Joiner` joined the bond (`bond` is with it, last): the workers
    /// stop only to take its sockets. On an error (the UMEM has no frames to spare for its
    /// rings, the data plane changed meanwhile, a worker died) nothing changed: what was set
    /// up comes back, to finish before the caller rebuilds.
    pub fn member_joined(&mut self, bond: &Bond, joining: Joining) -> Result<(), Box<NotJoined>> {
        let member = bond.config.members.len() - 1;
        let leftovers = self.put_member(bond, member, joining)?;
        debug_assert!(leftovers.is_empty(), "a member that joins replaces nothing");
        Ok(())
    }

    /// Member `m`'s device was replaced: the sockets set up on the new one (by
    /// `joiner_for`) take the old ones' place, and the workers stop only to swap them. What
    /// the old device leaves (its link, its sockets) comes back to finish without the
    /// locks. Errors as `member_joined`.
    pub fn member_replaced(
        &mut self,
        bond: &Bond,
        m: usize,
        joining: Joining,
    ) -> Result<Leftovers, Box<NotJoined>> {
        self.put_member(bond, m, joining)
    }

    /// Puts member `m` (a new one after the others, or one whose device was replaced) on
    /// what `joining` set up.
    fn put_member(
        &mut self,
        bond: &Bond,
        m: usize,
        joining: Joining,
    ) -> Result<Leftovers, Box<NotJoined>> {
        let not_joined = |why: DataPlaneError, joining: Joining| {
            Box::new(NotJoined {
                why,
                leftovers: Leftovers::from(joining),
            })
        };
        let refuse = |why: &str, joining: Joining| {
            Err(not_joined(DataPlaneError::Engine(why.to_string()), joining))
        };
        let cfg = &bond.config;
        let replacing = m < self.names.len();
        let in_step = cfg.members.get(m) == Some(&joining.name)
            && if replacing {
                self.names[m] == joining.name && self.slots[m] == joining.slot
            } else {
                m == self.names.len() && cfg.members.len() == m + 1
            };
        if !joining.ticket.is_for(&self.joining) || !in_step {
            return refuse(
                "the data plane changed while the member was set up",
                joining,
            );
        }
        let paused = Instant::now();
        let mut workers = match self.pause_workers() {
            Ok(workers) => workers,
            Err(e) => return Err(not_joined(e, joining)),
        };
        // Each worker's free frames must fill the new sockets' fill and TX rings, with a
        // burst to spare (frames that sockets closed since gave back count).
        let ring = self.port_cfg.ring_size as usize;
        let short = joining
            .ports
            .iter()
            .zip(&mut workers)
            .find_map(|(ports, w)| {
                let q = w.queues_mut();
                q.take_returned_frames();
                let need = 2 * ring * ports.len() + BURST;
                (q.pool.free() < need).then(|| (q.pool.free(), need))
            });
        if let Some((free, need)) = short {
            self.resume_workers(workers);
            let why = format!(
                "the UMEM has no frames to spare for {}'s rings ({free} free, {need} needed)",
                joining.name
            );
            return refuse(&why, joining);
        }
        self.carried.carry(&self.names, &self.counters.view());
        let mut leftovers = Leftovers {
            snapshots: Some(Arc::clone(&self.snapshots)),
            ..Leftovers::default()
        };
        let mut counters = Vec::new();
        let given = joining.ports.into_iter().zip(joining.device_tx);
        for (i, (w, (ports, device))) in workers.iter_mut().zip(given).enumerate() {
            let (c, retired) = w.queues_mut().put_member(m, ports, device);
            counters.push(c);
            // A replaced device is gone, and so is the binding of a UMEM socket on it.
            self.set_aside(i, w, retired, false, &mut leftovers);
        }
        self.counters = BondCounters::new(cfg.members.len(), counters);
        let mode = joining.link.as_ref().map(|(a, _)| a.mode);
        if replacing {
            if let Some(old) = std::mem::replace(&mut self.ifindexes[m], joining.ifindex) {
                self.program.forget_device(old);
                leftovers.links.extend(self.program.take_link(old));
            }
            self.attach_modes[m] = mode;
        } else {
            self.names.push(joining.name.clone());
            self.slots.push(joining.slot);
            self.ifindexes.push(joining.ifindex);
            self.attach_modes.push(mode);
        }
        self.rx_vlan_restore.extend(joining.rx_vlan_restore);
        self.snapshots.publish(bond.snapshot());
        self.resume_workers(workers);
        let paused = paused.elapsed();
        if let Some((_, link)) = joining.link {
            self.program.keep(link);
            // Once its sockets are served: until then the program passes its frames to the
            // kernel.
            if let Err(e) = self
                .program
                .set_member(&joining.name, joining.slot, action(bond, m))
            {
                warn!(bond = %cfg.name, member = %joining.name, "{e}");
            }
        }
        let what = if replacing {
            "member's new device joined the running data plane"
        } else {
            "member joined the running data plane"
        };
        info!(
            bond = %cfg.name,
            member = %joining.name,
            workers_paused_us = paused.as_micros() as u64,
            "{what}"
        );
        Ok(leftovers)
    }

    /// What worker `i` gave up of a member goes into `leftovers`, to close without the
    /// locks; the UMEM's own socket, where it is still bound (`bound`: its member left, its
    /// device is there), is kept instead (`umem_socket`).
    fn set_aside(
        &mut self,
        i: usize,
        w: &mut Worker,
        retired: Retired<XskPort>,
        bound: bool,
        leftovers: &mut Leftovers,
    ) {
        let (umem_socket, ports): (Vec<_>, Vec<_>) = retired
            .ports
            .into_iter()
            .partition(|p| bound && p.holds_umem());
        if let Some(socket) = umem_socket.into_iter().next() {
            self.umem_socket = Some((i, socket));
        }
        leftovers
            .sockets
            .push((w.queues_mut().frame_returns(), ports));
        leftovers.device_tx.extend(retired.device_tx);
    }

    /// Stops the worker threads (woken from their idle sleep) and waits for each: the worker
    /// it hands back, or why it died.
    fn join_workers(&mut self) -> Vec<std::thread::Result<Worker>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = &self.waker {
            w.wake();
        }
        let joined = self.workers.drain(..).map(JoinHandle::join).collect();
        if let Some(w) = &self.waker {
            w.reset();
        }
        joined
    }

    /// Stops the worker threads and takes the workers back, to change what they serve. A
    /// worker that died is an error (the others run again, and the caller rebuilds).
    fn pause_workers(&mut self) -> Result<Vec<Worker>, DataPlaneError> {
        if self.workers.is_empty() {
            return Err(DataPlaneError::Engine(
                "no worker threads: the application drives this data plane".into(),
            ));
        }
        let (alive, dead): (Vec<_>, Vec<_>) =
            self.join_workers().into_iter().partition(Result::is_ok);
        let alive: Vec<Worker> = alive.into_iter().filter_map(Result::ok).collect();
        if !dead.is_empty() {
            self.resume_workers(alive);
            return Err(DataPlaneError::Engine("a worker thread died".into()));
        }
        Ok(alive)
    }

    /// Runs the workers again, each on its core.
    fn resume_workers(&mut self, workers: Vec<Worker>) {
        self.stop.store(false, Ordering::Relaxed);
        self.workers = spawn_workers(
            &self.bond,
            &self.engine,
            workers,
            &self.default_cores,
            &self.stop,
        );
    }

    /// The ARP and neighbour discovery messages to or from the ARP monitor's targets that
    /// members received since the last call.
    pub fn take_arp_reports(&self, out: &mut Vec<ArpReport>) {
        if let Err(e) = self.neighbours.lock().expect("neighbour lock").consume() {
            tracing::warn!(bond = %self.bond, "reading the ARP monitor's ring buffer: {e}");
        }
        let read = std::mem::take(&mut *self.neighbours_read.lock().expect("neighbour lock"));
        // A report from a member that left since is dropped with it.
        out.extend(read.into_iter().filter_map(|(slot, msg)| {
            let member = self.slots.iter().position(|&s| s == slot)?;
            Some(ArpReport { member, msg })
        }));
    }

    /// Publishes the bond's current members to the worker and the XDP program.
    pub fn update(&self, bond: &Bond) {
        self.snapshots.publish(bond.snapshot());
        for (m, member) in bond.config.members.iter().enumerate() {
            let (Some(Some(_)), Some(&slot)) = (self.ifindexes.get(m), self.slots.get(m)) else {
                continue;
            };
            if let Err(e) = self.program.set_member(member, slot, action(bond, m)) {
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

/// The XDP attach mode the engine settings ask for (`None`: native where the driver has it).
fn xdp_mode(engine: &EngineConfig) -> Option<AttachMode> {
    match engine.xdp_mode {
        XdpMode::Auto => None,
        XdpMode::Native => Some(AttachMode::Native),
        XdpMode::Generic => Some(AttachMode::Generic),
    }
}

/// What a member joining a running data plane is set up with, away from the bond's locks:
/// the program on its device and its sockets bound, while the data plane carries on.
pub struct Joiner {
    ticket: JoinTicket,
    program: Arc<XdpProgram>,
    umem: UmemArea,
    port_cfg: PortConfig,
    engine: EngineConfig,
    bond: String,
    tap_host: bool,
    /// The member's slot, kept for it until it joins (or the join is abandoned).
    slot: u32,
    /// The UMEM's own socket, with its worker, where it is bound to one of the member's
    /// queues: it serves that queue again.
    umem_socket: Option<(usize, XskPort)>,
}

impl Joiner {
    /// Sets member `name` up: the program onto its device (a member whose device is absent
    /// gets nothing, as at start), each worker's sockets bound, and each worker's socket for
    /// super-frames from a TAP. Slow (the program is verified for the device): called
    /// without the bond's locks.
    pub fn prepare(self, name: &str) -> Result<Joining, DataPlaneError> {
        let workers = self.engine.workers as usize;
        let mut joining = Joining {
            ticket: self.ticket,
            name: name.to_string(),
            slot: self.slot,
            ifindex: read_ifindex(name).ok(),
            link: None,
            ports: (0..workers).map(|_| Vec::new()).collect(),
            device_tx: (0..workers).map(|_| None).collect(),
            rx_vlan_restore: Vec::new(),
        };
        if joining.ifindex.is_none() {
            warn!(bond = %self.bond, member = %name, "no such device: left out of the data plane until it appears");
            return Ok(joining);
        }
        if crate::fault::injected("join-slow") {
            // Debug builds: a set-up that takes long, for the test that proves the bond's
            // own monitor does not wait on it.
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        let queues = served_queues(&self.engine, name)?;
        let (attached, link) = self.program.link(name, xdp_mode(&self.engine))?;
        joining.link = Some((attached, link));
        if !attached.vlan_metadata && keep_vlan_tags_inline(&self.bond, name) {
            joining.rx_vlan_restore.push(name.to_string());
        }
        let count = self.engine.workers;
        let binder = Binder {
            umem: &self.umem,
            port_cfg: &self.port_cfg,
            program: &self.program,
        };
        let mut umem_socket = self.umem_socket;
        for (w, ports) in (0..count).zip(&mut joining.ports) {
            for queue in worker_queues(w, count, queues) {
                let port = match umem_socket.take_if(|(i, s)| *i == w as usize && s.queue == queue)
                {
                    Some((_, socket)) => {
                        socket.serve_again(self.slot, &self.program)?;
                        socket
                    }
                    None => binder.bind(name, queue, self.slot)?,
                };
                ports.push((queue, port));
            }
        }
        if self.tap_host {
            for device in &mut joining.device_tx {
                *device = device_tx(&self.bond, name, joining.ifindex);
            }
        }
        Ok(joining)
    }
}

/// A member set up to join a running data plane (`Joiner::prepare`).
pub struct Joining {
    /// The data plane's leave to set a member up, given back when this is dropped.
    ticket: JoinTicket,
    name: String,
    slot: u32,
    ifindex: Option<u32>,
    /// How the program runs on its device, and the link that keeps it there.
    link: Option<(crate::xdp::program::Attached, XdpLink)>,
    /// Per worker: its sockets, with their queues, and its socket for super-frames.
    ports: Vec<Vec<(u32, XskPort)>>,
    device_tx: Vec<Option<DeviceTx>>,
    rx_vlan_restore: Vec<String>,
}

/// A data plane's leave to set one member up at a time (their slots, sockets and frames
/// must not cross): taken by its `Joiner`, carried on by the `Joining`, and given back
/// when that is dropped, whether the member joined or not.
struct JoinTicket(Arc<AtomicBool>);

impl JoinTicket {
    fn take(joining: &Arc<AtomicBool>) -> Option<JoinTicket> {
        (!joining.swap(true, Ordering::AcqRel)).then(|| JoinTicket(Arc::clone(joining)))
    }

    /// Whether it is this data plane's (not one's that was rebuilt since).
    fn is_for(&self, joining: &Arc<AtomicBool>) -> bool {
        Arc::ptr_eq(&self.0, joining)
    }
}

impl Drop for JoinTicket {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Why a member set up to join did not (`DataPlane::member_joined`), and what it leaves.
pub struct NotJoined {
    pub why: DataPlaneError,
    pub leftovers: Leftovers,
}

/// What a member change leaves to finish once the bond's locks are released, because it
/// takes the kernel a while: the program's links to devices that left (detaching waits for
/// the driver), and sockets to close (closing waits for every receive in flight), whose
/// frames then go back to their workers.
#[must_use = "finish() detaches and closes what a member change left"]
#[derive(Default)]
pub struct Leftovers {
    links: Vec<XdpLink>,
    sockets: Vec<(FrameReturns, Vec<XskPort>)>,
    device_tx: Vec<DeviceTx>,
    rx_vlan_restore: Vec<String>,
    /// Where the workers are told that frames came back.
    snapshots: Option<Arc<SnapshotCell>>,
}

impl Leftovers {
    fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.device_tx.is_empty()
            && self.rx_vlan_restore.is_empty()
            && self.sockets.iter().all(|(_, s)| s.is_empty())
    }

    pub fn finish(self) {
        drop(self.links);
        drop(self.device_tx);
        for (returns, sockets) in self.sockets {
            for socket in sockets {
                returns.give(socket.close());
            }
        }
        if let Some(snapshots) = self.snapshots {
            snapshots.nudge();
        }
        for member in self.rx_vlan_restore {
            let _ = ethtool::set_rx_vlan_offload(&member, true);
        }
    }
}

impl Joining {
    /// The device it was set up on (`None`: absent).
    pub fn ifindex(&self) -> Option<u32> {
        self.ifindex
    }
}

impl From<Joining> for Leftovers {
    /// A member set up and not joined: its sockets never had frames.
    fn from(joining: Joining) -> Leftovers {
        Leftovers {
            links: joining.link.map(|(_, link)| link).into_iter().collect(),
            sockets: joining
                .ports
                .into_iter()
                .map(|ports| {
                    (
                        FrameReturns::default(),
                        ports.into_iter().map(|(_, p)| p).collect(),
                    )
                })
                .collect(),
            device_tx: joining.device_tx.into_iter().flatten().collect(),
            rx_vlan_restore: joining.rx_vlan_restore,
            snapshots: None,
        }
    }
}

fn attach_program(bond: &Bond, ifindexes: &[Option<u32>]) -> Result<Attached, DataPlaneError> {
    let cfg = &bond.config;
    let xdp_mode = xdp_mode(&cfg.engine);
    let program = XdpProgram::load_with(cfg.multi_buffer())?;
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

/// Gives the program each present member's slot and action, and the access port's (it
/// always delivers). Called once every socket is bound: until then the program knows no
/// member and passes their frames to the kernel, rather than count them as frames with no
/// socket.
fn set_members(
    program: &XdpProgram,
    bond: &Bond,
    ifindexes: &[Option<u32>],
    slots: &[u32],
) -> Result<(), DataPlaneError> {
    let cfg = &bond.config;
    for (m, member) in cfg.members.iter().enumerate() {
        if ifindexes[m].is_some() {
            program.set_member(member, slots[m], action(bond, m))?;
        }
    }
    if let HostSpec::Xdp(iface) = &cfg.host {
        program.set_member(iface, ACCESS_SLOT, MemberAction::Deliver)?;
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
    binder: Binder<'a>,
    /// Per member (and the access port last): the queues served.
    queue_counts: &'a [u32],
    /// Per member: its device's index, `None` where it is absent.
    ifindexes: &'a [Option<u32>],
    /// Per member: its slot in the program's maps.
    slots: &'a [u32],
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
        for (m, member) in cfg.members.iter().enumerate() {
            let bound = self.binder.worker_share(
                member,
                self.slots[m],
                w,
                workers,
                self.queue_counts[m],
            )?;
            ports.extend(bound.into_iter().map(|(queue, port)| WorkerPort {
                member: m,
                queue,
                port,
            }));
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
            self.binder.umem.clone(),
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
            .map(|(member, &ifindex)| device_tx(&cfg.name, member, ifindex))
            .collect()
    }

    /// Worker `w`'s queues of the access port, bound; `None` where the host side is a TAP
    /// (its queue is handed over once nothing can fail).
    fn access_port(&self, w: u32) -> Result<Option<HostSide>, DataPlaneError> {
        let cfg = &self.bond.config;
        match &cfg.host {
            HostSpec::Xdp(iface) => {
                let queues = self.queue_counts[cfg.members.len()];
                let access =
                    self.binder
                        .worker_share(iface, ACCESS_SLOT, w, cfg.engine.workers, queues)?;
                Ok(Some(HostSide::AccessPort(
                    access.into_iter().map(|(_, port)| port).collect(),
                )))
            }
            HostSpec::Tap | HostSpec::TapNamed(_) => Ok(None),
            HostSpec::None => unreachable!("handled in start"),
        }
    }
}

/// Where sockets are bound: on the bond's UMEM, with the sockets' settings, into the
/// program's socket map.
#[derive(Clone, Copy)]
struct Binder<'a> {
    umem: &'a UmemArea,
    port_cfg: &'a PortConfig,
    program: &'a XdpProgram,
}

impl Binder<'_> {
    /// A socket on queue `queue` of `iface`, at `slot` of the program's socket map.
    fn bind(&self, iface: &str, queue: u32, slot: u32) -> Result<XskPort, PortError> {
        XskPort::bind(self.umem, iface, queue, slot, self.port_cfg, self.program)
    }

    /// The sockets worker `w` of `workers` serves on `iface` (with `queues` queues), bound at
    /// `slot`, with the queue of each.
    fn worker_share(
        &self,
        iface: &str,
        slot: u32,
        w: u32,
        workers: u32,
        queues: u32,
    ) -> Result<Vec<(u32, XskPort)>, PortError> {
        worker_queues(w, workers, queues)
            .map(|q| self.bind(iface, q, slot).map(|port| (q, port)))
            .collect()
    }
}

/// A socket that hands the TAP's TCP super-frames to `member`'s device whole; `None` where the
/// device is absent or the socket cannot be had (the worker then cuts them, as it does
/// without).
fn device_tx(bond: &str, member: &str, ifindex: Option<u32>) -> Option<DeviceTx> {
    DeviceTx::open(ifindex?)
        .map_err(|e| {
            tracing::warn!(
                bond,
                member,
                "a socket to hand TCP super-frames to the device: {e}; they are cut into \
                 segments instead"
            )
        })
        .ok()
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
    bond: &str,
    engine: &EngineConfig,
    built: Vec<Worker>,
    default_cores: &[usize],
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Worker>> {
    built
        .into_iter()
        .enumerate()
        .map(|(w, worker)| {
            let core = worker_core(engine, default_cores, w);
            let stop = Arc::clone(stop);
            std::thread::Builder::new()
                .name(format!("{bond}-w{w}"))
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
