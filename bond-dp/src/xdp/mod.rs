//! AF_XDP: bond-dp's XDP program on the members, and the sockets on one shared UMEM.
//! All of bond-dp's `unsafe` lives here, each block with the reason it is sound.

pub mod ethtool;
pub mod port;
pub mod program;

#[cfg(feature = "raw-xdp")]
pub use xsk_rs::FrameDesc;

pub use port::{rx_queue_count, FramePool, MemberPort, PortConfig, UmemArea};
pub use program::{AttachMode, MemberAction, XdpCounters, XdpCountersReader, XdpProgram};
