//! The control plane's outward face: status in the kernel's /proc/net/bonding format (and
//! JSON), and the Unix control socket that serves it.

pub mod http;
pub mod metrics;
pub mod server;
pub mod socket;
pub mod status;
pub mod watch;

pub use crate::status::{
    AggregatorInfo, BondStatus, DataPlaneStatus, LacpduDetails, MemberLacpStatus, MemberStatus,
};
pub use socket::{ControlServer, Request};
