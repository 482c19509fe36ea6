//! The poll-mode engine: workers that move frames between the members' AF_XDP sockets and
//! the host side, choosing each frame's member with the bond's
//! [`TxSelector`](crate::policy::TxSelector).

mod counters;
mod host_port;
mod member_port;
mod queues;
mod snapshot_cell;
#[cfg(test)]
mod tests;
mod waker;
mod worker;

pub use counters::{BondCounters, CarriedCounters, QueueCounters, SharedCounters, WorkerCounters};
pub use host_port::HostPort;
pub use member_port::{MemberPort, MemoryPort};
pub use queues::{QueueShare, Retired, WorkerPort, BURST};
pub use snapshot_cell::SnapshotCell;
pub use waker::Waker;
pub use worker::{HostSide, Worker};
