//! `xmit_hash_policy`: the kernel's transmit hashes (`bond_xmit_hash()`), bit for bit.

use crate::wire::flow::{dissect, dissect_encap, FlowKeys};
use crate::wire::L2Header;

named_enum!(
    /// The transmit hash policies (`xmit_hash_policy`).
    HashPolicy {
        Layer2 = "layer2", 0;
        Layer34 = "layer3+4", 1;
        Layer23 = "layer2+3", 2;
        Encap23 = "encap2+3", 3;
        Encap34 = "encap3+4", 4;
        VlanSrcMac = "vlan+srcmac", 5;
    }
);

impl HashPolicy {
    /// The 32-bit hash the kernel computes for this frame (before `% count`). A frame shorter
    /// than an Ethernet header hashes to 0, as in the kernel.
    #[inline]
    pub fn hash(self, frame: &[u8]) -> u32 {
        let Some(l2) = L2Header::parse(frame) else {
            return 0;
        };
        match self {
            HashPolicy::Layer2 => eth_hash(&l2),
            HashPolicy::VlanSrcMac => vlan_srcmac_hash(&l2),
            HashPolicy::Layer23 => match dissect(frame, l2.ethertype, l2.l3_offset, false) {
                Some(keys) => ip_hash(eth_hash(&l2), &keys),
                None => eth_hash(&l2),
            },
            HashPolicy::Layer34 => match dissect(frame, l2.ethertype, l2.l3_offset, true) {
                Some(keys) => ip_hash(keys.l4_seed(), &keys) >> 1,
                None => eth_hash(&l2),
            },
            HashPolicy::Encap23 => match dissect_encap(frame, l2.ethertype, l2.l3_offset) {
                Some(keys) => ip_hash(eth_hash(&l2), &keys),
                None => eth_hash(&l2),
            },
            HashPolicy::Encap34 => match dissect_encap(frame, l2.ethertype, l2.l3_offset) {
                Some(keys) => ip_hash(keys.l4_seed(), &keys) >> 1,
                None => eth_hash(&l2),
            },
        }
    }
}

/// `bond_eth_hash()`: last bytes of both MACs and the EtherType (after VLAN tags).
#[inline(always)]
fn eth_hash(l2: &L2Header) -> u32 {
    u32::from(l2.dst.0[5] ^ l2.src.0[5]) ^ u32::from(l2.ethertype)
}

/// `bond_ip_hash()` without the final shift (layer3+4 and encap3+4 drop the lowest bit, which
/// is nearly always the same for the even port numbers most stacks pick).
#[inline(always)]
fn ip_hash(seed: u32, keys: &FlowKeys) -> u32 {
    let mut h = seed ^ keys.dst ^ keys.src;
    h ^= h >> 16;
    h ^= h >> 8;
    h
}

/// `bond_vlan_srcmac_hash()`: the outer tag's TCI (the kernel reads `skb->vlan_tci`, priority
/// bits included) XOR the two halves of the source MAC.
#[inline(always)]
fn vlan_srcmac_hash(l2: &L2Header) -> u32 {
    let s = l2.src.0;
    let vendor = u32::from(s[0]) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]);
    let device = u32::from(s[3]) << 16 | u32::from(s[4]) << 8 | u32::from(s[5]);
    u32::from(l2.outer_tci.unwrap_or(0)) ^ vendor ^ device
}
