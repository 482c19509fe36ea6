//! The worker's contract with a host-side port that frames are copied to and from (the TAP,
//! in [`crate::host`]): the engine depends on this trait, not on the ports.

use crate::wire::gso::VnetHdr;

/// A host-side port, polled by the worker.
pub trait HostPort: Send {
    /// Receives one frame into `buf`: its length, and the work the host left for the
    /// "hardware" (a checksum to finish, a super-frame to segment; none by default). `None`
    /// when nothing is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, VnetHdr)>;
    /// Sends one frame; false when the host side cannot take it now.
    fn send(&mut self, frame: &[u8]) -> bool;
    /// A descriptor that polls readable when a frame waits, for an idle worker to sleep on.
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Whether `send_super` takes TCP super-frames (a TAP with a virtio-net header).
    fn takes_super_frames(&self) -> bool {
        false
    }
    /// Sends a frame with the virtio-net header that describes it: a super-frame of merged
    /// TCP segments the host may cut again. A port without headers takes plain frames only.
    fn send_super(&mut self, frame: &[u8], hdr: VnetHdr) -> bool {
        hdr == VnetHdr::default() && self.send(frame)
    }
    /// Frames the port dropped since last asked (longer than the buffer it was given), to be
    /// counted.
    fn take_dropped(&mut self) -> u64 {
        0
    }
}
