//! When to tell peers about a new active member (`num_grat_arp` / `num_unsol_na`, spaced by
//! `peer_notif_delay`), sans-IO: the first round goes out at the change, the rest one interval
//! apart; a newer change starts over, and losing the active member stops them.

use std::time::Duration;

use crate::policy::MemberId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerNotifier {
    rounds: u32,
    interval: Duration,
    member: MemberId,
    left: u32,
    next: Duration,
}

impl PeerNotifier {
    /// `rounds` notifications per change, `interval` apart.
    pub fn new(rounds: u32, interval: Duration) -> Self {
        PeerNotifier {
            rounds,
            interval,
            member: 0,
            left: 0,
            next: Duration::ZERO,
        }
    }

    /// The active member changed at `now`.
    pub fn active_changed(&mut self, to: Option<MemberId>, now: Duration) {
        match to {
            Some(member) => {
                self.member = member;
                self.left = self.rounds;
                self.next = now;
            }
            None => self.left = 0,
        }
    }

    /// The member to send a round of notifications on, if one is due at `now`.
    pub fn due(&mut self, now: Duration) -> Option<MemberId> {
        if self.left == 0 || now < self.next {
            return None;
        }
        self.left -= 1;
        self.next = now + self.interval;
        Some(self.member)
    }

    /// When the next round is due.
    pub fn next_due(&self) -> Option<Duration> {
        (self.left > 0).then_some(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rounds_go_out_one_interval_apart() {
        let mut n = PeerNotifier::new(3, ms(200));
        assert_eq!(n.due(ms(0)), None);
        n.active_changed(Some(1), ms(1000));
        assert_eq!(n.due(ms(1000)), Some(1));
        assert_eq!(n.due(ms(1000)), None);
        assert_eq!(n.next_due(), Some(ms(1200)));
        assert_eq!(n.due(ms(1199)), None);
        assert_eq!(n.due(ms(1200)), Some(1));
        assert_eq!(n.due(ms(1450)), Some(1));
        assert_eq!(n.due(ms(5000)), None);
        assert_eq!(n.next_due(), None);
    }

    #[test]
    fn a_new_change_starts_over_and_none_stops() {
        let mut n = PeerNotifier::new(2, ms(100));
        n.active_changed(Some(0), ms(0));
        n.due(ms(0));
        n.active_changed(Some(1), ms(50));
        assert_eq!(n.due(ms(50)), Some(1));
        assert_eq!(n.due(ms(150)), Some(1));
        n.active_changed(Some(0), ms(200));
        n.active_changed(None, ms(201));
        assert_eq!(n.due(ms(300)), None);
        let mut off = PeerNotifier::new(0, ms(100));
        off.active_changed(Some(0), ms(0));
        assert_eq!(off.due(ms(0)), None);
    }
}
