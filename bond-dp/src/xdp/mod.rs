//! AF_XDP: bond-dp's XDP program on the members, and the sockets on one shared UMEM with the
//! kernel's rings mapped by hand ([`ring`]); beside them, a packet socket per member for the
//! TAP's TCP super-frames, which AF_XDP cannot ask a device to segment ([`device_tx`]).
//!
//! The data plane's unsafe code (the UMEM, the rings) lives here. Socket options are set and
//! read in `crate::sockopt`; the rest of bond-dp's unsafe blocks are single system calls libc
//! has no safe form for (netlink and packet sockets, the TAP's ioctls), each with the reason
//! it is sound.

pub mod device_tx;
pub mod ethtool;
pub mod port;
pub mod program;
mod ring;

pub use ring::FrameDesc;

/// Sleeps until one of `fds` is readable or `timeout` passes (poll(2)): how an idle worker
/// waits for frames on its sockets and host port instead of spinning.
pub fn wait_readable(fds: &mut Vec<libc::pollfd>, timeout: std::time::Duration) {
    for f in fds.iter_mut() {
        f.events = libc::POLLIN;
        f.revents = 0;
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures for the call.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

pub use device_tx::DeviceTx;
pub use port::{
    packet_end, packets, rx_queue_count, ChainError, FramePool, PortConfig, UmemArea, XskPort,
    MAX_CHAIN,
};
pub use program::{AttachMode, MemberAction, XdpCounters, XdpCountersReader, XdpLink, XdpProgram};
