//! Slow-protocol frames (IEEE 802.1AX): LACPDUs and marker PDUs, parsed and built. Parsing
//! never panics: anything short or malformed is an error the caller counts and drops.

use thiserror::Error;

use crate::wire::{ethertype, MacAddr};

/// The slow-protocols multicast address every LACPDU and marker PDU goes to.
pub const SLOW_PROTOCOLS_MAC: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x02]);
const SUBTYPE_LACP: u8 = 1;
const SUBTYPE_MARKER: u8 = 2;
const ETH_LEN: usize = 14;
/// An LACPDU after the Ethernet header: 110 bytes.
const LACPDU_LEN: usize = 110;
/// A marker PDU after the Ethernet header: subtype, version, TLV (2 + 16), terminator, 90
/// reserved.
const MARKER_LEN: usize = 110;
const TLV_ACTOR: u8 = 1;
const TLV_PARTNER: u8 = 2;
const TLV_COLLECTOR: u8 = 3;
const INFO_LEN: u8 = 20;
const COLLECTOR_LEN: u8 = 16;
const MARKER_REQUEST: u8 = 1;
const MARKER_RESPONSE: u8 = 2;
const MARKER_INFO_LEN: u8 = 16;

/// A port's LACP state bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortState(pub u8);

impl PortState {
    pub const ACTIVITY: u8 = 0x01;
    pub const SHORT_TIMEOUT: u8 = 0x02;
    pub const AGGREGATION: u8 = 0x04;
    pub const SYNCHRONIZATION: u8 = 0x08;
    pub const COLLECTING: u8 = 0x10;
    pub const DISTRIBUTING: u8 = 0x20;
    pub const DEFAULTED: u8 = 0x40;
    pub const EXPIRED: u8 = 0x80;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// What one end says of a port: the actor or partner information of an LACPDU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortInfo {
    pub system_priority: u16,
    pub system: MacAddr,
    pub key: u16,
    pub port_priority: u16,
    pub port: u16,
    pub state: PortState,
}

impl PortInfo {
    fn parse(b: &[u8]) -> PortInfo {
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let mut system = [0u8; 6];
        system.copy_from_slice(&b[2..8]);
        PortInfo {
            system_priority: u16_at(0),
            system: MacAddr(system),
            key: u16_at(8),
            port_priority: u16_at(10),
            port: u16_at(12),
            state: PortState(b[14]),
        }
    }

    fn write(&self, tlv: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[tlv, INFO_LEN]);
        out.extend_from_slice(&self.system_priority.to_be_bytes());
        out.extend_from_slice(&self.system.0);
        out.extend_from_slice(&self.key.to_be_bytes());
        out.extend_from_slice(&self.port_priority.to_be_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        out.push(self.state.0);
        out.extend_from_slice(&[0; 3]);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lacpdu {
    pub actor: PortInfo,
    pub partner: PortInfo,
    /// The collector's maximum delay, in tens of microseconds.
    pub collector_max_delay: u16,
}

/// A marker PDU's information: who asks, and a transaction to echo back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub response: bool,
    pub port: u16,
    pub system: MacAddr,
    pub transaction: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPdu {
    Lacp(Lacpdu),
    Marker(Marker),
}

/// Why a slow-protocol frame was dropped.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum PduError {
    #[error("not a slow-protocol frame")]
    NotSlowProtocol,
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    #[error("unknown subtype {0}")]
    UnknownSubtype(u8),
    #[error("bad TLV {tlv} of length {len}")]
    BadTlv { tlv: u8, len: u8 },
}

impl SlowPdu {
    /// Parses a whole Ethernet frame.
    pub fn parse(frame: &[u8]) -> Result<SlowPdu, PduError> {
        if frame.len() < ETH_LEN + 2 {
            return Err(PduError::Truncated(frame.len()));
        }
        if u16::from_be_bytes([frame[12], frame[13]]) != ethertype::SLOW_PROTOCOLS {
            return Err(PduError::NotSlowProtocol);
        }
        let p = &frame[ETH_LEN..];
        match p[0] {
            SUBTYPE_LACP => Lacpdu::parse(p).map(SlowPdu::Lacp),
            SUBTYPE_MARKER => Marker::parse(p).map(SlowPdu::Marker),
            other => Err(PduError::UnknownSubtype(other)),
        }
    }
}

/// Checks a TLV header at `at`.
fn tlv(p: &[u8], at: usize, tlv: u8, len: u8) -> Result<(), PduError> {
    let (got_tlv, got_len) = (p[at], p[at + 1]);
    if got_tlv != tlv || got_len != len {
        return Err(PduError::BadTlv {
            tlv: got_tlv,
            len: got_len,
        });
    }
    Ok(())
}

impl Lacpdu {
    /// The payload after the Ethernet header. Version is not checked: later versions keep
    /// this layout for their first TLVs (802.1AX asks receivers to accept them).
    fn parse(p: &[u8]) -> Result<Lacpdu, PduError> {
        // Up to and including the collector TLV; the terminator and padding may be cut.
        const NEEDED: usize = 2 + 20 + 20 + 16;
        if p.len() < NEEDED {
            return Err(PduError::Truncated(p.len() + ETH_LEN));
        }
        tlv(p, 2, TLV_ACTOR, INFO_LEN)?;
        tlv(p, 22, TLV_PARTNER, INFO_LEN)?;
        tlv(p, 42, TLV_COLLECTOR, COLLECTOR_LEN)?;
        Ok(Lacpdu {
            actor: PortInfo::parse(&p[4..22]),
            partner: PortInfo::parse(&p[24..42]),
            collector_max_delay: u16::from_be_bytes([p[44], p[45]]),
        })
    }

    /// The whole frame, from the member's own MAC.
    pub fn to_frame(&self, src: MacAddr) -> Vec<u8> {
        let mut f = frame_header(src);
        f.extend_from_slice(&[SUBTYPE_LACP, 1]);
        self.actor.write(TLV_ACTOR, &mut f);
        self.partner.write(TLV_PARTNER, &mut f);
        f.extend_from_slice(&[TLV_COLLECTOR, COLLECTOR_LEN]);
        f.extend_from_slice(&self.collector_max_delay.to_be_bytes());
        f.extend_from_slice(&[0; 12]);
        f.extend_from_slice(&[0, 0]); // terminator
        f.resize(ETH_LEN + LACPDU_LEN, 0);
        f
    }
}

impl Marker {
    fn parse(p: &[u8]) -> Result<Marker, PduError> {
        const NEEDED: usize = 2 + 16;
        if p.len() < NEEDED {
            return Err(PduError::Truncated(p.len() + ETH_LEN));
        }
        let response = match p[2] {
            MARKER_REQUEST => false,
            MARKER_RESPONSE => true,
            other => {
                return Err(PduError::BadTlv {
                    tlv: other,
                    len: p[3],
                })
            }
        };
        if p[3] != MARKER_INFO_LEN {
            return Err(PduError::BadTlv {
                tlv: p[2],
                len: p[3],
            });
        }
        let mut system = [0u8; 6];
        system.copy_from_slice(&p[6..12]);
        Ok(Marker {
            response,
            port: u16::from_be_bytes([p[4], p[5]]),
            system: MacAddr(system),
            transaction: u32::from_be_bytes([p[12], p[13], p[14], p[15]]),
        })
    }

    /// The whole frame, from the member's own MAC.
    pub fn to_frame(&self, src: MacAddr) -> Vec<u8> {
        let mut f = frame_header(src);
        let kind = if self.response {
            MARKER_RESPONSE
        } else {
            MARKER_REQUEST
        };
        f.extend_from_slice(&[SUBTYPE_MARKER, 1, kind, MARKER_INFO_LEN]);
        f.extend_from_slice(&self.port.to_be_bytes());
        f.extend_from_slice(&self.system.0);
        f.extend_from_slice(&self.transaction.to_be_bytes());
        f.extend_from_slice(&[0, 0]); // pad
        f.extend_from_slice(&[0, 0]); // terminator
        f.resize(ETH_LEN + MARKER_LEN, 0);
        f
    }
}

fn frame_header(src: MacAddr) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + LACPDU_LEN);
    f.extend_from_slice(&SLOW_PROTOCOLS_MAC.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype::SLOW_PROTOCOLS.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lacpdu {
        Lacpdu {
            actor: PortInfo {
                system_priority: 65535,
                system: MacAddr([2, 0, 0, 0, 0, 1]),
                key: 9,
                port_priority: 255,
                port: 1,
                state: PortState(0x3d),
            },
            partner: PortInfo {
                system_priority: 32768,
                system: MacAddr([2, 0, 0, 0, 0, 2]),
                key: 1,
                port_priority: 255,
                port: 7,
                state: PortState(0x3f),
            },
            collector_max_delay: 0,
        }
    }

    #[test]
    fn lacpdu_round_trips_in_the_standard_layout() {
        let f = sample().to_frame(MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!(f.len(), 124);
        assert_eq!(&f[..6], &SLOW_PROTOCOLS_MAC.0);
        assert_eq!(&f[12..16], &[0x88, 0x09, 1, 1]);
        assert_eq!(&f[16..18], &[1, 20]);
        assert_eq!(&f[36..38], &[2, 20]);
        assert_eq!(&f[56..58], &[3, 16]);
        assert_eq!(&f[72..74], &[0, 0]);
        assert_eq!(SlowPdu::parse(&f), Ok(SlowPdu::Lacp(sample())));
    }

    #[test]
    fn marker_requests_are_answered_with_the_same_information() {
        let req = Marker {
            response: false,
            port: 3,
            system: MacAddr([2, 0, 0, 0, 0, 2]),
            transaction: 0xdead_beef,
        };
        let f = req.to_frame(MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.len(), 124);
        assert_eq!(SlowPdu::parse(&f), Ok(SlowPdu::Marker(req)));
        let resp = Marker {
            response: true,
            ..req
        };
        let g = resp.to_frame(MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(g[16], 2);
        assert_eq!(SlowPdu::parse(&g), Ok(SlowPdu::Marker(resp)));
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        let f = sample().to_frame(MacAddr::ZERO);
        for len in 0..f.len() {
            let _ = SlowPdu::parse(&f[..len]);
        }
        assert!(matches!(
            SlowPdu::parse(&f[..40]),
            Err(PduError::Truncated(_))
        ));
        let mut bad = f.clone();
        bad[36] = 9;
        assert_eq!(
            SlowPdu::parse(&bad),
            Err(PduError::BadTlv { tlv: 9, len: 20 })
        );
        let mut other = f.clone();
        other[14] = 10; // OAM
        assert_eq!(SlowPdu::parse(&other), Err(PduError::UnknownSubtype(10)));
        let mut ip = f;
        ip[12..14].copy_from_slice(&[8, 0]);
        assert_eq!(SlowPdu::parse(&ip), Err(PduError::NotSlowProtocol));
        // Random bytes behind a slow-protocol header: an error or a PDU, never a panic.
        let mut seed = 0x1234_5678_u64;
        for _ in 0..2000 {
            let len = (seed % 140) as usize;
            let mut g: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if g.len() >= 15 {
                g[12] = 0x88;
                g[13] = 0x09;
                g[14] = 1 + (seed % 2) as u8;
            }
            let _ = SlowPdu::parse(&g);
        }
    }
}
