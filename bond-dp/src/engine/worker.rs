//! One poll-mode worker: owns member ports and a host port, and moves bursts between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xsk_rs::FrameDesc;

use super::{BondCounters, SnapshotCell};
use crate::host::{AppRings, HostPort};
use crate::policy::{Decision, Rewrite, TxSelector, TxSnapshot};
use crate::wire::{arp, ethernet, MacAddr};
use crate::xdp::{FramePool, MemberPort, UmemArea};

/// Frames moved per direction per loop.
pub const BURST: usize = 64;
/// Empty loops before the worker naps, so an idle bond does not burn its core.
const SPIN_BEFORE_NAP: u32 = 2000;
const NAP: Duration = Duration::from_micros(50);

/// Where the bond's host side is.
pub enum HostSide {
    /// A port frames are copied to and from (TAP).
    Copy(Box<dyn HostPort>),
    /// An AF_XDP socket on the bond's own UMEM (the access port): frames cross between it and
    /// the members without a copy.
    Xsk(Box<MemberPort>),
    /// The in-process API: frames pass by descriptor through rings to the application.
    App(Arc<AppRings>),
}

/// Free frames kept ready for the application to fill.
const APP_FREE_TARGET: usize = BURST * 8;

pub struct Worker {
    umem: UmemArea,
    pool: FramePool,
    /// Indexed by member id (one queue per member for now).
    ports: Vec<MemberPort>,
    host: HostSide,
    selector: TxSelector,
    snapshots: Arc<SnapshotCell>,
    counters: Arc<BondCounters>,
    // Per-burst scratch, allocated once.
    rx: Vec<FrameDesc>,
    batches: Vec<Vec<FrameDesc>>,
    host_buf: Vec<u8>,
}

impl Worker {
    pub fn new(
        umem: UmemArea,
        pool: FramePool,
        ports: Vec<MemberPort>,
        host: HostSide,
        selector: TxSelector,
        snapshots: Arc<SnapshotCell>,
        counters: Arc<BondCounters>,
    ) -> Worker {
        let n = ports.len();
        Worker {
            umem,
            pool,
            ports,
            host,
            selector,
            snapshots,
            counters,
            rx: Vec::with_capacity(BURST),
            batches: (0..n).map(|_| Vec::with_capacity(BURST * 2)).collect(),
            host_buf: vec![0; 65536],
        }
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut seen = 0;
        let mut snap = self.snapshots.load();
        let start = Instant::now();
        let mut idle = 0u32;
        while !stop.load(Ordering::Relaxed) {
            self.snapshots.refresh(&mut seen, &mut snap);
            let moved = self.poll_once(&snap);
            if let HostSide::App(_) = self.host {
                // The application moves frames concurrently: publish ours, and let whoever
                // knows the application is idle check the total.
                self.counters
                    .frames_in_worker
                    .store(self.frames_held(), Ordering::Release);
            } else {
                debug_assert!(
                    self.frames_accounted(),
                    "a UMEM frame was lost or counted twice: {}",
                    self.frame_census()
                );
            }
            self.selector.tick(start.elapsed(), &snap);
            if moved == 0 {
                idle += 1;
                if idle > SPIN_BEFORE_NAP {
                    std::thread::sleep(NAP);
                }
            } else {
                idle = 0;
            }
        }
    }

    /// One pass over every port; returns how many frames moved.
    pub fn poll_once(&mut self, snap: &TxSnapshot) -> usize {
        if let HostSide::App(rings) = &self.host {
            // Keep the application supplied, and take back what it leaves lying in the ring
            // so that the members' fill rings do not starve.
            while rings.free.len() < APP_FREE_TARGET {
                let Some(desc) = self.pool.take() else { break };
                if let Err(desc) = rings.free.push(desc) {
                    self.pool.put(desc);
                    break;
                }
            }
            while rings.free.len() > APP_FREE_TARGET * 2 {
                match rings.free.pop() {
                    Some(desc) => self.pool.put(desc),
                    None => break,
                }
            }
        }
        let host_port = match &mut self.host {
            HostSide::Xsk(port) => Some(&mut **port),
            HostSide::Copy(_) | HostSide::App(_) => None,
        };
        for port in self.ports.iter_mut().chain(host_port) {
            port.reclaim(&mut self.pool);
            port.refill(&mut self.pool);
            let _ = port.wake_rx();
        }
        self.members_to_host() + self.host_to_members(snap)
    }

    fn members_to_host(&mut self) -> usize {
        let mut moved = 0;
        for (m, port) in self.ports.iter_mut().enumerate() {
            self.rx.clear();
            let n = port.recv(&mut self.rx, BURST);
            moved += n;
            let c = &self.counters.members[m];
            for desc in &self.rx {
                BondCounters::add(&c.rx_packets, 1);
                BondCounters::add(&c.rx_bytes, desc.lengths().data() as u64);
            }
            let busy = match &mut self.host {
                HostSide::Xsk(access) => {
                    let busy = access.send(&self.rx, &mut self.pool);
                    self.rx.clear();
                    busy
                }
                HostSide::Copy(host) => {
                    let mut busy = 0;
                    for desc in self.rx.drain(..) {
                        busy += usize::from(!host.send(self.umem.data(&desc)));
                        self.pool.put(desc);
                    }
                    busy
                }
                HostSide::App(rings) => {
                    let mut busy = 0;
                    for desc in self.rx.drain(..) {
                        if let Err(desc) = rings.from_bond.push(desc) {
                            busy += 1;
                            self.pool.put(desc);
                        }
                    }
                    busy
                }
            };
            BondCounters::add(&self.counters.drop_host_busy, busy as u64);
        }
        moved
    }

    /// A burst of frames from the host side, in order, in UMEM frames the worker now holds.
    fn host_burst(&mut self) {
        self.rx.clear();
        match &mut self.host {
            HostSide::Xsk(access) => {
                access.recv(&mut self.rx, BURST);
            }
            HostSide::App(rings) => {
                while self.rx.len() < BURST {
                    match rings.to_bond.pop() {
                        Some(desc) => self.rx.push(desc),
                        None => break,
                    }
                }
            }
            HostSide::Copy(host) => {
                while self.rx.len() < BURST {
                    let Some(len) = host.recv(&mut self.host_buf) else {
                        break;
                    };
                    let Some(mut desc) = self.pool.take() else {
                        BondCounters::add(&self.counters.drop_no_frame, 1);
                        continue;
                    };
                    if self.umem.write(&mut desc, &self.host_buf[..len]) {
                        self.rx.push(desc);
                    } else {
                        BondCounters::add(&self.counters.drop_too_long, 1);
                        self.pool.put(desc);
                    }
                }
            }
        }
    }

    fn host_to_members(&mut self, snap: &TxSnapshot) -> usize {
        self.host_burst();
        let moved = self.rx.len();
        for i in 0..moved {
            let mut desc = self.rx[i];
            match self.selector.select(self.umem.data(&desc), snap) {
                Decision::Send { member, rewrite } => {
                    let mac = snap.members[member].mac;
                    apply(rewrite, self.umem.data_mut(&mut desc), mac);
                    self.batches[member].push(desc);
                }
                Decision::AllUsable => {
                    let usable = snap.usable();
                    for (i, &member) in usable.iter().enumerate() {
                        if i + 1 == usable.len() {
                            self.batches[member].push(desc);
                            break;
                        }
                        let Some(mut copy) = self.pool.take() else {
                            BondCounters::add(&self.counters.drop_no_frame, 1);
                            continue;
                        };
                        // The original fits in a frame, so the copy does.
                        let frame = self.umem.data(&desc);
                        self.umem.write(&mut copy, frame);
                        self.batches[member].push(copy);
                    }
                }
                Decision::Drop => {
                    BondCounters::add(&self.counters.drop_no_member, 1);
                    self.pool.put(desc);
                }
            }
        }
        self.rx.clear();
        for (m, batch) in self.batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let c = &self.counters.members[m];
            let bytes: u64 = batch.iter().map(|d| d.lengths().data() as u64).sum();
            let dropped = self.ports[m].send(batch, &mut self.pool);
            BondCounters::add(&c.tx_packets, (batch.len() - dropped) as u64);
            BondCounters::add(&c.tx_bytes, bytes);
            BondCounters::add(&c.tx_ring_full, dropped as u64);
            batch.clear();
        }
        moved
    }

    /// Frames the worker holds: its pool, and the rings of its ports.
    fn frames_held(&self) -> usize {
        let host = match &self.host {
            HostSide::Xsk(port) => port.held(),
            HostSide::Copy(_) | HostSide::App(_) => 0,
        };
        self.pool.free() + host + self.ports.iter().map(MemberPort::held).sum::<usize>()
    }

    /// Where the frames are, for the invariant's message.
    fn frame_census(&self) -> String {
        let host = match &self.host {
            HostSide::Xsk(port) => format!("access {}", port.census()),
            HostSide::Copy(_) | HostSide::App(_) => String::new(),
        };
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("{} {}", p.iface, p.census()))
            .collect();
        format!(
            "free {}, {}, {host} of {}",
            self.pool.free(),
            ports.join(", "),
            self.umem.frame_count()
        )
    }

    /// Every frame accounted for: free, in a port's rings, or (between calls) nowhere else.
    pub fn frames_accounted(&self) -> bool {
        self.frames_held() == self.umem.frame_count()
    }
}

fn apply(rewrite: Rewrite, frame: &mut [u8], mac: MacAddr) {
    match rewrite {
        Rewrite::None => {}
        Rewrite::SourceMac => {
            ethernet::set_source_mac(frame, mac);
        }
        Rewrite::ArpSender { arp_offset } => {
            ethernet::set_source_mac(frame, mac);
            arp::set_sender_mac(frame, arp_offset, mac);
        }
    }
}
