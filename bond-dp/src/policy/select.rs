//! The per-frame decision for every mode.

use super::{HashPolicy, MemberId, Mode, Rlb, Tlb, Tuning, TxSnapshot};
use crate::wire::arp::{ArpPacket, OP_REPLY, OP_REQUEST};
use crate::wire::{ethertype, ipproto, L2Header, MacAddr};

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No member can take it: count it as a drop.
    Drop,
    /// Out of one member, after the rewrite.
    Send { member: MemberId, rewrite: Rewrite },
    /// A copy out of every member that can transmit (broadcast mode).
    AllUsable,
}

impl Decision {
    fn send(member: Option<MemberId>) -> Decision {
        member.map_or(Decision::Drop, |member| Decision::Send {
            member,
            rewrite: Rewrite::None,
        })
    }

    /// The member for single-member decisions.
    pub fn member(&self) -> Option<MemberId> {
        match *self {
            Decision::Send { member, .. } => Some(member),
            _ => None,
        }
    }
}

/// An edit the sender applies to the frame with the chosen member's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrite {
    None,
    /// tlb/alb: a frame leaving a non-active member carries that member's source MAC.
    SourceMac,
    /// alb: an ARP reply teaches the client the member's MAC (source MAC rewritten too).
    ArpSender {
        arp_offset: usize,
    },
}

/// Transmit selection state for one worker (round-robin counter, tlb/alb tables).
#[derive(Clone, Debug)]
pub enum TxSelector {
    RoundRobin(RoundRobin),
    ActiveBackup,
    /// balance-xor and 802.3ad: `usable[hash % count]` (in 802.3ad the snapshot's usable
    /// members are those distributing in the active aggregator).
    Hash(HashPolicy),
    Broadcast,
    Tlb(Box<TlbState>),
    Alb(Box<AlbState>),
}

#[derive(Clone, Debug)]
pub struct RoundRobin {
    packets_per_member: u32,
    counter: u32,
    rng: u64,
}

#[derive(Clone, Debug, Default)]
pub struct TlbState {
    pub hash: HashPolicy,
    /// `tlb_dynamic_lb`: balance by load; off means `usable[hash % count]`.
    pub dynamic: bool,
    pub table: Tlb,
}

#[derive(Clone, Debug, Default)]
pub struct AlbState {
    pub tlb: TlbState,
    pub rlb: Rlb,
}

impl TxSelector {
    /// `seed` feeds the random member choice of `packets_per_slave=0`; give each worker its own.
    pub fn new(
        mode: Mode,
        hash: HashPolicy,
        packets_per_member: u32,
        tlb_dynamic_lb: bool,
        seed: u64,
    ) -> TxSelector {
        let tlb = TlbState {
            hash,
            dynamic: tlb_dynamic_lb,
            table: Tlb::default(),
        };
        match mode {
            Mode::BalanceRr => TxSelector::RoundRobin(RoundRobin {
                packets_per_member,
                counter: 0,
                rng: seed | 1,
            }),
            Mode::ActiveBackup => TxSelector::ActiveBackup,
            Mode::BalanceXor | Mode::Lacp => TxSelector::Hash(hash),
            Mode::Broadcast => TxSelector::Broadcast,
            Mode::BalanceTlb => TxSelector::Tlb(Box::new(tlb)),
            Mode::BalanceAlb => TxSelector::Alb(Box::new(AlbState {
                tlb,
                rlb: Rlb::default(),
            })),
        }
    }

    /// Takes the settings changed at runtime (`bond-dp set xmit_hash_policy`,
    /// `packets_per_slave`); the mode stays.
    pub fn retune(&mut self, t: &Tuning) {
        match self {
            TxSelector::Hash(policy) => *policy = t.hash,
            TxSelector::RoundRobin(rr) => rr.packets_per_member = t.packets_per_member,
            TxSelector::Tlb(tlb) => tlb.hash = t.hash,
            TxSelector::Alb(alb) => alb.tlb.hash = t.hash,
            TxSelector::ActiveBackup | TxSelector::Broadcast => {}
        }
    }

    /// Member `left` left the bond (the members after it move up one place): what was learnt
    /// about it is forgotten, and what was learnt about the others follows them.
    pub fn member_left(&mut self, left: MemberId) {
        match self {
            TxSelector::Tlb(tlb) => tlb.table.member_left(left),
            TxSelector::Alb(alb) => {
                alb.tlb.table.member_left(left);
                alb.rlb.member_left(left);
            }
            TxSelector::Hash(_)
            | TxSelector::RoundRobin(_)
            | TxSelector::ActiveBackup
            | TxSelector::Broadcast => {}
        }
    }

    #[inline]
    pub fn select(&mut self, frame: &[u8], snap: &TxSnapshot) -> Decision {
        match self {
            TxSelector::Hash(policy) => Decision::send(snap.by_hash(policy.hash(frame))),
            TxSelector::ActiveBackup => Decision::send(snap.active),
            TxSelector::RoundRobin(rr) => Decision::send(rr.select(frame, snap)),
            TxSelector::Broadcast => {
                if snap.usable().is_empty() {
                    Decision::Drop
                } else {
                    Decision::AllUsable
                }
            }
            TxSelector::Tlb(tlb) => {
                let chosen = tlb_member(tlb, frame, snap);
                alb_send(tlb, chosen, frame.len(), snap, Rewrite::None)
            }
            TxSelector::Alb(alb) => alb.select(frame, snap),
        }
    }

    /// Time-driven upkeep (the tlb/alb rebalance); call it now and then with a monotonic time.
    pub fn tick(&mut self, now: std::time::Duration, snap: &TxSnapshot) {
        match self {
            TxSelector::Tlb(t) => {
                t.table.tick(now, snap.active);
            }
            TxSelector::Alb(a) => {
                a.tlb.table.tick(now, snap.active);
            }
            _ => {}
        }
    }
}

impl RoundRobin {
    /// `bond_xmit_roundrobin_slave_get()`: IGMP goes out of the active member; everything
    /// else takes `id % member count` and the first member from there that can transmit.
    #[inline]
    fn select(&mut self, frame: &[u8], snap: &TxSnapshot) -> Option<MemberId> {
        if is_igmp(frame) {
            return snap.active.or_else(|| member_from(snap, 0));
        }
        if snap.members.is_empty() {
            return None;
        }
        let id = match self.packets_per_member {
            0 => self.next_random(),
            1 => {
                self.counter = self.counter.wrapping_add(1);
                self.counter
            }
            n => {
                self.counter = self.counter.wrapping_add(1);
                self.counter / n
            }
        };
        member_from(snap, snap.member_index(id))
    }

    fn next_random(&mut self) -> u32 {
        // xorshift64*: plenty for spreading frames, no syscalls.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// `bond_get_slave_by_id()`: the first member at or after `start` that can transmit, else the
/// first one before it.
#[inline]
fn member_from(snap: &TxSnapshot, start: MemberId) -> Option<MemberId> {
    (start..snap.members.len())
        .chain(0..start)
        .find(|&m| snap.members[m].can_tx)
}

#[inline]
fn is_igmp(frame: &[u8]) -> bool {
    L2Header::parse(frame).is_some_and(|l2| {
        l2.ethertype == ethertype::IPV4
            && frame.len() >= l2.l3_offset + 20
            && frame[l2.l3_offset + 9] == ipproto::IGMP
    })
}

/// `bond_xmit_tlb_slave_get()`: unicast IPv4/IPv6/IPX is balanced; the rest goes unbalanced.
fn tlb_member(tlb: &mut TlbState, frame: &[u8], snap: &TxSnapshot) -> Option<MemberId> {
    let l2 = L2Header::parse(frame)?;
    if l2.dst.is_multicast() {
        return None;
    }
    match l2.ethertype {
        ethertype::IPV4 | ethertype::IPV6 | ethertype::IPX => {
            let hash = tlb.hash.hash(frame);
            if tlb.dynamic {
                tlb.table.choose(hash as u8, frame.len(), snap)
            } else {
                snap.by_hash(hash)
            }
        }
        _ => None,
    }
}

/// `bond_do_alb_xmit()`: unbalanced frames go out of the active member; frames on any other
/// member carry that member's source MAC.
fn alb_send(
    tlb: &mut TlbState,
    chosen: Option<MemberId>,
    len: usize,
    snap: &TxSnapshot,
    rewrite: Rewrite,
) -> Decision {
    let member = match chosen {
        Some(m) => m,
        None => {
            if tlb.dynamic {
                tlb.table.note_unbalanced(len);
            }
            match snap.active {
                Some(a) => a,
                None => return Decision::Drop,
            }
        }
    };
    if !snap.can_tx(member) {
        return Decision::Drop;
    }
    let rewrite = match rewrite {
        Rewrite::None if Some(member) != snap.active => Rewrite::SourceMac,
        other => other,
    };
    Decision::Send { member, rewrite }
}

const IPV6_ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);

impl AlbState {
    /// `bond_xmit_alb_slave_get()`.
    fn select(&mut self, frame: &[u8], snap: &TxSnapshot) -> Decision {
        let Some(l2) = L2Header::parse(frame) else {
            return alb_send(&mut self.tlb, None, frame.len(), snap, Rewrite::None);
        };
        let ip = |at: usize, len: usize| frame.get(l2.l3_offset + at..l2.l3_offset + at + len);
        let balance_on: Option<&[u8]> = match l2.ethertype {
            ethertype::IPV4 if !l2.dst.is_broadcast() => match ip(0, 20) {
                // Neither IP broadcast nor IGMP is balanced.
                Some(h) if h[16..20] != [0xff; 4] && h[9] != ipproto::IGMP => Some(&h[16..20]),
                _ => None,
            },
            ethertype::IPV6 if !l2.dst.is_broadcast() && l2.dst != IPV6_ALL_NODES_MAC => {
                match ip(0, 40) {
                    // Duplicate address detection (from ::) must leave the active member.
                    Some(h) if h[8..24] != [0; 16] => Some(&h[24..40]),
                    _ => None,
                }
            }
            ethertype::ARP => return self.arp(frame, l2.l3_offset, snap),
            _ => None,
        };
        let chosen = balance_on.and_then(|daddr| {
            if self.tlb.dynamic {
                let bucket = daddr.iter().fold(0u8, |h, b| h ^ b);
                self.tlb.table.choose(bucket, frame.len(), snap)
            } else {
                snap.by_hash(self.tlb.hash.hash(frame))
            }
        });
        alb_send(&mut self.tlb, chosen, frame.len(), snap, Rewrite::None)
    }

    /// `rlb_arp_xmit()`: ARP from the bond itself goes out of the member assigned to the
    /// client; a reply also carries that member's MAC as the sender address.
    fn arp(&mut self, frame: &[u8], arp_offset: usize, snap: &TxSnapshot) -> Decision {
        let own = |mac: MacAddr| mac == snap.bond_mac || snap.members.iter().any(|m| m.mac == mac);
        let chosen = match ArpPacket::parse(frame, arp_offset) {
            Some(arp) if own(arp.sender_mac) && (arp.op == OP_REPLY || arp.op == OP_REQUEST) => {
                self.rlb
                    .choose(arp.sender_ip, arp.target_ip, snap)
                    .map(|m| (m, arp.op == OP_REPLY))
            }
            _ => None,
        };
        match chosen {
            Some((member, true)) => alb_send(
                &mut self.tlb,
                Some(member),
                frame.len(),
                snap,
                Rewrite::ArpSender { arp_offset },
            ),
            Some((member, false)) => alb_send(
                &mut self.tlb,
                Some(member),
                frame.len(),
                snap,
                Rewrite::None,
            ),
            None => alb_send(&mut self.tlb, None, frame.len(), snap, Rewrite::None),
        }
    }
}
