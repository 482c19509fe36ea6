//! A share of a bond's member queues and the transmit logic that runs on them: what a worker
//! thread and an application's `host::AppPort` both are underneath.
//!
//! It owns its share of the UMEM frames, so one `QueueShare` is driven by one thread and
//! shares no cache line with another.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::xdp::FrameDesc;

use crossbeam::utils::CachePadded;

use super::MemberPort;
use super::{QueueCounters, SharedCounters, SnapshotCell, WorkerCounters};
use crate::policy::{Decision, Rewrite, TxSelector, TxSnapshot};
use crate::wire::checksum::{self, L4Checksum};
use crate::wire::gso::{TcpSegments, VnetHdr};
use crate::wire::{arp, ethernet, MacAddr};
use crate::xdp::port::FrameReturns;
use crate::xdp::{self, DeviceTx, FramePool, UmemArea, XskPort};

/// Frames moved per direction per loop.
pub const BURST: usize = 64;

/// How often a share reads its sockets' XDP_STATISTICS (a system call each).
const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);

/// What a share gave up of a member that left: its sockets, to close away from the share.
pub struct Retired<P> {
    pub ports: Vec<P>,
    pub device_tx: Option<DeviceTx>,
}

/// A member socket to serve.
pub struct WorkerPort<P = XskPort> {
    pub member: usize,
    /// The member's queue the port serves.
    pub queue: u32,
    pub port: P,
}

pub struct QueueShare<P = XskPort> {
    pub(crate) umem: UmemArea,
    pub(crate) pool: FramePool,
    /// UMEM frames this share owns.
    frames_owned: usize,
    /// Frames that sockets closed outside the share give back (taken at the next snapshot).
    returns: FrameReturns,
    /// The member queues served; `counters.queues[i]` counts `ports[i]`.
    pub(crate) ports: Vec<P>,
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
    /// A chain's bytes in one piece, to finish its checksum.
    chain_buf: Vec<u8>,
    /// Per member: where the host's TCP super-frames go whole, for the device to segment
    /// (a TAP host side only; `None` where there is none, and they are cut here).
    device_tx: Vec<Option<DeviceTx>>,
    /// Whether checksums senders left partial go on to the host as they are (a TAP, whose
    /// virtio-net header says so) rather than being finished here.
    host_takes_partial: bool,
}

impl<P: MemberPort> QueueShare<P> {
    /// A share serving `ports`: at least one queue of each of `members` whose device is there.
    pub fn new(
        umem: UmemArea,
        pool: FramePool,
        members: usize,
        ports: Vec<WorkerPort<P>>,
        selector: TxSelector,
        snapshots: Arc<SnapshotCell>,
    ) -> (QueueShare<P>, SharedCounters) {
        let mut queues = QueueShare {
            umem,
            frames_owned: pool.free(),
            pool,
            returns: FrameReturns::default(),
            ports: Vec::new(),
            tx_port: Vec::new(),
            selector,
            snap: snapshots.load(),
            seen: 0,
            snapshots,
            started: Instant::now(),
            now: Duration::ZERO,
            kernel_stats_due: Duration::ZERO,
            counters: Arc::default(),
            batches: Vec::new(),
            chain_buf: Vec::new(),
            device_tx: Vec::new(),
            host_takes_partial: false,
        };
        let counters = queues.serve(ports, members);
        (queues, counters)
    }

    /// Serves `ports` for `members` members, with counters of their own from zero.
    fn serve(&mut self, ports: Vec<WorkerPort<P>>, members: usize) -> SharedCounters {
        self.tx_port = (0..members)
            .map(|m| ports.iter().position(|p| p.member == m))
            .collect();
        self.batches
            .resize_with(members, || Vec::with_capacity(BURST * 2));
        self.counters = Arc::new(CachePadded::new(WorkerCounters::new(
            ports
                .iter()
                .map(|p| QueueCounters::new(p.member, p.queue))
                .collect(),
        )));
        self.ports = ports.into_iter().map(|p| p.port).collect();
        Arc::clone(&self.counters)
    }

    /// The ports served, with the member and queue of each, taken out to be served again.
    fn take_ports(&mut self) -> Vec<WorkerPort<P>> {
        let places = self.counters.queues.iter().map(|q| (q.member, q.queue));
        std::mem::take(&mut self.ports)
            .into_iter()
            .zip(places.collect::<Vec<_>>())
            .map(|(port, (member, queue))| WorkerPort {
                member,
                queue,
                port,
            })
            .collect()
    }

    /// Takes the ports out to be served again, but for member `member`'s, which retire
    /// (what the kernel gave back returns to the pool; what they still hold leaves the
    /// share's keeping with them): the others, and the retired sockets.
    fn retire_ports_of(&mut self, member: usize) -> (Vec<WorkerPort<P>>, Vec<P>) {
        let (mut retiring, others): (Vec<_>, Vec<_>) = self
            .take_ports()
            .into_iter()
            .partition(|p| p.member == member);
        for p in &mut retiring {
            self.frames_owned -= p.port.retire(&mut self.pool);
        }
        (others, retiring.into_iter().map(|p| p.port).collect())
    }

    /// Member `left` leaves the bond while the share is not running: its sockets retire
    /// and are returned, to be closed away from the share (closing waits on the kernel;
    /// their frames come back through `frame_returns`); the members after it move up one
    /// place, and the transmit selector forgets it. Counting starts again from zero: the
    /// caller carried the counts over first.
    pub fn member_left(&mut self, left: usize) -> (SharedCounters, Retired<P>) {
        let members = self.batches.len();
        let (others, retired) = self.retire_ports_of(left);
        let kept = others
            .into_iter()
            .filter_map(|p| {
                let member = crate::policy::after_leaving(p.member, left)?;
                Some(WorkerPort { member, ..p })
            })
            .collect();
        if left < members {
            // Between bursts the batches are empty.
            self.batches.remove(left);
        }
        let device_tx = (left < self.device_tx.len())
            .then(|| self.device_tx.remove(left))
            .flatten();
        self.selector.member_left(left);
        let counters = self.serve(kept, members.saturating_sub(1));
        (
            counters,
            Retired {
                ports: retired,
                device_tx,
            },
        )
    }

    /// Takes back the frames sockets closed away from the share gave back.
    pub fn take_returned_frames(&mut self) {
        self.frames_owned += self.pool.take_returned(&self.returns);
    }

    /// Where frames of sockets closed away from the share come back to it.
    pub fn frame_returns(&self) -> FrameReturns {
        self.returns.clone()
    }

    /// Member `member` gets `ports` (its queues this share serves; none where its device is
    /// absent) and, where the share hands super-frames over, `device_tx`, while the share is
    /// not running: a member that joins after the others (`member` is the member count), or
    /// one whose device was replaced, whose old sockets retire and are returned as for a
    /// member that left. Counting starts again from zero: the caller carried the counts over
    /// first.
    pub fn put_member(
        &mut self,
        member: usize,
        ports: Vec<(u32, P)>,
        device_tx: Option<DeviceTx>,
    ) -> (SharedCounters, Retired<P>) {
        let members = self.batches.len().max(member + 1);
        let (mut all, old) = self.retire_ports_of(member);
        let mut retired = Retired {
            ports: old,
            device_tx: None,
        };
        // A socket that comes back with frames lent (the UMEM's own, kept since its member
        // left) brings them back into the share's keeping.
        self.frames_owned += ports.iter().map(|(_, p)| p.held()).sum::<usize>();
        all.extend(ports.into_iter().map(|(queue, port)| WorkerPort {
            member,
            queue,
            port,
        }));
        // A share whose host side takes no super-frames has no such socket for any member.
        if let Some(slot) = self.device_tx.get_mut(member) {
            retired.device_tx = std::mem::replace(slot, device_tx);
        } else if !self.device_tx.is_empty() {
            self.device_tx.push(device_tx);
        }
        (self.serve(all, members), retired)
    }

    /// Gives the share a socket per member (`None` for some) that hands the host's
    /// super-frames to the device whole.
    pub fn with_device_tx(mut self, device_tx: Vec<Option<DeviceTx>>) -> QueueShare<P> {
        self.device_tx = device_tx;
        self
    }

    /// Says whether the host side takes checksums senders left partial as they are, marked
    /// so (a TAP's virtio-net header), as a NIC with checksum offload passes them on; they
    /// are finished here otherwise.
    pub fn set_host_takes_partial(&mut self, takes: bool) {
        self.host_takes_partial = takes;
    }

    /// Whether some member can take super-frames whole.
    pub fn takes_super_frames(&self) -> bool {
        self.device_tx.iter().any(Option::is_some)
    }

    /// Hands a TCP super-frame from the host (`hdr` says what it asks) whole to the member
    /// the policy picks, for its device to segment: true when that is done with it (sent, or
    /// dropped and counted as any frame would be), false when it is to be cut here instead
    /// (a broadcast, a member without such a socket, segments longer than the member
    /// carries, or the kernel refused it). Counted as the segments it makes.
    pub fn transmit_super(&mut self, frame: &mut [u8], hdr: VnetHdr, segs: &TcpSegments) -> bool {
        let snap = &self.snap;
        let (member, rewrite) = match self.selector.select(frame, snap) {
            Decision::Send { member, rewrite } => (member, rewrite),
            Decision::AllUsable => return false,
            Decision::Drop => {
                WorkerCounters::add(&self.counters.drop_no_member, 1);
                return true;
            }
        };
        let (Some(Some(device)), Some(p), Some(target)) = (
            self.device_tx.get(member),
            self.tx_port.get(member).copied().flatten(),
            snap.members.get(member),
        ) else {
            return false;
        };
        if segs.longest() > target.max_frame as usize {
            return false;
        }
        apply(rewrite, frame, target.mac);
        // The header's length is the headers' only, so that the kernel copies just those
        // into the packet's head (a TAP gives the length of its whole linear part).
        let hdr = VnetHdr {
            hdr_len: segs.header_len() as u16,
            ..hdr
        };
        if device.send(hdr, frame).is_err() {
            return false;
        }
        let c = &self.counters.queues[p];
        WorkerCounters::add(&c.tx_packets, segs.count() as u64);
        WorkerCounters::add(&c.tx_bytes, segs.wire_bytes() as u64);
        WorkerCounters::add(&self.counters.to_members_whole, 1);
        true
    }

    /// Picks up a newly published member snapshot (cheap when there is none) and lets the
    /// selector age its state (tlb rebalancing). Once per burst.
    pub fn refresh(&mut self) {
        let seen = self.seen;
        self.snapshots.refresh(&mut self.seen, &mut self.snap);
        if self.seen != seen {
            tracing::debug!(active = ?self.snap.active, "worker took a new member snapshot");
            self.take_returned_frames();
            if let Some(t) = &self.snap.tuning {
                self.selector.retune(t);
            }
        }
        self.now = self.started.elapsed();
        self.selector.tick(self.now, &self.snap);
    }

    /// Takes back completed transmissions, refills the fill rings and wakes RX if asked, on
    /// the member sockets and on `extra` (access-port sockets on the same UMEM).
    pub fn service(&mut self, extra: &mut [P]) {
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

    /// Receives up to `max` frames (whole packets) from member socket `i` into `out`,
    /// counting them; returns how many frames were appended.
    pub fn recv(&mut self, i: usize, out: &mut Vec<FrameDesc>, max: usize) -> usize {
        let start = out.len();
        let n = self.ports[i].recv(out, max, &mut self.pool);
        if n == 0 {
            return 0;
        }
        let c = &self.counters.queues[i];
        let bytes: u64 = out[start..].iter().map(|d| d.len() as u64).sum();
        WorkerCounters::add(&c.rx_bytes, bytes);
        // A member that carries a MAC of its own (tlb, alb, fail_over_mac) receives frames
        // addressed to it, which are the bond's: the host side answers only its own MAC.
        let own = self.snap.members.get(c.member).map(|m| m.mac);
        let host = self.snap.bond_mac;
        let rewrite = own.filter(|&own| own != host);
        let (mut packets, mut completed) = (0, 0);
        let mut head = start;
        while head < out.len() {
            let end = xdp::packet_end(out, head);
            let chain = &mut out[head..end];
            head = end;
            packets += 1;
            let single = chain.len() == 1;
            let frame = self.umem.data_mut(&mut chain[0]);
            if let Some(own) = rewrite {
                if frame.get(..6) == Some(&own.0[..]) {
                    ethernet::set_destination_mac(frame, host);
                }
            }
            // Checksums a sender left to "hardware" are finished, as the NIC would have, or
            // passed on to a host that takes them partial.
            let finished = if self.host_takes_partial {
                // The first frame of a chain holds the headers this needs.
                if checksum::partial_checksum(frame).is_some() {
                    L4Checksum::Completed
                } else {
                    L4Checksum::Finished
                }
            } else if single {
                checksum::complete_l4_checksum(frame)
            } else {
                self.umem.gather(chain, &mut self.chain_buf);
                let r = checksum::complete_l4_checksum(&mut self.chain_buf);
                if r == L4Checksum::Completed {
                    self.umem.scatter(chain, &self.chain_buf);
                }
                r
            };
            if finished == L4Checksum::Completed {
                completed += 1;
            }
        }
        WorkerCounters::add(&c.rx_packets, packets);
        if completed > 0 {
            WorkerCounters::add(&c.rx_checksum_completed, completed);
        }
        n
    }

    /// Sends held packets through the bond: each goes to the member the policy picks (MACs
    /// rewritten where the mode says), one TX burst per member; a chain (a jumbo frame) goes
    /// whole, chosen by its first frame's headers. Packets that find no usable member or a
    /// full TX ring are dropped and counted; every frame is the bond's again.
    pub fn transmit(&mut self, frames: &[FrameDesc]) {
        for run in xdp::packets(frames) {
            self.umem.prefetch(&frames[run.start]);
        }
        let snap = &self.snap;
        for run in xdp::packets(frames) {
            let chain = &frames[run];
            let mut head = chain[0];
            match self.selector.select(self.umem.data(&head), snap) {
                Decision::Send { member, rewrite } => {
                    apply(
                        rewrite,
                        self.umem.data_mut(&mut head),
                        snap.members[member].mac,
                    );
                    self.batches[member].push(head);
                    self.batches[member].extend_from_slice(&chain[1..]);
                }
                Decision::AllUsable => {
                    let usable = snap.usable();
                    for (i, &member) in usable.iter().enumerate() {
                        if i + 1 == usable.len() {
                            self.batches[member].extend_from_slice(chain);
                            break;
                        }
                        if !copy_chain(&self.umem, &mut self.pool, chain, &mut self.batches[member])
                        {
                            WorkerCounters::add(&self.counters.drop_no_frame, 1);
                        }
                    }
                }
                Decision::Drop => {
                    WorkerCounters::add(&self.counters.drop_no_member, 1);
                    chain.iter().for_each(|&d| self.pool.put(d));
                }
            }
        }
        for (m, batch) in self.batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let Some(p) = self.tx_port[m] else {
                // The member's device is gone (the monitor takes it out of the snapshot).
                let packets = xdp::packets(batch).count();
                WorkerCounters::add(&self.counters.drop_no_member, packets as u64);
                batch.drain(..).for_each(|desc| self.pool.put(desc));
                continue;
            };
            let c = &self.counters.queues[p];
            // Packets the member's MTU does not allow (changed from outside, or smaller than
            // the host side's) are dropped, as the kernel's device would.
            let max = self.snap.members.get(m).map_or(u32::MAX, |t| t.max_frame) as usize;
            let too_big = drop_longer_than(max, batch, &mut self.pool);
            if too_big > 0 {
                WorkerCounters::add(&c.tx_too_big, too_big);
            }
            let packets = xdp::packets(batch).count();
            let bytes: u64 = batch.iter().map(|d| d.len() as u64).sum();
            let dropped = self.ports[p].send(batch, &mut self.pool);
            WorkerCounters::add(&c.tx_packets, (packets - dropped) as u64);
            WorkerCounters::add(&c.tx_bytes, bytes);
            WorkerCounters::add(&c.tx_ring_full, dropped as u64);
            batch.clear();
        }
    }

    /// `bytes` written into frames of the share's pool, appended to `out` for `transmit`: a
    /// chain where they are longer than a frame and jumbo frames are on.
    pub fn hold(&mut self, bytes: &[u8], out: &mut Vec<FrameDesc>) -> Result<(), xdp::ChainError> {
        self.umem.write_chain(&mut self.pool, bytes, out)
    }

    /// The member queue served `i`th.
    pub fn port_mut(&mut self, i: usize) -> &mut P {
        &mut self.ports[i]
    }

    /// Frames this share holds: its pool and the rings of its ports and of `extra`.
    pub fn frames_held(&self, extra: &[P]) -> usize {
        self.pool.free() + self.ports.iter().chain(extra).map(P::held).sum::<usize>()
    }

    pub fn frames_owned(&self) -> usize {
        self.frames_owned
    }

    /// Where the frames are, for the invariant's message.
    pub fn frame_census(&self, extra: &[P]) -> String {
        let ports: Vec<String> = self.ports.iter().chain(extra).map(P::census).collect();
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
fn upkeep(port: &mut impl MemberPort, pool: &mut FramePool) -> usize {
    let completed = port.reclaim(pool);
    port.refill(pool);
    let _ = port.wake_rx();
    completed
}

/// Copies a chain into frames from `pool`, appended to `out`; false (nothing appended) when
/// the pool runs short.
fn copy_chain(
    umem: &UmemArea,
    pool: &mut FramePool,
    chain: &[FrameDesc],
    out: &mut Vec<FrameDesc>,
) -> bool {
    let start = out.len();
    for original in chain {
        let Some(mut copy) = pool.take() else {
            out.drain(start..).for_each(|d| pool.put(d));
            return false;
        };
        // The original fits in a frame, so the copy does.
        umem.write(&mut copy, umem.data(original));
        copy.set_options(original.options());
        out.push(copy);
    }
    true
}

/// Takes the packets longer than `max` bytes out of `batch`, back to the pool; returns how
/// many there were.
fn drop_longer_than(max: usize, batch: &mut Vec<FrameDesc>, pool: &mut FramePool) -> u64 {
    let fits = |chain: &[FrameDesc]| chain.iter().map(|d| d.len()).sum::<usize>() <= max;
    if xdp::packets(batch).all(|run| fits(&batch[run])) {
        return 0;
    }
    let mut kept = 0;
    let mut dropped = 0;
    let runs: Vec<_> = xdp::packets(batch).collect();
    for run in runs {
        if fits(&batch[run.clone()]) {
            for i in run {
                batch[kept] = batch[i];
                kept += 1;
            }
        } else {
            batch[run].iter().for_each(|&d| pool.put(d));
            dropped += 1;
        }
    }
    batch.truncate(kept);
    dropped
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
