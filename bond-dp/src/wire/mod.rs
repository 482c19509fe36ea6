//! Zero-copy views over raw frames. Nothing here allocates, does I/O, or panics on any input:
//! every accessor is bounds-checked through `slice::get`, and a short frame yields `None`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod flow;
pub mod gro;
pub mod gso;
pub mod mac;
pub mod ndisc;
pub mod neighbour;

pub use ethernet::{L2Header, ETH_HEADER_LEN};
pub use flow::FlowKeys;
pub use mac::MacAddr;
pub use neighbour::NeighbourMsg;

/// EtherTypes bond-dp looks at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPX: u16 = 0x8137;
    pub const IPV6: u16 = 0x86dd;
    pub const SLOW_PROTOCOLS: u16 = 0x8809;
    pub const TEB: u16 = 0x6558;
}

/// IP protocol numbers bond-dp looks at.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    pub const IPV6: u8 = 41;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DSTOPTS: u8 = 60;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Four bytes as they sit in the packet, loaded as a native u32 — how the kernel reads
/// addresses and port pairs for hashing.
#[inline(always)]
pub(crate) fn ne32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes a hex string (whitespace, `:` and `-` ignored) into bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':' && *c != b'-')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "not ASCII".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("'{s}' is not a hex byte"))
        })
        .collect()
}
