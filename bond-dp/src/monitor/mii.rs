//! The MII monitor's per-member state machine (`bond_miimon_inspect()`), sans-IO: each
//! observation takes the carrier seen at a time and moves through up / going down / down /
//! going back, with downdelay and updelay as deadlines. The kernel counts the delays in
//! miimon ticks; here they are times, so a carrier event can start a delay between ticks and
//! the monitor can look again exactly when it runs out.

use std::time::Duration;

use crate::policy::LinkState;

/// What is known of a member's link, as read from the kernel (`link::read_link`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// Which device this is: a member deleted and created again has a new index.
    pub ifindex: u32,
    pub mac: crate::wire::MacAddr,
    /// Administratively up and with carrier.
    pub carrier: bool,
    pub speed_mbps: Option<u32>,
    pub full_duplex: Option<bool>,
    pub mtu: u32,
}

/// A state change that the bond must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Became usable.
    Up,
    /// Stopped being usable (counts as a link failure).
    Down,
    /// Entered going down / going back, or returned from it without a change of usability.
    Pending(LinkState),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiiMachine {
    pub state: LinkState,
    /// When the running updelay or downdelay ends (time since the monitor started).
    deadline: Duration,
    pub updelay: Duration,
    pub downdelay: Duration,
    pub link_failures: u32,
}

impl MiiMachine {
    /// A member starts up when it has carrier at enslave time, down otherwise.
    pub fn new(carrier: bool, updelay: Duration, downdelay: Duration) -> Self {
        MiiMachine {
            state: if carrier {
                LinkState::Up
            } else {
                LinkState::Down
            },
            deadline: Duration::ZERO,
            updelay,
            downdelay,
            link_failures: 0,
        }
    }

    /// Usable for transmit: up, or still within its downdelay (the kernel keeps such a member
    /// in the transmit set until the delay runs out).
    pub fn carries_traffic(&self) -> bool {
        matches!(self.state, LinkState::Up | LinkState::Fail)
    }

    /// When the running delay ends, if one runs: the monitor looks again then.
    pub fn deadline(&self) -> Option<Duration> {
        matches!(self.state, LinkState::Fail | LinkState::Back).then_some(self.deadline)
    }

    /// What is left of the running delay at `now` (zero when none runs).
    pub fn delay_left(&self, now: Duration) -> Duration {
        self.deadline()
            .map_or(Duration::ZERO, |d| d.saturating_sub(now))
    }

    /// The carrier seen at `now`. `ignore_updelay` is set when the bond has no active
    /// member: the first member to come back is used at once.
    pub fn observe(
        &mut self,
        carrier: bool,
        now: Duration,
        ignore_updelay: bool,
    ) -> Option<Transition> {
        match self.state {
            LinkState::Up | LinkState::Fail if carrier => {
                let was_failing = self.state == LinkState::Fail;
                self.state = LinkState::Up;
                was_failing.then_some(Transition::Pending(LinkState::Up))
            }
            LinkState::Up => {
                self.deadline = now + self.downdelay;
                self.state = LinkState::Fail;
                self.fail_check(now)
                    .or(Some(Transition::Pending(LinkState::Fail)))
            }
            LinkState::Fail => self.fail_check(now),
            LinkState::Down | LinkState::Back if !carrier => {
                let was_back = self.state == LinkState::Back;
                self.state = LinkState::Down;
                was_back.then_some(Transition::Pending(LinkState::Down))
            }
            LinkState::Down => {
                self.deadline = now + self.updelay;
                self.state = LinkState::Back;
                self.back_check(now, ignore_updelay)
                    .or(Some(Transition::Pending(LinkState::Back)))
            }
            LinkState::Back => self.back_check(now, ignore_updelay),
        }
    }

    fn fail_check(&mut self, now: Duration) -> Option<Transition> {
        if now < self.deadline {
            return None;
        }
        self.state = LinkState::Down;
        self.link_failures = self.link_failures.saturating_add(1);
        Some(Transition::Down)
    }

    fn back_check(&mut self, now: Duration, ignore_updelay: bool) -> Option<Transition> {
        if !ignore_updelay && now < self.deadline {
            return None;
        }
        self.state = LinkState::Up;
        Some(Transition::Up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn without_delays_changes_at_once() {
        let mut m = MiiMachine::new(true, ms(0), ms(0));
        assert_eq!(m.observe(true, ms(100), false), None);
        assert_eq!(m.observe(false, ms(130), false), Some(Transition::Down));
        assert_eq!(m.link_failures, 1);
        assert_eq!(m.deadline(), None);
        assert_eq!(m.observe(false, ms(200), false), None);
        assert_eq!(m.observe(true, ms(250), false), Some(Transition::Up));
        assert_eq!(m.state, LinkState::Up);
    }

    #[test]
    fn downdelay_keeps_the_member_until_it_runs_out() {
        let mut m = MiiMachine::new(true, ms(0), ms(200));
        assert_eq!(
            m.observe(false, ms(1000), false),
            Some(Transition::Pending(LinkState::Fail))
        );
        assert!(m.carries_traffic());
        assert_eq!(m.deadline(), Some(ms(1200)));
        assert_eq!(m.delay_left(ms(1150)), ms(50));
        assert_eq!(m.observe(false, ms(1199), false), None);
        assert_eq!(m.observe(false, ms(1200), false), Some(Transition::Down));
        assert!(!m.carries_traffic());
        // A flap shorter than downdelay is not a failure.
        let mut m = MiiMachine::new(true, ms(0), ms(200));
        m.observe(false, ms(1000), false);
        assert_eq!(
            m.observe(true, ms(1100), false),
            Some(Transition::Pending(LinkState::Up))
        );
        assert_eq!(m.link_failures, 0);
    }

    #[test]
    fn updelay_holds_a_returning_member_back() {
        let mut m = MiiMachine::new(false, ms(200), ms(0));
        assert_eq!(
            m.observe(true, ms(10), false),
            Some(Transition::Pending(LinkState::Back))
        );
        assert!(!m.carries_traffic());
        assert_eq!(m.observe(true, ms(100), false), None);
        assert_eq!(m.observe(true, ms(210), false), Some(Transition::Up));
        // Losing carrier while going back returns to down, not a failure.
        let mut m = MiiMachine::new(false, ms(200), ms(0));
        m.observe(true, ms(10), false);
        assert_eq!(
            m.observe(false, ms(20), false),
            Some(Transition::Pending(LinkState::Down))
        );
        assert_eq!(m.link_failures, 0);
    }

    #[test]
    fn no_active_member_ignores_updelay() {
        let mut m = MiiMachine::new(false, ms(5000), ms(0));
        assert_eq!(m.observe(true, ms(1), true), Some(Transition::Up));
        // Also when the updelay is already running.
        let mut m = MiiMachine::new(false, ms(5000), ms(0));
        m.observe(true, ms(1), false);
        assert_eq!(m.observe(true, ms(2), true), Some(Transition::Up));
    }
}
