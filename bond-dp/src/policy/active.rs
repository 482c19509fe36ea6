//! Which member is active in active-backup, tlb and alb: the kernel's
//! `bond_find_best_slave()` / `bond_choose_primary_or_current()`, and when it is asked again.

use std::fmt;

use super::MemberId;

/// A member's link state as the monitor tracks it (printed as in /proc/net/bonding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkState {
    Up,
    /// Link lost, downdelay running.
    Fail,
    #[default]
    Down,
    /// Link back, updelay running.
    Back,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Fail => "going down",
            LinkState::Down => "down",
            LinkState::Back => "going back",
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

named_enum!(
    /// When the primary takes over again (`primary_reselect`).
    PrimaryReselect {
        /// The primary becomes active whenever it comes up.
        Always = "always", 0;
        /// Only if it is faster (or as fast with better duplex) than the current active.
        Better = "better", 1;
        /// Only when the current active fails.
        Failure = "failure", 2;
    }
);

/// What the choice needs to know of each member, in enslave order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Candidate {
    pub link: LinkState,
    /// Interface administratively up with carrier (`bond_slave_is_up()`).
    pub is_up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
    pub prio: i32,
    /// Milliseconds left on a running updelay.
    pub delay_left: u32,
}

/// The member that should be active. `updelay_ms` is the full updelay:
/// with no member up, the member going back with the least delay left is taken at once —
/// a bond with no link takes the first one that returns, whatever updelay says.
pub fn find_best_active(
    members: &[Candidate],
    primary: Option<MemberId>,
    current: Option<MemberId>,
    reselect: PrimaryReselect,
    force_primary: bool,
    updelay_ms: u32,
) -> Option<MemberId> {
    if let Some(m) = primary_or_current(members, primary, current, reselect, force_primary) {
        return Some(m);
    }
    let mut best = None;
    let mut min_delay = updelay_ms;
    for (id, m) in members.iter().enumerate() {
        if m.link == LinkState::Up {
            return Some(id);
        }
        if m.link == LinkState::Back && m.is_up && m.delay_left < min_delay {
            min_delay = m.delay_left;
            best = Some(id);
        }
    }
    best
}

fn primary_or_current(
    members: &[Candidate],
    primary: Option<MemberId>,
    current: Option<MemberId>,
    reselect: PrimaryReselect,
    force_primary: bool,
) -> Option<MemberId> {
    let up =
        |m: Option<MemberId>| m.and_then(|m| members.get(m)).map(|c| c.link) == Some(LinkState::Up);
    let prim = match primary.filter(|&p| up(Some(p))) {
        Some(p) => {
            if force_primary {
                return Some(p);
            }
            p
        }
        None => {
            // No usable primary: the up member with the highest prio (first one on ties).
            let mut hprio: Option<MemberId> = None;
            for (id, m) in members.iter().enumerate() {
                if m.link == LinkState::Up && hprio.is_none_or(|h| m.prio > members[h].prio) {
                    hprio = Some(id);
                }
            }
            match hprio {
                Some(h) if Some(h) != current => h,
                _ => return current.filter(|&c| up(Some(c))),
            }
        }
    };
    let Some(curr) = current.filter(|&c| up(Some(c))) else {
        return Some(prim);
    };
    match reselect {
        PrimaryReselect::Always => Some(prim),
        PrimaryReselect::Better => {
            let (p, c) = (&members[prim], &members[curr]);
            let not_better = p.speed_mbps < c.speed_mbps
                || (p.speed_mbps == c.speed_mbps && p.full_duplex <= c.full_duplex);
            Some(if not_better { curr } else { prim })
        }
        PrimaryReselect::Failure => Some(curr),
    }
}

/// When a member comes up, the kernel looks for a new active only if there is none, the
/// member is the primary, or it outranks the current active by prio.
pub fn reselect_on_member_up(
    members: &[Candidate],
    member: MemberId,
    primary: Option<MemberId>,
    current: Option<MemberId>,
) -> bool {
    match current.and_then(|c| members.get(c)) {
        None => true,
        Some(curr) => {
            Some(member) == primary || members.get(member).is_some_and(|m| m.prio > curr.prio)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;

    fn member(link: LinkState) -> Candidate {
        Candidate {
            link,
            is_up: link != Down,
            speed_mbps: 10_000,
            full_duplex: true,
            ..Default::default()
        }
    }

    #[test]
    fn first_up_without_primary() {
        let ms = [member(Down), member(Up), member(Up)];
        assert_eq!(
            find_best_active(&ms, None, None, PrimaryReselect::Always, false, 0),
            Some(1)
        );
        // The current active stays while up, even when an earlier member is up again: the
        // highest-prio search picks member 1 (first up); it is not the current one, so the
        // reselect policy (always) decides in its favour — as the kernel does.
        assert_eq!(
            find_best_active(&ms, None, Some(2), PrimaryReselect::Always, false, 0),
            Some(1)
        );
        assert_eq!(
            find_best_active(&ms, None, Some(2), PrimaryReselect::Failure, false, 0),
            Some(2)
        );
    }

    #[test]
    fn primary_reselect_policies() {
        // Primary m0 comes back while m1 is active.
        let mut ms = [member(Up), member(Up)];
        let choose = |ms: &[Candidate], r| find_best_active(ms, Some(0), Some(1), r, false, 0);
        assert_eq!(choose(&ms, PrimaryReselect::Always), Some(0));
        assert_eq!(choose(&ms, PrimaryReselect::Failure), Some(1));
        // better: equal speed and duplex is not better.
        assert_eq!(choose(&ms, PrimaryReselect::Better), Some(1));
        ms[0].speed_mbps = 25_000;
        assert_eq!(choose(&ms, PrimaryReselect::Better), Some(0));
        ms[0].speed_mbps = 1_000;
        assert_eq!(choose(&ms, PrimaryReselect::Better), Some(1));
        // failure: once the current fails, the primary takes over.
        ms[1].link = Down;
        assert_eq!(choose(&ms, PrimaryReselect::Failure), Some(0));
        // force_primary (primary just set) overrides the policy.
        let ms = [member(Up), member(Up)];
        assert_eq!(
            find_best_active(&ms, Some(0), Some(1), PrimaryReselect::Failure, true, 0),
            Some(0)
        );
    }

    #[test]
    fn prio_decides_without_primary() {
        let mut ms = [member(Up), member(Up), member(Up)];
        ms[2].prio = 10;
        ms[1].prio = 5;
        assert_eq!(
            find_best_active(&ms, None, None, PrimaryReselect::Always, false, 0),
            Some(2)
        );
        // A down primary falls back to prio.
        ms[0].link = Down;
        assert_eq!(
            find_best_active(&ms, Some(0), Some(1), PrimaryReselect::Always, false, 0),
            Some(2)
        );
    }

    #[test]
    fn no_link_takes_first_back_whatever_updelay() {
        let mut ms = [member(Down), member(Back), member(Back)];
        ms[1].delay_left = 19;
        ms[2].delay_left = 7;
        assert_eq!(
            find_best_active(&ms, None, None, PrimaryReselect::Always, false, 20),
            Some(2)
        );
        // A member going back that is not up (no carrier) is not taken.
        ms[2].is_up = false;
        assert_eq!(
            find_best_active(&ms, None, None, PrimaryReselect::Always, false, 20),
            Some(1)
        );
        assert_eq!(
            find_best_active(
                &[member(Down)],
                None,
                None,
                PrimaryReselect::Always,
                false,
                20
            ),
            None
        );
    }

    #[test]
    fn reselect_triggers() {
        let mut ms = [member(Up), member(Up), member(Up)];
        assert!(reselect_on_member_up(&ms, 0, None, None));
        assert!(!reselect_on_member_up(&ms, 0, None, Some(1)));
        assert!(reselect_on_member_up(&ms, 0, Some(0), Some(1)));
        ms[2].prio = 1;
        assert!(reselect_on_member_up(&ms, 2, None, Some(1)));
    }
}
