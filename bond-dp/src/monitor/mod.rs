//! Member link monitoring: the pure state machines (miimon, peer notification schedule) and
//! the I/O they need (sysfs link facts, rtnetlink events and addresses, packet sockets).

pub mod arp;
pub mod link;
pub mod mii;
pub mod netlink;
pub mod notify;
pub mod packet;

pub use arp::ArpMonitor;
pub use link::{read_link, CarrierReader, LinkFacts};
pub use mii::{MiiMachine, Transition};
pub use netlink::{host_addresses, set_mac, HostAddress, LinkEvents};
pub use notify::PeerNotifier;
pub use packet::PacketSocket;
