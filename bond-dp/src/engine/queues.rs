//! A share of a bond's member queues and the transmit logic that runs on them: what a worker
//! thread and an application's [`AppPort`](crate::host::AppPort) both are underneath.
//!
//! It owns its share of the UMEM frames, so one `MemberQueues` is driven by one thread and
//! shares no cache line with another.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xsk_rs::FrameDesc;

use crossbeam::utils::CachePadded;

use super::{QueueCounters, SharedCounters, SnapshotCell, WorkerCounters};
use crate::policy::{Decision, Rewrite, TxSelector, TxSnapshot};
use crate::wire::checksum::{self, L4Checksum};
use crate::wire::{arp, ethernet, MacAddr};
use crate::xdp::{FramePool, MemberPort, UmemArea};

/// Frames moved per direction per loop.
pub const BURST: usize = 64;

/// How often a share reads its sockets' XDP_STATISTICS (a system call each).
const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);

/// A member socket to serve.
pub struct WorkerPort {
    pub member: usize,
    pub port: MemberPort,
}

pub struct MemberQueues {
    pub(crate) umem: UmemArea,
    pub(crate) pool: FramePool,
    /// UMEM frames this share owns.
    frames_owned: usize,
    /// The member queues served; `counters.queues[i]` counts `ports[i]`.
    pub(crate) ports: Vec<MemberPort>,
    /// Per member: the index in `ports` of the socket to transmit on; `None` for a member
    /// whose device is absent.
    tx_port: Vec<Option<usize>>,
    selector: TxSelector,
    snapshots: Arc<SnapshotCell>,
    snap: Arc<TxSnapshot>,
    seen: u64,
    started: Instant,
    /// Time since `started` at the last refresh, and when the kernel's statistics are due.
    now: Duration,
    kernel_stats_due: Duration,
    pub(super) counters: SharedCounters,
    /// Per-member batches, allocated once.
    batches: Vec<Vec<FrameDesc>>,
}

impl MemberQueues {
    /// A share serving `ports`: at least one queue of each of `members` whose device is there.
    pub fn new(
        umem: UmemArea,
        pool: FramePool,
        members: usize,
        ports: Vec<WorkerPort>,
        selector: TxSelector,
        snapshots: Arc<SnapshotCell>,
    ) -> (MemberQueues, SharedCounters) {
        let tx_port = (0..members)
            .map(|m| ports.iter().position(|p| p.member == m))
            .collect();
        let counters = Arc::new(CachePadded::new(WorkerCounters::new(
            ports
                .iter()
                .map(|p| QueueCounters::new(p.member, p.port.queue))
                .collect(),
        )));
        let queues = MemberQueues {
            umem,
            frames_owned: pool.free(),
            pool,
            ports: ports.into_iter().map(|p| p.port).collect(),
            tx_port,
            selector,
            snap: snapshots.load(),
            seen: 0,
            snapshots,
            started: Instant::now(),
            now: Duration::ZERO,
            kernel_stats_due: Duration::ZERO,
            counters: Arc::clone(&counters),
            batches: (0..members)
                .map(|_| Vec::with_capacity(BURST * 2))
                .collect(),
        };
        (queues, counters)
    }

    /// Picks up a newly published member snapshot (cheap when there is none) and lets the
    /// selector age its state (tlb rebalancing). Once per burst.
    pub fn refresh(&mut self) {
        let seen = self.seen;
        self.snapshots.refresh(&mut self.seen, &mut self.snap);
        if self.seen != seen {
            if let Some(t) = &self.snap.tuning {
                self.selector.retune(t);
            }
        }
        self.now = self.started.elapsed();
        self.selector.tick(self.now, &self.snap);
    }

    /// Takes back completed transmissions, refills the fill rings and wakes RX if asked, on
    /// the member sockets and on `extra` (access-port sockets on the same UMEM).
    pub fn service(&mut self, extra: &mut [MemberPort]) {
        for (port, c) in self.ports.iter_mut().zip(&self.counters.queues) {
            let completed = upkeep(port, &mut self.pool);
            if completed > 0 {
                WorkerCounters::add(&c.tx_completed, completed as u64);
            }
            c.tx_in_flight
                .store(port.in_flight() as u64, Ordering::Relaxed);
            c.tx_errors.store(port.tx_errors(), Ordering::Relaxed);
        }
        for port in extra {
            upkeep(port, &mut self.pool);
        }
        if self.now >= self.kernel_stats_due {
            self.kernel_stats_due = self.now + KERNEL_STATS_EVERY;
            self.read_kernel_stats();
        }
    }

    /// What the kernel dropped on each socket before bond-dp saw it (a full RX ring, an empty
    /// fill ring), into the counters.
    fn read_kernel_stats(&self) {
        for (port, c) in self.ports.iter().zip(&self.counters.queues) {
            let Ok(k) = port.kernel_stats() else { continue };
            c.kernel_rx_dropped.store(k.rx_dropped, Ordering::Relaxed);
            c.kernel_rx_ring_full
                .store(k.rx_ring_full, Ordering::Relaxed);
            c.kernel_fill_ring_empty
                .store(k.fill_ring_empty, Ordering::Relaxed);
            c.kernel_tx_invalid.store(k.tx_invalid, Ordering::Relaxed);
        }
    }

    /// Receives up to `max` frames from member socket `i` into `out`, counting them; returns
    /// how many were appended.
    pub fn recv(&mut self, i: usize, out: &mut Vec<FrameDesc>, max: usize) -> usize {
        let start = out.len();
        let n = self.ports[i].recv(out, max, &mut self.pool);
        if n == 0 {
            return 0;
        }
        let c = &self.counters.queues[i];
        let bytes: u64 = out[start..].iter().map(|d| d.lengths().data() as u64).sum();
        WorkerCounters::add(&c.rx_packets, n as u64);
        WorkerCounters::add(&c.rx_bytes, bytes);
        // A member that carries a MAC of its own (tlb, alb, fail_over_mac) receives frames
        // addressed to it, which are the bond's: the host side answers only its own MAC.
        let own = self.snap.members.get(c.member).map(|m| m.mac);
        let host = self.snap.bond_mac;
        let rewrite = own.filter(|&own| own != host);
        let mut completed = 0;
        for desc in &mut out[start..] {
            let frame = self.umem.data_mut(desc);
            if let Some(own) = rewrite {
                if frame.get(..6) == Some(&own.0[..]) {
                    ethernet::set_destination_mac(frame, host);
                }
            }
            // Checksums a sender left to "hardware" are finished, as the NIC would have.
            if checksum::complete_l4_checksum(frame) == L4Checksum::Completed {
                completed += 1;
            }
        }
        if completed > 0 {
            WorkerCounters::add(&c.rx_checksum_completed, completed);
        }
        n
    }

    /// Sends held frames through the bond: each goes to the member the policy picks (MACs
    /// rewritten where the mode says), one TX burst per member. Frames that find no usable
    /// member or a full TX ring are dropped and counted; every frame is the bond's again.
    pub fn transmit(&mut self, frames: &[FrameDesc]) {
        for desc in frames {
            self.umem.prefetch(desc);
        }
        let snap = &self.snap;
        for &desc in frames {
            let mut desc = desc;
            match self.selector.select(self.umem.data(&desc), snap) {
                Decision::Send { member, rewrite } => {
                    apply(
                        rewrite,
                        self.umem.data_mut(&mut desc),
                        snap.members[member].mac,
                    );
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
        for (m, batch) in self.batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let Some(p) = self.tx_port[m] else {
                // The member's device is gone (the monitor takes it out of the snapshot).
                WorkerCounters::add(&self.counters.drop_no_member, batch.len() as u64);
                batch.drain(..).for_each(|desc| self.pool.put(desc));
                continue;
            };
            let c = &self.counters.queues[p];
            // Frames the member's MTU does not allow (changed from outside, or smaller than
            // the host side's) are dropped, as the kernel's device would.
            let max = self.snap.members.get(m).map_or(u32::MAX, |t| t.max_frame) as usize;
            let before = batch.len();
            let pool = &mut self.pool;
            batch.retain(|d| {
                let fits = d.lengths().data() <= max;
                if !fits {
                    pool.put(*d);
                }
                fits
            });
            if batch.len() < before {
                WorkerCounters::add(&c.tx_too_big, (before - batch.len()) as u64);
            }
            let bytes: u64 = batch.iter().map(|d| d.lengths().data() as u64).sum();
            let dropped = self.ports[p].send(batch, &mut self.pool);
            WorkerCounters::add(&c.tx_packets, (batch.len() - dropped) as u64);
            WorkerCounters::add(&c.tx_bytes, bytes);
            WorkerCounters::add(&c.tx_ring_full, dropped as u64);
            batch.clear();
        }
    }

    /// Frames this share holds: its pool and the rings of its ports and of `extra`.
    pub fn frames_held(&self, extra: &[MemberPort]) -> usize {
        self.pool.free()
            + self
                .ports
                .iter()
                .chain(extra)
                .map(MemberPort::held)
                .sum::<usize>()
    }

    pub fn frames_owned(&self) -> usize {
        self.frames_owned
    }

    /// Where the frames are, for the invariant's message.
    pub fn frame_census(&self, extra: &[MemberPort]) -> String {
        let ports: Vec<String> = self
            .ports
            .iter()
            .chain(extra)
            .map(|p| format!("{}/{} {}", p.iface, p.queue, p.census()))
            .collect();
        format!(
            "free {}, {} of {}",
            self.pool.free(),
            ports.join(", "),
            self.frames_owned
        )
    }
}

/// A socket's upkeep: completed frames back to the pool, the fill ring topped up, RX woken
/// if the kernel asks. Returns the completions.
fn upkeep(port: &mut MemberPort, pool: &mut FramePool) -> usize {
    let completed = port.reclaim(pool);
    port.refill(pool);
    let _ = port.wake_rx();
    completed
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
