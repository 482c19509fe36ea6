//! TCP super-frames from the host, handed whole to a member's device to segment.
//!
//! AF_XDP has no segmentation offload on transmit, so a 64 KB super-frame sent on a member's
//! socket is forty-odd segments, each crossing the kernel (and, on a veth, the peer's whole
//! receive path) on its own. A packet socket with a virtio-net header takes the super-frame
//! as one: the device segments it (TSO), or the kernel does in one pass where the device
//! cannot (GSO), as it would for the kernel's bond. Only the TAP's frames come this way;
//! everything else stays on the AF_XDP sockets.

use std::io;

use crate::monitor::PacketSocket;
use crate::wire::gso::VnetHdr;

/// A send-only packet socket on one member that takes frames with a virtio-net header.
pub struct DeviceTx(PacketSocket);

impl DeviceTx {
    /// A socket on the device with index `ifindex` (protocol 0: it receives nothing).
    pub fn open(ifindex: u32) -> io::Result<DeviceTx> {
        let socket = PacketSocket::on_device(ifindex)?;
        socket.take_vnet_header()?;
        Ok(DeviceTx(socket))
    }

    /// Sends `frame` (a whole Ethernet frame) with the header that says what the device is to
    /// do with it; an error when the kernel refuses it or has no room now (nothing was sent).
    pub fn send(&self, hdr: VnetHdr, frame: &[u8]) -> io::Result<()> {
        let Some(ethertype) = frame.get(12..14) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // The frame's own EtherType (network order, as it stands in the frame).
        let protocol_be = u16::from_ne_bytes([ethertype[0], ethertype[1]]);
        self.0.send_after(&hdr.to_bytes(), protocol_be, frame)
    }
}
