//! Address-resolution messages, ARP or IPv6 neighbour discovery, in the terms the ARP
//! monitor validates: who asks or answers, and about which address.

use std::net::IpAddr;

use super::arp::{ArpPacket, OP_REPLY};
use super::{ethertype, ndisc, L2Header};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighbourMsg {
    /// An answer (ARP reply, neighbour advertisement) rather than a question.
    pub reply: bool,
    /// Who speaks: the ARP sender, the NS source, the address an NA advertises.
    pub sender: IpAddr,
    /// Whom it concerns: the ARP target, the address an NS asks for, the NA's destination.
    pub target: IpAddr,
}

impl NeighbourMsg {
    /// The ARP packet or neighbour solicitation/advertisement in `frame`, untagged or in
    /// VLAN tags; `None` for anything else.
    pub fn parse(frame: &[u8]) -> Option<NeighbourMsg> {
        let l2 = L2Header::parse(frame)?;
        match l2.ethertype {
            ethertype::ARP => ArpPacket::parse(frame, l2.l3_offset).map(NeighbourMsg::from),
            ethertype::IPV6 => ndisc::parse(frame, l2.l3_offset),
            _ => None,
        }
    }
}

impl From<ArpPacket> for NeighbourMsg {
    fn from(arp: ArpPacket) -> Self {
        NeighbourMsg {
            reply: arp.op == OP_REPLY,
            sender: IpAddr::from(arp.sender_ip),
            target: IpAddr::from(arp.target_ip),
        }
    }
}
