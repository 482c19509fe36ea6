//! Lock-free counters, written by workers and read by status at any time.
//!
//! Each worker writes only its own [`WorkerCounters`] (no cache line is shared between
//! workers); readers sum them into a [`CountersView`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
    /// Transmissions the kernel completed, and frames still waiting for completion: a
    /// member whose completions stop while frames wait has stopped transmitting.
    pub tx_completed: AtomicU64,
    pub tx_in_flight: AtomicU64,
    /// Transmit wake-ups the kernel refused (the device will not send).
    pub tx_errors: AtomicU64,
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
        }
    }
}

/// What one worker counts.
#[derive(Debug)]
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
}

impl WorkerCounters {
    pub fn new(queues: Vec<QueueCounters>) -> Self {
        WorkerCounters {
            queues,
            drop_no_member: AtomicU64::new(0),
            drop_host_busy: AtomicU64::new(0),
            drop_no_frame: AtomicU64::new(0),
            drop_too_long: AtomicU64::new(0),
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
    pub workers: Vec<Arc<WorkerCounters>>,
}

impl BondCounters {
    pub fn new(members: usize, workers: Vec<Arc<WorkerCounters>>) -> Self {
        BondCounters { members, workers }
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
                    },
                };
                view.members[q.member].add(&queue.counts);
                view.queues.push(queue);
            }
            view.drop_no_member += get(&worker.drop_no_member);
            view.drop_host_busy += get(&worker.drop_host_busy);
            view.drop_no_frame += get(&worker.drop_no_frame);
            view.drop_too_long += get(&worker.drop_too_long);
        }
        view.queues.sort_by_key(|q| (q.member, q.queue));
        view
    }
}

/// A copy of the counters, for status and JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    /// Per member, summed over its queues.
    pub members: Vec<MemberCountersView>,
    /// Per member queue.
    pub queues: Vec<QueueCountersView>,
    pub drop_no_member: u64,
    pub drop_host_busy: u64,
    pub drop_no_frame: u64,
    pub drop_too_long: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCountersView {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_ring_full: u64,
    pub tx_completed: u64,
    pub tx_in_flight: u64,
    pub tx_errors: u64,
}

impl MemberCountersView {
    fn add(&mut self, o: &MemberCountersView) {
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_ring_full += o.tx_ring_full;
        self.tx_completed += o.tx_completed;
        self.tx_in_flight += o.tx_in_flight;
        self.tx_errors += o.tx_errors;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCountersView {
    pub member: usize,
    pub queue: u32,
    pub worker: usize,
    #[serde(flatten)]
    pub counts: MemberCountersView,
}
