//! The one ethtool setting bond-dp changes: RX VLAN offload. Where the XDP program cannot ask
//! the driver for a tag it took off (generic XDP, a driver without RX VLAN metadata), the NIC
//! must leave tags in the frames, or VLAN traffic reaches the host as untagged.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETH_FLAG_RXVLAN: u32 = 1 << 8;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with `ifr_data`, padded to the kernel's size.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

fn ethtool(iface: &str, cmd: u32, data: u32) -> io::Result<u32> {
    if iface.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name",
        ));
    }
    let mut value = EthtoolValue { cmd, data };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    for (slot, b) in req.name.iter_mut().zip(iface.bytes()) {
        *slot = b as libc::c_char;
    }
    // SAFETY: a plain datagram socket, owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` names the interface and points at `value`, both alive for the call; the
    // kernel reads and writes an ethtool_value there.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data)
}

/// Whether the device takes VLAN tags off received frames (rx-vlan-offload).
pub fn rx_vlan_offload(iface: &str) -> io::Result<bool> {
    Ok(ethtool(iface, ETHTOOL_GFLAGS, 0)? & ETH_FLAG_RXVLAN != 0)
}

/// Turns rx-vlan-offload on or off, as `ethtool -K IFACE rxvlan on|off`.
pub fn set_rx_vlan_offload(iface: &str, on: bool) -> io::Result<()> {
    let flags = ethtool(iface, ETHTOOL_GFLAGS, 0)?;
    let wanted = if on {
        flags | ETH_FLAG_RXVLAN
    } else {
        flags & !ETH_FLAG_RXVLAN
    };
    if wanted != flags {
        ethtool(iface, ETHTOOL_SFLAGS, wanted)?;
    }
    Ok(())
}
