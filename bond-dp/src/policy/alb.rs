//! balance-alb's receive balancing, transmit side (`rlb_arp_xmit()` in `bond_alb.c`): each
//! client (by the XOR of its IPv4 address bytes) is given a member, and the ARP replies the
//! host sends it carry that member's MAC, so the client sends to that member.

use super::{MemberId, TxSnapshot};

const RLB_ENTRIES: usize = 256;

#[derive(Clone, Copy, Debug, Default)]
struct Client {
    assigned: bool,
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    member: MemberId,
}

#[derive(Clone, Debug)]
pub struct Rlb {
    clients: [Client; RLB_ENTRIES],
    /// The member the last new client went to (round-robin position).
    last_rx_member: Option<MemberId>,
}

impl Default for Rlb {
    fn default() -> Self {
        Rlb {
            clients: [Client::default(); RLB_ENTRIES],
            last_rx_member: None,
        }
    }
}

impl Rlb {
    /// The member that handles the client `ip_dst` for our address `ip_src`, assigning one
    /// round-robin (fastest first) when the client is new or its member can no longer carry it.
    pub fn choose(
        &mut self,
        ip_src: [u8; 4],
        ip_dst: [u8; 4],
        snap: &TxSnapshot,
    ) -> Option<MemberId> {
        let index = usize::from(ip_dst.iter().fold(0u8, |h, b| h ^ b));
        let c = self.clients[index];
        if c.assigned && c.ip_src == ip_src && c.ip_dst == ip_dst && snap.can_tx(c.member) {
            return Some(c.member);
        }
        let member = self.next_rx_member(snap)?;
        self.clients[index] = Client {
            assigned: true,
            ip_src,
            ip_dst,
            member,
        };
        Some(member)
    }

    /// Member `left` left the bond: its clients are given out again, and the members after it
    /// move up one place, their clients with them.
    pub fn member_left(&mut self, left: MemberId) {
        for c in self.clients.iter_mut().filter(|c| c.assigned) {
            match super::after_leaving(c.member, left) {
                Some(m) => c.member = m,
                None => c.assigned = false,
            }
        }
        self.last_rx_member = self
            .last_rx_member
            .and_then(|m| super::after_leaving(m, left));
    }

    /// `__rlb_next_rx_slave()`: the fastest usable member after the last one given out,
    /// else the fastest from the start up to it.
    fn next_rx_member(&mut self, snap: &TxSnapshot) -> Option<MemberId> {
        let speed = |m: MemberId| snap.members[m].speed_mbps;
        let mut before: Option<MemberId> = None;
        let mut after: Option<MemberId> = None;
        let mut found = false;
        for &m in snap.usable() {
            if !found {
                if before.is_none_or(|b| speed(b) < speed(m)) {
                    before = Some(m);
                }
            } else if after.is_none_or(|a| speed(a) < speed(m)) {
                after = Some(m);
            }
            if Some(m) == self.last_rx_member {
                found = true;
            }
        }
        let pick = match (after, before) {
            (Some(a), Some(b)) if speed(a) < speed(b) => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        if pick.is_some() {
            self.last_rx_member = pick;
        }
        pick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_spread_round_robin_and_stick() {
        let s = TxSnapshot::all_up(3);
        let mut r = Rlb::default();
        let me = [10, 0, 0, 1];
        assert_eq!(r.choose(me, [10, 0, 0, 2], &s), Some(0));
        assert_eq!(r.choose(me, [10, 0, 0, 3], &s), Some(1));
        assert_eq!(r.choose(me, [10, 0, 0, 4], &s), Some(2));
        assert_eq!(r.choose(me, [10, 0, 0, 5], &s), Some(0));
        assert_eq!(
            r.choose(me, [10, 0, 0, 3], &s),
            Some(1),
            "a known client keeps its member"
        );
    }

    #[test]
    fn clients_follow_their_members_when_one_leaves() {
        let s = TxSnapshot::all_up(3);
        let mut r = Rlb::default();
        let me = [10, 0, 0, 1];
        for (client, member) in [(2, 0), (3, 1), (4, 2)] {
            assert_eq!(r.choose(me, [10, 0, 0, client], &s), Some(member));
        }
        r.member_left(1);
        let s = TxSnapshot::all_up(2);
        assert_eq!(r.choose(me, [10, 0, 0, 2], &s), Some(0), "stays");
        assert_eq!(
            r.choose(me, [10, 0, 0, 4], &s),
            Some(1),
            "moved up with its member"
        );
        // The departed member's client is given out again, after the last one given out.
        assert_eq!(r.choose(me, [10, 0, 0, 3], &s), Some(0));
    }

    #[test]
    fn client_moves_when_its_member_fails() {
        let mut s = TxSnapshot::all_up(2);
        let mut r = Rlb::default();
        let me = [10, 0, 0, 1];
        assert_eq!(r.choose(me, [10, 0, 0, 2], &s), Some(0));
        s.members[0].can_tx = false;
        let s = TxSnapshot::new(s.members, Some(1), s.bond_mac);
        assert_eq!(r.choose(me, [10, 0, 0, 2], &s), Some(1));
    }
}
