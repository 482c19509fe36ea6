//! 802.3ad LACP, sans-IO (the quinn-proto model): time and received frames go in; frames to
//! send and each port's collecting/distributing state come out. No clock, no sockets.
//!
//! [`Lacp`] runs the per-port machines of [`port`] every 100 ms, the selection logic that puts
//! ports with the same key and partner into one aggregator, and `ad_select` (stable,
//! bandwidth, count) to choose the aggregator that carries the bond's traffic.

pub mod pdu;
pub mod port;

use std::time::Duration;

use crate::config::{AdSelect, BondOptions, LacpRate};
use crate::wire::MacAddr;
use pdu::{Marker, PduError, PortInfo, PortState, SlowPdu, SLOW_PROTOCOLS_MAC};
pub use port::{Churn, PortLink};
use port::{MuxState, Port, Selected};
use thiserror::Error;

const TICK: Duration = Duration::from_millis(100);

/// The bond's LACP settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LacpConfig {
    pub system: MacAddr,
    pub system_priority: u16,
    pub user_port_key: u16,
    pub fast: bool,
    pub active: bool,
    pub ad_select: AdSelect,
}

impl LacpConfig {
    /// From the bond's options; the system is `ad_actor_system`, else the bond's MAC.
    pub fn from_options(o: &BondOptions, bond_mac: MacAddr) -> LacpConfig {
        LacpConfig {
            system: o.ad_actor_system.unwrap_or(bond_mac),
            system_priority: o.ad_actor_sys_prio as u16,
            user_port_key: o.ad_user_port_key as u16,
            fast: o.lacp_rate == LacpRate::Fast,
            active: o.lacp_active,
            ad_select: o.ad_select,
        }
    }
}

/// An aggregator: the ports that share a key and a partner. Its id stays while the bond runs,
/// whatever ports come and go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Aggregator {
    id: usize,
    ports: Vec<usize>,
    actor_key: u16,
    partner_system: MacAddr,
    partner_system_priority: u16,
    partner_key: u16,
    individual: bool,
}

impl Aggregator {
    fn has_partner(&self) -> bool {
        self.partner_system != MacAddr::ZERO
    }
}

/// What one port's slow-protocol frames did, for status and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LacpCounters {
    pub lacpdus_received: u64,
    pub lacpdus_sent: u64,
    pub markers_received: u64,
    pub marker_responses_sent: u64,
    /// Frames dropped, by reason.
    pub malformed: u64,
    pub unknown_subtype: u64,
    pub wrong_destination: u64,
    pub illegal_loopback: u64,
}

impl LacpCounters {
    fn count_drop(&mut self, why: &Dropped) {
        match why {
            Dropped::Malformed(PduError::UnknownSubtype(_)) => self.unknown_subtype += 1,
            Dropped::Malformed(_) => self.malformed += 1,
            Dropped::WrongDestination(_) => self.wrong_destination += 1,
            Dropped::IllegalLoopback => self.illegal_loopback += 1,
        }
    }

    fn add(&mut self, o: &LacpCounters) {
        self.lacpdus_received += o.lacpdus_received;
        self.lacpdus_sent += o.lacpdus_sent;
        self.markers_received += o.markers_received;
        self.marker_responses_sent += o.marker_responses_sent;
        self.malformed += o.malformed;
        self.unknown_subtype += o.unknown_subtype;
        self.wrong_destination += o.wrong_destination;
        self.illegal_loopback += o.illegal_loopback;
    }
}

/// Why a received slow-protocol frame was dropped.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum Dropped {
    #[error("malformed: {0}")]
    Malformed(PduError),
    #[error("sent to {0}, not the slow-protocols address")]
    WrongDestination(MacAddr),
    /// The kernel's "illegal loopback": our own LACPDU came back (two members cabled to
    /// each other, or a switch reflecting it).
    #[error("illegal loopback: the LACPDU carries this bond's own system id")]
    IllegalLoopback,
}

/// One port as status shows it (the kernel's 802.3ad block per slave).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub aggregator_id: Option<usize>,
    pub actor: PortInfo,
    pub partner: PortInfo,
    pub actor_churn: (Churn, u32),
    pub partner_churn: (Churn, u32),
    pub collecting: bool,
    pub distributing: bool,
    pub counters: LacpCounters,
}

/// The active aggregator as status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorStatus {
    pub id: usize,
    pub ports: usize,
    pub actor_key: u16,
    pub partner_key: u16,
    pub partner_mac: MacAddr,
}

#[derive(Clone, Debug)]
pub struct Lacp {
    cfg: LacpConfig,
    ports: Vec<Port>,
    aggregators: Vec<Aggregator>,
    active: Option<usize>,
    next_tick: Option<Duration>,
    /// The number the next port gets: numbers are never reused while the bond runs, so a
    /// partner never mistakes a newcomer for a port it knew.
    next_port_number: u16,
    next_aggregator_id: usize,
}

impl Lacp {
    /// LACP over ports with these MACs (each member's own) and links, in member order.
    pub fn new(cfg: LacpConfig, ports: &[(MacAddr, PortLink)]) -> Lacp {
        let mut lacp = Lacp {
            cfg,
            ports: Vec::new(),
            aggregators: Vec::new(),
            active: None,
            next_tick: None,
            next_port_number: 1,
            next_aggregator_id: 1,
        };
        for &(mac, link) in ports {
            lacp.add_port(mac, link);
        }
        lacp
    }

    /// A port joins, last in member order, with the next unused port number. The other
    /// ports keep their state: the partner sees one more link, nothing else.
    pub fn add_port(&mut self, mac: MacAddr, link: PortLink) {
        let cfg = &self.cfg;
        self.ports.push(Port::new(
            self.next_port_number,
            (cfg.system_priority, cfg.system),
            cfg.user_port_key,
            mac,
            link,
            cfg.fast,
            cfg.active,
        ));
        self.next_port_number = self.next_port_number.wrapping_add(1).max(1);
        self.aggregators.push(Aggregator {
            id: self.next_aggregator_id,
            ..Aggregator::default()
        });
        self.next_aggregator_id += 1;
    }

    /// Port `port` leaves; the ones after it move up one place, keeping their state. The
    /// caller says goodbye first ([`Lacp::farewell`]).
    pub fn remove_port(&mut self, port: usize) {
        if let Some(a) = self.ports[port].aggregator {
            self.aggregators[a].ports.retain(|&q| q != port);
        }
        self.ports.remove(port);
        for a in &mut self.aggregators {
            for q in &mut a.ports {
                if *q > port {
                    *q -= 1;
                }
            }
        }
        // One aggregator per port: let an empty one go, not the active one if it can help.
        let empty = |a: &Aggregator| a.ports.is_empty();
        let gone = (0..self.aggregators.len())
            .rev()
            .filter(|&a| empty(&self.aggregators[a]))
            .min_by_key(|&a| Some(a) == self.active)
            .expect("one aggregator per port");
        self.aggregators.remove(gone);
        let renumber = |a: &mut Option<usize>| {
            *a = match *a {
                Some(x) if x == gone => None,
                Some(x) if x > gone => Some(x - 1),
                x => x,
            }
        };
        renumber(&mut self.active);
        for p in &mut self.ports {
            renumber(&mut p.aggregator);
        }
        if self.active.is_some_and(|a| empty(&self.aggregators[a])) {
            self.active = None;
        }
    }

    /// The LACPDU a leaving port sends last, as the kernel does on unbind and when the bond
    /// goes down: not in sync, not collecting or distributing, not aggregating, so the
    /// partner stops using the link at once instead of after its timeout.
    pub fn farewell(&mut self, port: usize) -> Option<Vec<u8>> {
        let p = &mut self.ports[port];
        if !p.link.up {
            return None;
        }
        let mut actor = p.actor;
        for bit in [
            PortState::SYNCHRONIZATION,
            PortState::COLLECTING,
            PortState::DISTRIBUTING,
            PortState::AGGREGATION,
        ] {
            actor.state.set(bit, false);
        }
        p.counters.lacpdus_sent += 1;
        let pdu = pdu::Lacpdu {
            actor,
            partner: p.partner,
            collector_max_delay: 0,
        };
        Some(pdu.to_frame(p.mac))
    }

    /// Every port's counters added up.
    pub fn totals(&self) -> LacpCounters {
        let mut t = LacpCounters::default();
        for p in &self.ports {
            t.add(&p.counters);
        }
        t
    }

    pub fn set_link(&mut self, port: usize, link: PortLink) {
        self.ports[port].set_link(link);
    }

    /// A slow-protocol frame received on `port`. A marker request is answered at once
    /// (into `out`); an LACPDU goes to the port's receive machine. A frame not sent to the
    /// slow-protocols address, our own LACPDU come back, or anything malformed is counted
    /// by reason and dropped.
    pub fn receive(
        &mut self,
        port: usize,
        frame: &[u8],
        out: &mut Vec<(usize, Vec<u8>)>,
    ) -> Result<(), Dropped> {
        if port >= self.ports.len() {
            return Ok(()); // a port that just left
        }
        let result = self.accept(port, frame, out);
        if let Err(why) = &result {
            self.ports[port].counters.count_drop(why);
        }
        result
    }

    fn accept(
        &mut self,
        port: usize,
        frame: &[u8],
        out: &mut Vec<(usize, Vec<u8>)>,
    ) -> Result<(), Dropped> {
        let pdu = SlowPdu::parse(frame).map_err(Dropped::Malformed)?;
        // The parse checked the length.
        let dst = MacAddr(frame[..6].try_into().expect("a whole Ethernet header"));
        if dst != SLOW_PROTOCOLS_MAC {
            return Err(Dropped::WrongDestination(dst));
        }
        let p = &mut self.ports[port];
        match pdu {
            SlowPdu::Lacp(pdu) if pdu.actor.system == self.cfg.system => {
                Err(Dropped::IllegalLoopback)
            }
            SlowPdu::Lacp(pdu) => {
                p.counters.lacpdus_received += 1;
                p.receive(&pdu);
                Ok(())
            }
            SlowPdu::Marker(m) => {
                p.counters.markers_received += 1;
                if !m.response {
                    p.counters.marker_responses_sent += 1;
                    let answer = Marker {
                        response: true,
                        ..m
                    };
                    out.push((port, answer.to_frame(p.mac)));
                }
                Ok(())
            }
        }
    }

    /// Runs the machines for every 100 ms tick up to `now`; LACPDUs to send go to `out`.
    pub fn advance(&mut self, now: Duration, out: &mut Vec<(usize, Vec<u8>)>) {
        let mut next = *self.next_tick.get_or_insert(now);
        while next <= now {
            self.tick(out);
            next += TICK;
        }
        self.next_tick = Some(next);
    }

    /// When `advance` has something to do next.
    pub fn next_tick(&self) -> Option<Duration> {
        self.next_tick
    }

    fn tick(&mut self, out: &mut Vec<(usize, Vec<u8>)>) {
        for p in &mut self.ports {
            p.rx_tick();
            p.periodic_tick();
        }
        self.select();
        for i in 0..self.ports.len() {
            let agg = self.ports[i].aggregator;
            let ready = agg.is_some_and(|a| {
                self.aggregators[a]
                    .ports
                    .iter()
                    .all(|&p| self.ports[p].ready || self.ports[p].mux != MuxState::Waiting)
            });
            let active = agg.is_some() && agg == self.active;
            self.ports[i].mux_tick(ready, active);
        }
        for (i, p) in self.ports.iter_mut().enumerate() {
            if let Some(pdu) = p.tx_tick() {
                p.counters.lacpdus_sent += 1;
                out.push((i, pdu.to_frame(p.mac)));
            }
            p.churn_tick();
        }
    }

    /// Selection logic: every unselected, detached, enabled port joins the aggregator of its
    /// key and partner (or a free one), then `ad_select` picks the active aggregator.
    fn select(&mut self) {
        for i in 0..self.ports.len() {
            let p = &self.ports[i];
            if p.selected == Selected::Selected {
                continue;
            }
            if let Some(a) = p.aggregator {
                if p.mux != MuxState::Detached {
                    continue; // the mux detaches first, on this tick
                }
                self.aggregators[a].ports.retain(|&q| q != i);
                self.ports[i].aggregator = None;
            }
            let p = &self.ports[i];
            if !p.link.up {
                continue;
            }
            let joins = |a: &Aggregator| {
                !a.ports.is_empty()
                    && !a.individual
                    && a.actor_key == p.actor.key
                    && a.partner_system == p.partner.system
                    && a.partner_system_priority == p.partner.system_priority
                    && a.partner_key == p.partner.key
                    && (!a.has_partner() || p.partner.state.has(PortState::AGGREGATION))
            };
            let target = match self.aggregators.iter().position(joins) {
                Some(a) => a,
                None => {
                    // The port's own aggregator if free, else the first free one.
                    let free = if self.aggregators[i].ports.is_empty() {
                        i
                    } else {
                        self.aggregators
                            .iter()
                            .position(|a| a.ports.is_empty())
                            .expect("one aggregator per port")
                    };
                    self.aggregators[free] = Aggregator {
                        id: self.aggregators[free].id,
                        ports: Vec::new(),
                        actor_key: p.actor.key,
                        partner_system: p.partner.system,
                        partner_system_priority: p.partner.system_priority,
                        partner_key: p.partner.key,
                        individual: p.individual(),
                    };
                    free
                }
            };
            self.aggregators[target].ports.push(i);
            self.ports[i].aggregator = Some(target);
            self.ports[i].selected = Selected::Selected;
        }
        self.active = self.choose_active();
    }

    /// `ad_select`, as the kernel's ad_agg_selection_logic: an aggregating aggregator beats an
    /// individual one, one with a partner beats one without; then bandwidth takes the
    /// fastest, count the most ports (then the fastest), and stable keeps the current one
    /// while it still works. A challenger must do strictly better: on a tie the active
    /// aggregator stays, else the lowest wins.
    fn choose_active(&self) -> Option<usize> {
        let enabled = |a: &Aggregator| a.ports.iter().filter(|&&p| self.ports[p].link.up).count();
        let bandwidth = |a: &Aggregator| -> u64 {
            a.ports
                .iter()
                .filter(|&&p| self.ports[p].link.up)
                .map(|&p| u64::from(self.ports[p].link.speed_mbps))
                .sum()
        };
        let score = |a: &Aggregator| {
            let count = match self.cfg.ad_select {
                AdSelect::Count => enabled(a) as u64,
                AdSelect::Stable | AdSelect::Bandwidth => 0,
            };
            (!a.individual, a.has_partner(), count, bandwidth(a))
        };
        let works = |i: &usize| enabled(&self.aggregators[*i]) > 0;
        let current = self.active.filter(works);
        let mut best = current;
        for (i, a) in self.aggregators.iter().enumerate() {
            if works(&i) && best.is_none_or(|b| score(a) > score(&self.aggregators[b])) {
                best = Some(i);
            }
        }
        if self.cfg.ad_select == AdSelect::Stable {
            if let (Some(cur), Some(b)) = (current, best) {
                let (c, b) = (&self.aggregators[cur], &self.aggregators[b]);
                if c.has_partner() || !b.has_partner() {
                    return Some(cur);
                }
            }
        }
        best
    }

    /// Whether frames may leave on `port`: it distributes, in the active aggregator. Like
    /// the kernel, an active aggregator without a partner (the far end does not speak LACP)
    /// uses its port anyway, as an individual link.
    pub fn distributing(&self, port: usize) -> bool {
        let p = &self.ports[port];
        let Some(agg) = p.aggregator.filter(|&a| Some(a) == self.active) else {
            return false;
        };
        let individual = !self.aggregators[agg].has_partner() && p.link.up;
        p.mux == MuxState::CollectingDistributing || individual
    }

    /// Whether frames received on `port` go to the host.
    pub fn collecting(&self, port: usize) -> bool {
        self.distributing(port)
    }

    pub fn port_status(&self, port: usize) -> PortStatus {
        let p = &self.ports[port];
        let (actor_churn, partner_churn) = p.churn();
        PortStatus {
            aggregator_id: p.aggregator.map(|a| self.aggregators[a].id),
            actor: p.actor,
            partner: p.partner,
            actor_churn,
            partner_churn,
            collecting: self.collecting(port),
            distributing: self.distributing(port),
            counters: p.counters,
        }
    }

    pub fn active_aggregator(&self) -> Option<AggregatorStatus> {
        let id = self.active?;
        let a = &self.aggregators[id];
        Some(AggregatorStatus {
            id: a.id,
            ports: a.ports.len(),
            actor_key: a.actor_key,
            partner_key: a.partner_key,
            partner_mac: a.partner_system,
        })
    }

    pub fn config(&self) -> &LacpConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests;
