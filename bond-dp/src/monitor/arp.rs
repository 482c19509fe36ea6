//! The ARP and NS monitor, sans-IO: the kernel's `bond_ab_arp_inspect` / `bond_ab_arp_probe`
//! (active-backup, tlb, alb), `bond_loadbalance_arp_mon` (the other modes) and
//! `bond_rcv_validate` / `bond_arp_rcv` / `bond_na_rcv` (what received traffic proves a
//! member alive). IPv4 targets (`arp_ip_target`) are probed with ARP requests, IPv6 targets
//! (`ns_ip6_target`) with neighbour solicitations; both answer the same way.
//!
//! Each interval the monitor reports what arrived (frames counted by the XDP program, ARP
//! and neighbour discovery packets the data plane saw), asks [`ArpMonitor::tick`] for each
//! member's verdict and the members to probe on, sends the probes and reports them with
//! [`ArpMonitor::sent`]. The verdicts go to the bond as the carrier would with miimon.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{ArpAllTargets, ArpValidate, BondOptions};
use crate::policy::MemberId;
use crate::wire::NeighbourMsg;

/// `arp_validate` bits: validate on the active member, on backups, and count only ARP.
const VALIDATE_ACTIVE: u64 = 1;
const VALIDATE_BACKUP: u64 = 2;
const FILTER: u64 = 4;

#[derive(Clone, Debug, Default)]
struct Member {
    /// Last proof of life received (`slave->last_rx`).
    last_rx: Option<Duration>,
    /// Last probe sent (`slave->last_tx`).
    last_tx: Option<Duration>,
    /// Last validated ARP from each target (`target_last_arp_rx`).
    target_rx: Vec<Option<Duration>>,
    /// When the member last became up (or the monitor started).
    last_link_up: Duration,
}

/// What arrived on a member since the last interval, as the XDP program counts it: any
/// frame, and ARP or neighbour discovery of any kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arrivals {
    pub frames: bool,
    pub neighbours: bool,
}

#[derive(Clone, Debug)]
pub struct ArpMonitor {
    interval: Duration,
    /// The IPv4 targets, then the IPv6 ones.
    pub targets: Vec<IpAddr>,
    validate: u64,
    all_targets: bool,
    missed_max: u32,
    /// Modes with one active member probe on it alone, or on each member in turn when none
    /// is active; the others probe on every member.
    one_active: bool,
    members: Vec<Member>,
    /// The member probed in turn while no member is active (`current_arp_slave`).
    probing: Option<MemberId>,
    /// The active member at the last interval.
    active: Option<MemberId>,
}

impl ArpMonitor {
    /// The monitor for a bond's options, if ARP monitoring is on (`arp_interval` > 0).
    pub fn new(o: &BondOptions, members: usize) -> Option<ArpMonitor> {
        if o.arp_interval == 0 {
            return None;
        }
        let validate = match o.arp_validate {
            ArpValidate::None => 0,
            ArpValidate::Active => VALIDATE_ACTIVE,
            ArpValidate::Backup => VALIDATE_BACKUP,
            ArpValidate::All => VALIDATE_ACTIVE | VALIDATE_BACKUP,
            ArpValidate::Filter => FILTER,
            ArpValidate::FilterActive => FILTER | VALIDATE_ACTIVE,
            ArpValidate::FilterBackup => FILTER | VALIDATE_BACKUP,
        };
        let targets: Vec<IpAddr> = (o.arp_ip_target.iter().copied().map(IpAddr::V4))
            .chain(o.ns_ip6_target.iter().copied().map(IpAddr::V6))
            .collect();
        let member = Member {
            target_rx: vec![None; targets.len()],
            ..Member::default()
        };
        Some(ArpMonitor {
            interval: Duration::from_millis(o.arp_interval.into()),
            targets,
            validate,
            all_targets: o.arp_all_targets == ArpAllTargets::All,
            missed_max: o.arp_missed_max.max(1),
            one_active: o.mode.uses_primary(),
            members: vec![member; members],
            probing: None,
            active: None,
        })
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether ARP and neighbour discovery packets must be seen (not just counted): the
    /// data plane then hands them over, also from members it does not deliver from.
    pub fn wants_arp(&self) -> bool {
        self.validate != 0
    }

    fn validates(&self, is_active: bool) -> bool {
        let bit = if is_active {
            VALIDATE_ACTIVE
        } else {
            VALIDATE_BACKUP
        };
        self.validate & bit != 0
    }

    fn is_active(&self, member: MemberId, active: Option<MemberId>) -> bool {
        !self.one_active || active == Some(member)
    }

    /// Frames arrived on `member` since the last interval (any kind): proof of life where
    /// the member is not validated and no filter asks for ARP only.
    pub fn frames_seen(&mut self, member: MemberId, active: Option<MemberId>, now: Duration) {
        let is_active = self.is_active(member, active);
        if !self.validates(is_active) && self.validate & FILTER == 0 {
            self.members[member].last_rx = Some(now);
        }
    }

    /// ARP or neighbour discovery of any kind arrived on `member` (the XDP program counts
    /// them all; it copies only those of the targets): with `arp_validate=filter`, what
    /// proves a member that is not validated.
    pub fn neighbours_arrived(
        &mut self,
        member: MemberId,
        active: Option<MemberId>,
        now: Duration,
    ) {
        let is_active = self.is_active(member, active);
        if !self.validates(is_active) && self.validate & FILTER != 0 {
            self.members[member].last_rx = Some(now);
        }
    }

    /// An ARP or neighbour discovery packet arrived on `member`. `host_ips` are the bond's
    /// own addresses: a reply proves the path only if it answers one of them (so the bond's
    /// own probes, looping back through a switch, prove nothing).
    pub fn neighbour_seen(
        &mut self,
        member: MemberId,
        msg: &NeighbourMsg,
        active: Option<MemberId>,
        host_ips: &[IpAddr],
        now: Duration,
    ) {
        let is_active = self.is_active(member, active);
        if !self.validates(is_active) {
            if self.validate & FILTER != 0 {
                self.members[member].last_rx = Some(now);
            }
            return;
        }
        let (sip, tip) = (msg.sender, msg.target);
        if is_active {
            self.validate_arp(member, sip, tip, host_ips, now);
        } else if active.is_some_and(|a| {
            self.last_rx(a, true)
                .is_some_and(|rx| rx > self.members[a].last_link_up)
        }) {
            // A backup sees the active member's broadcast requests through the switch:
            // sender and target are the other way round.
            self.validate_arp(member, tip, sip, host_ips, now);
        } else if self
            .probing
            .is_some_and(|p| msg.reply && self.in_interval(self.members[p].last_tx, 1, now))
        {
            // The switch may deliver the reply to a member other than the prober.
            self.validate_arp(member, sip, tip, host_ips, now);
        }
    }

    fn validate_arp(
        &mut self,
        member: MemberId,
        sip: IpAddr,
        tip: IpAddr,
        host_ips: &[IpAddr],
        now: Duration,
    ) {
        if sip.is_unspecified() || !host_ips.contains(&tip) {
            return;
        }
        if let Some(i) = self.targets.iter().position(|&t| t == sip) {
            let m = &mut self.members[member];
            m.last_rx = Some(now);
            m.target_rx[i] = Some(now);
        }
    }

    /// A member joins the bond (at the end of the member order), with no proof of life yet.
    pub fn add_member(&mut self, now: Duration) {
        self.members.push(Member {
            target_rx: vec![None; self.targets.len()],
            last_link_up: now,
            ..Member::default()
        });
    }

    /// Member `member` leaves the bond; the ones after it move up one place.
    pub fn remove_member(&mut self, member: MemberId) {
        self.members.remove(member);
        let shift = |m: Option<MemberId>| match m {
            Some(m) if m == member => None,
            Some(m) if m > member => Some(m - 1),
            m => m,
        };
        self.probing = shift(self.probing);
        self.active = shift(self.active);
    }

    /// A probe went out on `member`.
    pub fn sent(&mut self, member: MemberId, now: Duration) {
        self.members[member].last_tx = Some(now);
    }

    /// The member's last proof of life; with `arp_all_targets=all` on a validated member,
    /// the oldest answer of any target.
    fn last_rx(&self, member: MemberId, is_active: bool) -> Option<Duration> {
        let m = &self.members[member];
        if self.all_targets && self.validates(is_active) {
            return m.target_rx.iter().copied().min().flatten();
        }
        m.last_rx
    }

    /// `bond_time_in_interval`: `when` is within `intervals` intervals (and half of one for
    /// jitter) before `now`.
    fn in_interval(&self, when: Option<Duration>, intervals: u32, now: Duration) -> bool {
        when.is_some_and(|t| now <= t + self.interval * intervals + self.interval / 2)
    }

    /// One interval at `now`. `up[m]`: whether member m is up now. Returns whether each
    /// member should be up, and the members to probe on this interval.
    pub fn tick(
        &mut self,
        now: Duration,
        up: &[bool],
        active: Option<MemberId>,
    ) -> (Vec<bool>, Vec<MemberId>) {
        if active != self.active {
            // A member just made active gets the same grace as one just up.
            if let Some(a) = active {
                self.members[a].last_link_up = now;
            }
            self.active = active;
        }
        let verdicts: Vec<bool> = (0..self.members.len())
            .map(|m| self.verdict(m, up[m], active, now))
            .collect();
        for (m, (&was, &is)) in up.iter().zip(&verdicts).enumerate() {
            if is && !was {
                self.members[m].last_link_up = now;
            }
        }
        let probes = if !self.one_active {
            (0..self.members.len()).collect()
        } else if let Some(a) = active.filter(|&a| verdicts[a]) {
            self.probing = None;
            vec![a]
        } else {
            // No active member: probe each member in turn until one answers.
            let n = self.members.len();
            let next = self.probing.map_or(0, |p| (p + 1) % n);
            self.probing = Some(next);
            vec![next]
        };
        (verdicts, probes)
    }

    fn verdict(&self, m: MemberId, up: bool, active: Option<MemberId>, now: Duration) -> bool {
        let member = &self.members[m];
        if !self.one_active {
            // An up member counts from when it came up (the kernel's enslave-time stamps).
            let (intervals, since) = if up {
                (self.missed_max, Some(member.last_link_up))
            } else {
                (1, None)
            };
            return self.in_interval(member.last_tx.max(since), intervals, now)
                && self.in_interval(member.last_rx.max(since), intervals, now);
        }
        let is_active = active == Some(m);
        let last_rx = self.last_rx(m, is_active);
        if !up {
            return self.in_interval(last_rx, 1, now);
        }
        // A member just up (or just made active) gets two intervals to prove itself.
        if now <= member.last_link_up + self.interval * 2 {
            return true;
        }
        if is_active {
            self.in_interval(member.last_tx, self.missed_max, now)
                && self.in_interval(last_rx, self.missed_max, now)
        } else {
            self.probing.is_some() || self.in_interval(last_rx, self.missed_max + 1, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const TARGET: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const HOSTS: &[IpAddr] = &[IpAddr::V4(HOST)];
    const OP_REQUEST: bool = false;
    const OP_REPLY: bool = true;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn monitor(options: &str, members: usize) -> ArpMonitor {
        let (o, _) = BondOptions::parse(options).unwrap();
        ArpMonitor::new(&o, members).unwrap()
    }

    fn arp(reply: bool, sender: Ipv4Addr, target: Ipv4Addr) -> NeighbourMsg {
        NeighbourMsg {
            reply,
            sender: IpAddr::V4(sender),
            target: IpAddr::V4(target),
        }
    }

    #[test]
    fn off_without_arp_interval() {
        let (o, _) = BondOptions::parse("mode=active-backup miimon=100").unwrap();
        assert!(ArpMonitor::new(&o, 2).is_none());
    }

    #[test]
    fn active_member_fails_when_the_target_stops_answering() {
        let opts = "mode=active-backup arp_interval=100 arp_ip_target=10.0.0.2 arp_validate=active";
        let mut a = monitor(opts, 2);
        let active = Some(0);
        let mut t = 0;
        // Replies keep m0 up; m1 (a backup, not validated) lives on any traffic.
        for _ in 0..10 {
            t += 100;
            a.sent(0, ms(t));
            a.neighbour_seen(0, &arp(OP_REPLY, TARGET, HOST), active, HOSTS, ms(t));
            a.frames_seen(1, active, ms(t));
            let (verdicts, probes) = a.tick(ms(t), &[true, true], active);
            assert_eq!(verdicts, [true, true]);
            assert_eq!(probes, [0], "probes go out on the active member only");
        }
        // A reply to someone else's address, or from a non-target, proves nothing.
        for _ in 0..3 {
            t += 100;
            a.sent(0, ms(t));
            let other = Ipv4Addr::new(10, 0, 0, 9);
            a.neighbour_seen(0, &arp(OP_REPLY, TARGET, other), active, HOSTS, ms(t));
            a.neighbour_seen(0, &arp(OP_REPLY, other, HOST), active, HOSTS, ms(t));
            a.frames_seen(1, active, ms(t));
            a.tick(ms(t), &[true, true], active);
        }
        let (verdicts, _) = a.tick(ms(t + 100), &[true, true], active);
        assert_eq!(
            verdicts,
            [false, true],
            "missed_max=2 intervals without a reply"
        );
    }

    #[test]
    fn unvalidated_members_live_on_any_traffic_and_filter_wants_arp() {
        let mut a = monitor(
            "mode=active-backup arp_interval=100 arp_ip_target=10.0.0.2",
            2,
        );
        assert!(!a.wants_arp());
        a.tick(ms(0), &[true, true], Some(0));
        a.sent(0, ms(1000));
        a.frames_seen(0, Some(0), ms(1000));
        assert!(a.tick(ms(1000), &[true, true], Some(0)).0[0], "any frame");
        let mut f = monitor(
            "mode=active-backup arp_interval=100 arp_ip_target=10.0.0.2 arp_validate=filter",
            2,
        );
        assert!(f.wants_arp());
        f.tick(ms(0), &[true, true], Some(0));
        f.sent(0, ms(1000));
        f.frames_seen(0, Some(0), ms(1000));
        assert!(!f.tick(ms(1000), &[true, true], Some(0)).0[0], "not ARP");
        f.neighbour_seen(0, &arp(OP_REQUEST, TARGET, HOST), Some(0), &[], ms(1100));
        f.sent(0, ms(1100));
        assert!(f.tick(ms(1100), &[true, true], Some(0)).0[0], "any ARP");
    }

    #[test]
    fn backups_validate_the_active_members_requests() {
        let opts = "mode=active-backup arp_interval=100 arp_ip_target=10.0.0.2 arp_validate=all";
        let mut a = monitor(opts, 2);
        let active = Some(0);
        let mut t = 1000;
        a.sent(0, ms(t));
        a.neighbour_seen(0, &arp(OP_REPLY, TARGET, HOST), active, HOSTS, ms(t));
        // m1 sees m0's broadcast request (sender = us, target = the target).
        a.neighbour_seen(1, &arp(OP_REQUEST, HOST, TARGET), active, HOSTS, ms(t));
        assert_eq!(a.tick(ms(t), &[true, true], active).0, [true, true]);
        // The switch stops forwarding to m1: after missed_max + 1 intervals it is down.
        for _ in 0..4 {
            t += 100;
            a.sent(0, ms(t));
            a.neighbour_seen(0, &arp(OP_REPLY, TARGET, HOST), active, HOSTS, ms(t));
        }
        assert_eq!(a.tick(ms(t), &[true, true], active).0, [true, false]);
    }

    #[test]
    fn with_no_active_member_each_member_is_probed_in_turn() {
        let mut a = monitor(
            "mode=active-backup arp_interval=100 arp_ip_target=10.0.0.2",
            3,
        );
        let probes: Vec<MemberId> = (1..=4)
            .map(|i| a.tick(ms(1000 * i), &[false; 3], None).1[0])
            .collect();
        assert_eq!(probes, [0, 1, 2, 0]);
        // A member that hears back comes up.
        a.frames_seen(1, None, ms(4050));
        assert_eq!(a.tick(ms(4100), &[false; 3], None).0, [false, true, false]);
    }

    #[test]
    fn load_balancing_modes_need_both_directions_on_every_member() {
        let mut a = monitor(
            "mode=balance-xor arp_interval=100 arp_ip_target=10.0.0.2 arp_missed_max=3",
            2,
        );
        let (_, probes) = a.tick(ms(100), &[true, true], Some(0));
        assert_eq!(probes, [0, 1], "every member probes");
        for t in [200, 300, 400, 500] {
            a.sent(0, ms(t));
            a.sent(1, ms(t));
            a.frames_seen(0, Some(0), ms(t));
        }
        let (verdicts, _) = a.tick(ms(500), &[true, true], Some(0));
        assert_eq!(verdicts, [true, false], "m1 heard nothing");
        // Down members come back on one interval with both directions.
        a.frames_seen(1, Some(0), ms(600));
        a.sent(1, ms(600));
        assert_eq!(a.tick(ms(600), &[true, false], Some(0)).0, [true, true]);
    }
}
