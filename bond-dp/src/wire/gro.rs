//! Receive coalescing toward the host (what GRO does in a NIC driver): consecutive TCP
//! segments of one flow in a burst become one super-frame, written to the TAP with a
//! virtio-net header that says how the host may cut it again. The host's stack then handles
//! one packet where the wire carried forty.
//!
//! Only what Linux's own GRO would merge is merged: IPv4 without options or fragments, or
//! IPv6 without extension headers; the same headers but for lengths, ids, sequence numbers
//! and checksums; segments in sequence, each but the last a full segment; ACK (and PSH on the
//! last) as the only flags. Every segment's checksum is verified before it is merged (the
//! first one's when the second joins), so the super-frame's "checksum partial" mark hides no
//! corruption; a segment whose sender left its checksum partial has nothing to verify.

use super::checksum::{fold, pseudo_header, set_ip_length, sum};
use super::gso::VnetHdr;
use super::{ethertype, ipproto, L2Header};

/// The most bytes after the Ethernet header a super-frame holds (IPv4's total length field).
const MAX_L3_LEN: usize = 65_535;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

/// Where a segment's headers are, and what of them coalescing needs.
#[derive(Clone, Copy, Debug)]
struct Layout {
    l3: usize,
    l4: usize,
    payload: usize,
    ipv4: bool,
}

impl Layout {
    /// A TCP segment with data that may be merged; `None` for anything else.
    fn of(frame: &[u8]) -> Option<Layout> {
        let l2 = L2Header::parse(frame)?;
        let l3 = l2.l3_offset;
        let (l4, ipv4) = match l2.ethertype {
            ethertype::IPV4 => {
                let ip = frame.get(l3..l3 + 20)?;
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
                let plain = ip[0] == 0x45 && ip[9] == ipproto::TCP && !fragment;
                (plain && total == frame.len() - l3).then_some((l3 + 20, true))?
            }
            ethertype::IPV6 => {
                let ip = frame.get(l3..l3 + 40)?;
                let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                let plain = ip[0] >> 4 == 6 && ip[6] == ipproto::TCP;
                (plain && len == frame.len() - l3 - 40).then_some((l3 + 40, false))?
            }
            _ => return None,
        };
        let tcp = frame.get(l4..l4 + 20)?;
        let payload = l4 + usize::from(tcp[12] >> 4) * 4;
        let flags_ok = tcp[13] & !TCP_PSH == TCP_ACK;
        (flags_ok && payload >= l4 + 20 && payload < frame.len()).then_some(Layout {
            l3,
            l4,
            payload,
            ipv4,
        })
    }

    /// The TCP pseudo-header's sum for `l4_len` bytes of segment.
    fn pseudo(&self, frame: &[u8], l4_len: usize) -> u64 {
        pseudo_header(&frame[self.l3..], self.ipv4, ipproto::TCP, l4_len)
    }

    /// Whether the segment's checksum can be trusted: partial (its sender left it to
    /// "hardware", so no wire lay between to damage it), or verified over the segment.
    fn checksum_ok(&self, frame: &[u8]) -> bool {
        let pseudo = self.pseudo(frame, frame.len() - self.l4);
        let stored = u16::from_be_bytes([frame[self.l4 + 16], frame[self.l4 + 17]]);
        stored == fold(pseudo) || fold(pseudo + sum(&frame[self.l4..])) == 0xffff
    }

    fn seq(&self, frame: &[u8]) -> u32 {
        let s = &frame[self.l4 + 4..self.l4 + 8];
        u32::from_be_bytes([s[0], s[1], s[2], s[3]])
    }

    /// Whether `b`'s headers are `a`'s but for what differs from segment to segment.
    fn same_flow(&self, a: &[u8], b: &[u8]) -> bool {
        let (l3, l4, p) = (self.l3, self.l4, self.payload);
        // The bytes that may differ, by offset in their header.
        let ip_varies: &[usize] = if self.ipv4 {
            &[2, 3, 4, 5, 10, 11] // total length, id, header checksum
        } else {
            &[4, 5] // payload length
        };
        let tcp_varies: &[usize] = &[4, 5, 6, 7, 13, 16, 17]; // sequence, flags, checksum
        let equal = |header: usize, end: usize, varies: &[usize]| {
            (header..end).all(|i| varies.contains(&(i - header)) || a[i] == b[i])
        };
        a[..l3] == b[..l3]
            && equal(l3, l4, ip_varies)
            && equal(l4, p, tcp_varies)
            && a[l4 + 13] & !TCP_PSH == b[l4 + 13] & !TCP_PSH
    }
}

/// Segments merged so far, in one buffer.
#[derive(Debug, Default)]
pub struct Coalescer {
    frame: Vec<u8>,
    layout: Option<Layout>,
    /// The first segment's payload length: the size the host may cut the super-frame into.
    mss: usize,
    next_seq: u32,
    segments: usize,
    /// A short segment or PSH ended the run: nothing more may join.
    closed: bool,
}

impl Coalescer {
    /// Adds `frame` to the run: it starts one if there is none, or continues it. False
    /// when it cannot join (not a mergeable segment, another flow, out of sequence, too
    /// long): the caller sends the run first, then tries again or sends the frame alone.
    pub fn try_add(&mut self, frame: &[u8]) -> bool {
        let Some(layout) = Layout::of(frame) else {
            return false;
        };
        let len = frame.len() - layout.payload;
        let psh = frame[layout.l4 + 13] & TCP_PSH != 0;
        match self.layout {
            None => {
                // Its checksum is verified only if another segment joins it: a segment that
                // goes out alone is the host's to verify, as it would have been.
                self.frame.clear();
                self.frame.extend_from_slice(frame);
                self.layout = Some(layout);
                self.mss = len;
                self.next_seq = layout.seq(frame).wrapping_add(len as u32);
                self.segments = 1;
                self.closed = psh;
                true
            }
            Some(first) => {
                let joins = !self.closed
                    && layout.payload == first.payload
                    && layout.l3 == first.l3
                    && len <= self.mss
                    && layout.seq(frame) == self.next_seq
                    && self.frame.len() + len - first.l3 <= MAX_L3_LEN
                    && first.same_flow(&self.frame, frame)
                    && layout.checksum_ok(frame)
                    && (self.segments > 1 || first.checksum_ok(&self.frame));
                if !joins {
                    return false;
                }
                self.frame.extend_from_slice(&frame[layout.payload..]);
                self.next_seq = self.next_seq.wrapping_add(len as u32);
                self.segments += 1;
                if psh {
                    self.frame[first.l4 + 13] |= TCP_PSH;
                }
                self.closed = psh || len < self.mss;
                true
            }
        }
    }

    /// Whether the run can take no more segments (send it now).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many segments the run holds.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Ends the run: its frame (a super-frame when several segments joined, with the
    /// lengths and the IPv4 header checksum made right and the TCP checksum partial) and the
    /// virtio-net header that describes it; `None` when the run is empty. The frame is
    /// valid until the next `try_add`.
    pub fn finish(&mut self) -> Option<(VnetHdr, &[u8])> {
        let layout = self.layout.take()?;
        if self.segments == 1 {
            return Some((VnetHdr::for_checksum(&self.frame), &self.frame));
        }
        let Layout { l3, l4, ipv4, .. } = layout;
        let f = &mut self.frame;
        set_ip_length(f, l3, l4, ipv4);
        // Partial, as a sender with checksum offload leaves it: every segment's own checksum
        // was verified on the way in.
        let partial = fold(layout.pseudo(f, f.len() - l4));
        f[l4 + 16..l4 + 18].copy_from_slice(&partial.to_be_bytes());
        let hdr = VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            gso_type: if ipv4 {
                VnetHdr::GSO_TCPV4
            } else {
                VnetHdr::GSO_TCPV6
            },
            hdr_len: layout.payload as u16,
            gso_size: self.mss as u16,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        Some((hdr, &self.frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::gso::{finish_partial, TcpSegments};

    /// Segments of one TCP stream as a sender cuts them: `sizes` bytes of payload each,
    /// checksums finished, from a super-frame of their total.
    fn stream(ipv4: bool, sizes: &[usize]) -> Vec<Vec<u8>> {
        stream_tagged(ipv4, sizes, None)
    }

    /// As `stream`, in 802.1Q VLAN `vlan` when given.
    fn stream_tagged(ipv4: bool, sizes: &[usize], vlan: Option<u16>) -> Vec<Vec<u8>> {
        let mss = sizes[0];
        let total: usize = sizes.iter().sum();
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if let Some(vid) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        if ipv4 {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        } else {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 6, 64]);
            f.extend_from_slice(&[0xfd; 16]);
            f.extend_from_slice(&[0xfe; 16]);
        }
        f.extend_from_slice(&[0x04, 0xd2, 0, 80, 0, 0, 0x10, 0, 0, 0, 0, 7]);
        f.extend_from_slice(&[0x80, TCP_ACK, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]); // NOP NOP timestamps
        f.extend((0..total).map(|i| (i * 13 % 251) as u8));
        let hdr = VnetHdr {
            gso_type: if ipv4 {
                VnetHdr::GSO_TCPV4
            } else {
                VnetHdr::GSO_TCPV6
            },
            gso_size: mss as u16,
            ..Default::default()
        };
        let segs = TcpSegments::new(&f, &hdr).unwrap();
        (0..segs.count())
            .map(|i| {
                let mut out = Vec::new();
                segs.write(&f, i, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn a_run_of_segments_becomes_a_super_frame_the_host_cuts_back_into_them() {
        for (ipv4, vlan) in [
            (true, None),
            (false, None),
            (true, Some(100)),
            (false, Some(7)),
        ] {
            let sizes = [1448, 1448, 1448, 1448, 1448, 700];
            let segments = stream_tagged(ipv4, &sizes, vlan);
            let l3 = if vlan.is_some() { 18 } else { 14 };
            let mut gro = Coalescer::default();
            for s in &segments {
                assert!(gro.try_add(s));
            }
            assert!(gro.is_closed(), "a short segment ends the run");
            assert_eq!(gro.segments(), 6);
            let (hdr, frame) = gro.finish().unwrap();
            assert_eq!(hdr.gso_size, 1448);
            let frame = frame.to_vec();
            // What the host does with it: cut it at gso_size, each with its checksums.
            let again = TcpSegments::new(&frame, &hdr).unwrap();
            assert_eq!(again.count(), segments.len());
            for (i, original) in segments.iter().enumerate() {
                let mut s = Vec::new();
                again.write(&frame, i, &mut s);
                if ipv4 {
                    // The IP id, as the sender had it, and the header checksum with it.
                    s[l3 + 4..l3 + 6].copy_from_slice(&original[l3 + 4..l3 + 6]);
                    s[l3 + 10..l3 + 12].fill(0);
                    let check = !fold(sum(&s[l3..l3 + 20]));
                    s[l3 + 10..l3 + 12].copy_from_slice(&check.to_be_bytes());
                }
                assert_eq!(&s, original, "segment {i}, vlan {vlan:?}");
            }
            // And the partial checksum finishes to a valid one.
            let mut whole = frame.clone();
            finish_partial(&mut whole, hdr.csum_start.into(), hdr.csum_offset.into()).unwrap();
            let layout = Layout::of(&whole).unwrap();
            assert!(layout.checksum_ok(&whole));
            assert_eq!(layout.l4, usize::from(hdr.csum_start));
            assert_eq!(layout.l3, l3);
        }
        // Segments of one flow in two VLANs are two flows.
        let a = stream_tagged(true, &[1000, 1000], Some(100));
        let b = stream_tagged(true, &[1000, 1000], Some(200));
        let mut gro = Coalescer::default();
        assert!(gro.try_add(&a[0]));
        assert!(!gro.try_add(&b[1]), "another VLAN");
    }

    #[test]
    fn what_linux_would_not_merge_is_not_merged() {
        let s = stream(true, &[1000, 1000, 1000]);
        let mut gro = Coalescer::default();
        assert!(gro.try_add(&s[0]));
        assert!(!gro.try_add(&s[2]), "a gap in the sequence");
        let mut other_port = s[1].clone();
        other_port[34] ^= 1;
        assert!(!gro.try_add(&other_port), "another flow");
        let mut corrupt = s[1].clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(!gro.try_add(&corrupt), "a bad checksum");
        let mut other_ack = s[1].clone();
        other_ack[42] ^= 1;
        assert!(!gro.try_add(&other_ack), "another ACK number");
        assert!(gro.try_add(&s[1]));
        assert_eq!(gro.segments(), 2);
        // A first segment with a bad checksum takes no other in: it goes out alone, as it came.
        let mut bad_first = s[0].clone();
        let last = bad_first.len() - 1;
        bad_first[last] ^= 0xff;
        let mut lone = Coalescer::default();
        assert!(lone.try_add(&bad_first));
        assert!(!lone.try_add(&s[1]), "nothing joins a corrupt segment");
        assert_eq!(lone.finish().unwrap(), (VnetHdr::default(), &bad_first[..]));
        // A SYN, a bare ACK and a non-TCP frame never start a run.
        let mut fresh = Coalescer::default();
        let mut syn = s[0].clone();
        syn[47] |= 0x02;
        assert!(!fresh.try_add(&syn));
        let bare_ack = &s[0][..66];
        assert!(!fresh.try_add(bare_ack));
        assert!(!fresh.try_add(&[0u8; 60]));
        assert!(fresh.finish().is_none());
    }

    #[test]
    fn psh_ends_a_run_and_one_segment_goes_out_as_it_came() {
        let s = stream(false, &[500, 500, 500]);
        let mut gro = Coalescer::default();
        let mut pushed = s[1].clone();
        pushed[54 + 13] |= TCP_PSH;
        // The checksum covers the flags: make it right again.
        pushed[54 + 16..54 + 18].fill(0);
        let layout = Layout::of(&pushed).unwrap();
        let check = !fold(layout.pseudo(&pushed, pushed.len() - 54) + sum(&pushed[54..]));
        pushed[54 + 16..54 + 18].copy_from_slice(&check.to_be_bytes());
        assert!(gro.try_add(&s[0]));
        assert!(gro.try_add(&pushed));
        assert!(gro.is_closed());
        assert!(!gro.try_add(&s[2]));
        let (hdr, frame) = gro.finish().unwrap();
        assert_eq!(hdr.gso_type, VnetHdr::GSO_TCPV6);
        assert_ne!(
            frame[54 + 13] & TCP_PSH,
            0,
            "PSH carried onto the super-frame"
        );
        let mut single = Coalescer::default();
        assert!(single.try_add(&s[2]));
        let (hdr, frame) = single.finish().unwrap();
        assert_eq!((hdr, frame), (VnetHdr::default(), &s[2][..]));
    }

    /// `frame`'s TCP checksum as a sender with checksum offload leaves it: the pseudo-header's
    /// sum only.
    fn left_partial(frame: &[u8]) -> Vec<u8> {
        let mut f = frame.to_vec();
        let layout = Layout::of(&f).unwrap();
        let pseudo = fold(layout.pseudo(&f, f.len() - layout.l4));
        f[layout.l4 + 16..layout.l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        f
    }

    #[test]
    fn segments_left_partial_merge_without_a_sum_and_one_alone_says_it_is_partial() {
        let s: Vec<Vec<u8>> = stream(true, &[1000, 1000, 400])
            .iter()
            .map(|f| left_partial(f))
            .collect();
        let mut gro = Coalescer::default();
        for f in &s {
            assert!(gro.try_add(f), "a partial checksum has nothing to verify");
        }
        let (hdr, frame) = gro.finish().unwrap();
        assert_eq!(hdr.gso_type, VnetHdr::GSO_TCPV4);
        let mut whole = frame.to_vec();
        finish_partial(&mut whole, hdr.csum_start.into(), hdr.csum_offset.into()).unwrap();
        assert!(Layout::of(&whole).unwrap().checksum_ok(&whole));
        // Alone, it goes to the host marked partial, for the host to finish or trust.
        let mut single = Coalescer::default();
        assert!(single.try_add(&s[2]));
        let (hdr, frame) = single.finish().unwrap();
        assert_eq!(frame, &s[2][..]);
        assert_eq!(
            (hdr.flags, hdr.csum_start, hdr.csum_offset),
            (VnetHdr::F_NEEDS_CSUM, 34, 16)
        );
        let mut finished = frame.to_vec();
        finish_partial(&mut finished, 34, 16).unwrap();
        let mut reference = s[2].clone();
        assert_eq!(
            crate::wire::checksum::complete_l4_checksum(&mut reference),
            crate::wire::checksum::L4Checksum::Completed
        );
        assert_eq!(finished, reference);
    }
}
