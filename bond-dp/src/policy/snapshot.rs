//! The members as the fast path sees them at one instant.
//!
//! The link monitor (and LACP) build a new snapshot on every change and swap it in; workers
//! read one snapshot per burst. Building one allocates; reading one never does.

use crate::wire::MacAddr;

/// A member's position in enslave order.
pub type MemberId = usize;

/// One member as transmit selection needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberTx {
    pub mac: MacAddr,
    /// Link speed in Mb/s (tlb/alb weigh members by it); 0 when unknown.
    pub speed_mbps: u32,
    /// Link up and, in 802.3ad, distributing in the active aggregator.
    pub can_tx: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxSnapshot {
    /// Every member, in enslave order.
    pub members: Vec<MemberTx>,
    /// The members that can transmit, in enslave order: what the hash modulo runs over.
    usable: Vec<MemberId>,
    /// `% usable.len()` without a division on the per-frame path.
    usable_mod: FastMod,
    /// `% members.len()` (round-robin).
    members_mod: FastMod,
    /// The current active member (active-backup, tlb, alb; others keep the first usable).
    pub active: Option<MemberId>,
    /// The bond's own MAC address.
    pub bond_mac: MacAddr,
}

impl TxSnapshot {
    pub fn new(members: Vec<MemberTx>, active: Option<MemberId>, bond_mac: MacAddr) -> Self {
        let usable: Vec<MemberId> = (0..members.len()).filter(|&m| members[m].can_tx).collect();
        TxSnapshot {
            usable_mod: FastMod::new(usable.len() as u32),
            members_mod: FastMod::new(members.len() as u32),
            members,
            usable,
            active,
            bond_mac,
        }
    }

    /// A snapshot where every one of `n` members is up, with made-up addresses
    /// 02:00:00:00:00:01.. (for `bond-dp hash`, tests and benchmarks).
    pub fn all_up(n: usize) -> Self {
        let members = (0..n)
            .map(|i| MemberTx {
                mac: MacAddr([2, 0, 0, 0, (i >> 8) as u8, (i as u8).wrapping_add(1)]),
                speed_mbps: 10_000,
                can_tx: true,
            })
            .collect();
        TxSnapshot::new(
            members,
            (n > 0).then_some(0),
            MacAddr([2, 0, 0, 0, 0xff, 0]),
        )
    }

    #[inline(always)]
    pub fn can_tx(&self, member: MemberId) -> bool {
        self.members.get(member).is_some_and(|m| m.can_tx)
    }

    /// The members that can transmit, in enslave order.
    pub fn usable(&self) -> &[MemberId] {
        &self.usable
    }

    /// `usable[hash % count]`, the kernel's selection for xor, 802.3ad and static tlb.
    #[inline(always)]
    pub fn by_hash(&self, hash: u32) -> Option<MemberId> {
        self.usable.get(self.usable_mod.rem(hash) as usize).copied()
    }

    /// `id % member count` (0 when there are no members).
    #[inline(always)]
    pub fn member_index(&self, id: u32) -> MemberId {
        self.members_mod.rem(id) as MemberId
    }
}

/// An exact `a % d` for 32-bit values by two multiplications instead of a division
/// (Lemire, Kaser, Kurz: "Faster remainder by direct computation", 2019). A divide costs tens
/// of cycles, more than the rest of selecting a member. `d = 0` yields 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FastMod {
    m: u64,
    d: u32,
}

impl FastMod {
    fn new(d: u32) -> Self {
        let m = match d {
            0 => 0,
            d => (u64::MAX / u64::from(d)).wrapping_add(1),
        };
        FastMod { m, d }
    }

    #[inline(always)]
    fn rem(&self, a: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_remainder_is_exact() {
        let mut a = 0x9e37_79b9u32;
        for d in 1..=70u32 {
            let f = FastMod::new(d);
            for edge in [0, 1, d - 1, d, d + 1, u32::MAX, u32::MAX - 1, u32::MAX / 2] {
                assert_eq!(f.rem(edge), edge % d, "{edge} % {d}");
            }
            for _ in 0..2000 {
                a ^= a << 13;
                a ^= a >> 17;
                a ^= a << 5;
                assert_eq!(f.rem(a), a % d, "{a} % {d}");
            }
        }
        assert_eq!(FastMod::new(0).rem(12345), 0);
    }
}
