//! One poll-mode worker: owns member ports and a host port, and moves bursts between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xsk_rs::FrameDesc;

use super::{BondCounters, SnapshotCell};
use crate::host::HostPort;
use crate::policy::{Decision, Rewrite, TxSelector, TxSnapshot};
use crate::wire::{arp, ethernet, MacAddr};
use crate::xdp::{FramePool, MemberPort, UmemArea};

/// Frames moved per direction per loop.
pub const BURST: usize = 64;
/// Empty loops before the worker naps, so an idle bond does not burn its core.
const SPIN_BEFORE_NAP: u32 = 2000;
const NAP: Duration = Duration::from_micros(50);

pub struct Worker {
    umem: UmemArea,
    pool: FramePool,
    /// Indexed by member id (one queue per member for now).
    ports: Vec<MemberPort>,
    host: Box<dyn HostPort>,
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
        host: Box<dyn HostPort>,
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
        for port in &mut self.ports {
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
            for desc in self.rx.drain(..) {
                let data = self.umem.data(&desc);
                BondCounters::add(&c.rx_packets, 1);
                BondCounters::add(&c.rx_bytes, data.len() as u64);
                if !self.host.send(data) {
                    BondCounters::add(&self.counters.drop_host_busy, 1);
                }
                self.pool.put(desc);
            }
        }
        moved
    }

    fn host_to_members(&mut self, snap: &TxSnapshot) -> usize {
        let mut moved = 0;
        for _ in 0..BURST {
            let Some(len) = self.host.recv(&mut self.host_buf) else {
                break;
            };
            moved += 1;
            let frame = &self.host_buf[..len];
            let Some(mut desc) = self.pool.take() else {
                BondCounters::add(&self.counters.drop_no_frame, 1);
                continue;
            };
            if !self.umem.write(&mut desc, frame) {
                BondCounters::add(&self.counters.drop_too_long, 1);
                self.pool.put(desc);
                continue;
            }
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
                        // The original fits, so the copy does.
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

    /// Every frame accounted for: free, in a port's rings, or (between calls) nowhere else.
    pub fn frames_accounted(&self) -> bool {
        self.pool.free() + self.ports.iter().map(MemberPort::held).sum::<usize>()
            == self.umem.frame_count()
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
