//! Shared by bond-dp's benchmarks: deterministic traffic, and the etherparse-based flow-key
//! path that the hand-written one in `bond_dp::wire` is measured against.

use bond_dp::policy::HashPolicy;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// A burst of 64 frames of many flows: IPv4/IPv6 × TCP/UDP, some VLAN-tagged, 64 bytes or
/// a little more (the minimum Ethernet frame, without FCS, is 60).
pub fn mixed_burst(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    (0..64)
        .map(|i| {
            let r = next();
            let tagged = i % 8 == 7;
            let v6 = i % 4 >= 2;
            let tcp = i % 2 == 0;
            let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
            if tagged {
                f.extend_from_slice(&[0x81, 0x00, 0x00, (r >> 56) as u8 & 0x0f]);
            }
            let l4_len: u16 = if tcp { 20 } else { 8 };
            let proto = if tcp { 6 } else { 17 };
            if v6 {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&l4_len.to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                f.extend_from_slice(&r.to_be_bytes());
                f.extend_from_slice(&(r as u32).to_be_bytes());
                f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                f.extend_from_slice(&r.rotate_left(17).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 2]);
            } else {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&(20 + l4_len).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 10, 1]);
                f.extend_from_slice(&[
                    (r >> 8) as u8,
                    r as u8,
                    10,
                    2,
                    (r >> 24) as u8,
                    (r >> 16) as u8,
                ]);
            }
            f.extend_from_slice(&((r >> 32) as u16 | 1024).to_be_bytes());
            f.extend_from_slice(&[0x01, 0xbb]);
            if tcp {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
            } else {
                f.extend_from_slice(&(l4_len).to_be_bytes());
                f.extend_from_slice(&[0, 0]);
            }
            f.resize(f.len().max(60), 0);
            f
        })
        .collect()
}

/// The layer3+4 hash computed over etherparse's slices instead of bond-dp's own parser.
/// Covers what `mixed_burst` holds (TCP/UDP over IPv4/IPv6, tagged or not); everything else
/// takes the Ethernet hash. Same formula, so the two must agree on those frames.
pub fn etherparse_layer34(frame: &[u8]) -> u32 {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return HashPolicy::Layer2.hash(frame);
    };
    let (src, dst, fragment) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                u32::from_ne_bytes(h.source()),
                u32::from_ne_bytes(h.destination()),
                h.is_fragmenting_payload(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let fold = |a: [u8; 16]| {
                a.chunks_exact(4).fold(0u32, |h, w| {
                    h ^ u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
                })
            };
            let h = ip.header();
            (fold(h.source()), fold(h.destination()), false)
        }
        None => return HashPolicy::Layer2.hash(frame),
    };
    let ports = |sp: u16, dp: u16| {
        let (s, d) = (sp.to_be_bytes(), dp.to_be_bytes());
        u32::from_ne_bytes([s[0], s[1], d[0], d[1]])
    };
    let seed = match (&p.transport, fragment) {
        (_, true) => 0,
        (Some(TransportSlice::Tcp(t)), _) => ports(t.source_port(), t.destination_port()),
        (Some(TransportSlice::Udp(u)), _) => ports(u.source_port(), u.destination_port()),
        _ => 0,
    };
    let mut h = seed ^ src ^ dst;
    h ^= h >> 16;
    h ^= h >> 8;
    h >> 1
}

/// Flow `flow` of the end-to-end benchmark: a 60-byte IPv4/UDP frame (64 bytes on the wire
/// with the FCS) from 10.78.x.y:port to 10.79.0.1:9. Source address and port vary per flow,
/// the port scrambled so that the two do not vary together (a hash that XORs them, as DPDK's
/// l34 does, would otherwise cancel them out and put every flow on one member).
pub fn udp_frame(flow: u16) -> Vec<u8> {
    let mut f = vec![
        0x02, 0xbe, 0, 0, 0, 0x02, 0x02, 0xbe, 0, 0, 0, 0x01, 0x08, 0x00,
    ];
    let [hi, lo] = flow.to_be_bytes();
    let mut ip = [
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 78, hi, lo, 10, 79, 0, 1,
    ];
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&ip);
    let port = 1024 + (u32::from(flow) * 40_503 % 60_000) as u16;
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&[0, 9, 0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

/// Where a latency run's frames carry their send time: the UDP payload, after a mark.
const STAMP_AT: usize = 42;
const STAMP_MARK: [u8; 4] = *b"BDPL";

/// Writes `ns` (the send time, CLOCK_MONOTONIC) into a frame made by `udp_frame`.
pub fn stamp(frame: &mut [u8], ns: u64) {
    if let Some(place) = frame.get_mut(STAMP_AT..STAMP_AT + 12) {
        place[..4].copy_from_slice(&STAMP_MARK);
        place[4..].copy_from_slice(&ns.to_le_bytes());
    }
}

/// The send time a stamped frame carries.
pub fn stamp_of(frame: &[u8]) -> Option<u64> {
    let place = frame.get(STAMP_AT..STAMP_AT + 12)?;
    (place[..4] == STAMP_MARK).then(|| u64::from_le_bytes(place[4..].try_into().unwrap()))
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so a
/// receiver can subtract a sender's stamp.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parsers_agree_on_the_benchmark_traffic() {
        for seed in 1..50 {
            for f in mixed_burst(seed) {
                assert_eq!(
                    HashPolicy::Layer34.hash(&f),
                    etherparse_layer34(&f),
                    "{f:02x?}"
                );
            }
        }
    }

    #[test]
    fn burst_spreads_over_members() {
        let burst = mixed_burst(7);
        let mut seen = [0; 4];
        for f in &burst {
            seen[HashPolicy::Layer34.hash(f) as usize % 4] += 1;
        }
        assert!(seen.iter().all(|&n| n >= 8), "{seen:?}");
    }

    #[test]
    fn a_stamp_reads_back_and_unstamped_frames_have_none() {
        let mut f = super::udp_frame(7);
        assert_eq!(super::stamp_of(&f), None);
        super::stamp(&mut f, 123_456_789);
        assert_eq!(super::stamp_of(&f), Some(123_456_789));
        assert_eq!(super::stamp_of(&f[..50]), None);
        assert_eq!(super::quantile(&[1, 2, 3, 4], 0.5), 3);
        assert_eq!(super::quantile(&[], 0.99), 0);
    }

    #[test]
    fn udp_frames_are_valid_ipv4_and_spread_over_two_members() {
        let mut members = [0; 2];
        for flow in 0..1024 {
            let f = super::udp_frame(flow);
            assert_eq!(f.len(), 60);
            let sum: u32 = f[14..34]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            let folded = (sum & 0xffff) + (sum >> 16);
            assert_eq!((folded & 0xffff) + (folded >> 16), 0xffff, "IP checksum");
            let hash = HashPolicy::Layer34.hash(&f);
            members[hash as usize % 2] += 1;
        }
        assert!(members.iter().all(|&n| n > 400), "{members:?}");
    }
}
