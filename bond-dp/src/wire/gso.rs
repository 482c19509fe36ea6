//! What a NIC does for a host that offloads transmit work: finish a checksum the host left
//! partial, and cut a TCP super-frame (TSO/GSO, up to 64 KB) into segments the wire carries.
//!
//! The TAP hands bond-dp such frames with a virtio-net header ([`VnetHdr`]) once it offers
//! offloads: one read moves 64 KB instead of 1.5 KB, and the work the kernel skipped is done
//! here, on the way to the members.

use super::checksum::{fold, pseudo_header, set_ip_length, sum};
use super::{ethertype, ipproto, L2Header};

/// The virtio-net header in front of every frame on a TAP opened with IFF_VNET_HDR (the
/// 10-byte form; little-endian, as the host's byte order on the machines bond-dp runs on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub const LEN: usize = 10;
    /// flags: the checksum from `csum_start` is partial; its field is at `csum_offset`.
    pub const F_NEEDS_CSUM: u8 = 1;
    pub const GSO_NONE: u8 = 0;
    pub const GSO_TCPV4: u8 = 1;
    pub const GSO_UDP: u8 = 3;
    pub const GSO_TCPV6: u8 = 4;
    /// Added to a TCP type: the super-frame carries CWR, which goes on the first segment only.
    pub const GSO_ECN: u8 = 0x80;

    pub fn parse(b: &[u8; Self::LEN]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// The header for a frame handed to the host as it is: it says where the TCP/UDP
    /// checksum is partial, if the sender left it so (the host finishes or trusts it, as
    /// from a NIC), and asks nothing otherwise.
    pub fn for_checksum(frame: &[u8]) -> VnetHdr {
        match super::checksum::partial_checksum(frame) {
            Some(p) => VnetHdr {
                flags: Self::F_NEEDS_CSUM,
                csum_start: p.start as u16,
                csum_offset: p.offset as u16,
                ..Default::default()
            },
            None => VnetHdr::default(),
        }
    }

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// Why a frame from the host could not be made ready for the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadError {
    /// The checksum's place lies outside the frame.
    BadChecksumPlace,
    /// A segmentation type bond-dp does not offer (it offers TCP over IPv4 and IPv6).
    UnsupportedGso,
    /// Headers that are not Ethernet / IP / TCP as the type says, or a zero segment size.
    BadGsoFrame,
}

/// Finishes the checksum the host left partial: the field at `start + offset` holds the
/// pseudo-header's sum, and the checksum covers everything from `start` (as Linux's
/// skb_checksum_help finishes CHECKSUM_PARTIAL).
pub fn finish_partial(frame: &mut [u8], start: usize, offset: usize) -> Result<(), OffloadError> {
    let field = start
        .checked_add(offset)
        .filter(|&f| f + 2 <= frame.len())
        .ok_or(OffloadError::BadChecksumPlace)?;
    let check = match !fold(sum(&frame[start..])) {
        0 => 0xffff,
        c => c,
    };
    frame[field..field + 2].copy_from_slice(&check.to_be_bytes());
    Ok(())
}

/// What the host asked of a frame, checked: a frame whose partial checksum (if any) is now
/// finished (`Ok(None)`), or a TCP super-frame and how it cuts into segments, for a device
/// to segment or for [`TcpSegments::write`].
pub fn prepare(frame: &mut [u8], hdr: &VnetHdr) -> Result<Option<TcpSegments>, OffloadError> {
    if hdr.gso_type != VnetHdr::GSO_NONE {
        return TcpSegments::new(frame, hdr).map(Some);
    }
    if hdr.flags & VnetHdr::F_NEEDS_CSUM != 0 {
        finish_partial(frame, hdr.csum_start.into(), hdr.csum_offset.into())?;
    }
    Ok(None)
}

/// How a TCP super-frame is cut into segments of at most `mss` bytes of payload: each carries
/// the headers with the lengths, the IPv4 id, the sequence number, the flags and the checksums
/// made right for it. It holds where the headers are, not the frame: `write` is given the
/// frame `new` was, so a caller can keep both without one borrowing the other.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegments {
    frame_len: usize,
    l3: usize,
    l4: usize,
    /// Where the payload starts (the end of the TCP header).
    payload: usize,
    mss: usize,
    ipv4: bool,
    ecn: bool,
}

/// TCP flags that belong on the last segment only (FIN, PSH), and on the first only (CWR).
const TCP_FIN_PSH: u8 = 0x01 | 0x08;
const TCP_CWR: u8 = 0x80;

impl TcpSegments {
    pub fn new(frame: &[u8], hdr: &VnetHdr) -> Result<TcpSegments, OffloadError> {
        let ipv4 = match hdr.gso_type & !VnetHdr::GSO_ECN {
            VnetHdr::GSO_TCPV4 => true,
            VnetHdr::GSO_TCPV6 => false,
            _ => return Err(OffloadError::UnsupportedGso),
        };
        let bad = OffloadError::BadGsoFrame;
        let l2 = L2Header::parse(frame).ok_or(bad)?;
        let l3 = l2.l3_offset;
        let l4 = match (ipv4, l2.ethertype) {
            (true, ethertype::IPV4) => {
                let ip = frame.get(l3..l3 + 20).ok_or(bad)?;
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                (ip[0] >> 4 == 4 && ihl >= 20 && ip[9] == ipproto::TCP)
                    .then_some(l3 + ihl)
                    .ok_or(bad)?
            }
            (false, ethertype::IPV6) => {
                let ip = frame.get(l3..l3 + 40).ok_or(bad)?;
                (ip[0] >> 4 == 6 && ip[6] == ipproto::TCP)
                    .then_some(l3 + 40)
                    .ok_or(bad)?
            }
            _ => return Err(bad),
        };
        let offset = usize::from(frame.get(l4 + 12).ok_or(bad)? >> 4) * 4;
        let payload = l4 + offset;
        if offset < 20 || payload > frame.len() || hdr.gso_size == 0 {
            return Err(bad);
        }
        Ok(TcpSegments {
            frame_len: frame.len(),
            l3,
            l4,
            payload,
            mss: usize::from(hdr.gso_size),
            ipv4,
            ecn: hdr.gso_type & VnetHdr::GSO_ECN != 0,
        })
    }

    /// How many segments the super-frame makes (at least one).
    pub fn count(&self) -> usize {
        (self.frame_len - self.payload).div_ceil(self.mss).max(1)
    }

    /// The headers every segment repeats (Ethernet to TCP), in bytes.
    pub fn header_len(&self) -> usize {
        self.payload
    }

    /// The longest segment's length: what the wire must carry.
    pub fn longest(&self) -> usize {
        self.payload + self.mss.min(self.frame_len - self.payload)
    }

    /// The bytes all segments put on the wire together.
    pub fn wire_bytes(&self) -> usize {
        self.frame_len + (self.count() - 1) * self.payload
    }

    /// Segment `i` (of `count()`) of `frame` (the one `new` read), written into `out`
    /// (cleared first).
    pub fn write(&self, frame: &[u8], i: usize, out: &mut Vec<u8>) {
        debug_assert_eq!(frame.len(), self.frame_len, "the frame `new` read");
        let (f, l3, l4) = (frame, self.l3, self.l4);
        let start = self.payload + i * self.mss;
        let end = (start + self.mss).min(f.len());
        out.clear();
        out.extend_from_slice(&f[..self.payload]);
        out.extend_from_slice(&f[start.min(end)..end]);
        let last = i + 1 == self.count();
        let l4_len = out.len() - l4;
        if self.ipv4 {
            let id = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]).wrapping_add(i as u16);
            out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
        }
        set_ip_length(out, l3, l4, self.ipv4);
        let seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]])
            .wrapping_add((i * self.mss) as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        if !last {
            out[l4 + 13] &= !TCP_FIN_PSH;
        }
        if i > 0 && self.ecn {
            out[l4 + 13] &= !TCP_CWR;
        }
        // The checksum, over the pseudo-header and the segment.
        let pseudo = pseudo_header(&out[l3..], self.ipv4, ipproto::TCP, l4_len);
        out[l4 + 16..l4 + 18].fill(0);
        let check = !fold(pseudo + sum(&out[l4..]));
        out[l4 + 16..l4 + 18].copy_from_slice(&check.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{complete_l4_checksum, L4Checksum};

    /// A TCP super-frame over IPv4 (or IPv6) with `payload` bytes, flags PSH|ACK|FIN|CWR,
    /// its TCP checksum partial (the pseudo-header's sum), as the host hands it over.
    fn super_frame(ipv4: bool, payload: usize) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if ipv4 {
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        } else {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 6, 64]);
            f.extend_from_slice(&[0xfd; 16]);
            f.extend_from_slice(&[0xfe; 16]);
        }
        let l4 = f.len();
        f.extend_from_slice(&[0x04, 0xd2, 0, 80, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 7]);
        f.extend_from_slice(&[0x50, 0x80 | 0x10 | 0x08 | 0x01, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..payload).map(|i| (i * 7 % 251) as u8));
        if ipv4 {
            let total = (f.len() - 14) as u16; // over 64 KB it wraps, as the host leaves it
            f[16..18].copy_from_slice(&total.to_be_bytes());
        } else {
            let len = (f.len() - l4) as u16;
            f[18..20].copy_from_slice(&len.to_be_bytes());
        }
        f
    }

    fn hdr(ipv4: bool, mss: u16) -> VnetHdr {
        VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            gso_type: if ipv4 {
                VnetHdr::GSO_TCPV4
            } else {
                VnetHdr::GSO_TCPV6
            } | VnetHdr::GSO_ECN,
            gso_size: mss,
            ..Default::default()
        }
    }

    #[test]
    fn a_super_frame_becomes_segments_with_every_field_made_right() {
        for ipv4 in [true, false] {
            let payload = 10_000;
            let frame = super_frame(ipv4, payload);
            let segs = TcpSegments::new(&frame, &hdr(ipv4, 1448)).unwrap();
            assert_eq!(segs.count(), 7);
            let (l3, l4) = (14, if ipv4 { 34 } else { 54 });
            assert_eq!(segs.header_len(), l4 + 20);
            assert_eq!(segs.longest(), l4 + 20 + 1448);
            let mut joined = Vec::new();
            let mut seg = Vec::new();
            let mut wire = 0;
            for i in 0..segs.count() {
                segs.write(&frame, i, &mut seg);
                wire += seg.len();
                let data = &seg[l4 + 20..];
                assert!(data.len() <= 1448);
                joined.extend_from_slice(data);
                // Both checksums verify as finished.
                let mut check = seg.clone();
                assert_eq!(complete_l4_checksum(&mut check), L4Checksum::Finished);
                if ipv4 {
                    assert_eq!(fold(sum(&seg[l3..l4])), 0xffff, "IPv4 header checksum");
                    let total = u16::from_be_bytes([seg[16], seg[17]]) as usize;
                    assert_eq!(total, seg.len() - 14);
                    assert_eq!(u16::from_be_bytes([seg[18], seg[19]]), 0x1234 + i as u16);
                } else {
                    let len = u16::from_be_bytes([seg[18], seg[19]]) as usize;
                    assert_eq!(len, seg.len() - l4);
                }
                let seq = u32::from_be_bytes([seg[l4 + 4], seg[l4 + 5], seg[l4 + 6], seg[l4 + 7]]);
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(i as u32 * 1448));
                let flags = seg[l4 + 13];
                let last = i == segs.count() - 1;
                assert_eq!(flags & TCP_FIN_PSH != 0, last, "FIN/PSH on the last only");
                assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR on the first only");
                assert_eq!(flags & 0x10, 0x10, "ACK on every one");
            }
            assert_eq!(joined, frame[l4 + 20..], "the payload, whole and in order");
            assert_eq!(wire, segs.wire_bytes());
        }
    }

    #[test]
    fn frames_that_do_not_match_their_type_are_refused() {
        let v4 = super_frame(true, 3000);
        assert_eq!(
            TcpSegments::new(&v4, &hdr(false, 1448)).unwrap_err(),
            OffloadError::BadGsoFrame
        );
        let udp = VnetHdr {
            gso_type: VnetHdr::GSO_UDP,
            ..hdr(true, 1448)
        };
        assert_eq!(
            TcpSegments::new(&v4, &udp).unwrap_err(),
            OffloadError::UnsupportedGso
        );
        assert_eq!(
            TcpSegments::new(&v4[..40], &hdr(true, 1448)).unwrap_err(),
            OffloadError::BadGsoFrame
        );
        assert!(
            TcpSegments::new(&v4, &hdr(true, 0)).is_err(),
            "no segment size"
        );
        // Arbitrary bytes never panic.
        for n in 0..80 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 31 % 256) as u8).collect();
            let _ = TcpSegments::new(&junk, &hdr(true, 100)).map(|s| {
                let mut out = Vec::new();
                (0..s.count()).for_each(|i| s.write(&junk, i, &mut out));
            });
        }
    }

    #[test]
    fn a_partial_checksum_is_finished_where_the_header_says() {
        let mut frame = super_frame(true, 500);
        // What the host leaves: the pseudo-header's sum in the field.
        let pseudo = sum(&frame[26..34]) + 6 + (frame.len() - 34) as u64;
        frame[50..52].copy_from_slice(&fold(pseudo).to_be_bytes());
        finish_partial(&mut frame, 34, 16).unwrap();
        assert_eq!(
            complete_l4_checksum(&mut frame.clone()),
            L4Checksum::Finished
        );
        let len = frame.len();
        assert_eq!(
            finish_partial(&mut frame, len - 1, 16),
            Err(OffloadError::BadChecksumPlace)
        );
        assert!(finish_partial(&mut frame, usize::MAX, 16).is_err());
    }

    #[test]
    fn prepare_finishes_a_checksum_or_says_how_a_super_frame_cuts() {
        let mut frame = super_frame(true, 3000);
        let untouched = frame.clone();
        assert!(prepare(&mut frame, &VnetHdr::default()).unwrap().is_none());
        assert_eq!(frame, untouched, "nothing asked, nothing done");
        let segs = prepare(&mut frame, &hdr(true, 1000)).unwrap().unwrap();
        assert_eq!(segs.count(), 3);
        let csum_only = VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        assert!(prepare(&mut frame, &csum_only).unwrap().is_none());
        assert_eq!(complete_l4_checksum(&mut frame), L4Checksum::Finished);
        let udp = VnetHdr {
            gso_type: VnetHdr::GSO_UDP,
            gso_size: 1000,
            ..Default::default()
        };
        assert_eq!(
            prepare(&mut frame, &udp).unwrap_err(),
            OffloadError::UnsupportedGso
        );
    }

    #[test]
    fn the_header_reads_back_what_was_written() {
        let h = hdr(false, 8948);
        assert_eq!(VnetHdr::parse(&h.to_bytes()), h);
    }
}
