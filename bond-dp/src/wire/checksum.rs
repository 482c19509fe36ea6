//! TCP and UDP checksums a sender left for "hardware" to finish.
//!
//! A sender with transmit checksum offload (a veth peer, a VM's virtio NIC, the host itself)
//! hands over frames whose TCP/UDP checksum field holds only the pseudo-header's sum
//! (Linux's CHECKSUM_PARTIAL): the NIC was to finish it. XDP sees those bytes as they are,
//! and a host stack behind the TAP drops them as corrupt. The data plane finishes such a
//! checksum before the host sees the frame, as the NIC would have. Only a field that holds
//! exactly the pseudo-header's sum is summed over the segment: any other is left for the
//! host stack to verify, so a frame with a finished checksum costs a header parse.

use super::{ethertype, ipproto, L2Header};

/// What a frame's TCP/UDP checksum was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4Checksum {
    /// Finished already (not verified here: the host stack does that).
    Finished,
    /// Partial (the pseudo-header's sum only): now finished.
    Completed,
    /// Not TCP or UDP over IPv4/IPv6, a fragment, a UDP datagram without a checksum, or
    /// truncated.
    NotApplicable,
}

/// Where a partial TCP or UDP checksum is: the L4 header's offset (where the sum starts) and
/// the field's offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    pub start: usize,
    pub offset: usize,
}

/// The frame's TCP or UDP checksum, if the sender left it partial (the field holds exactly
/// the pseudo-header's sum): a header parse, no sum over the data, so `frame` may be just the
/// first part of a longer one.
pub fn partial_checksum(frame: &[u8]) -> Option<PartialChecksum> {
    let l4 = L4Segment::of(frame)?;
    l4.is_partial(frame).then_some(PartialChecksum {
        start: l4.start,
        offset: l4.field - l4.start,
    })
}

/// Finishes the TCP or UDP checksum of `frame` if the sender left it partial.
pub fn complete_l4_checksum(frame: &mut [u8]) -> L4Checksum {
    let Some(l4) = L4Segment::of(frame) else {
        return L4Checksum::NotApplicable;
    };
    if !l4.is_partial(frame) {
        return L4Checksum::Finished;
    }
    // The sum over the segment with the field as zero, plus the pseudo-header. (A finished
    // checksum that happens to equal the pseudo-header's sum comes out the same.)
    let Some(segment) = frame.get(l4.start..l4.start + l4.len) else {
        return L4Checksum::NotApplicable;
    };
    let stored = u16::from_be_bytes([frame[l4.field], frame[l4.field + 1]]);
    let without_field = sum(segment) - u64::from(stored);
    let mut check = !fold(l4.pseudo + without_field);
    if check == 0 && l4.proto == ipproto::UDP {
        check = 0xffff;
    }
    frame[l4.field..l4.field + 2].copy_from_slice(&check.to_be_bytes());
    L4Checksum::Completed
}

/// A TCP or UDP segment with a checksum to look at: where it is, and its pseudo-header's sum.
struct L4Segment {
    start: usize,
    len: usize,
    proto: u8,
    /// Where the checksum field is.
    field: usize,
    pseudo: u64,
}

impl L4Segment {
    /// `None` for anything but TCP or UDP over IPv4/IPv6, a fragment, headers cut short, or
    /// an IPv4 UDP datagram without a checksum. The rest of the segment may lie beyond
    /// `frame`.
    fn of(frame: &[u8]) -> Option<L4Segment> {
        let l2 = L2Header::parse(frame)?;
        let (start, len, proto, pseudo) = locate(frame, l2.ethertype, l2.l3_offset)?;
        let field = start
            + match proto {
                ipproto::TCP => 16,
                _ => 6,
            };
        if field + 2 > start + len || field + 2 > frame.len() {
            return None;
        }
        let stored = u16::from_be_bytes([frame[field], frame[field + 1]]);
        if proto == ipproto::UDP && stored == 0 && l2.ethertype == ethertype::IPV4 {
            return None;
        }
        Some(L4Segment {
            start,
            len,
            proto,
            field,
            pseudo,
        })
    }

    fn is_partial(&self, frame: &[u8]) -> bool {
        u16::from_be_bytes([frame[self.field], frame[self.field + 1]]) == fold(self.pseudo)
    }
}

/// The L4 header's offset, the segment's length, the protocol and the pseudo-header's sum.
fn locate(frame: &[u8], ethertype: u16, l3: usize) -> Option<(usize, usize, u8, u64)> {
    match ethertype {
        ethertype::IPV4 => {
            let ip = frame.get(l3..l3 + 20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            let proto = ip[9];
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || fragment || !is_tcp_udp(proto) {
                return None;
            }
            let len = total - ihl;
            Some((l3 + ihl, len, proto, pseudo_header(ip, true, proto, len)))
        }
        ethertype::IPV6 => {
            let ip = frame.get(l3..l3 + 40)?;
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let proto = ip[6];
            if ip[0] >> 4 != 6 || !is_tcp_udp(proto) {
                return None; // extension headers: left alone
            }
            Some((l3 + 40, len, proto, pseudo_header(ip, false, proto, len)))
        }
        _ => None,
    }
}

/// The pseudo-header's sum (unfolded) for `len` bytes of protocol `proto` over the IPv4 or
/// IPv6 header that starts `ip`.
pub(crate) fn pseudo_header(ip: &[u8], ipv4: bool, proto: u8, len: usize) -> u64 {
    let addresses = if ipv4 { &ip[12..20] } else { &ip[8..40] };
    sum(addresses) + u64::from(proto) + len as u64
}

/// Makes the IP header at `l3` (the L4 header at `l4`) fit the frame's length: IPv4's total
/// length and header checksum, or IPv6's payload length. For a frame whose length changed
/// (a segment cut from a super-frame, segments merged into one).
pub(crate) fn set_ip_length(frame: &mut [u8], l3: usize, l4: usize, ipv4: bool) {
    if ipv4 {
        let total = (frame.len() - l3) as u16;
        frame[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        frame[l3 + 10..l3 + 12].fill(0);
        let check = !fold(sum(&frame[l3..l4]));
        frame[l3 + 10..l3 + 12].copy_from_slice(&check.to_be_bytes());
    } else {
        let len = (frame.len() - l3 - 40) as u16;
        frame[l3 + 4..l3 + 6].copy_from_slice(&len.to_be_bytes());
    }
}

fn is_tcp_udp(proto: u8) -> bool {
    proto == ipproto::TCP || proto == ipproto::UDP
}

/// The one's-complement sum of big-endian 16-bit words (an odd byte padded), unfolded.
pub(crate) fn sum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut s: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

pub(crate) fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP frame 10.0.0.1:1234 -> 10.0.0.2:80 with a payload, its checksum right.
    fn tcp4() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
            0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0,
            0, // TCP
        ];
        f.extend_from_slice(b"hello, bond");
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f
    }

    /// The checksum as a sender computes it: over the pseudo-header and the segment.
    fn right(frame: &mut [u8]) {
        frame[50..52].copy_from_slice(&[0, 0]);
        let (l4, len, _, pseudo) = locate(frame, ethertype::IPV4, 14).unwrap();
        let c = !fold(pseudo + sum(&frame[l4..l4 + len]));
        frame[50..52].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn a_partial_checksum_is_finished_as_a_nic_would() {
        let mut good = tcp4();
        right(&mut good);
        assert_eq!(
            complete_l4_checksum(&mut good.clone()),
            L4Checksum::Finished
        );
        // What a sender with checksum offload hands over: the pseudo-header's sum only.
        let mut partial = good.clone();
        let (_, _, _, pseudo) = locate(&partial, ethertype::IPV4, 14).unwrap();
        partial[50..52].copy_from_slice(&fold(pseudo).to_be_bytes());
        assert_eq!(
            partial_checksum(&partial),
            Some(PartialChecksum {
                start: 34,
                offset: 16
            })
        );
        assert_eq!(
            partial_checksum(&good),
            None,
            "a finished one is not partial"
        );
        assert_eq!(complete_l4_checksum(&mut partial), L4Checksum::Completed);
        assert_eq!(partial, good);
        // Corrupt: left for the stack to reject.
        let mut bad = good.clone();
        bad[60] ^= 0xff;
        let copy = bad.clone();
        assert_eq!(complete_l4_checksum(&mut bad), L4Checksum::Finished);
        assert_eq!(bad, copy);
    }

    #[test]
    fn fragments_other_protocols_and_short_frames_are_left_alone() {
        let mut frag = tcp4();
        frag[20] = 0x20; // more fragments
        assert_eq!(complete_l4_checksum(&mut frag), L4Checksum::NotApplicable);
        let mut arp = tcp4();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(complete_l4_checksum(&mut arp), L4Checksum::NotApplicable);
        let f = tcp4();
        for cut in 0..f.len() {
            let _ = complete_l4_checksum(&mut f[..cut].to_vec());
        }
    }
}
