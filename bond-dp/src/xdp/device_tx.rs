//! TCP super-frames from the host, handed whole to a member's device to segment.
//!
//! AF_XDP has no segmentation offload on transmit, so a 64 KB super-frame sent on a member's
//! socket is forty-odd segments, each crossing the kernel (and, on a veth, the peer's whole
//! receive path) on its own. A packet socket with a virtio-net header takes the super-frame
//! as one: the device segments it (TSO), or the kernel does in one pass where the device
//! cannot (GSO), as it would for the kernel's bond. Only the TAP's frames come this way;
//! everything else stays on the AF_XDP sockets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::wire::gso::VnetHdr;

/// A send-only packet socket on one member that takes frames with a virtio-net header.
pub struct DeviceTx {
    fd: OwnedFd,
    ifindex: i32,
}

impl DeviceTx {
    /// A socket on the device with index `ifindex` (protocol 0: it receives nothing).
    pub fn open(ifindex: u32) -> io::Result<DeviceTx> {
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, flags, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let on: libc::c_int = 1;
        crate::sockopt::set(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, &on)?;
        Ok(DeviceTx {
            fd,
            ifindex: ifindex as i32,
        })
    }

    /// Sends `frame` (a whole Ethernet frame) with the header that says what the device is to
    /// do with it; an error when the kernel refuses it or has no room now (nothing was sent).
    pub fn send(&self, hdr: VnetHdr, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value to fill in.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        // The frame's own EtherType (network order, as it stands in the frame).
        addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        let hdr = hdr.to_bytes();
        let mut iov = [
            libc::iovec {
                iov_base: hdr.as_ptr() as *mut libc::c_void,
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        // SAFETY: `msg` points at `addr` and at `iov`, whose buffers (`hdr`, `frame`) the
        // kernel only reads; all are alive for the call.
        let rc = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
