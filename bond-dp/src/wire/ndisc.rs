//! IPv6 neighbour discovery: the unsolicited neighbour advertisements a failover sends.

use std::net::Ipv6Addr;

use super::{ethernet, ethertype, ipproto, MacAddr};

const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// The Override flag: peers replace the link-layer address they cached.
const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
/// Neighbour discovery option: target link-layer address.
const OPT_TARGET_LL_ADDR: u8 = 2;

/// An unsolicited neighbour advertisement for `ip` at `mac` to all nodes (ff02::1), as the
/// kernel sends on failover (`ndisc_send_unsol_na`): Override set, Solicited clear.
pub fn unsolicited_na(mac: MacAddr, ip: Ipv6Addr, vlan: Option<u16>) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERT, 0, 0, 0]);
    icmp.extend_from_slice(&NA_FLAG_OVERRIDE.to_be_bytes());
    icmp.extend_from_slice(&ip.octets());
    icmp.extend_from_slice(&[OPT_TARGET_LL_ADDR, 1]);
    icmp.extend_from_slice(&mac.0);
    let sum = icmpv6_checksum(&ip, &all_nodes, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let dst = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
    let mut f = ethernet::header(dst, mac, vlan, ethertype::IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(ipproto::ICMPV6);
    f.push(255); // hop limit: neighbour discovery must arrive unrouted
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&all_nodes.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The ICMPv6 checksum: one's complement sum over the pseudo-header and the message.
fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |&lo| u32::from(lo));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ipproto::ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_checks_out() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let ip: Ipv6Addr = "fd00::9".parse().unwrap();
        let f = unsolicited_na(mac, ip, None);
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let (ip6, icmp) = f[14..].split_at(40);
        assert_eq!((ip6[6], ip6[7]), (ipproto::ICMPV6, 255));
        assert_eq!(icmp[0], ICMPV6_NEIGHBOR_ADVERT);
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[26..32], &mac.0);
        // A correct checksum sums the whole message (checksum included) to zero.
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[24..40]).unwrap());
        let mut zeroed = icmp.to_vec();
        zeroed[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(
            icmpv6_checksum(&src, &dst, &zeroed).to_be_bytes(),
            [icmp[2], icmp[3]]
        );
        assert_eq!(icmpv6_checksum(&src, &dst, icmp), 0);
    }
}
