//! One bond's control-plane state: its members' link states, the active member, and the
//! snapshots and status built from them. No I/O: link facts and carrier readings come in.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{BondConfig, FailOverMac, Warning};
use crate::lacp::Lacp;
use crate::monitor::{ArpMonitor, Arrivals, LinkFacts, MiiMachine, PeerNotifier, Transition};
use crate::status::{BondStatus, MemberStatus};

mod lacp;
use crate::policy::{
    find_best_active, reselect_on_member_up, Candidate, LinkState, MemberId, MemberTx, Mode,
    Tuning, TxSnapshot,
};
use crate::wire::{MacAddr, NeighbourMsg};

#[derive(Clone, Debug)]
struct Member {
    name: String,
    facts: LinkFacts,
    mii: MiiMachine,
}

/// Something the operator should see in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    MemberUp(String),
    MemberDown(String),
    /// A link state change that does not change usability yet (delay started or cancelled).
    MemberPending(String, &'static str),
    ActiveChanged {
        from: Option<String>,
        to: Option<String>,
    },
    /// 802.3ad: a member started or stopped collecting and distributing.
    Distributing(String, bool),
    /// 802.3ad: the active aggregator has no partner (all-zero MAC), or has one again.
    NoLacpPartner(bool),
}

#[derive(Clone, Debug)]
pub struct Bond {
    pub config: BondConfig,
    members: Vec<Member>,
    active: Option<MemberId>,
    /// When the members were last observed (time since the monitor started).
    now: Duration,
    notifier: PeerNotifier,
    /// Changed by the operator since the data plane last saw it.
    changed: bool,
    /// Members joined or left since the data plane last saw it (it must be rebuilt).
    membership_changed: bool,
    /// With ARP monitoring, it says which members are up (as carrier does with miimon).
    arp: Option<ArpMonitor>,
    /// 802.3ad: which members collect and distribute.
    lacp: Option<Lacp>,
    /// 802.3ad: the operator was told the far end does not speak LACP.
    lacp_silence_reported: bool,
    /// Changes of active member, and when the last one happened (monitor time).
    failovers: u32,
    last_failover: Option<Duration>,
    macs: MacPlan,
    /// The bond's MAC: its first member's own at start, kept while the bond runs whatever
    /// members come and go, as the kernel keeps it.
    mac: MacAddr,
}

/// The MAC addresses the members and the host side carry. Like the kernel, every member
/// takes the bond's MAC, so that each one receives what is sent to the bond (a NIC filters
/// other addresses before XDP sees them); but in tlb and alb members keep their own, and in
/// active-backup `fail_over_mac` decides: `active` gives the bond the active member's MAC,
/// `follow` gives the active member the bond's MAC and the one it replaces its old one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacPlan {
    pub members: Vec<MacAddr>,
    pub host: MacAddr,
}

impl MacPlan {
    /// `follow`: `member` takes `bond_mac` from whoever holds it, which takes its MAC.
    fn follow(&mut self, member: MemberId, bond_mac: MacAddr) {
        match self.members.iter().position(|&m| m == bond_mac) {
            Some(holder) => self.members.swap(holder, member),
            None => self.members[member] = bond_mac,
        }
    }
}

impl Bond {
    /// A bond over members whose link facts were just read (in member order).
    pub fn new(config: BondConfig, facts: Vec<LinkFacts>) -> Bond {
        let o = &config.options;
        let members = config
            .members
            .iter()
            .zip(facts)
            .map(|(name, facts)| Member {
                name: name.clone(),
                mii: MiiMachine::new(
                    facts.carrier,
                    Duration::from_millis(o.updelay.into()),
                    Duration::from_millis(o.downdelay.into()),
                ),
                facts,
            })
            .collect();
        let notifier = PeerNotifier::new(o.num_peer_notif, peer_notif_interval(o));
        let mut bond = Bond {
            config,
            members,
            active: None,
            now: Duration::ZERO,
            notifier,
            changed: false,
            membership_changed: false,
            arp: None,
            lacp: None,
            lacp_silence_reported: false,
            failovers: 0,
            last_failover: None,
            macs: MacPlan {
                members: Vec::new(),
                host: MacAddr::ZERO,
            },
            mac: MacAddr::ZERO,
        };
        bond.mac = bond
            .members
            .first()
            .map(|m| m.facts.mac)
            .unwrap_or_default();
        bond.arp = ArpMonitor::new(&bond.config.options, bond.members.len());
        let wanted = bond.config.options.active_slave.as_ref();
        bond.active = wanted
            .and_then(|w| bond.members.iter().position(|m| &m.name == w))
            .filter(|&m| bond.members[m].mii.carries_traffic());
        if bond.active.is_none() {
            bond.active = bond.best_active(true);
        }
        bond.macs = bond.initial_macs();
        bond.lacp = bond.new_lacp();
        bond
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn member_names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// The carrier seen on each member (in member order) at `now`, time since the monitor
    /// started: on a miimon tick, a carrier event, or a running delay's deadline.
    pub fn observe(&mut self, carriers: &[bool], now: Duration) -> Vec<Event> {
        self.now = now;
        let mut events = Vec::new();
        let mut reselect = false;
        for (id, &carrier) in carriers.iter().enumerate().take(self.members.len()) {
            let no_active = self.active.is_none();
            let m = &mut self.members[id];
            m.facts.carrier = carrier;
            match m.mii.observe(carrier, now, no_active) {
                Some(Transition::Up) => {
                    events.push(Event::MemberUp(m.name.clone()));
                    self.lacp_link_changed(id);
                    let candidates = self.candidates();
                    reselect |= reselect_on_member_up(&candidates, id, self.primary(), self.active);
                }
                Some(Transition::Down) => {
                    events.push(Event::MemberDown(m.name.clone()));
                    self.lacp_link_changed(id);
                    reselect |= self.active == Some(id);
                }
                Some(Transition::Pending(state)) => {
                    events.push(Event::MemberPending(m.name.clone(), state.as_str()))
                }
                None => {}
            }
        }
        if reselect {
            let next = self.best_active(false);
            self.change_active(next, &mut events);
        }
        events
    }

    /// A member's speed and duplex, read again when its link changed (a cable plugged in after
    /// the start brings them): 802.3ad recomputes the port's key, as the kernel's
    /// ad_update_actor_keys does. The member's own MAC stays the one read at start.
    pub fn update_link(&mut self, member: MemberId, facts: &LinkFacts) {
        let m = &mut self.members[member];
        if (m.facts.speed_mbps, m.facts.full_duplex) == (facts.speed_mbps, facts.full_duplex) {
            return;
        }
        m.facts.speed_mbps = facts.speed_mbps;
        m.facts.full_duplex = facts.full_duplex;
        self.lacp_link_changed(member);
    }

    /// A member's MTU as read now. A change (from outside, or passed on from the host side)
    /// is kept, as the kernel keeps it; frames too long for the member are then dropped and
    /// counted. Returns the old MTU if it changed.
    pub fn update_mtu(&mut self, member: MemberId, mtu: u32) -> Option<u32> {
        let m = &mut self.members[member];
        if m.facts.mtu == mtu {
            return None;
        }
        let old = std::mem::replace(&mut m.facts.mtu, mtu);
        self.changed = true;
        Some(old)
    }

    /// A member's device was removed and another with its name appeared (or it came back
    /// from another namespace): a new device, with its own MAC and link. Its MAC plan is
    /// what it would have had from the start; the caller rebuilds the data plane around it.
    pub fn member_replaced(&mut self, member: MemberId, facts: LinkFacts) {
        self.members[member].facts = facts;
        self.macs.members[member] = self.initial_macs().members[member];
        self.lacp_link_changed(member);
        self.membership_changed = true;
    }

    /// Changes an option while the bond runs (`bond-dp set`), as the kernel allows through
    /// sysfs: the value is checked with the same rules as at start. Options the data plane
    /// fixes at start are refused with what to do instead. Returns what changed, and the
    /// warnings the start would give (a delay rounded to miimon, say).
    pub fn set_option(
        &mut self,
        name: &str,
        value: &str,
    ) -> Result<(Vec<Event>, Vec<Warning>), String> {
        if !crate::config::OPTION_NAMES.contains(&name) {
            // The options' own error: "unknown option", with the nearest one.
            let mut scratch = self.config.options.clone();
            let e = scratch.set(name, value).err();
            return Err(e.map_or_else(|| format!("unknown option {name}"), |e| e.to_string()));
        }
        if !RUNTIME_OPTIONS.contains(&name) {
            return Err(format!(
                "{name} cannot be changed while the bond runs (at runtime: {}); restart the \
                 bond with the new value",
                RUNTIME_OPTIONS.join(", ")
            ));
        }
        let mut options = self.config.options.clone();
        options.set(name, value).map_err(|e| e.to_string())?;
        let mut warnings = options.finish().map_err(|e| e.to_string())?;
        // A primary need not be a member: the kernel records the name, and the member of that
        // name becomes primary when it joins. Everything else must name members.
        let mut checked = options.clone();
        checked.primary = None;
        warnings.extend(
            checked
                .check_members(&self.config.members)
                .map_err(|e| e.to_string())?,
        );
        if let Some(p) = options.primary.as_ref().filter(|_| name == "primary") {
            if self.member_id(p).is_none() {
                warnings.push(Warning(format!(
                    "{p} is not a member yet: recorded as primary for when it joins"
                )));
            }
        }
        let o = &options;
        if matches!(
            name,
            "num_grat_arp" | "num_unsol_na" | "peer_notif_delay" | "miimon"
        ) {
            self.notifier = PeerNotifier::new(o.num_peer_notif, peer_notif_interval(o));
        }
        for m in &mut self.members {
            m.mii.updelay = Duration::from_millis(o.updelay.into());
            m.mii.downdelay = Duration::from_millis(o.downdelay.into());
        }
        if ARP_OPTIONS.contains(&name) {
            self.arp = ArpMonitor::new(o, self.members.len());
        }
        let mut events = Vec::new();
        if name == "active_slave" {
            let wanted = options.active_slave.as_deref();
            let id = wanted.and_then(|w| self.member_id(w));
            if let Some(id) = id.filter(|&id| Some(id) != self.active) {
                if !self.members[id].mii.carries_traffic() || !self.members[id].facts.carrier {
                    return Err(format!(
                        "cannot make {} the active member: its link is down",
                        self.members[id].name
                    ));
                }
                self.config.options = options;
                self.change_active(Some(id), &mut events);
                self.changed = true;
                return Ok((events, warnings));
            }
        }
        self.config.options = options;
        if matches!(name, "primary" | "primary_reselect") {
            // As the kernel does when these change: choose again, primary first.
            let next = self.best_active(true);
            self.change_active(next, &mut events);
        }
        self.changed = true;
        Ok((events, warnings))
    }

    /// ARP monitoring's interval and targets, if the bond uses it.
    pub fn arp_monitor(&self) -> Option<&ArpMonitor> {
        self.arp.as_ref()
    }

    /// The addresses whose ARP and neighbour discovery the ARP monitor reads (the XDP
    /// program copies those to it): its targets, if it validates or filters.
    pub fn watched_targets(&self) -> &[IpAddr] {
        match &self.arp {
            Some(arp) if arp.wants_arp() => &arp.targets,
            _ => &[],
        }
    }

    /// One ARP monitor interval at `now`: `frames[m]` says whether anything arrived on member
    /// m since the last one, `seen` are the ARP and neighbour discovery packets members
    /// received, `host_ips` the bond's own addresses. Returns what changed and the members
    /// to send probes on.
    pub fn arp_tick(
        &mut self,
        now: Duration,
        arrived: &[Arrivals],
        seen: impl IntoIterator<Item = (MemberId, NeighbourMsg)>,
        host_ips: &[IpAddr],
    ) -> (Vec<Event>, Vec<MemberId>) {
        let active = self.active;
        let up: Vec<bool> = self
            .members
            .iter()
            .map(|m| m.mii.state == LinkState::Up)
            .collect();
        let Some(arp) = self.arp.as_mut() else {
            return (Vec::new(), Vec::new());
        };
        for (m, a) in arrived.iter().enumerate() {
            if a.frames {
                arp.frames_seen(m, active, now);
            }
            if a.neighbours {
                arp.neighbours_arrived(m, active, now);
            }
        }
        for (m, msg) in seen {
            arp.neighbour_seen(m, &msg, active, host_ips, now);
        }
        let (verdicts, probes) = arp.tick(now, &up, active);
        (self.observe(&verdicts, now), probes)
    }

    /// A probe went out on `member` at `now`.
    pub fn arp_sent(&mut self, member: MemberId, now: Duration) {
        if let Some(arp) = self.arp.as_mut() {
            arp.sent(member, now);
        }
    }

    /// A member joins the running bond, last in member order (`bond-dp set BOND slaves
    /// +IF`), with the link facts just read. Refused when the data plane's sizes cannot
    /// serve one more member.
    pub fn add_member(&mut self, name: &str, facts: LinkFacts) -> Result<Vec<Event>, String> {
        if self.members.iter().any(|m| m.name == name) {
            return Err(format!("{name} is already a member"));
        }
        let mut config = self.config.clone();
        config.members.push(name.to_string());
        crate::config::check_member_count(config.members.len(), &config.host)?;
        config.engine.check(config.ports_per_worker())?;
        self.config = config;
        let o = &self.config.options;
        let mii = MiiMachine::new(
            facts.carrier,
            Duration::from_millis(o.updelay.into()),
            Duration::from_millis(o.downdelay.into()),
        );
        let own = facts.mac;
        self.members.push(Member {
            name: name.to_string(),
            facts,
            mii,
        });
        if let Some(arp) = self.arp.as_mut() {
            arp.add_member(self.now);
        }
        // The MAC the member would have had from the start.
        let mac = self.initial_macs().members.last().copied().unwrap_or(own);
        self.macs.members.push(mac);
        let mut events = Vec::new();
        let is_primary = self.config.options.primary.as_deref() == Some(name);
        if self.active.is_none() || (is_primary && self.config.options.mode.uses_primary()) {
            // Like the kernel: a bond without an active member takes the newcomer if it can,
            // and a primary that comes back is made active again (force_primary).
            let next = self.best_active(true);
            self.change_active(next, &mut events);
        }
        // A new LACP port; the others go on as they were.
        let link = self.port_link(self.members.len() - 1);
        if let Some(lacp) = self.lacp.as_mut() {
            lacp.add_port(own, link);
        }
        self.membership_changed = true;
        Ok(events)
    }

    /// A member leaves the running bond (`bond-dp set BOND slaves -IF`); the ones after it
    /// move up one place. Returns what changed and the member's own MAC, to give back.
    pub fn remove_member(&mut self, name: &str) -> Result<(Vec<Event>, MacAddr), String> {
        let Some(id) = self.members.iter().position(|m| m.name == name) else {
            let list = self.config.members.join(", ");
            return Err(format!(
                "{name} is not a member of the bond (members: {list})"
            ));
        };
        if self.members.len() == 1 {
            return Err(format!(
                "{name} is the last member: stop the bond instead of removing it"
            ));
        }
        let mut events = Vec::new();
        let was_active = self.active == Some(id);
        let member = self.members.remove(id);
        self.config.members.remove(id);
        self.config.options.prio.remove(name);
        self.config.options.queue_id.remove(name);
        // The kernel forgets an active_slave that leaves; a primary is kept by name, for
        // when a member of that name joins again.
        if self.config.options.active_slave.as_deref() == Some(name) {
            self.config.options.active_slave = None;
        }
        self.macs.members.remove(id);
        if let Some(arp) = self.arp.as_mut() {
            arp.remove_member(id);
        }
        self.active = match self.active {
            Some(a) if a > id => Some(a - 1),
            Some(a) if a == id => None,
            a => a,
        };
        if was_active {
            let next = self.best_active(false);
            if self.config.options.mode.uses_primary() {
                events.push(Event::ActiveChanged {
                    from: Some(name.to_string()),
                    to: next.map(|a| self.members[a].name.clone()),
                });
                self.set_active(next);
            } else {
                self.active = next;
            }
        }
        if let Some(lacp) = self.lacp.as_mut() {
            lacp.remove_port(id);
        }
        self.membership_changed = true;
        Ok((events, member.facts.mac))
    }

    /// True once after members joined or left, for the monitor to rebuild the data plane.
    pub fn take_membership_changed(&mut self) -> bool {
        std::mem::take(&mut self.membership_changed)
    }

    /// True once after an operator's change, for the monitor to publish it.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn change_active(&mut self, next: Option<MemberId>, events: &mut Vec<Event>) {
        if next == self.active {
            return;
        }
        if !self.config.options.mode.uses_primary() {
            // No active member to speak of: nothing to say, as in the kernel.
            self.active = next;
            return;
        }
        events.push(Event::ActiveChanged {
            from: self.active.map(|a| self.members[a].name.clone()),
            to: next.map(|a| self.members[a].name.clone()),
        });
        self.set_active(next);
    }

    /// Makes `next` the active member: peers are to be told, and MACs follow as
    /// fail_over_mac says.
    fn set_active(&mut self, next: Option<MemberId>) {
        self.active = next;
        self.failovers += 1;
        self.last_failover = Some(self.now);
        if self.config.options.mode.uses_primary() {
            self.notifier.active_changed(next, self.now);
        }
        match (self.config.options.mode, next) {
            (Mode::ActiveBackup, Some(next)) => match self.config.options.fail_over_mac {
                FailOverMac::None => {}
                FailOverMac::Active => self.macs.host = self.members[next].facts.mac,
                FailOverMac::Follow => self.macs.follow(next, self.bond_mac()),
            },
            // The kernel's alb_swap_mac_addr: the new active member takes the bond's MAC
            // (peers and switches send to it), the one that had it takes the newcomer's.
            (Mode::BalanceTlb | Mode::BalanceAlb, Some(next)) => {
                self.macs.follow(next, self.bond_mac())
            }
            _ => {}
        }
    }

    fn initial_macs(&self) -> MacPlan {
        let own: Vec<MacAddr> = self.members.iter().map(|m| m.facts.mac).collect();
        let bond_mac = self.bond_mac();
        let o = &self.config.options;
        let mut plan = MacPlan {
            members: vec![bond_mac; own.len()],
            host: bond_mac,
        };
        match (o.mode, o.fail_over_mac) {
            (Mode::BalanceTlb | Mode::BalanceAlb, _) => {
                // Members keep their own MACs, but the active one carries the bond's.
                plan.members = own;
                if let Some(a) = self.active {
                    plan.follow(a, bond_mac);
                }
            }
            (Mode::ActiveBackup, FailOverMac::Active) => {
                plan.host = self.active.map_or(bond_mac, |a| own[a]);
                plan.members = own;
            }
            (Mode::ActiveBackup, FailOverMac::Follow) => {
                plan.members = own;
                if let Some(a) = self.active {
                    plan.follow(a, bond_mac);
                }
            }
            _ => {}
        }
        plan
    }

    /// The MACs the members and the host side should carry now.
    pub fn macs(&self) -> &MacPlan {
        &self.macs
    }

    /// Each member's own (permanent) MAC, read at start.
    pub fn permanent_macs(&self) -> impl Iterator<Item = (&str, MacAddr)> {
        self.members.iter().map(|m| (m.name.as_str(), m.facts.mac))
    }

    /// Each member's link facts as last read (its MAC the permanent one).
    pub fn member_links(&self) -> impl Iterator<Item = (&str, &LinkFacts)> {
        self.members.iter().map(|m| (m.name.as_str(), &m.facts))
    }

    /// When the monitor must look again even without a poll or an event: a running updelay
    /// or downdelay ends, or a peer notification is due.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.members
            .iter()
            .filter_map(|m| m.mii.deadline())
            .chain(self.notifier.next_due())
            .chain(self.lacp_due())
            .min()
    }

    /// The member to announce the bond's addresses on at `now` (gratuitous ARPs, unsolicited
    /// NAs), if a round is due. Like the kernel, only while the bond has carrier.
    pub fn peer_notification_due(&mut self, now: Duration) -> Option<MemberId> {
        let due = self.notifier.due(now)?;
        (self.carrier() && self.active == Some(due)).then_some(due)
    }

    /// The member of that name.
    pub fn member_id(&self, name: &str) -> Option<MemberId> {
        self.members.iter().position(|m| m.name == name)
    }

    pub fn member_name(&self, id: MemberId) -> &str {
        &self.members[id].name
    }

    fn primary(&self) -> Option<MemberId> {
        let p = self.config.options.primary.as_ref()?;
        self.members.iter().position(|m| &m.name == p)
    }

    fn candidates(&self) -> Vec<Candidate> {
        self.members
            .iter()
            .map(|m| Candidate {
                link: m.mii.state,
                is_up: m.facts.carrier,
                speed_mbps: m.facts.speed_mbps.unwrap_or(0),
                full_duplex: m.facts.full_duplex.unwrap_or(false),
                prio: self.config.options.prio.get(&m.name).copied().unwrap_or(0),
                delay_left: m.mii.delay_left(self.now).as_millis() as u32,
            })
            .collect()
    }

    fn best_active(&self, force_primary: bool) -> Option<MemberId> {
        let o = &self.config.options;
        find_best_active(
            &self.candidates(),
            self.primary(),
            self.active,
            o.primary_reselect,
            force_primary,
            o.updelay,
        )
    }

    pub fn active(&self) -> Option<&str> {
        self.active.map(|a| self.members[a].name.as_str())
    }

    /// Whether the bond has carrier: any member usable (802.3ad: at least min_links).
    pub fn carrier(&self) -> bool {
        let usable = (0..self.members.len()).filter(|&m| self.can_tx(m)).count();
        match self.config.options.mode {
            Mode::Lacp => usable > 0 && usable >= self.config.options.min_links as usize,
            _ => usable > 0,
        }
    }

    /// The bond's MAC: the first member's, as the kernel gives a new bond.
    pub fn bond_mac(&self) -> MacAddr {
        self.mac
    }

    /// Whether frames received on a member are delivered to the host: in modes with one
    /// active member only the active one delivers (unless all_slaves_active), as the kernel
    /// drops what arrives on inactive members.
    pub fn delivers(&self, member: MemberId) -> bool {
        let o = &self.config.options;
        if let Some(lacp) = &self.lacp {
            return lacp.collecting(member);
        }
        !o.mode.uses_primary() || o.all_slaves_active || self.active == Some(member)
    }

    /// Whether `member` may transmit: its link is usable and, in 802.3ad, it distributes in
    /// the active aggregator.
    fn can_tx(&self, member: MemberId) -> bool {
        self.members[member].mii.carries_traffic()
            && self.lacp.as_ref().is_none_or(|l| l.distributing(member))
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// What the transmit path needs, as of now.
    pub fn snapshot(&self) -> TxSnapshot {
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(id, m)| MemberTx {
                // The MAC it carries now: its own, the bond's, or one swapped on failover.
                mac: self.macs.members.get(id).copied().unwrap_or(m.facts.mac),
                speed_mbps: m.facts.speed_mbps.unwrap_or(0),
                can_tx: self.can_tx(id),
                // An Ethernet header and one VLAN tag beyond the MTU, as a NIC takes.
                max_frame: m.facts.mtu.saturating_add(18),
            })
            .collect();
        let active = if self.config.options.mode.uses_primary() {
            self.active
        } else {
            (0..self.members.len()).find(|&m| self.can_tx(m))
        };
        let delivers = (0..self.members.len()).map(|m| self.delivers(m)).collect();
        let mut snap = TxSnapshot::new(members, active, self.macs.host).with_receive(delivers);
        snap.tuning = Some(Tuning {
            hash: self.config.options.xmit_hash_policy,
            packets_per_member: self.config.options.packets_per_slave,
        });
        snap
    }

    pub fn status(&self) -> BondStatus {
        let o = &self.config.options;
        let mut st = BondStatus::from_options(&self.config.name, o, self.config.host.to_string());
        // Only modes with one active member have one to show (ab, tlb, alb).
        st.active = self
            .active()
            .filter(|_| o.mode.uses_primary())
            .map(String::from);
        // A primary that is not a member is shown as none, as the kernel's primary_slave.
        st.primary = st.primary.filter(|p| self.member_id(p).is_some());
        st.carrier = self.carrier();
        st.failovers = self.failovers;
        st.last_failover_ms = self.last_failover.map(|t| t.as_millis() as u64);
        if let Some(lacp) = st.lacp.as_mut().filter(|l| l.system_mac.is_empty()) {
            lacp.system_mac = self
                .members
                .first()
                .map(|m| m.facts.mac.to_string())
                .unwrap_or_default();
        }
        st.members = self
            .members
            .iter()
            .map(|m| MemberStatus {
                name: m.name.clone(),
                mii_status: m.mii.state.as_str().to_string(),
                speed_mbps: m.facts.speed_mbps,
                full_duplex: m.facts.full_duplex,
                link_failure_count: m.mii.link_failures,
                permanent_hw_addr: m.facts.mac.to_string(),
                queue_id: o.queue_id.get(&m.name).copied().unwrap_or(0),
                prio: o.prio.get(&m.name).copied().unwrap_or(0),
                lacp: None,
            })
            .collect();
        self.lacp_status(&mut st);
        st
    }
}

/// Options `bond-dp set` changes while the bond runs. The mode and transmit policy are built
/// into the workers at start, and the ARP monitor's settings into the monitor.
pub const RUNTIME_OPTIONS: &[&str] = &[
    "active_slave",
    "primary",
    "primary_reselect",
    "miimon",
    "updelay",
    "downdelay",
    "use_carrier",
    "num_grat_arp",
    "num_unsol_na",
    "peer_notif_delay",
    "all_slaves_active",
    "min_links",
    "prio",
    "xmit_hash_policy",
    "packets_per_slave",
    "arp_interval",
    "arp_ip_target",
    "ns_ip6_target",
    "arp_validate",
    "arp_all_targets",
    "arp_missed_max",
];

/// The runtime options that remake the ARP monitor.
const ARP_OPTIONS: &[&str] = &[
    "arp_interval",
    "arp_ip_target",
    "ns_ip6_target",
    "arp_validate",
    "arp_all_targets",
    "arp_missed_max",
    "miimon",
];

/// How far apart peer notification rounds go: `peer_notif_delay`, or one monitor interval
/// when it is 0 (the kernel sends one round per miimon tick).
fn peer_notif_interval(o: &crate::config::BondOptions) -> Duration {
    let ms = [o.peer_notif_delay, o.miimon, o.arp_interval]
        .into_iter()
        .find(|&ms| ms > 0)
        .unwrap_or(1);
    Duration::from_millis(ms.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostSpec;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn facts(i: u8, carrier: bool) -> LinkFacts {
        LinkFacts {
            ifindex: u32::from(i) + 10,
            mac: MacAddr([2, 0, 0, 0, 0, i]),
            carrier,
            speed_mbps: Some(10_000),
            full_duplex: Some(true),
            mtu: 1500,
        }
    }

    fn bond(options: &str, carriers: &[bool]) -> Bond {
        let names = (0..carriers.len()).map(|i| format!("m{i}")).collect();
        let config = BondConfig::new("bond0", names, options, HostSpec::None).unwrap();
        let f = carriers
            .iter()
            .enumerate()
            .map(|(i, &c)| facts(i as u8 + 1, c))
            .collect();
        Bond::new(config, f)
    }

    #[test]
    fn fails_over_and_back_with_primary() {
        let mut b = bond("mode=active-backup,miimon=100,primary=m0", &[true, true]);
        assert_eq!(b.active(), Some("m0"));
        let ev = b.observe(&[false, true], ms(100));
        assert!(ev.contains(&Event::MemberDown("m0".into())));
        assert_eq!(b.active(), Some("m1"));
        b.observe(&[true, true], ms(200));
        assert_eq!(
            b.active(),
            Some("m0"),
            "primary_reselect=always takes the primary back"
        );
        let st = b.status();
        assert_eq!(st.members[0].link_failure_count, 1);
        assert!(st.to_proc().contains("Currently Active Slave: m0"));
    }

    #[test]
    fn failure_reselect_keeps_the_new_active() {
        let mut b = bond(
            "mode=1 miimon=100 primary=m0 primary_reselect=failure",
            &[true, true],
        );
        b.observe(&[false, true], ms(300));
        b.observe(&[true, true], ms(400));
        assert_eq!(b.active(), Some("m1"));
    }

    #[test]
    fn all_down_then_first_back_ignores_updelay() {
        let mut b = bond("mode=1 miimon=100 updelay=5000", &[true, true]);
        b.observe(&[false, false], ms(500));
        assert_eq!(b.active(), None);
        assert!(!b.carrier());
        assert!(b.status().to_proc().contains("MII Status: down\n"));
        b.observe(&[false, true], ms(600));
        assert_eq!(b.active(), Some("m1"));
        assert!(b.carrier());
    }

    #[test]
    fn snapshot_tracks_usable_members() {
        let mut b = bond(
            "mode=balance-xor miimon=100 xmit_hash_policy=layer3+4",
            &[true, true, true],
        );
        b.observe(&[true, false, true], ms(700));
        let s = b.snapshot();
        assert_eq!(s.usable(), [0, 2]);
        assert_eq!(s.active, Some(0));
    }

    #[test]
    fn only_the_active_member_delivers_in_active_backup() {
        let mut b = bond("mode=active-backup miimon=100", &[true, true]);
        assert!(b.delivers(0) && !b.delivers(1));
        b.observe(&[false, true], ms(800));
        assert!(!b.delivers(0) && b.delivers(1));
        let b = bond(
            "mode=active-backup miimon=100 all_slaves_active=1",
            &[true, true],
        );
        assert!(b.delivers(1));
        let b = bond("mode=balance-xor miimon=100", &[true, true]);
        assert!(b.delivers(0) && b.delivers(1));
        assert_eq!(b.bond_mac(), MacAddr([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn failover_schedules_peer_notifications_on_the_new_active() {
        let mut b = bond(
            "mode=active-backup miimon=100 num_grat_arp=3 peer_notif_delay=200",
            &[true, true],
        );
        b.observe(&[false, true], ms(1000));
        assert_eq!(b.peer_notification_due(ms(1000)), Some(1));
        assert_eq!(b.peer_notification_due(ms(1100)), None);
        assert_eq!(b.next_wakeup(), Some(ms(1200)));
        assert_eq!(b.peer_notification_due(ms(1200)), Some(1));
        assert_eq!(b.peer_notification_due(ms(1400)), Some(1));
        assert_eq!(b.peer_notification_due(ms(1600)), None);
        assert_eq!(b.next_wakeup(), None);
        // Modes without an active member have no one to announce.
        let mut b = bond("mode=balance-xor miimon=100", &[true, true]);
        b.observe(&[false, true], ms(100));
        assert_eq!(b.peer_notification_due(ms(100)), None);
    }

    #[test]
    fn downdelay_deadline_wakes_the_monitor() {
        let mut b = bond("mode=active-backup miimon=100 downdelay=300", &[true, true]);
        b.observe(&[false, true], ms(1000));
        assert_eq!(b.active(), Some("m0"), "still within downdelay");
        assert_eq!(b.next_wakeup(), Some(ms(1300)));
        b.observe(&[false, true], ms(1300));
        assert_eq!(b.active(), Some("m1"));
    }

    #[test]
    fn options_change_at_runtime_with_the_start_rules() {
        let mut b = bond("mode=active-backup miimon=100 primary=m0", &[true, true]);
        let (ev, _) = b.set_option("active_slave", "m1").unwrap();
        assert_eq!(
            ev,
            [Event::ActiveChanged {
                from: Some("m0".into()),
                to: Some("m1".into())
            }]
        );
        assert!(b.take_changed() && !b.take_changed());
        assert!(b.delivers(1) && !b.delivers(0));
        // Setting the primary chooses again: the primary comes back.
        b.set_option("primary", "m0").unwrap();
        assert_eq!(b.active(), Some("m0"));
        // A member whose link is down cannot be made active.
        b.observe(&[true, false], ms(100));
        let err = b.set_option("active_slave", "m1").unwrap_err();
        assert!(err.contains("m1") && err.contains("down"), "{err}");
        // Values follow the start rules; options fixed at start are refused.
        let err = b.set_option("updelay", "soon").unwrap_err();
        assert!(err.contains("updelay"), "{err}");
        assert!(b
            .set_option("active_slave", "m7")
            .unwrap_err()
            .contains("not a member"));
        let err = b.set_option("mode", "balance-rr").unwrap_err();
        assert!(
            err.contains("cannot be changed while the bond runs"),
            "{err}"
        );
        let (_, warnings) = b.set_option("downdelay", "350").unwrap();
        assert!(warnings[0].0.contains("rounded"), "{warnings:?}");
        // The notification rounds the changes of active member asked for go out first.
        while b.peer_notification_due(ms(1000)).is_some() {}
        b.observe(&[false, true], ms(1000));
        assert_eq!(b.next_wakeup(), Some(ms(1300)), "the new downdelay applies");
    }

    #[test]
    fn members_carry_the_macs_fail_over_mac_asks_for() {
        let mac = |i: u8| MacAddr([2, 0, 0, 0, 0, i]);
        // Every member takes the bond's MAC (the first member's).
        let b = bond("mode=balance-xor miimon=100", &[true, true]);
        assert_eq!(b.macs().members, [mac(1), mac(1)]);
        let mut b = bond("mode=active-backup miimon=100", &[true, true]);
        b.observe(&[false, true], ms(100));
        assert_eq!(
            (b.macs().members.clone(), b.macs().host),
            (vec![mac(1), mac(1)], mac(1))
        );
        // active: the bond takes the active member's MAC.
        let mut b = bond(
            "mode=active-backup miimon=100 fail_over_mac=active",
            &[true, true],
        );
        assert_eq!(
            (b.macs().members.clone(), b.macs().host),
            (vec![mac(1), mac(2)], mac(1))
        );
        b.observe(&[false, true], ms(100));
        assert_eq!(b.macs().host, mac(2));
        // follow: the new active takes the bond's MAC, the old one takes the new one's.
        let mut b = bond(
            "mode=active-backup miimon=100 fail_over_mac=follow",
            &[true, true, true],
        );
        assert_eq!(b.macs().members, [mac(1), mac(2), mac(3)]);
        b.observe(&[false, true, true], ms(100));
        assert_eq!(b.macs().members, [mac(2), mac(1), mac(3)]);
        b.observe(&[false, false, true], ms(200));
        assert_eq!(b.macs().members, [mac(2), mac(3), mac(1)]);
        assert_eq!(b.macs().host, mac(1));
        // tlb and alb members keep their own.
        let b = bond("mode=balance-alb", &[true, true]);
        assert_eq!(b.macs().members, [mac(1), mac(2)]);
    }

    #[test]
    fn members_join_and_leave_a_running_bond() {
        let mut b = bond("mode=active-backup miimon=100 primary=m1", &[true, true]);
        assert_eq!(b.active(), Some("m1"));
        let ev = b.add_member("m2", facts(3, true)).unwrap();
        assert!(ev.is_empty());
        assert!(b.take_membership_changed() && !b.take_membership_changed());
        assert_eq!(b.config.members, ["m0", "m1", "m2"]);
        assert_eq!(
            b.macs().members,
            [b.bond_mac(); 3],
            "it takes the bond's MAC"
        );
        assert!(b
            .add_member("m2", facts(3, true))
            .unwrap_err()
            .contains("already"));
        // The active member leaves: the next one takes over, the rest move up.
        let (ev, own) = b.remove_member("m1").unwrap();
        assert_eq!(own, MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(
            ev,
            [Event::ActiveChanged {
                from: Some("m1".into()),
                to: Some("m0".into())
            }]
        );
        assert_eq!(b.config.members, ["m0", "m2"]);
        b.observe(&[false, true], ms(100));
        assert_eq!(b.active(), Some("m2"), "indexes moved up with the members");
        assert!(b.remove_member("m7").unwrap_err().contains("not a member"));
        b.remove_member("m0").unwrap();
        assert!(b.remove_member("m2").unwrap_err().contains("last member"));
        // A bond with no member up takes a newcomer with carrier at once.
        let mut b = bond("mode=active-backup miimon=100", &[false]);
        assert_eq!(b.active(), None);
        let ev = b.add_member("m1", facts(2, true)).unwrap();
        assert_eq!(b.active(), Some("m1"), "{ev:?}");
    }

    #[test]
    fn an_8023ad_bond_speaks_lacp_on_every_member() {
        let mut b = bond("mode=802.3ad lacp_rate=fast", &[true, true]);
        let mut sent = Vec::new();
        for t in 0..20 {
            sent.extend(b.lacp_advance(ms(100 * t)).0);
        }
        let ports: Vec<usize> = sent.iter().map(|(m, _)| *m).collect();
        assert!(ports.contains(&0) && ports.contains(&1), "{ports:?}");
        // No partner answers: like the kernel, one member carries traffic as an individual
        // link.
        assert!(b.carrier());
        assert_eq!(b.snapshot().usable().len(), 1);
    }

    #[test]
    fn a_member_plugged_in_after_the_start_gets_its_speed_and_key() {
        let mut b = bond("mode=802.3ad miimon=100", &[true, false]);
        let unplugged = LinkFacts {
            speed_mbps: None,
            full_duplex: None,
            ..facts(1, false)
        };
        b.members[1].facts = unplugged;
        b.lacp = b.new_lacp();
        let key = |b: &Bond, m: usize| b.lacp.as_ref().unwrap().port_status(m).actor.key;
        assert_eq!(key(&b, 1), 0);
        // The cable goes in: the monitor reads the link again, then sees the carrier.
        b.update_link(1, &facts(1, true));
        b.observe(&[true, true], ms(100));
        assert_eq!(key(&b, 1), key(&b, 0));
        assert_eq!(key(&b, 1), 15, "10 Gb/s full duplex");
        assert_eq!(b.status().members[1].speed_mbps, Some(10_000));
    }

    #[test]
    fn lacp_carrier_needs_min_links() {
        // No partner answers: one member carries traffic as an individual link (as the
        // kernel does), which is enough for min_links=1 but not 2.
        for (min_links, carrier) in [(1, true), (2, false)] {
            let mut b = bond(
                &format!("mode=802.3ad min_links={min_links}"),
                &[true, true],
            );
            for t in 0..10 {
                b.lacp_advance(ms(100 * t));
            }
            assert_eq!(b.carrier(), carrier, "min_links={min_links}");
        }
    }

    #[test]
    fn setting_the_active_member_tells_the_peers() {
        let mut b = bond(
            "mode=active-backup miimon=100 num_grat_arp=1",
            &[true, true],
        );
        b.observe(&[true, true], ms(100));
        while b.peer_notification_due(ms(200)).is_some() {}
        b.set_option("active_slave", "m1").unwrap();
        let due = (2..20).find_map(|t| b.peer_notification_due(ms(100 * t)));
        assert_eq!(due, Some(1), "a gratuitous ARP round on m1");
    }

    #[test]
    fn a_removed_active_slave_or_primary_blocks_nothing_and_a_primary_comes_back() {
        let mut b = bond(
            "mode=active-backup miimon=100 primary=m0 active_slave=m0",
            &[true, true, true],
        );
        assert_eq!(b.active(), Some("m0"));
        b.remove_member("m0").unwrap();
        assert_eq!(b.status().primary, None, "Primary Slave: None");
        b.set_option("miimon", "50")
            .expect("other options still change");
        assert_eq!(b.config.options.miimon, 50);
        let (_, warnings) = b.set_option("primary", "m0").unwrap();
        assert!(warnings[0].0.contains("not a member yet"), "{warnings:?}");
        assert_eq!(b.active(), Some("m1"));
        // The primary joins again and, under primary_reselect=always, is made active.
        let events = b.add_member("m0", facts(9, true)).unwrap();
        assert_eq!(b.active(), Some("m0"), "{events:?}");
        assert_eq!(b.status().primary.as_deref(), Some("m0"));
    }

    #[test]
    fn the_transmit_policy_and_arp_monitor_change_at_runtime() {
        let mut b = bond("mode=balance-xor miimon=100", &[true, true]);
        b.set_option("xmit_hash_policy", "layer3+4").unwrap();
        let t = b.snapshot().tuning.unwrap();
        assert_eq!(t.hash, crate::policy::HashPolicy::Layer34);
        let mut rr = bond("mode=balance-rr miimon=100", &[true, true]);
        rr.set_option("packets_per_slave", "4").unwrap();
        assert_eq!(rr.snapshot().tuning.unwrap().packets_per_member, 4);
        let mut ab = bond("mode=active-backup miimon=0", &[true, true]);
        assert!(ab.arp_monitor().is_none());
        ab.set_option("arp_ip_target", "192.0.2.1").unwrap();
        ab.set_option("arp_interval", "100").unwrap();
        let arp = ab.arp_monitor().expect("ARP monitoring now");
        assert_eq!(arp.targets.len(), 1);
        let e = b.set_option("mimon", "100").unwrap_err();
        assert!(e.contains("unknown option") && e.contains("miimon"), "{e}");
        let e = b.set_option("mode", "balance-rr").unwrap_err();
        assert!(e.contains("cannot be changed while the bond runs"), "{e}");
    }

    #[test]
    fn modes_without_an_active_member_show_and_say_none() {
        let mut b = bond("mode=balance-xor miimon=100", &[true, true]);
        let events = b.observe(&[false, true], ms(100));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::ActiveChanged { .. })),
            "{events:?}"
        );
        assert_eq!(b.status().active, None);
    }

    #[test]
    fn tlb_and_alb_fail_over_by_swapping_the_bonds_mac() {
        let mac = |i: u8| MacAddr([2, 0, 0, 0, 0, i]);
        for mode in ["balance-tlb", "balance-alb"] {
            let mut b = bond(&format!("mode={mode} miimon=100"), &[true, true]);
            assert_eq!(b.macs().members, [mac(1), mac(2)], "{mode}: own MACs");
            b.observe(&[false, true], ms(100));
            assert_eq!(b.active(), Some("m1"));
            assert_eq!(
                b.macs().members,
                [mac(2), mac(1)],
                "{mode}: m1 carries the bond's MAC, m0 takes m1's"
            );
            let snap = b.snapshot();
            assert_eq!(
                snap.members[1].mac,
                mac(1),
                "frames leave with the MAC it carries"
            );
            // A primary active from the start carries the bond's MAC from the start.
            let p = bond(&format!("mode={mode} miimon=100 primary=m1"), &[true, true]);
            assert_eq!(p.macs().members, [mac(2), mac(1)], "{mode}");
        }
    }
}
