//! A TAP device the kernel stack uses as the bond: `ip addr add` on it, ping and iperf3 run
//! over the bond.
//!
//! The device is persistent: it outlives bond-dp's descriptor, so a bond-dp that dies leaves
//! it in place, without carrier, with the host's addresses and routes; the next start
//! attaches to it again. A clean stop removes it (`daemon`).
//!
//! Offloads: the TAP is opened with a virtio-net header and offers the host checksum and TCP
//! segmentation offload, as a NIC would. The host then hands over a TCP stream in super-frames
//! of up to 64 KB (one read instead of forty) with their checksums left partial; the worker
//! has a member's device segment them, or cuts them itself, and finishes the checksums
//! ([`crate::wire::gso`]). Toward the host, the worker merges a flow's segments into
//! super-frames the same header describes ([`crate::wire::gro`]).
//!
//! The TAP is multi-queue: each worker reads and writes a queue of its own, and the host
//! spreads its flows over them.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::HostPort;
use crate::wire::gso::VnetHdr;
use crate::wire::MacAddr;

pub struct TapPort {
    file: File,
    /// Frames from the host cut short by the read (longer than bond-dp takes), dropped.
    truncated: u64,
}

impl TapPort {
    /// `queues` queues of the multi-queue TAP device `name` (created, or attached to; more
    /// queues may be added later), one per worker: the host spreads its flows over them.
    /// The device gets the bond's MAC and is set up.
    pub fn open_queues(name: &str, mac: MacAddr, queues: usize) -> io::Result<Vec<TapPort>> {
        let named =
            |what: &str, e: io::Error| io::Error::new(e.kind(), format!("TAP {name}: {what}: {e}"));
        let mut ports = Vec::new();
        for _ in 0..queues {
            let file = match attach(name) {
                // A TAP of an older bond-dp, with one queue: the flags cannot change while
                // it exists, so it is made again (the host's addresses on it go with it).
                Err(e) if ports.is_empty() && e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::warn!(
                        "TAP {name} exists without multi-queue (made by an older bond-dp): \
                         made again; put its addresses back"
                    );
                    crate::monitor::delete_link(name).map_err(|e| named("removing it", e))?;
                    attach(name)
                }
                other => other,
            }
            .map_err(|e| named("TUNSETIFF", e))?;
            ioctl(&file, TUNSETOFFLOAD, OFFLOADS).map_err(|e| named("offloads", e))?;
            ports.push(TapPort { file, truncated: 0 });
        }
        if let Some(first) = ports.first() {
            ioctl(&first.file, TUNSETPERSIST, 1).map_err(|e| named("making it persistent", e))?;
        }
        crate::monitor::set_mac_and_up(name, mac)
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: address {mac} up: {e}")))?;
        Ok(ports)
    }
}

impl HostPort for TapPort {
    fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, VnetHdr)> {
        loop {
            let mut hdr = [0u8; VnetHdr::LEN];
            let n = {
                let mut parts = [IoSliceMut::new(&mut hdr), IoSliceMut::new(buf)];
                self.file.read_vectored(&mut parts).ok()?
            };
            if n <= VnetHdr::LEN {
                return None;
            }
            let len = n - VnetHdr::LEN;
            if len == buf.len() {
                // Filled to the last byte: perhaps cut short. Dropped and counted rather
                // than sent on with its end missing.
                self.truncated += 1;
                continue;
            }
            return Some((len, VnetHdr::parse(&hdr)));
        }
    }

    fn send(&mut self, frame: &[u8]) -> bool {
        // Every checksum toward the host is finished (the members' partial ones were finished
        // on receipt): a header that asks for nothing.
        self.send_super(frame, VnetHdr::default())
    }

    fn takes_super_frames(&self) -> bool {
        true
    }

    fn send_super(&mut self, frame: &[u8], hdr: VnetHdr) -> bool {
        let hdr = hdr.to_bytes();
        let parts = [IoSlice::new(&hdr), IoSlice::new(frame)];
        self.file.write_vectored(&parts).is_ok()
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.truncated)
    }
}

/// TUNSETIFF, _IOW('T', 202, int); TUNSETPERSIST, 203; TUNSETOFFLOAD, 208.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
/// TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN: partial checksums and TCP
/// super-frames, which bond-dp finishes and cuts.
const OFFLOADS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08;

/// A new queue of TAP device `name`.
fn attach(name: &str) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    set_iff(&file, name)?;
    Ok(file)
}

/// Attaches the descriptor to TAP device `name` (created if absent) as one of its queues,
/// with a virtio-net header on every frame and no packet-info prefix.
fn set_iff(file: &File, name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface names are 1 to 15 bytes",
        ));
    }
    // SAFETY: an all-zero ifreq is valid (a name of NULs and a zero union).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is; the descriptor is open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An ioctl of the TAP's that takes its argument by value.
fn ioctl(file: &File, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST and TUNSETOFFLOAD take an integer by value, not a pointer; the
    // descriptor is the open TAP's.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
