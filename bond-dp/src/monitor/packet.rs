//! A raw packet socket on one member, for the frames the control plane sends itself (peer
//! notifications, probes, LACPDUs) and the slow-protocol frames it receives (the XDP program
//! passes those to the kernel). It goes around the data plane, so it works while the workers
//! are saturated, and on a member the XDP program currently drops on. The data plane's
//! `xdp::DeviceTx` is one too, with a virtio-net header before each frame.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// A send-only AF_PACKET socket on `iface` (protocol 0: it receives nothing).
    pub fn open(iface: &str) -> io::Result<PacketSocket> {
        Self::open_for(iface, 0)
    }

    /// An AF_PACKET socket on `iface` that also receives the frames of one EtherType,
    /// without blocking.
    pub fn open_receiving(iface: &str, ethertype: u16) -> io::Result<PacketSocket> {
        Self::open_for(iface, ethertype)
    }

    /// A send-only socket on the device with index `ifindex`.
    pub(crate) fn on_device(ifindex: u32) -> io::Result<PacketSocket> {
        Self::on_device_for(ifindex, 0)
    }

    fn open_for(iface: &str, ethertype: u16) -> io::Result<PacketSocket> {
        Self::on_device_for(super::read_ifindex(iface)?, ethertype)
    }

    fn on_device_for(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        let protocol = i32::from(ethertype.to_be());
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, flags, protocol) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket = PacketSocket {
            fd,
            ifindex: ifindex as i32,
        };
        if ethertype != 0 {
            // Only this member's frames: bind to it.
            let addr = socket.address(ethertype.to_be(), &[]);
            // SAFETY: `addr` is a valid sockaddr_ll for the length given.
            let rc = unsafe {
                libc::bind(
                    socket.fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            // With each frame, whether it came in a VLAN (the tag may be offloaded).
            let on: libc::c_int = 1;
            let fd = socket.fd.as_raw_fd();
            crate::sockopt::set(fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &on)?;
        }
        Ok(socket)
    }

    /// This socket's link-layer address: the member, a protocol, a destination MAC.
    fn address(&self, protocol_be: u16, dst: &[u8]) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value to fill in.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol_be;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        let n = dst.len().min(6);
        addr.sll_addr[..n].copy_from_slice(&dst[..n]);
        addr
    }

    /// An untagged frame received, if one is waiting: its length in `buf`. Frames that came
    /// in a VLAN are skipped, also when a driver or bridge took the tag off (only untagged
    /// slow protocols are LACP): the kernel says so in the frame's auxiliary data, or, where
    /// no VLAN device takes the tag, by marking the frame for another host.
    pub fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let (n, tagged) = self.recv_one(buf)?;
            if !tagged {
                return Some(n);
            }
        }
    }

    /// One frame: its length, and whether it came in a VLAN.
    fn recv_one(&self, buf: &mut [u8]) -> Option<(usize, bool)> {
        // SAFETY: plain data; all-zero is a valid value for the kernel to fill in.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `addr`, `iov` (over `buf`) and `control`, all valid for
        // writes of the lengths given and alive for the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        let n = usize::try_from(n).ok()?;
        let mut tagged = addr.sll_pkttype == libc::PACKET_OTHERHOST;
        // SAFETY: the kernel filled `msg`'s control buffer; CMSG_FIRSTHDR/NXTHDR walk it
        // within msg_controllen, and each auxdata header is followed by its data.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_PACKET
                    && (*cmsg).cmsg_type == libc::PACKET_AUXDATA
                {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    tagged |=
                        aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || aux.tp_vlan_tci != 0;
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Some((n, tagged))
    }

    /// Sends one whole Ethernet frame out of the member.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_after(&[], 0, frame)
    }

    /// Makes the socket take a virtio-net header before every frame it sends.
    pub(crate) fn take_vnet_header(&self) -> io::Result<()> {
        let on: libc::c_int = 1;
        let fd = self.fd.as_raw_fd();
        crate::sockopt::set(fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &on)
    }

    /// Sends `frame` (a whole Ethernet frame) with `prefix` before it (a virtio-net header on
    /// a socket that takes one, or nothing), as protocol `protocol_be` (network order; 0: as
    /// the frame says), to the frame's destination MAC.
    pub(crate) fn send_after(
        &self,
        prefix: &[u8],
        protocol_be: u16,
        frame: &[u8],
    ) -> io::Result<()> {
        let mut addr = self.address(protocol_be, &frame[..6.min(frame.len())]);
        let mut iov = [prefix, frame].map(|part| libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        });
        // SAFETY: plain data; all-zero is a valid value to fill in.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        // SAFETY: `msg` points at `addr` and at `iov`, whose buffers (`prefix`, `frame`) the
        // kernel only reads; all are alive for the call.
        let rc = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
