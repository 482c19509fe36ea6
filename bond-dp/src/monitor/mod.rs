//! Member link monitoring: the pure state machines (miimon, ARP/NS monitor, TX stalls, peer
//! notification schedule) and the I/O they need (sysfs link facts, rtnetlink events,
//! addresses and MACs, packet sockets).

pub mod arp;
pub mod link;
pub mod mii;
pub mod netlink;
pub mod notify;
pub mod packet;
pub mod stall;

pub use arp::{ArpMonitor, Arrivals};
pub use link::{read_ifindex, read_link, read_mac, read_mtu, CarrierReader};
pub use mii::{LinkFacts, MiiMachine, Transition};
pub use netlink::{
    add_address, delete_link, host_addresses, set_carrier, set_mac, set_mac_and_up, set_mtu,
    AddressEvents, HostAddress, LinkEvents,
};
pub use notify::PeerNotifier;
pub use packet::PacketSocket;
pub use stall::StallWatch;
