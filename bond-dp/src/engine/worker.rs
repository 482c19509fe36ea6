//! One poll-mode worker: owns member ports and a host port, and moves bursts between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xsk_rs::FrameDesc;

use super::{QueueCounters, SnapshotCell, WorkerCounters};
use crate::host::app::{pop_burst, push_burst};
use crate::host::{AppRings, HostPort};
use crate::policy::{Decision, Rewrite, TxSelector, TxSnapshot};
use crate::wire::{arp, ethernet, MacAddr};
use crate::xdp::{FramePool, MemberPort, UmemArea};

/// Frames moved per direction per loop.
pub const BURST: usize = 64;
/// Empty loops before the worker naps, so an idle bond does not burn its core.
const SPIN_BEFORE_NAP: u32 = 2000;
const NAP: Duration = Duration::from_micros(50);

/// Where the bond's host side is, as one worker sees it.
pub enum HostSide {
    /// A port frames are copied to and from (TAP).
    Copy(Box<dyn HostPort>),
    /// AF_XDP sockets on the bond's own UMEM (the access port's queues this worker serves):
    /// frames cross between them and the members without a copy. The first one transmits.
    Xsk(Vec<MemberPort>),
    /// The in-process API: frames pass by descriptor through rings to the application.
    App(Box<AppRings>),
}

/// Free frames kept ready for the application to fill.
const APP_FREE_TARGET: usize = BURST * 8;

/// A member socket the worker serves.
pub struct WorkerPort {
    pub member: usize,
    pub port: MemberPort,
}

pub struct Worker {
    umem: UmemArea,
    pool: FramePool,
    /// UMEM frames this worker owns (its share of the bond's).
    frames_owned: usize,
    /// The member queues this worker serves; `counters.queues[i]` counts `ports[i]`.
    ports: Vec<MemberPort>,
    /// Per member: the index in `ports` of the socket this worker transmits on.
    tx_port: Vec<usize>,
    host: HostSide,
    selector: TxSelector,
    snapshots: Arc<SnapshotCell>,
    counters: Arc<WorkerCounters>,
    // Per-burst scratch, allocated once.
    rx: Vec<FrameDesc>,
    batches: Vec<Vec<FrameDesc>>,
    host_buf: Vec<u8>,
}

impl Worker {
    /// A worker for `members` members; `ports` must hold at least one queue of each.
    pub fn new(
        umem: UmemArea,
        pool: FramePool,
        members: usize,
        ports: Vec<WorkerPort>,
        host: HostSide,
        selector: TxSelector,
        snapshots: Arc<SnapshotCell>,
    ) -> (Worker, Arc<WorkerCounters>) {
        let tx_port = (0..members)
            .map(|m| {
                ports
                    .iter()
                    .position(|p| p.member == m)
                    .expect("a worker serves a queue of every member")
            })
            .collect();
        let counters = Arc::new(WorkerCounters::new(
            ports
                .iter()
                .map(|p| QueueCounters::new(p.member, p.port.queue))
                .collect(),
        ));
        let worker = Worker {
            umem,
            frames_owned: pool.free(),
            pool,
            ports: ports.into_iter().map(|p| p.port).collect(),
            tx_port,
            host,
            selector,
            snapshots,
            counters: Arc::clone(&counters),
            rx: Vec::with_capacity(BURST),
            batches: (0..members)
                .map(|_| Vec::with_capacity(BURST * 2))
                .collect(),
            host_buf: vec![0; 65536],
        };
        (worker, counters)
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
        if let HostSide::App(rings) = &mut self.host {
            // Take back what the application returned, and keep it supplied with free frames
            // so that it never waits on the worker.
            self.rx.clear();
            pop_burst(&mut rings.returned, &mut self.rx, usize::MAX);
            let waiting = rings.free.buffer().capacity() - rings.free.slots();
            if waiting < APP_FREE_TARGET {
                while self.rx.len() < APP_FREE_TARGET * 2 - waiting {
                    let Some(desc) = self.pool.take() else { break };
                    self.rx.push(desc);
                }
                let given = push_burst(&mut rings.free, &self.rx);
                self.rx.drain(..given);
            }
            for desc in self.rx.drain(..) {
                self.pool.put(desc);
            }
        }
        let host_ports = match &mut self.host {
            HostSide::Xsk(ports) => &mut ports[..],
            HostSide::Copy(_) | HostSide::App(_) => &mut [],
        };
        for port in self.ports.iter_mut().chain(host_ports) {
            port.reclaim(&mut self.pool);
            port.refill(&mut self.pool);
            let _ = port.wake_rx();
        }
        self.members_to_host() + self.host_to_members(snap)
    }

    fn members_to_host(&mut self) -> usize {
        let mut moved = 0;
        for (port, c) in self.ports.iter_mut().zip(&self.counters.queues) {
            self.rx.clear();
            let n = port.recv(&mut self.rx, BURST);
            if n == 0 {
                continue;
            }
            moved += n;
            let bytes: u64 = self.rx.iter().map(|d| d.lengths().data() as u64).sum();
            WorkerCounters::add(&c.rx_packets, n as u64);
            WorkerCounters::add(&c.rx_bytes, bytes);
            let busy = match &mut self.host {
                HostSide::Xsk(access) => {
                    let busy = access[0].send(&self.rx, &mut self.pool);
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
                    let taken = push_burst(&mut rings.from_bond, &self.rx);
                    let busy = self.rx.len() - taken;
                    for desc in self.rx.drain(..).skip(taken) {
                        self.pool.put(desc);
                    }
                    busy
                }
            };
            WorkerCounters::add(&self.counters.drop_host_busy, busy as u64);
        }
        moved
    }

    /// A burst of frames from the host side, in order, in UMEM frames the worker now holds.
    fn host_burst(&mut self) {
        self.rx.clear();
        match &mut self.host {
            HostSide::Xsk(access) => {
                for port in access.iter_mut() {
                    let room = BURST - self.rx.len();
                    port.recv(&mut self.rx, room);
                }
            }
            HostSide::App(rings) => {
                pop_burst(&mut rings.to_bond, &mut self.rx, BURST);
            }
            HostSide::Copy(host) => {
                while self.rx.len() < BURST {
                    let Some(len) = host.recv(&mut self.host_buf) else {
                        break;
                    };
                    let Some(mut desc) = self.pool.take() else {
                        WorkerCounters::add(&self.counters.drop_no_frame, 1);
                        continue;
                    };
                    if self.umem.write(&mut desc, &self.host_buf[..len]) {
                        self.rx.push(desc);
                    } else {
                        WorkerCounters::add(&self.counters.drop_too_long, 1);
                        self.pool.put(desc);
                    }
                }
            }
        }
    }

    fn host_to_members(&mut self, snap: &TxSnapshot) -> usize {
        self.host_burst();
        let moved = self.rx.len();
        for desc in &self.rx {
            self.umem.prefetch(desc);
        }
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
                            WorkerCounters::add(&self.counters.drop_no_frame, 1);
                            continue;
                        };
                        // The original fits in a frame, so the copy does.
                        let frame = self.umem.data(&desc);
                        self.umem.write(&mut copy, frame);
                        self.batches[member].push(copy);
                    }
                }
                Decision::Drop => {
                    WorkerCounters::add(&self.counters.drop_no_member, 1);
                    self.pool.put(desc);
                }
            }
        }
        self.rx.clear();
        for (m, batch) in self.batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let p = self.tx_port[m];
            let c = &self.counters.queues[p];
            let bytes: u64 = batch.iter().map(|d| d.lengths().data() as u64).sum();
            let dropped = self.ports[p].send(batch, &mut self.pool);
            WorkerCounters::add(&c.tx_packets, (batch.len() - dropped) as u64);
            WorkerCounters::add(&c.tx_bytes, bytes);
            WorkerCounters::add(&c.tx_ring_full, dropped as u64);
            batch.clear();
        }
        moved
    }

    /// The member sockets and the access port's, if the host side is one.
    fn all_ports(&self) -> impl Iterator<Item = &MemberPort> {
        let access: &[MemberPort] = match &self.host {
            HostSide::Xsk(ports) => ports,
            HostSide::Copy(_) | HostSide::App(_) => &[],
        };
        self.ports.iter().chain(access)
    }

    /// Frames the worker holds: its pool, and the rings of its ports.
    fn frames_held(&self) -> usize {
        self.pool.free() + self.all_ports().map(MemberPort::held).sum::<usize>()
    }

    /// Where the frames are, for the invariant's message.
    fn frame_census(&self) -> String {
        let ports: Vec<String> = self
            .all_ports()
            .map(|p| format!("{}/{} {}", p.iface, p.queue, p.census()))
            .collect();
        format!(
            "free {}, {} of {}",
            self.pool.free(),
            ports.join(", "),
            self.frames_owned
        )
    }

    /// Every frame accounted for: free, in a port's rings, or (between calls) nowhere else.
    pub fn frames_accounted(&self) -> bool {
        self.frames_held() == self.frames_owned
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
