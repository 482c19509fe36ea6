//! Lock-free counters, written by workers and read by status at any time.
//!
//! Each worker writes only its own [`WorkerCounters`], padded to cache lines of their own
//! ([`SharedCounters`]); readers sum them into a [`CountersView`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam::utils::CachePadded;

use crate::status::{CountersView, MemberCountersView, QueueCountersView, XdpCounters};

/// One AF_XDP socket's traffic: a member queue served by one worker.
#[derive(Debug)]
pub struct QueueCounters {
    pub member: usize,
    pub queue: u32,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Frames for this queue that its full TX ring could not take.
    pub tx_ring_full: AtomicU64,
    /// UMEM frames whose transmission the kernel completed (a jumbo frame's chain counts
    /// each of its frames), and frames still waiting for completion: a member whose
    /// completions stop while frames wait has stopped transmitting.
    pub tx_completed: AtomicU64,
    pub tx_in_flight: AtomicU64,
    /// Transmit wake-ups the kernel refused (the device will not send).
    pub tx_errors: AtomicU64,
    /// Frames longer than the member's MTU allows, dropped.
    pub tx_too_big: AtomicU64,
    /// Received TCP/UDP checksums the sender left partial, finished here.
    pub rx_checksum_completed: AtomicU64,
    /// The socket's XDP_STATISTICS, as last read: frames the kernel dropped before bond-dp
    /// saw them.
    pub kernel_rx_dropped: AtomicU64,
    pub kernel_rx_ring_full: AtomicU64,
    pub kernel_fill_ring_empty: AtomicU64,
    pub kernel_tx_invalid: AtomicU64,
}

impl QueueCounters {
    pub fn new(member: usize, queue: u32) -> Self {
        QueueCounters {
            member,
            queue,
            tx_packets: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            rx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            tx_ring_full: AtomicU64::new(0),
            tx_completed: AtomicU64::new(0),
            tx_in_flight: AtomicU64::new(0),
            tx_errors: AtomicU64::new(0),
            tx_too_big: AtomicU64::new(0),
            rx_checksum_completed: AtomicU64::new(0),
            kernel_rx_dropped: AtomicU64::new(0),
            kernel_rx_ring_full: AtomicU64::new(0),
            kernel_fill_ring_empty: AtomicU64::new(0),
            kernel_tx_invalid: AtomicU64::new(0),
        }
    }
}

/// One worker's counters as the worker and the readers share them: on cache lines of their
/// own, so two workers' counters never share one.
pub type SharedCounters = Arc<CachePadded<WorkerCounters>>;

/// What one worker counts.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// One per member socket the worker serves, in the worker's port order.
    pub queues: Vec<QueueCounters>,
    /// Frames from the host that no member could take (no usable member).
    pub drop_no_member: AtomicU64,
    /// Frames received on members that the host side could not take.
    pub drop_host_busy: AtomicU64,
    /// Frames from the host dropped because the frame pool was empty.
    pub drop_no_frame: AtomicU64,
    /// Frames from the host longer than a UMEM frame.
    pub drop_too_long: AtomicU64,
    /// Frames from the host whose offload request (a checksum to finish, a super-frame to
    /// segment) could not be carried out.
    pub drop_host_offload: AtomicU64,
    /// TCP segments received on members that reached the host merged into super-frames.
    pub to_host_coalesced: AtomicU64,
    /// TCP super-frames from the host handed whole to a member's device, which segmented
    /// them.
    pub to_members_whole: AtomicU64,
}

impl WorkerCounters {
    pub fn new(queues: Vec<QueueCounters>) -> Self {
        WorkerCounters {
            queues,
            ..WorkerCounters::default()
        }
    }

    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// Every worker's counters of one bond.
#[derive(Debug, Clone)]
pub struct BondCounters {
    members: usize,
    pub workers: Vec<SharedCounters>,
}

impl BondCounters {
    pub fn new(members: usize, workers: Vec<SharedCounters>) -> Self {
        BondCounters { members, workers }
    }

    /// Frames moved either way on every member so far: whether the bond is busy, cheaply
    /// (no allocation).
    pub fn frames_moved(&self) -> u64 {
        let get = |c: &AtomicU64| c.load(Relaxed);
        self.workers
            .iter()
            .flat_map(|w| &w.queues)
            .map(|q| get(&q.rx_packets) + get(&q.tx_packets))
            .sum()
    }

    pub fn view(&self) -> CountersView {
        let get = |c: &AtomicU64| c.load(Relaxed);
        let mut view = CountersView {
            members: vec![MemberCountersView::default(); self.members],
            ..CountersView::default()
        };
        for (w, worker) in self.workers.iter().enumerate() {
            for q in &worker.queues {
                let queue = QueueCountersView {
                    member: q.member,
                    queue: q.queue,
                    worker: w,
                    counts: MemberCountersView {
                        tx_packets: get(&q.tx_packets),
                        tx_bytes: get(&q.tx_bytes),
                        rx_packets: get(&q.rx_packets),
                        rx_bytes: get(&q.rx_bytes),
                        tx_ring_full: get(&q.tx_ring_full),
                        tx_completed: get(&q.tx_completed),
                        tx_in_flight: get(&q.tx_in_flight),
                        tx_errors: get(&q.tx_errors),
                        tx_too_big: get(&q.tx_too_big),
                        rx_checksum_completed: get(&q.rx_checksum_completed),
                        kernel_rx_dropped: get(&q.kernel_rx_dropped),
                        kernel_rx_ring_full: get(&q.kernel_rx_ring_full),
                        kernel_fill_ring_empty: get(&q.kernel_fill_ring_empty),
                        kernel_tx_invalid: get(&q.kernel_tx_invalid),
                    },
                };
                view.members[q.member].add(&queue.counts);
                view.queues.push(queue);
            }
            view.drop_no_member += get(&worker.drop_no_member);
            view.drop_host_busy += get(&worker.drop_host_busy);
            view.drop_no_frame += get(&worker.drop_no_frame);
            view.drop_too_long += get(&worker.drop_too_long);
            view.drop_host_offload += get(&worker.drop_host_offload);
            view.to_host_coalesced += get(&worker.to_host_coalesced);
            view.to_members_whole += get(&worker.to_members_whole);
        }
        view.queues.sort_by_key(|q| (q.member, q.queue));
        view
    }
}

/// Totals of data planes that were stopped to start again (members joined or left, a
/// member's device came back), by member name, so that counters never go backwards.
#[derive(Clone, Debug, Default)]
pub struct CarriedCounters {
    members: std::collections::HashMap<String, MemberCountersView>,
    /// The bond-wide counts (drops by reason, offloads); its per-member lists stay empty.
    bond_wide: CountersView,
    /// The XDP program's counts per member (each data plane loads a program of its own).
    xdp: std::collections::HashMap<String, XdpCounters>,
}

impl CarriedCounters {
    /// Adds a stopping data plane's final counts, its members named in `names` order.
    pub fn carry(&mut self, names: &[String], view: &CountersView) {
        for (name, counts) in names.iter().zip(&view.members) {
            let mut c = counts.clone();
            c.tx_in_flight = 0; // a level, not a count
            self.members.entry(name.clone()).or_default().add(&c);
        }
        self.bond_wide.add_bond_wide(view);
    }

    /// Adds a stopping program's final per-member counts, in `names` order.
    pub fn carry_xdp(&mut self, names: &[String], counts: &[XdpCounters]) {
        for (name, c) in names.iter().zip(counts) {
            self.xdp.entry(name.clone()).or_default().add(c);
        }
    }

    /// A live program's per-member counts with what was carried added.
    pub fn add_xdp_to(&self, names: &[String], mut live: Vec<XdpCounters>) -> Vec<XdpCounters> {
        for (name, c) in names.iter().zip(&mut live) {
            if let Some(t) = self.xdp.get(name) {
                c.add(t);
            }
        }
        live
    }

    /// `live` with what was carried added, its members named in `names` order.
    pub fn add_to(&self, names: &[String], mut live: CountersView) -> CountersView {
        for (name, counts) in names.iter().zip(&mut live.members) {
            if let Some(old) = self.members.get(name) {
                counts.add(old);
            }
        }
        live.add_bond_wide(&self.bond_wide);
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_counters_never_go_backwards_as_members_come_and_go() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let view = |rx: &[u64], drops: u64| CountersView {
            members: rx
                .iter()
                .map(|&rx_packets| MemberCountersView {
                    rx_packets,
                    tx_in_flight: 3,
                    ..Default::default()
                })
                .collect(),
            drop_no_member: drops,
            ..Default::default()
        };
        let mut carried = CarriedCounters::default();
        // m0, m1 ran; then m1 left and m2 joined: m0 goes on from 10, m2 starts at 0.
        carried.carry(&names(&["m0", "m1"]), &view(&[10, 20], 5));
        let now = carried.add_to(&names(&["m0", "m2"]), view(&[1, 2], 1));
        assert_eq!(now.members[0].rx_packets, 11);
        assert_eq!(now.members[1].rx_packets, 2);
        assert_eq!(now.members[0].tx_in_flight, 3, "levels are not summed");
        assert_eq!(now.drop_no_member, 6);
        // m1 comes back: its old count with it.
        carried.carry(&names(&["m0", "m2"]), &view(&[1, 2], 1));
        let back = carried.add_to(&names(&["m0", "m2", "m1"]), view(&[0, 0, 1], 0));
        assert_eq!(
            back.members
                .iter()
                .map(|m| m.rx_packets)
                .collect::<Vec<_>>(),
            [11, 2, 21]
        );
        // The XDP program's counts, every one of them, carry on by name too.
        let xdp = |n: u64| XdpCounters {
            redirected: n,
            neighbour: n,
            ..Default::default()
        };
        carried.carry_xdp(&names(&["m0"]), &[xdp(4)]);
        let live = carried.add_xdp_to(&names(&["m0"]), vec![xdp(1)]);
        assert_eq!((live[0].redirected, live[0].neighbour), (5, 5));
    }
}
