//! Loading bond-dp's XDP program, attaching it to members, and driving its maps. Dropping an
//! [`XdpProgram`] detaches it from every interface it was attached to.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use libbpf_rs::{MapCore, MapFlags, MapHandle, Object, ObjectBuilder, Xdp, XdpFlags};
use thiserror::Error;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bond_xdp.o"));
/// Must match bpf/bond_xdp.c.
pub const MAX_MEMBERS: u32 = 64;
pub const MAX_QUEUES: u32 = 64;
const COUNTERS_PER_MEMBER: u32 = 4;

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
    /// Drop, but for ARP, which goes to the data plane for the ARP monitor.
    DropKeepArp = 2,
}

/// Frame counts the program keeps per member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct XdpCounters {
    pub redirected: u64,
    pub control_passed: u64,
    pub inactive_dropped: u64,
    pub no_socket_dropped: u64,
}

pub struct XdpProgram {
    object: Object,
    attached: Vec<(i32, String, AttachMode)>,
}

impl XdpProgram {
    pub fn load() -> Result<XdpProgram, XdpError> {
        let open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(|e| XdpError::Load(e.to_string()))?;
        let object = open.load().map_err(|e| XdpError::Load(e.to_string()))?;
        Ok(XdpProgram {
            object,
            attached: Vec::new(),
        })
    }

    /// Attaches to `iface`: the requested mode, or native first and generic when the driver
    /// has no native XDP (`None`). Returns the mode it runs in.
    pub fn attach(
        &mut self,
        iface: &str,
        mode: Option<AttachMode>,
    ) -> Result<AttachMode, XdpError> {
        let ifindex = ifindex(iface)?;
        let prog = self
            .object
            .progs()
            .find(|p| p.name() == "bond_xdp")
            .ok_or_else(|| XdpError::Load("program bond_xdp missing from the object".into()))?;
        let xdp = Xdp::new(prog.as_fd());
        let tries = match mode {
            Some(m) => vec![m],
            None => vec![AttachMode::Native, AttachMode::Generic],
        };
        let mut last = String::new();
        for m in tries {
            match xdp.attach(ifindex, m.flags() | XdpFlags::UPDATE_IF_NOEXIST) {
                Ok(()) => {
                    self.attached.push((ifindex, iface.to_string(), m));
                    return Ok(m);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(XdpError::Attach {
            iface: iface.to_string(),
            reason: format!("{last} (another XDP program attached?)"),
        })
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

    /// The file descriptor of the loaded program (for tests that check what is attached).
    pub fn prog_fd(&self) -> Option<RawFd> {
        self.object
            .progs()
            .find(|p| p.name() == "bond_xdp")
            .map(|p| p.as_fd().as_raw_fd())
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
        }
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        let Some(prog) = self.object.progs().find(|p| p.name() == "bond_xdp") else {
            return;
        };
        let xdp = Xdp::new(prog.as_fd());
        for (ifindex, iface, mode) in self.attached.drain(..) {
            if let Err(e) = xdp.detach(ifindex, mode.flags()) {
                tracing::warn!(%iface, "detaching XDP: {e}");
            }
        }
    }
}

/// The interface index of `iface` in this network namespace.
pub fn ifindex(iface: &str) -> Result<i32, XdpError> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| XdpError::NoInterface {
            iface: iface.to_string(),
        })
}
