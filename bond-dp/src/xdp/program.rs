//! Loading bond-dp's XDP program, attaching it to members, and driving its maps.
//!
//! The program is attached through a bpf_link: the kernel detaches it when the last file
//! descriptor of the link closes, so a bond-dp that dies (kill -9, a panic, the OOM killer)
//! leaves no program on its members. Dropping an [`XdpProgram`] detaches it the same way.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::query::ProgInfoIter;
use std::net::IpAddr;
use std::sync::Mutex;

use libbpf_rs::{
    libbpf_sys, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, RingBuffer, RingBufferBuilder,
    XdpFlags,
};
use thiserror::Error;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bond_xdp.o"));

use crate::limits::{COUNTERS_PER_MEMBER, MAX_QUEUES};

/// The program's name in the object, and so in the kernel: how a leftover is recognised.
pub const PROGRAM_NAME: &str = "bond_xdp";
/// The same program bound to one device, putting back the VLAN tag a driver took off into
/// RX metadata.
const VLAN_PROGRAM_NAME: &str = "bond_xdp_vlan";

#[derive(Debug, Error)]
pub enum XdpError {
    #[error("loading the XDP program: {0}")]
    Load(String),
    #[error("attaching XDP to {iface}: {reason}")]
    Attach { iface: String, reason: String },
    #[error("XDP map {map}: {reason}")]
    Map { map: &'static str, reason: String },
    #[error("{iface}: no such interface")]
    NoInterface { iface: String },
}

/// How the program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (native XDP): the fast path, zero-copy capable.
    Native,
    /// Generic (SKB) mode: works on every interface, copies.
    Generic,
}

impl AttachMode {
    fn flags(self) -> XdpFlags {
        match self {
            AttachMode::Native => XdpFlags::DRV_MODE,
            AttachMode::Generic => XdpFlags::SKB_MODE,
        }
    }
}

/// What the program does with data frames arriving on a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberAction {
    Deliver = 0,
    Drop = 1,
    /// Unicast only: an inactive balance-alb member, which peers were taught to send to.
    DeliverUnicast = 2,
}

pub use crate::status::XdpCounters;

/// The program attached to one interface: closing the bpf_link detaches it. Where the
/// interface's driver hands over the RX VLAN tag, the program is a device-bound copy of its
/// own (sharing the program's maps), which goes with the link.
pub struct XdpLink {
    ifindex: i32,
    _link: OwnedFd,
    _bound: Option<Object>,
}

pub struct XdpProgram {
    object: Object,
    /// The program's links to the interfaces it is attached to.
    links: Mutex<Vec<XdpLink>>,
    /// Loaded as a multi-buffer program (BPF_F_XDP_HAS_FRAGS): frames longer than a page
    /// reach it, and the sockets, as chains.
    frags: bool,
}

/// How the program runs on an interface, and whether it puts back VLAN tags the driver
/// keeps as RX metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    pub mode: AttachMode,
    pub vlan_metadata: bool,
}

/// The program flag of a multi-buffer program, if `frags`.
fn frags_flag(frags: bool) -> u32 {
    if frags {
        libbpf_sys::BPF_F_XDP_HAS_FRAGS
    } else {
        0
    }
}

impl XdpProgram {
    /// The program for frames that fit in one page.
    pub fn load() -> Result<XdpProgram, XdpError> {
        Self::load_with(false)
    }

    /// The program, as a multi-buffer one (`frags`) for jumbo frames: the sockets bound to it
    /// must take chains (XDP_USE_SG).
    pub fn load_with(frags: bool) -> Result<XdpProgram, XdpError> {
        let mut open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(|e| XdpError::Load(e.to_string()))?;
        for mut prog in open.progs_mut() {
            // The VLAN variant loads per device (`load_bound`), not here.
            prog.set_autoload(prog.name() == PROGRAM_NAME);
            prog.set_flags(frags_flag(frags));
        }
        let object = open.load().map_err(|e| XdpError::Load(e.to_string()))?;
        Ok(XdpProgram {
            object,
            links: Mutex::default(),
            frags,
        })
    }

    /// The VLAN variant loaded for device `ifindex` alone, on this program's maps. Fails
    /// where the driver has no RX VLAN metadata (or no native XDP).
    fn load_bound(&self, ifindex: i32) -> Result<Object, libbpf_rs::Error> {
        let mut open = ObjectBuilder::default().open_memory(OBJECT)?;
        for mut prog in open.progs_mut() {
            let vlan = prog.name() == VLAN_PROGRAM_NAME;
            prog.set_autoload(vlan);
            if vlan {
                prog.set_ifindex(ifindex as u32);
                prog.set_flags(libbpf_sys::BPF_F_XDP_DEV_BOUND_ONLY | frags_flag(self.frags));
            }
        }
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if let Some(shared) = self
                .object
                .maps()
                .find(|m| m.name().to_string_lossy() == name)
            {
                map.reuse_fd(shared.as_fd())?;
            }
        }
        open.load()
    }

    /// Attaches to `iface` through a bpf_link: the requested mode, or native first and
    /// generic when the driver has no native XDP (`None`). Natively, the device-bound VLAN
    /// variant goes first, and the plain program where the driver has no RX VLAN metadata.
    pub fn attach(&self, iface: &str, mode: Option<AttachMode>) -> Result<Attached, XdpError> {
        let (attached, link) = self.link(iface, mode)?;
        self.keep(link);
        Ok(attached)
    }

    /// Keeps the program attached through `link` for as long as the program lives.
    pub fn keep(&self, link: XdpLink) {
        self.links.lock().expect("links lock").push(link);
    }

    /// The link to device `ifindex`, given up: dropping it detaches the program there (a
    /// member that left the bond).
    pub fn take_link(&self, ifindex: u32) -> Option<XdpLink> {
        let mut links = self.links.lock().expect("links lock");
        let i = links.iter().position(|l| l.ifindex as u32 == ifindex)?;
        Some(links.swap_remove(i))
    }

    /// As `attach`, the link handed to the caller, not kept: the program stays attached as
    /// long as the caller keeps it.
    pub fn link(
        &self,
        iface: &str,
        mode: Option<AttachMode>,
    ) -> Result<(Attached, XdpLink), XdpError> {
        let ifindex = ifindex(iface)?;
        let prog_fd = self.prog_fd().ok_or_else(|| {
            XdpError::Load(format!("program {PROGRAM_NAME} missing from the object"))
        })?;
        let tries = match mode {
            Some(m) => vec![m],
            None => vec![AttachMode::Native, AttachMode::Generic],
        };
        let mut last = std::io::Error::from_raw_os_error(libc::EINVAL);
        for m in tries {
            if m == AttachMode::Native {
                if let Ok(bound) = self.load_bound(ifindex) {
                    let fd = bound
                        .progs()
                        .find(|p| p.name() == VLAN_PROGRAM_NAME)
                        .map(|p| p.as_fd().as_raw_fd());
                    if let Some(Ok(link)) = fd.map(|fd| link_xdp(fd, ifindex, m)) {
                        let attached = Attached {
                            mode: m,
                            vlan_metadata: true,
                        };
                        let link = XdpLink {
                            ifindex,
                            _link: link,
                            _bound: Some(bound),
                        };
                        return Ok((attached, link));
                    }
                }
            }
            match link_xdp(prog_fd, ifindex, m) {
                Ok(link) => {
                    let attached = Attached {
                        mode: m,
                        vlan_metadata: false,
                    };
                    let link = XdpLink {
                        ifindex,
                        _link: link,
                        _bound: None,
                    };
                    return Ok((attached, link));
                }
                Err(e) => last = e,
            }
        }
        let reason = match (last.raw_os_error(), attached_program(ifindex)) {
            (Some(libc::EBUSY | libc::EEXIST), Some(other)) => {
                format!("{last}: XDP program {other} is attached already")
            }
            _ => last.to_string(),
        };
        Err(XdpError::Attach {
            iface: iface.to_string(),
            reason,
        })
    }

    /// Forgets device `ifindex` (a member's old one, replaced by a new device): the program
    /// no longer takes it for a member, should its index come back on another device.
    pub fn forget_device(&self, ifindex: u32) {
        if let Ok(members) = self.map("members") {
            let _ = members.delete(&ifindex.to_ne_bytes());
        }
    }

    /// Forgets the member on device `ifindex` (`None`: absent) at `slot`: the program passes
    /// the device's frames to the kernel and redirects none to the slot's sockets, and the
    /// slot's counters start from zero for whoever takes it next.
    pub fn forget_member(&self, ifindex: Option<u32>, slot: u32) -> Result<(), XdpError> {
        let err = |map: &'static str| {
            move |e: libbpf_rs::Error| XdpError::Map {
                map,
                reason: e.to_string(),
            }
        };
        // Absent keys are fine: a member whose device was gone had none.
        if let Some(ifindex) = ifindex {
            self.forget_device(ifindex);
        }
        let xsks = self.map("xsks")?;
        for queue in 0..MAX_QUEUES {
            let _ = xsks.delete(&(slot * MAX_QUEUES + queue).to_ne_bytes());
        }
        let counters = self.map("counters")?;
        for what in 0..COUNTERS_PER_MEMBER {
            let key = (slot * COUNTERS_PER_MEMBER + what).to_ne_bytes();
            let cpus = counters
                .lookup_percpu(&key, MapFlags::ANY)
                .map_err(err("counters"))?
                .map_or(0, |per_cpu| per_cpu.len());
            let zero = vec![vec![0u8; 8]; cpus];
            counters
                .update_percpu(&key, &zero, MapFlags::ANY)
                .map_err(err("counters"))?;
        }
        Ok(())
    }

    /// Sets a member's slot and action.
    pub fn set_member(&self, iface: &str, slot: u32, action: MemberAction) -> Result<(), XdpError> {
        let key = (ifindex(iface)? as u32).to_ne_bytes();
        let mut value = [0u8; 8];
        value[..4].copy_from_slice(&slot.to_ne_bytes());
        value[4..].copy_from_slice(&(action as u32).to_ne_bytes());
        self.map("members")?
            .update(&key, &value, MapFlags::ANY)
            .map_err(|e| XdpError::Map {
                map: "members",
                reason: e.to_string(),
            })
    }

    /// Puts a socket in the XSKMAP for member `slot`, queue `queue`.
    pub fn bind_socket(&self, slot: u32, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        let key = (slot * MAX_QUEUES + queue).to_ne_bytes();
        self.map("xsks")?
            .update(&key, &(fd as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| XdpError::Map {
                map: "xsks",
                reason: e.to_string(),
            })
    }

    /// The ARP/NS monitor's targets: the program copies ARP and neighbour discovery to or
    /// from them into the `neighbours` ring buffer. Only what changed is written, so no
    /// target is ever missing while the set is updated.
    pub fn set_targets(&self, old: &[IpAddr], new: &[IpAddr]) -> Result<(), XdpError> {
        let map = self.map("targets")?;
        let err = |e: libbpf_rs::Error| XdpError::Map {
            map: "targets",
            reason: e.to_string(),
        };
        for gone in old.iter().filter(|a| !new.contains(a)) {
            let _ = map.delete(&target_key(*gone));
        }
        for added in new.iter().filter(|a| !old.contains(a)) {
            map.update(&target_key(*added), &[1], MapFlags::ANY)
                .map_err(err)?;
        }
        Ok(())
    }

    /// A reader of the neighbour messages the program copies for the monitor: each one is
    /// handed to `each` as (member slot, frame start) when the reader is consumed.
    pub fn neighbour_reader(
        &self,
        mut each: impl FnMut(u32, &[u8]) + 'static,
    ) -> Result<RingBuffer<'static>, XdpError> {
        let map = self.map("neighbours")?;
        let err = |e: libbpf_rs::Error| XdpError::Map {
            map: "neighbours",
            reason: e.to_string(),
        };
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&map, move |data: &[u8]| {
                // struct neighbour_report: slot, len (native endian), then the frame.
                if let (Some(slot), Some(len)) = (data.get(0..4), data.get(4..8)) {
                    let slot = u32::from_ne_bytes(slot.try_into().expect("4 bytes"));
                    let len = u32::from_ne_bytes(len.try_into().expect("4 bytes")) as usize;
                    if let Some(frame) = data.get(8..8 + len) {
                        each(slot, frame);
                    }
                }
                0
            })
            .map_err(err)?;
        builder.build().map_err(err)
    }

    /// A handle on the program's counters that any thread may read.
    pub fn counters_reader(&self) -> Result<XdpCountersReader, XdpError> {
        let map = self.map("counters")?;
        MapHandle::try_from(&map)
            .map(XdpCountersReader)
            .map_err(|e| XdpError::Map {
                map: "counters",
                reason: e.to_string(),
            })
    }

    fn map(&self, name: &'static str) -> Result<libbpf_rs::Map<'_>, XdpError> {
        self.object
            .maps()
            .find(|m| m.name() == name)
            .ok_or(XdpError::Map {
                map: name,
                reason: "missing from the object".into(),
            })
    }

    /// The file descriptor of the loaded program.
    pub fn prog_fd(&self) -> Option<RawFd> {
        self.object
            .progs()
            .find(|p| p.name() == PROGRAM_NAME)
            .map(|p| p.as_fd().as_raw_fd())
    }
}

/// Attaches program `prog_fd` to `ifindex` in `mode` with a bpf_link, whose descriptor is
/// returned: the program stays attached exactly as long as it is open.
fn link_xdp(prog_fd: RawFd, ifindex: i32, mode: AttachMode) -> std::io::Result<OwnedFd> {
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        flags: mode.flags().bits(),
        ..Default::default()
    };
    // SAFETY: `opts` is a valid, fully initialised options struct whose `sz` says its size;
    // libbpf reads it during the call only. The descriptors are plain integers.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: bpf_link_create returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The XDP program attached to `ifindex` in any mode, as "NAME (id N)", for messages.
fn attached_program(ifindex: i32) -> Option<String> {
    let ids = attached_ids(ifindex);
    let id = ids.first()?.0;
    let name = program_name(id).unwrap_or_else(|| "?".into());
    Some(format!("{name} (id {id})"))
}

/// The ids of the programs attached to `ifindex`, with the mode each runs in.
fn attached_ids(ifindex: i32) -> Vec<(u32, AttachMode)> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a valid options struct whose `sz` says its size; libbpf fills it in
    // during the call only.
    if unsafe { libbpf_sys::bpf_xdp_query(ifindex, 0, &mut opts) } != 0 {
        return Vec::new();
    }
    [
        (opts.drv_prog_id, AttachMode::Native),
        (opts.skb_prog_id, AttachMode::Generic),
    ]
    .into_iter()
    .filter(|&(id, _)| id != 0)
    .collect()
}

/// The name of the loaded BPF program with this id.
fn program_name(id: u32) -> Option<String> {
    ProgInfoIter::default()
        .find(|p| p.id == id)
        .map(|p| p.name.to_string_lossy().into_owned())
}

/// Removes a bond-dp program that an earlier bond-dp attached to `iface` without a bpf_link
/// and left behind when it died. Programs of other tools are left alone, and so is one that
/// a live bond-dp holds through a link (the kernel refuses to detach it). Returns whether
/// one was removed.
pub fn remove_leftover(iface: &str) -> Result<bool, XdpError> {
    let ifindex = ifindex(iface)?;
    let mut removed = false;
    for (id, mode) in attached_ids(ifindex) {
        if !matches!(
            program_name(id).as_deref(),
            Some(PROGRAM_NAME | VLAN_PROGRAM_NAME)
        ) {
            continue;
        }
        // SAFETY: plain integers; detaching takes no descriptor.
        let rc =
            unsafe { libbpf_sys::bpf_xdp_detach(ifindex, mode.flags().bits(), std::ptr::null()) };
        if rc != 0 {
            return Err(XdpError::Attach {
                iface: iface.to_string(),
                reason: format!(
                    "removing a leftover {PROGRAM_NAME} (id {id}): {}",
                    std::io::Error::from_raw_os_error(-rc)
                ),
            });
        }
        removed = true;
    }
    Ok(removed)
}

/// A target as the program's `targets` map keys it: IPv6, or IPv4 mapped (::ffff:a.b.c.d).
fn target_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Reads the per-member counters of a loaded program (Send and Sync: status threads use it).
pub struct XdpCountersReader(MapHandle);

impl XdpCountersReader {
    /// Member `slot`'s counters, summed over CPUs.
    pub fn read(&self, slot: u32) -> XdpCounters {
        let read = |what: u32| -> u64 {
            let key = (slot * COUNTERS_PER_MEMBER + what).to_ne_bytes();
            self.0
                .lookup_percpu(&key, MapFlags::ANY)
                .ok()
                .flatten()
                .map(|per_cpu| {
                    per_cpu
                        .iter()
                        .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                        .sum()
                })
                .unwrap_or(0)
        };
        XdpCounters {
            redirected: read(0),
            control_passed: read(1),
            inactive_dropped: read(2),
            no_socket_dropped: read(3),
            neighbour: read(4),
        }
    }
}

/// The interface index of `iface` in this network namespace.
pub fn ifindex(iface: &str) -> Result<i32, XdpError> {
    crate::monitor::read_ifindex(iface)
        .ok()
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| XdpError::NoInterface {
            iface: iface.to_string(),
        })
}
