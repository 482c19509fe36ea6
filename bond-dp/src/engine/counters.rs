//! Lock-free counters, written by workers and read by status at any time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

#[derive(Default, Debug)]
pub struct MemberCounters {
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Frames for this member that its full TX ring could not take.
    pub tx_ring_full: AtomicU64,
}

#[derive(Debug)]
pub struct BondCounters {
    pub members: Vec<MemberCounters>,
    /// Frames from the host that no member could take (no usable member).
    pub drop_no_member: AtomicU64,
    /// Frames received on members that the host side could not take.
    pub drop_host_busy: AtomicU64,
    /// Frames from the host dropped because the frame pool was empty.
    pub drop_no_frame: AtomicU64,
    /// Frames from the host longer than a UMEM frame.
    pub drop_too_long: AtomicU64,
    /// UMEM frames in the worker's pool and port rings (published with the in-process API,
    /// whose own frames the application holds).
    pub frames_in_worker: std::sync::atomic::AtomicUsize,
}

impl BondCounters {
    pub fn new(members: usize) -> Self {
        BondCounters {
            members: (0..members).map(|_| MemberCounters::default()).collect(),
            drop_no_member: AtomicU64::new(0),
            drop_host_busy: AtomicU64::new(0),
            drop_no_frame: AtomicU64::new(0),
            drop_too_long: AtomicU64::new(0),
            frames_in_worker: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn view(&self) -> CountersView {
        let get = |c: &AtomicU64| c.load(Relaxed);
        CountersView {
            members: self
                .members
                .iter()
                .map(|m| MemberCountersView {
                    tx_packets: get(&m.tx_packets),
                    tx_bytes: get(&m.tx_bytes),
                    rx_packets: get(&m.rx_packets),
                    rx_bytes: get(&m.rx_bytes),
                    tx_ring_full: get(&m.tx_ring_full),
                })
                .collect(),
            drop_no_member: get(&self.drop_no_member),
            drop_host_busy: get(&self.drop_host_busy),
            drop_no_frame: get(&self.drop_no_frame),
            drop_too_long: get(&self.drop_too_long),
        }
    }
}

/// A copy of the counters, for status and JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    pub members: Vec<MemberCountersView>,
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
}
