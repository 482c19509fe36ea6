//! Ethernet II with up to two 802.1Q / 802.1ad tags.

use super::{be16, ethertype, MacAddr};

pub const ETH_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
/// bond-dp looks through at most this many tags (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN_TAGS: usize = 2;

/// The link-layer facts the transmit hashes need, read once per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Header {
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The EtherType after any VLAN tags (tags skipped, as the kernel sees them stripped).
    pub ethertype: u16,
    /// Offset of the network header.
    pub l3_offset: usize,
    /// TCI of the outermost tag, if the frame is tagged.
    pub outer_tci: Option<u16>,
}

impl L2Header {
    /// Reads the Ethernet header and skips up to two VLAN tags. `None` when the frame is
    /// shorter than an Ethernet header. A tag cut short leaves its TPID as the EtherType.
    #[inline]
    pub fn parse(frame: &[u8]) -> Option<L2Header> {
        let hdr = frame.get(..ETH_HEADER_LEN)?;
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&hdr[0..6]);
        src.copy_from_slice(&hdr[6..12]);
        let mut ethertype = u16::from_be_bytes([hdr[12], hdr[13]]);
        let mut l3_offset = ETH_HEADER_LEN;
        let mut outer_tci = None;
        for _ in 0..MAX_VLAN_TAGS {
            if !is_vlan_tpid(ethertype) {
                break;
            }
            // Tag layout after the TPID: TCI (2 bytes), then the next EtherType.
            let (Some(tci), Some(next)) = (be16(frame, l3_offset), be16(frame, l3_offset + 2))
            else {
                break;
            };
            outer_tci.get_or_insert(tci);
            ethertype = next;
            l3_offset += VLAN_TAG_LEN;
        }
        Some(L2Header {
            dst: MacAddr(dst),
            src: MacAddr(src),
            ethertype,
            l3_offset,
            outer_tci,
        })
    }
}

#[inline(always)]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ethertype::VLAN || ethertype == ethertype::QINQ
}

/// Overwrites the source MAC of a frame in place (tlb/alb send from a member's own address).
pub fn set_source_mac(frame: &mut [u8], mac: MacAddr) -> bool {
    super::mac::write_mac(frame, 6, mac)
}

/// Overwrites the destination MAC of a frame in place (alb: a frame a peer sent to a member's
/// own address is for the host).
pub fn set_destination_mac(frame: &mut [u8], mac: MacAddr) -> bool {
    super::mac::write_mac(frame, 0, mac)
}

/// A frame's Ethernet header, 802.1Q-tagged when `vlan` is given, for frames bond-dp makes.
pub fn header(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HEADER_LEN + 4 + 64);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(id) = vlan {
        f.extend_from_slice(&super::ethertype::VLAN.to_be_bytes());
        f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 14] = [
        0x02, 0, 0, 0, 0, 0x02, // dst
        0x02, 0, 0, 0, 0, 0x01, // src
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn untagged() {
        let h = L2Header::parse(&UNTAGGED).unwrap();
        assert_eq!(h.ethertype, 0x0800);
        assert_eq!(h.l3_offset, 14);
        assert_eq!(h.outer_tci, None);
        assert_eq!(h.src.0[5], 1);
    }

    #[test]
    fn qinq_skips_both_tags() {
        let frame = [
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, //
            0x88, 0xa8, 0x20, 0x0a, // S-tag, PCP 1, VID 10
            0x81, 0x00, 0x00, 0x14, // C-tag, VID 20
            0x86, 0xdd,
        ];
        let h = L2Header::parse(&frame).unwrap();
        assert_eq!(h.ethertype, 0x86dd);
        assert_eq!(h.l3_offset, 22);
        assert_eq!(h.outer_tci, Some(0x200a));
    }

    #[test]
    fn short_frames() {
        assert!(L2Header::parse(&UNTAGGED[..13]).is_none());
        // A VLAN TPID with the tag cut off: the TPID stays the EtherType.
        let mut f = UNTAGGED.to_vec();
        f[12] = 0x81;
        f[13] = 0x00;
        f.extend_from_slice(&[0x00]);
        let h = L2Header::parse(&f).unwrap();
        assert_eq!(h.ethertype, 0x8100);
        assert_eq!(h.l3_offset, 14);
    }

    #[test]
    fn rewrites_source() {
        let mut f = UNTAGGED;
        assert!(set_source_mac(&mut f, MacAddr([9; 6])));
        assert_eq!(&f[6..12], &[9; 6]);
        assert!(!set_source_mac(&mut [0u8; 8], MacAddr([9; 6])));
    }
}
