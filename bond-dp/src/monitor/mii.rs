//! The MII monitor's per-member state machine (`bond_miimon_inspect()`), sans-IO: each tick
//! takes the carrier seen now and moves through up / going down / down / going back with
//! downdelay and updelay counted in ticks.

use crate::policy::LinkState;

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
    /// Ticks left on the running updelay or downdelay.
    pub delay_left: u32,
    pub updelay_ticks: u32,
    pub downdelay_ticks: u32,
    pub link_failures: u32,
}

impl MiiMachine {
    /// A member starts up when it has carrier at enslave time, down otherwise.
    pub fn new(carrier: bool, updelay_ticks: u32, downdelay_ticks: u32) -> Self {
        MiiMachine {
            state: if carrier {
                LinkState::Up
            } else {
                LinkState::Down
            },
            delay_left: 0,
            updelay_ticks,
            downdelay_ticks,
            link_failures: 0,
        }
    }

    /// Usable for transmit: up, or still within its downdelay (the kernel keeps such a member
    /// in the transmit set until the delay runs out).
    pub fn carries_traffic(&self) -> bool {
        matches!(self.state, LinkState::Up | LinkState::Fail)
    }

    /// One monitor tick. `ignore_updelay` is set when the bond has no active member: the first
    /// member to come back is used at once.
    pub fn tick(&mut self, carrier: bool, ignore_updelay: bool) -> Option<Transition> {
        match self.state {
            LinkState::Up | LinkState::Fail if carrier => {
                let was_failing = self.state == LinkState::Fail;
                self.state = LinkState::Up;
                was_failing.then_some(Transition::Pending(LinkState::Up))
            }
            LinkState::Up => {
                self.delay_left = self.downdelay_ticks;
                self.state = LinkState::Fail;
                self.fail_tick()
                    .or(Some(Transition::Pending(LinkState::Fail)))
            }
            LinkState::Fail => self.fail_tick(),
            LinkState::Down | LinkState::Back if !carrier => {
                let was_back = self.state == LinkState::Back;
                self.state = LinkState::Down;
                was_back.then_some(Transition::Pending(LinkState::Down))
            }
            LinkState::Down => {
                self.delay_left = self.updelay_ticks;
                self.state = LinkState::Back;
                self.back_tick(ignore_updelay)
                    .or(Some(Transition::Pending(LinkState::Back)))
            }
            LinkState::Back => self.back_tick(ignore_updelay),
        }
    }

    fn fail_tick(&mut self) -> Option<Transition> {
        if self.delay_left == 0 {
            self.state = LinkState::Down;
            self.link_failures = self.link_failures.saturating_add(1);
            return Some(Transition::Down);
        }
        self.delay_left -= 1;
        None
    }

    fn back_tick(&mut self, ignore_updelay: bool) -> Option<Transition> {
        if ignore_updelay || self.delay_left == 0 {
            self.delay_left = 0;
            self.state = LinkState::Up;
            return Some(Transition::Up);
        }
        self.delay_left -= 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_delays_changes_at_once() {
        let mut m = MiiMachine::new(true, 0, 0);
        assert_eq!(m.tick(true, false), None);
        assert_eq!(m.tick(false, false), Some(Transition::Down));
        assert_eq!(m.link_failures, 1);
        assert_eq!(m.tick(false, false), None);
        assert_eq!(m.tick(true, false), Some(Transition::Up));
        assert_eq!(m.state, LinkState::Up);
    }

    #[test]
    fn downdelay_keeps_the_member_until_it_runs_out() {
        let mut m = MiiMachine::new(true, 0, 2);
        assert_eq!(
            m.tick(false, false),
            Some(Transition::Pending(LinkState::Fail))
        );
        assert!(m.carries_traffic());
        assert_eq!(m.tick(false, false), None);
        assert_eq!(m.tick(false, false), Some(Transition::Down));
        assert!(!m.carries_traffic());
        // A flap shorter than downdelay is not a failure.
        let mut m = MiiMachine::new(true, 0, 2);
        m.tick(false, false);
        assert_eq!(
            m.tick(true, false),
            Some(Transition::Pending(LinkState::Up))
        );
        assert_eq!(m.link_failures, 0);
    }

    #[test]
    fn updelay_holds_a_returning_member_back() {
        let mut m = MiiMachine::new(false, 2, 0);
        assert_eq!(
            m.tick(true, false),
            Some(Transition::Pending(LinkState::Back))
        );
        assert!(!m.carries_traffic());
        assert_eq!(m.tick(true, false), None);
        assert_eq!(m.tick(true, false), Some(Transition::Up));
        // Losing carrier while going back returns to down, not a failure.
        let mut m = MiiMachine::new(false, 2, 0);
        m.tick(true, false);
        assert_eq!(
            m.tick(false, false),
            Some(Transition::Pending(LinkState::Down))
        );
        assert_eq!(m.link_failures, 0);
    }

    #[test]
    fn no_active_member_ignores_updelay() {
        let mut m = MiiMachine::new(false, 50, 0);
        assert_eq!(m.tick(true, true), Some(Transition::Up));
    }
}
