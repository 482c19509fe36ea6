//! A TAP device the kernel stack uses as the bond: `ip addr add` on it, ping and iperf3 run
//! over the bond.
//!
//! The device is persistent: it outlives bond-dp's descriptor, so a bond-dp that dies leaves
//! it in place, without carrier, with the host's addresses and routes; the next start
//! attaches to it again. A clean stop removes it (`daemon`).

use std::io;
use std::os::fd::AsRawFd;

use tun_tap::{Iface, Mode};

use super::HostPort;
use crate::wire::MacAddr;

pub struct TapPort {
    iface: Iface,
}

impl TapPort {
    /// Creates (or attaches to) the TAP device `name`, gives it the bond's MAC and sets it up.
    pub fn open(name: &str, mac: MacAddr) -> io::Result<TapPort> {
        let iface = Iface::without_packet_info(name, Mode::Tap)?;
        iface.set_non_blocking()?;
        set_persistent(&iface)?;
        crate::monitor::set_mac_and_up(name, mac)
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: address {mac} up: {e}")))?;
        Ok(TapPort { iface })
    }
}

impl HostPort for TapPort {
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.iface.recv(buf).ok().filter(|&n| n > 0)
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        self.iface.send(frame).is_ok()
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.iface.as_raw_fd())
    }
}

/// TUNSETPERSIST, _IOW('T', 203, int).
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;

fn set_persistent(iface: &Iface) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes its argument by value; the descriptor is the open TAP's.
    let rc = unsafe { libc::ioctl(iface.as_raw_fd(), TUNSETPERSIST as _, 1 as libc::c_ulong) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("making the TAP persistent: {e}"),
        ));
    }
    Ok(())
}
