//! bond-dp: a userspace NIC bonding data plane over AF_XDP.
//!
//! Layers, with dependencies pointing inward:
//! - [`wire`]: zero-copy frame views (Ethernet/VLAN, IP, ports, ARP) — pure.
//! - [`policy`]: transmit selection for every mode and hash policy — pure.
//! - [`config`]: bonding options with the kernel's names, rules and messages — pure (its
//!   `ConfigFile::load` reads the file it names).
//! - [`status`]: what status shows of a bond, its own data model — pure.
//! - [`control`]: status rendering (/proc, JSON, metrics) and the control socket.
//! - [`lacp`]: 802.3ad LACP machines, PDUs and aggregator selection — pure.
//! - [`monitor`]: member link state.
//! - [`limits`]: the sizes the XDP program and this side share (from bpf/limits.h).
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
