//! bond-dp: a userspace NIC bonding data plane over AF_XDP.
//!
//! Layers, with dependencies pointing inward. Pure (no I/O, no clock; time comes in as an
//! argument):
//! - [`wire`]: zero-copy frame views (Ethernet/VLAN, IP, ports, ARP, checksums, GSO/GRO).
//! - [`policy`]: transmit selection for every mode and hash policy.
//! - [`lacp`]: 802.3ad LACP machines, PDUs and aggregator selection.
//! - [`config`]: bonding options with the kernel's names, rules and messages (its
//!   `ConfigFile::load` reads the file it names).
//! - [`status`]: what status shows of a bond, its own data model.
//! - [`bond`]: one bond's control state (members, active member, MACs, snapshots), and the
//!   monitor's state machines in [`monitor`] (miimon, ARP/NS, TX stalls).
//! - [`limits`]: the sizes the XDP program and this side share (from bpf/limits.h).
//!
//! With I/O, at the edges:
//! - `xdp`: the XDP program, AF_XDP sockets and rings on a shared UMEM.
//! - [`engine`]: the poll-mode workers that move frames between member sockets and the host
//!   side ([`engine::MemberPort`] and [`engine::HostPort`] are its contracts; tests run it
//!   on in-memory ports).
//! - [`host`]: the host sides (a TAP, the in-process API).
//! - [`dataplane`]: one bond's data plane put together; members join and leave it in place.
//! - [`monitor`]'s readers: carrier, rtnetlink, packet sockets.
//! - [`control`]: status rendering (/proc, JSON, metrics) and the control socket.
//! - [`daemon`]: `bond-dp run`, which ties the above together.

#[macro_use]
mod named;

pub mod bond;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod engine;
mod fault;
pub mod host;
pub mod lacp;
pub mod limits;
pub mod monitor;
pub mod policy;
mod sockopt;
pub mod status;
pub mod wire;
/// The AF_XDP layer hands out raw frame descriptors, which safe code could use while the
/// kernel owns the frame: it is the crate's own, but for the raw forwarder of the
/// benchmarks (feature `raw-xdp`). Applications use [`host::AppPort`] and its owned frames.
#[cfg(feature = "raw-xdp")]
pub mod xdp;
#[cfg(not(feature = "raw-xdp"))]
pub(crate) mod xdp;
