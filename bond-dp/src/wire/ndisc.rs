//! IPv6 neighbour discovery: the unsolicited neighbour advertisements a failover sends, the
//! solicitations the NS monitor probes with, and reading both kinds back.

use std::net::{IpAddr, Ipv6Addr};

use super::neighbour::NeighbourMsg;
use super::{ethernet, ethertype, ipproto, MacAddr};

const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// Neighbour discovery option: source link-layer address.
const OPT_SOURCE_LL_ADDR: u8 = 1;
const IPV6_HEADER_LEN: usize = 40;
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
    packet(mac, ip, all_nodes, vlan, icmp)
}

/// A neighbour solicitation for `target` from `source` at `mac`, to the target's
/// solicited-node group (the NS monitor's probe). With no address of the bond's own,
/// `source` is `::` and the source link-layer option is left out, as RFC 4861 asks.
pub fn solicitation(
    mac: MacAddr,
    source: Ipv6Addr,
    target: Ipv6Addr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::from([
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    ]);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[ICMPV6_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0]);
    icmp.extend_from_slice(&t);
    if !source.is_unspecified() {
        icmp.extend_from_slice(&[OPT_SOURCE_LL_ADDR, 1]);
        icmp.extend_from_slice(&mac.0);
    }
    packet(mac, source, group, vlan, icmp)
}

/// Wraps an ICMPv6 message in IPv6 (hop limit 255: neighbour discovery must arrive
/// unrouted) and Ethernet, to the multicast MAC of `dst`.
fn packet(
    mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    vlan: Option<u16>,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    let sum = icmpv6_checksum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let d = dst.octets();
    let dst_mac = MacAddr([0x33, 0x33, d[12], d[13], d[14], d[15]]);
    let mut f = ethernet::header(dst_mac, mac, vlan, ethertype::IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(ipproto::ICMPV6);
    f.push(255);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The neighbour solicitation or advertisement in the IPv6 packet at `offset` (no extension
/// headers, as neighbour discovery sends it): an NS asks `sender` (its source) about
/// `target` (the address solicited); an NA answers from the address it advertises to its
/// destination.
pub fn parse(frame: &[u8], offset: usize) -> Option<NeighbourMsg> {
    let ip6 = frame.get(offset..offset + IPV6_HEADER_LEN)?;
    if ip6[0] >> 4 != 6 || ip6[6] != ipproto::ICMPV6 {
        return None;
    }
    let addr = |at: usize| -> Option<Ipv6Addr> {
        let b: [u8; 16] = ip6.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    let (src, dst) = (addr(8)?, addr(24)?);
    let icmp = frame.get(offset + IPV6_HEADER_LEN..)?;
    let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
    let target = IpAddr::from(target);
    match *icmp.first()? {
        ICMPV6_NEIGHBOR_SOLICIT => Some(NeighbourMsg {
            reply: false,
            sender: IpAddr::V6(src),
            target,
        }),
        ICMPV6_NEIGHBOR_ADVERT => Some(NeighbourMsg {
            reply: true,
            sender: target,
            target: IpAddr::V6(dst),
        }),
        _ => None,
    }
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
        let msg = parse(&f, 14).unwrap();
        assert!(msg.reply);
        assert_eq!(msg.sender, IpAddr::V6(ip));
    }

    #[test]
    fn solicitation_goes_to_the_solicited_node_group_and_reads_back() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let (us, them): (Ipv6Addr, Ipv6Addr) =
            ("fd00::1".parse().unwrap(), "fd00::12:3456".parse().unwrap());
        let f = solicitation(mac, us, them, Some(7));
        assert_eq!(&f[..6], &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(&f[12..18], &[0x81, 0, 0, 7, 0x86, 0xdd]);
        let ip6 = &f[18..58];
        assert_eq!(
            Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[24..40]).unwrap()),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
        let msg = NeighbourMsg::parse(&f).unwrap();
        assert_eq!(
            (msg.reply, msg.sender, msg.target),
            (false, IpAddr::V6(us), IpAddr::V6(them))
        );
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[24..40]).unwrap());
        assert_eq!(icmpv6_checksum(&src, &dst, &f[58..]), 0);
        // Without an address of our own: no source link-layer option.
        let dad = solicitation(mac, Ipv6Addr::UNSPECIFIED, them, None);
        assert_eq!(dad.len(), 14 + 40 + 24);
        assert!(parse(&f[..60], 18).is_none(), "truncated");
    }
}
