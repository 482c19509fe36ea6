//! ARP over Ethernet/IPv4: the fields balance-alb reads and rewrites, and the gratuitous
//! ARPs a failover sends.

use std::net::Ipv4Addr;

use super::{be16, ethernet, ethertype, MacAddr};

pub const ARP_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// A validated view of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: [u8; 4],
    pub target_mac: MacAddr,
    pub target_ip: [u8; 4],
}

impl ArpPacket {
    /// Parses the ARP packet at `offset`; `None` unless it is Ethernet/IPv4 and complete.
    pub fn parse(frame: &[u8], offset: usize) -> Option<ArpPacket> {
        let a = frame.get(offset..offset + ARP_LEN)?;
        if be16(a, 0)? != 1 || be16(a, 2)? != 0x0800 || a[4] != 6 || a[5] != 4 {
            return None;
        }
        let mac = |at: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&a[at..at + 6]);
            MacAddr(m)
        };
        let ip = |at: usize| [a[at], a[at + 1], a[at + 2], a[at + 3]];
        Some(ArpPacket {
            op: be16(a, 6)?,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }
}

/// Overwrites the ARP sender hardware address of the packet at `offset`.
pub fn set_sender_mac(frame: &mut [u8], offset: usize, mac: MacAddr) -> bool {
    super::mac::write_mac(frame, offset + 8, mac)
}

/// An ARP request for `target` from `sender` at `mac`, broadcast (the ARP monitor's probe;
/// `sender` is 0.0.0.0 when the bond has no address on the target's subnet).
pub fn request(mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr, vlan: Option<u16>) -> Vec<u8> {
    let mut f = ethernet::header(MacAddr::BROADCAST, mac, vlan, ethertype::ARP);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&OP_REQUEST.to_be_bytes());
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&MacAddr::ZERO.0);
    f.extend_from_slice(&target.octets());
    f
}

/// A gratuitous ARP for `ip` at `mac`, as the kernel sends it on failover: a broadcast
/// request for its own address.
pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr, vlan: Option<u16>) -> Vec<u8> {
    request(mac, ip, ip, vlan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reply() {
        let arp = [
            0, 1, 8, 0, 6, 4, 0, 2, // Ethernet/IPv4, reply
            2, 0, 0, 0, 0, 1, 192, 168, 1, 1, // sender
            2, 0, 0, 0, 0, 2, 192, 168, 1, 2, // target
        ];
        let p = ArpPacket::parse(&arp, 0).unwrap();
        assert_eq!(p.op, OP_REPLY);
        assert_eq!(p.target_ip, [192, 168, 1, 2]);
        assert!(ArpPacket::parse(&arp[..27], 0).is_none());
        let mut f = arp;
        assert!(set_sender_mac(&mut f, 0, MacAddr([7; 6])));
        assert_eq!(ArpPacket::parse(&f, 0).unwrap().sender_mac, MacAddr([7; 6]));
    }

    #[test]
    fn gratuitous_announces_the_address_at_the_mac() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let f = gratuitous(mac, Ipv4Addr::new(10, 1, 2, 3), None);
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[8, 6]);
        let p = ArpPacket::parse(&f, 14).unwrap();
        assert_eq!((p.op, p.sender_mac), (OP_REQUEST, mac));
        assert_eq!(p.sender_ip, [10, 1, 2, 3]);
        assert_eq!(p.target_ip, p.sender_ip);
        let tagged = gratuitous(mac, Ipv4Addr::new(10, 1, 2, 3), Some(100));
        assert_eq!(&tagged[12..18], &[0x81, 0, 0, 100, 8, 6]);
        assert_eq!(ArpPacket::parse(&tagged, 18), Some(p));
    }
}
