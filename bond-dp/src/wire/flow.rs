//! Flow keys for transmit hashing, extracted the way the Linux bonding driver does.
//!
//! Two dissectors:
//! - [`dissect`] mirrors `bond_flow_dissect()` for layer2+3 / layer3+4: one IP header (no IPv6
//!   extension headers), ports for the protocols that have them, ICMP identifiers, and the packet
//!   embedded in an ICMP error.
//! - [`dissect_encap`] mirrors the kernel's generic flow dissector used for encap2+3 / encap3+4:
//!   it walks IPv6 extension headers and tunnels (GRE incl. transparent Ethernet bridging, IPIP,
//!   SIT) to the innermost header. bond-dp also enters VXLAN (UDP port 4789), which the kernel's
//!   dissector does not: balancing overlay traffic by its inner flow is what encap policies are
//!   for.
//!
//! `None` means "the kernel would fall back to the Ethernet hash" (not IP, or a header cut short).

use super::{be16, ethertype, ipproto, ne32, ETH_HEADER_LEN};

/// The fields `bond_ip_hash()` and the layer3+4 seed read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKeys {
    /// Source address folded to 32 bits (IPv4 as loaded; IPv6 as XOR of its four words).
    pub src: u32,
    /// Destination address, folded the same way.
    pub dst: u32,
    /// Source and destination port (or SPI) bytes as they sit in the packet, as a native u32.
    pub ports: u32,
    /// ICMP type, code and identifier (`type | code << 8 | id << 16`); 0 when absent.
    pub icmp: u32,
}

impl FlowKeys {
    /// The layer3+4 seed: the ICMP key when it carries an identifier, else the ports.
    #[inline(always)]
    pub fn l4_seed(&self) -> u32 {
        if self.icmp >> 16 != 0 {
            self.icmp
        } else {
            self.ports
        }
    }
}

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const ICMP_HEADER_LEN: usize = 8;
const UDP_HEADER_LEN: usize = 8;
const VXLAN_HEADER_LEN: usize = 8;
pub const VXLAN_PORT: u16 = 4789;
/// The kernel's flow dissector gives up after this many headers (MAX_FLOW_DISSECT_HDRS).
const MAX_HEADERS: usize = 15;

/// `bond_flow_dissect()` for the non-encap policies. `l34` asks for ports.
#[inline]
pub fn dissect(frame: &[u8], ethertype: u16, l3_offset: usize, l34: bool) -> Option<FlowKeys> {
    let mut keys = FlowKeys::default();
    let mut offset = l3_offset;
    let mut proto = None;
    flow_ip(frame, ethertype, &mut offset, &mut proto, l34, &mut keys)?;

    // ICMP errors carry the header of the packet that caused them: hash them with that flow.
    // Like the kernel, the branch looks at the protocol number, not at the IP version.
    let Some(p @ (ipproto::ICMP | ipproto::ICMPV6)) = proto else {
        return Some(keys);
    };
    keys.icmp = icmp_key(frame, offset);
    let icmp_type = keys.icmp as u8;
    let is_error = if p == ipproto::ICMP {
        icmp_is_error(icmp_type)
    } else {
        icmpv6_is_error(icmp_type)
    };
    if !is_error {
        return Some(keys);
    }
    offset += ICMP_HEADER_LEN;
    flow_ip(frame, ethertype, &mut offset, &mut proto, l34, &mut keys)?;
    Some(keys)
}

/// `bond_flow_ip()`: addresses of one IPv4/IPv6 header, and the ports behind it for layer3+4.
#[inline(always)]
fn flow_ip(
    frame: &[u8],
    ethertype: u16,
    offset: &mut usize,
    proto: &mut Option<u8>,
    l34: bool,
    keys: &mut FlowKeys,
) -> Option<()> {
    match ethertype {
        ethertype::IPV4 => {
            let ip = frame.get(*offset..*offset + IPV4_HEADER_LEN)?;
            keys.src = ne32(ip, 12)?;
            keys.dst = ne32(ip, 16)?;
            // The kernel trusts the IHL here: a bogus one only moves where the ports are read.
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            *offset += ihl;
            if !fragment {
                *proto = Some(ip[9]);
            }
        }
        ethertype::IPV6 => {
            let ip = frame.get(*offset..*offset + IPV6_HEADER_LEN)?;
            keys.src = fold_ipv6(&ip[8..24]);
            keys.dst = fold_ipv6(&ip[24..40]);
            *offset += IPV6_HEADER_LEN;
            *proto = Some(ip[6]);
        }
        _ => return None,
    }
    if l34 {
        if let Some(p) = *proto {
            keys.ports = ports(frame, *offset, p);
        }
    }
    Some(())
}

/// XOR of the four 32-bit words of an IPv6 address (`ipv6_addr_hash()`).
#[inline(always)]
fn fold_ipv6(addr: &[u8]) -> u32 {
    addr.chunks_exact(4)
        .fold(0, |h, w| h ^ u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

/// Where a protocol keeps its 4 bytes of ports (or SPI) relative to its header.
#[inline(always)]
fn ports_offset(proto: u8) -> Option<usize> {
    match proto {
        ipproto::TCP
        | ipproto::UDP
        | ipproto::DCCP
        | ipproto::ESP
        | ipproto::SCTP
        | ipproto::UDPLITE => Some(0),
        ipproto::AH => Some(4),
        _ => None,
    }
}

/// `__skb_flow_get_ports()`: 0 for protocols without ports and for truncated headers.
#[inline(always)]
fn ports(frame: &[u8], l4_offset: usize, proto: u8) -> u32 {
    ports_offset(proto)
        .and_then(|at| ne32(frame, l4_offset + at))
        .unwrap_or(0)
}

/// `skb_flow_get_icmp_tci()`: type, code and (for messages that have one) the identifier in
/// host order, 0 replaced by 1 so that "present" stays distinguishable. A header shorter than
/// 8 bytes gives 0.
#[inline(always)]
fn icmp_key(frame: &[u8], offset: usize) -> u32 {
    let Some(h) = frame.get(offset..offset + ICMP_HEADER_LEN) else {
        return 0;
    };
    let (icmp_type, code) = (h[0], h[1]);
    let id = if icmp_has_id(icmp_type) {
        match u16::from_be_bytes([h[4], h[5]]) {
            0 => 1,
            id => id,
        }
    } else {
        0
    };
    u32::from(icmp_type) | u32::from(code) << 8 | u32::from(id) << 16
}

/// The kernel's list (one list for ICMP and ICMPv6 alike): echo and timestamp messages.
#[inline(always)]
fn icmp_has_id(icmp_type: u8) -> bool {
    matches!(icmp_type, 0 | 8 | 13 | 14 | 128 | 129)
}

/// Destination unreachable, source quench, redirect, time exceeded, parameter problem.
#[inline(always)]
fn icmp_is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// Destination unreachable, packet too big, time exceeded, parameter problem.
#[inline(always)]
fn icmpv6_is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 1..=4)
}

/// The flow dissector for encap2+3 / encap3+4: the innermost addresses, and the ports and
/// ICMP key of the innermost transport header. Fragments stop the walk with addresses only.
pub fn dissect_encap(frame: &[u8], ethertype: u16, l3_offset: usize) -> Option<FlowKeys> {
    let mut keys = FlowKeys::default();
    let mut ethertype = ethertype;
    let mut offset = l3_offset;
    for _ in 0..MAX_HEADERS {
        // Network layer.
        let is_ipv6 = ethertype == ethertype::IPV6;
        let mut proto = match ethertype {
            ethertype::IPV4 => {
                let ip = frame.get(offset..offset + IPV4_HEADER_LEN)?;
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if ihl < IPV4_HEADER_LEN {
                    return None;
                }
                keys.src = ne32(ip, 12)?;
                keys.dst = ne32(ip, 16)?;
                offset += ihl;
                if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
                    return Some(keys);
                }
                ip[9]
            }
            ethertype::IPV6 => {
                let ip = frame.get(offset..offset + IPV6_HEADER_LEN)?;
                keys.src = fold_ipv6(&ip[8..24]);
                keys.dst = fold_ipv6(&ip[24..40]);
                offset += IPV6_HEADER_LEN;
                ip[6]
            }
            ethertype::VLAN | ethertype::QINQ => {
                ethertype = be16(frame, offset + 2)?;
                offset += 4;
                continue;
            }
            _ => return None,
        };
        // Transport layer, or a tunnel that sends us back to the network layer.
        let mut next = None;
        for _ in 0..MAX_HEADERS {
            match proto {
                // Extension headers exist only behind IPv6; elsewhere these are plain protocols.
                ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS if is_ipv6 => {
                    let ext = frame.get(offset..offset + 2)?;
                    proto = ext[0];
                    offset += (usize::from(ext[1]) + 1) * 8;
                }
                ipproto::FRAGMENT if is_ipv6 => {
                    frame.get(offset..offset + 8)?;
                    return Some(keys);
                }
                ipproto::IPIP => {
                    next = Some(ethertype::IPV4);
                    break;
                }
                ipproto::IPV6 => {
                    next = Some(ethertype::IPV6);
                    break;
                }
                ipproto::GRE => {
                    let (inner, len) = gre(frame, offset)?;
                    let Some(inner) = inner else {
                        return Some(keys);
                    };
                    offset += len;
                    next = Some(inner);
                    if inner == ethertype::TEB {
                        next = Some(be16(frame, offset + 12)?);
                        offset += ETH_HEADER_LEN;
                    }
                    break;
                }
                ipproto::UDP if be16(frame, offset + 2) == Some(VXLAN_PORT) => {
                    let inner = offset + UDP_HEADER_LEN + VXLAN_HEADER_LEN;
                    next = Some(be16(frame, inner + 12)?);
                    offset = inner + ETH_HEADER_LEN;
                    break;
                }
                _ => {
                    keys.ports = ports(frame, offset, proto);
                    if proto == ipproto::ICMP || proto == ipproto::ICMPV6 {
                        keys.icmp = icmp_key(frame, offset);
                    }
                    return Some(keys);
                }
            }
        }
        ethertype = next?;
    }
    Some(keys)
}

/// A GRE header: `(Some(inner EtherType), header length)` for version 0 without routing;
/// `(None, _)` for GRE the dissector does not enter (other versions, source routing).
fn gre(frame: &[u8], offset: usize) -> Option<(Option<u16>, usize)> {
    const CSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQ: u16 = 0x1000;
    const VERSION: u16 = 0x0007;
    let flags = be16(frame, offset)?;
    let inner = be16(frame, offset + 2)?;
    if flags & (VERSION | ROUTING) != 0 {
        return Some((None, 4));
    }
    let len = 4 + [CSUM, KEY, SEQ].iter().filter(|f| flags & **f != 0).count() * 4;
    frame.get(offset..offset + len)?;
    Some((Some(inner), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_udp(frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[
            0x45,
            0,
            0,
            28,
            0,
            0,
            (frag >> 8) as u8,
            frag as u8,
            64,
            17,
            0,
            0, // IPv4
            10,
            0,
            0,
            1, // src
            10,
            0,
            0,
            2, // dst
            0x30,
            0x39,
            0x00,
            0x50,
            0,
            8,
            0,
            0, // UDP 12345 -> 80
        ]);
        f
    }

    #[test]
    fn ipv4_ports() {
        let f = v4_udp(0);
        let k = dissect(&f, 0x0800, 14, true).unwrap();
        assert_eq!(k.src, u32::from_ne_bytes([10, 0, 0, 1]));
        assert_eq!(k.dst, u32::from_ne_bytes([10, 0, 0, 2]));
        assert_eq!(k.ports, u32::from_ne_bytes([0x30, 0x39, 0, 0x50]));
        assert_eq!(dissect(&f, 0x0800, 14, false).unwrap().ports, 0);
    }

    #[test]
    fn fragments_have_no_ports() {
        for frag in [0x2000 /* MF */, 0x0001 /* offset 8 */] {
            let k = dissect(&v4_udp(frag), 0x0800, 14, true).unwrap();
            assert_eq!(k.ports, 0);
            assert_ne!(k.src, 0);
        }
        // DF alone is not a fragment.
        assert_ne!(dissect(&v4_udp(0x4000), 0x0800, 14, true).unwrap().ports, 0);
    }

    #[test]
    fn truncated() {
        let f = v4_udp(0);
        assert!(dissect(&f[..33], 0x0800, 14, true).is_none());
        // Truncated L4: addresses, no ports.
        let k = dissect(&f[..36], 0x0800, 14, true).unwrap();
        assert_eq!(k.ports, 0);
        assert!(dissect(&f, 0x0806, 14, true).is_none());
    }

    #[test]
    fn icmp_id_zero_counts_as_one() {
        let mut f = v4_udp(0);
        f[14 + 9] = 1;
        f[34..42].copy_from_slice(&[8, 0, 0, 0, 0, 0, 0, 1]);
        let k = dissect(&f, 0x0800, 14, true).unwrap();
        assert_eq!(k.icmp, 8 | 1 << 16);
        assert_eq!(k.l4_seed(), k.icmp);
    }

    #[test]
    fn gre_header_lengths() {
        let f = [0x30, 0x00, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(gre(&f, 0), Some((Some(0x0800), 12)));
        assert_eq!(gre(&f[..11], 0), None);
        assert_eq!(gre(&[0x00, 0x01, 0x88, 0x0b], 0), Some((None, 4)));
    }
}
