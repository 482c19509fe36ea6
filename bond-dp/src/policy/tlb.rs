//! balance-tlb's transmit table (`bond_alb.c`): 256 buckets, each assigned on first use to the
//! member with the most spare capacity, and all cleared and re-learned every 10 seconds.

use std::time::Duration;

use super::{MemberId, TxSnapshot};

pub const TLB_BUCKETS: usize = 256;
/// How often the table is cleared and the load re-learned (BOND_TLB_REBALANCE_INTERVAL).
pub const TLB_REBALANCE_INTERVAL: Duration = Duration::from_secs(10);
const INTERVAL_SECS: u64 = TLB_REBALANCE_INTERVAL.as_secs();

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    member: Option<MemberId>,
    /// Bytes sent through this bucket since the last rebalance.
    tx_bytes: u64,
    /// Bytes per second it carried over the last interval (plus one, so it counts).
    load_history: u64,
}

/// One transmit table. Each worker owns its own: no lock on the fast path.
#[derive(Clone, Debug)]
pub struct Tlb {
    buckets: [Bucket; TLB_BUCKETS],
    /// Per member: the load (bytes/s) of the buckets assigned to it.
    member_load: Vec<u64>,
    /// Bytes that went out unbalanced (multicast, non-IP) through the active member.
    unbalanced_load: u64,
    last_rebalance: Option<Duration>,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            buckets: [Bucket::default(); TLB_BUCKETS],
            member_load: Vec::new(),
            unbalanced_load: 0,
            last_rebalance: None,
        }
    }
}

impl Tlb {
    /// The member for a bucket, assigning it to the least loaded usable member when it has
    /// none (or its member can no longer transmit). Counts `len` bytes against the bucket.
    pub fn choose(&mut self, bucket: u8, len: usize, snap: &TxSnapshot) -> Option<MemberId> {
        if self.member_load.len() < snap.members.len() {
            // Only when members are added: never on the per-frame path of a stable bond.
            self.member_load.resize(snap.members.len(), 0);
        }
        let index = usize::from(bucket);
        let member = match self.buckets[index].member {
            Some(m) if snap.can_tx(m) => m,
            stale => {
                if let Some(gone) = stale {
                    self.forget(gone);
                }
                let m = self.least_loaded(snap)?;
                let b = &mut self.buckets[index];
                b.member = Some(m);
                self.member_load[m] += b.load_history;
                m
            }
        };
        self.buckets[index].tx_bytes += len as u64;
        Some(member)
    }

    /// The usable member with the largest gap between its speed and its load (first wins ties).
    fn least_loaded(&self, snap: &TxSnapshot) -> Option<MemberId> {
        let gap = |m: MemberId| {
            (i64::from(snap.members[m].speed_mbps) << 20)
                - (self.member_load.get(m).copied().unwrap_or(0) << 3) as i64
        };
        let mut best: Option<(MemberId, i64)> = None;
        for &m in snap.usable() {
            let g = gap(m);
            if best.is_none_or(|(_, bg)| bg < g) {
                best = Some((m, g));
            }
        }
        best.map(|(m, _)| m)
    }

    /// Records bytes sent unbalanced through the active member.
    pub fn note_unbalanced(&mut self, len: usize) {
        self.unbalanced_load += len as u64;
    }

    /// Clears a member's buckets (it failed or left) so they are re-learned on others.
    pub fn forget(&mut self, member: MemberId) {
        for b in self.buckets.iter_mut().filter(|b| b.member == Some(member)) {
            b.member = None;
        }
        if let Some(load) = self.member_load.get_mut(member) {
            *load = 0;
        }
    }

    /// Member `left` left the bond: its buckets are re-learned on others, and the members
    /// after it move up one place, their buckets with them.
    pub fn member_left(&mut self, left: MemberId) {
        for b in &mut self.buckets {
            b.member = b.member.and_then(|m| super::after_leaving(m, left));
        }
        if left < self.member_load.len() {
            self.member_load.remove(left);
        }
    }

    /// Clears every assignment, keeping each bucket's load of the interval, and charges the
    /// unbalanced load to the active member.
    pub fn rebalance(&mut self, active: Option<MemberId>) {
        for b in self.buckets.iter_mut().filter(|b| b.member.is_some()) {
            b.load_history = 1 + b.tx_bytes / INTERVAL_SECS;
            b.tx_bytes = 0;
            b.member = None;
        }
        self.member_load.iter_mut().for_each(|l| *l = 0);
        if let Some(load) = active.and_then(|a| self.member_load.get_mut(a)) {
            *load = self.unbalanced_load / INTERVAL_SECS;
        }
        self.unbalanced_load = 0;
    }

    /// Rebalances when the interval has passed since the last one; `now` is any monotonic
    /// time. Returns whether it did.
    pub fn tick(&mut self, now: Duration, active: Option<MemberId>) -> bool {
        match self.last_rebalance {
            None => {
                self.last_rebalance = Some(now);
                false
            }
            Some(last) if now.saturating_sub(last) >= TLB_REBALANCE_INTERVAL => {
                self.rebalance(active);
                self.last_rebalance = Some(now);
                true
            }
            Some(_) => false,
        }
    }

    /// The member a bucket is assigned to, if any.
    pub fn assigned(&self, bucket: u8) -> Option<MemberId> {
        self.buckets[usize::from(bucket)].member
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MemberTx;
    use crate::wire::MacAddr;

    fn snap(speeds: &[u32]) -> TxSnapshot {
        let members = speeds
            .iter()
            .map(|&s| MemberTx {
                mac: MacAddr::ZERO,
                speed_mbps: s,
                can_tx: true,
                max_frame: u32::MAX,
            })
            .collect();
        TxSnapshot::new(members, Some(0), MacAddr::ZERO)
    }

    #[test]
    fn new_buckets_go_to_the_least_loaded() {
        let s = snap(&[1000, 1000]);
        let mut t = Tlb::default();
        // Fresh table: equal gaps, first member wins.
        assert_eq!(t.choose(7, 1500, &s), Some(0));
        assert_eq!(t.choose(7, 1500, &s), Some(0));
        // A heavy interval on bucket 7, then a rebalance: its history now loads member 0.
        t.choose(7, 10_000_000, &s);
        t.rebalance(Some(0));
        assert_eq!(t.assigned(7), None);
        assert_eq!(t.choose(7, 100, &s), Some(0));
        assert_eq!(
            t.choose(8, 100, &s),
            Some(1),
            "member 0 carries bucket 7's load"
        );
    }

    #[test]
    fn faster_member_takes_more() {
        let s = snap(&[1000, 10_000]);
        let mut t = Tlb::default();
        assert_eq!(t.choose(1, 64, &s), Some(1));
    }

    #[test]
    fn failed_member_buckets_move() {
        let mut s = snap(&[1000, 1000]);
        let mut t = Tlb::default();
        assert_eq!(t.choose(3, 64, &s), Some(0));
        s.members[0].can_tx = false;
        s = TxSnapshot::new(s.members, Some(1), MacAddr::ZERO);
        assert_eq!(t.choose(3, 64, &s), Some(1));
        s.members[1].can_tx = false;
        s = TxSnapshot::new(s.members, None, MacAddr::ZERO);
        assert_eq!(t.choose(3, 64, &s), None);
    }

    #[test]
    fn buckets_follow_their_members_when_one_leaves() {
        let s = snap(&[1000, 1000, 1000]);
        let mut t = Tlb::default();
        // An interval of equal loads, then each bucket goes to the least loaded.
        for bucket in 1..=3 {
            t.choose(bucket, 10_000, &s);
        }
        t.rebalance(Some(0));
        for (bucket, member) in [(1, 0), (2, 1), (3, 2)] {
            assert_eq!(t.choose(bucket, 10_000, &s), Some(member));
        }
        t.member_left(1);
        assert_eq!(t.assigned(1), Some(0));
        assert_eq!(
            t.assigned(2),
            None,
            "the departed member's bucket is re-learned"
        );
        assert_eq!(t.assigned(3), Some(1), "moved up with its member");
        let s = snap(&[1000, 1000]);
        assert_eq!(t.choose(3, 64, &s), Some(1));
        assert_eq!(t.member_load.len(), 2);
    }

    #[test]
    fn tick_rebalances_every_interval() {
        let s = snap(&[1000]);
        let mut t = Tlb::default();
        assert!(!t.tick(Duration::from_secs(100), Some(0)));
        t.choose(1, 64, &s);
        assert!(!t.tick(Duration::from_secs(109), Some(0)));
        assert_eq!(t.assigned(1), Some(0));
        assert!(t.tick(Duration::from_secs(110), Some(0)));
        assert_eq!(t.assigned(1), None);
    }
}
