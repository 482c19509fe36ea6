//! The members as the fast path sees them at one instant.
//!
//! The link monitor (and LACP) build a new snapshot on every change and swap it in; workers
//! read one snapshot per burst. Building one allocates; reading one never does.

use super::HashPolicy;
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
    /// The longest frame the member sends (its MTU with an Ethernet header and a VLAN tag);
    /// longer ones are dropped and counted.
    pub max_frame: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxSnapshot {
    /// Every member, in enslave order.
    pub members: Vec<MemberTx>,
    /// The members that can transmit, in enslave order: what the hash modulo runs over.
    usable: Vec<MemberId>,
    /// The current active member (active-backup, tlb, alb; others keep the first usable).
    pub active: Option<MemberId>,
    /// The bond's own MAC address.
    pub bond_mac: MacAddr,
    /// Per member: whether what it receives goes to the host (empty: every member does).
    delivers: Vec<bool>,
    /// Transmit settings the operator may change while the bond runs; `None` keeps what the
    /// workers were built with.
    pub tuning: Option<Tuning>,
}

/// The transmit policy's settings that change at runtime, as the kernel's sysfs allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    pub hash: HashPolicy,
    pub packets_per_member: u32,
}

impl TxSnapshot {
    pub fn new(members: Vec<MemberTx>, active: Option<MemberId>, bond_mac: MacAddr) -> Self {
        let usable: Vec<MemberId> = (0..members.len()).filter(|&m| members[m].can_tx).collect();
        TxSnapshot {
            members,
            usable,
            active,
            bond_mac,
            delivers: Vec::new(),
            tuning: None,
        }
    }

    /// The receive side: which members deliver.
    pub fn with_receive(mut self, delivers: Vec<bool>) -> Self {
        self.delivers = delivers;
        self
    }

    /// Whether frames received on `member` go to the host.
    #[inline]
    pub fn delivers(&self, member: MemberId) -> bool {
        self.delivers.get(member).copied().unwrap_or(true)
    }

    /// A snapshot where every one of `n` members is up, with made-up addresses
    /// 02:00:00:00:00:01.. (for `bond-dp hash`, tests and benchmarks).
    pub fn all_up(n: usize) -> Self {
        let members = (0..n)
            .map(|i| MemberTx {
                mac: MacAddr([2, 0, 0, 0, (i >> 8) as u8, (i as u8).wrapping_add(1)]),
                speed_mbps: 10_000,
                can_tx: true,
                max_frame: u32::MAX,
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

    /// `usable[hash % count]`, the kernel's selection for xor, 802.3ad and static tlb
    /// (u32 arithmetic, as in the kernel).
    #[inline(always)]
    pub fn by_hash(&self, hash: u32) -> Option<MemberId> {
        match self.usable.len() as u32 {
            0 => None,
            n => Some(self.usable[(hash % n) as usize]),
        }
    }

    /// `id % member count` (0 when there are no members).
    #[inline(always)]
    pub fn member_index(&self, id: u32) -> MemberId {
        id.checked_rem(self.members.len() as u32).unwrap_or(0) as MemberId
    }
}
