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
use pdu::{Marker, PduError, PortInfo, PortState, SlowPdu};
pub use port::{Churn, PortLink};
use port::{MuxState, Port, Selected};

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

/// An aggregator: the ports that share a key and a partner. Its id is its index + 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Aggregator {
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

/// What frames did, for status and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LacpCounters {
    pub lacpdus_received: u64,
    pub lacpdus_sent: u64,
    pub markers_answered: u64,
    /// Slow-protocol frames dropped as malformed or unknown.
    pub bad_received: u64,
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
    pub counters: LacpCounters,
}

impl Lacp {
    /// LACP over ports with these MACs (each member's own) and links, in member order.
    pub fn new(cfg: LacpConfig, ports: &[(MacAddr, PortLink)]) -> Lacp {
        let ports = ports
            .iter()
            .enumerate()
            .map(|(i, &(mac, link))| {
                Port::new(
                    i as u16 + 1,
                    (cfg.system_priority, cfg.system),
                    cfg.user_port_key,
                    mac,
                    link,
                    cfg.fast,
                    cfg.active,
                )
            })
            .collect::<Vec<_>>();
        Lacp {
            cfg,
            aggregators: vec![Aggregator::default(); ports.len()],
            ports,
            active: None,
            next_tick: None,
            counters: LacpCounters::default(),
        }
    }

    pub fn set_link(&mut self, port: usize, link: PortLink) {
        self.ports[port].set_link(link);
    }

    /// A slow-protocol frame received on `port`. A marker request is answered at once
    /// (into `out`); an LACPDU goes to the port's receive machine; anything malformed is
    /// counted and dropped.
    pub fn receive(
        &mut self,
        port: usize,
        frame: &[u8],
        out: &mut Vec<(usize, Vec<u8>)>,
    ) -> Result<(), PduError> {
        match SlowPdu::parse(frame) {
            Ok(SlowPdu::Lacp(pdu)) => {
                self.counters.lacpdus_received += 1;
                self.ports[port].receive(&pdu);
                Ok(())
            }
            Ok(SlowPdu::Marker(m)) if !m.response => {
                self.counters.markers_answered += 1;
                let answer = Marker {
                    response: true,
                    ..m
                };
                out.push((port, answer.to_frame(self.ports[port].mac)));
                Ok(())
            }
            Ok(SlowPdu::Marker(_)) => Ok(()),
            Err(e) => {
                self.counters.bad_received += 1;
                Err(e)
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
                self.counters.lacpdus_sent += 1;
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
                        ports: Vec::new(),
                        actor_key: p.actor.key,
                        partner_system: p.partner.system,
                        partner_system_priority: p.partner.system_priority,
                        partner_key: p.partner.key,
                        individual: !p.partner.state.has(PortState::AGGREGATION),
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

    /// `ad_select`: an aggregator with a partner beats one without; then stable keeps the
    /// current one while it still works, bandwidth takes the fastest, count the largest;
    /// ties go to the lowest id.
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
            let measure = match self.cfg.ad_select {
                AdSelect::Count => enabled(a) as u64,
                AdSelect::Stable | AdSelect::Bandwidth => bandwidth(a),
            };
            (a.has_partner(), measure)
        };
        let mut best: Option<usize> = None;
        for (i, a) in self.aggregators.iter().enumerate() {
            if enabled(a) == 0 {
                continue;
            }
            if best.is_none_or(|b| score(a) > score(&self.aggregators[b])) {
                best = Some(i);
            }
        }
        if self.cfg.ad_select == AdSelect::Stable {
            if let (Some(cur), Some(b)) = (self.active, best) {
                let (c, b) = (&self.aggregators[cur], &self.aggregators[b]);
                if enabled(c) > 0 && (c.has_partner() || !b.has_partner()) {
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
            aggregator_id: p.aggregator.map(|a| a + 1),
            actor: p.actor,
            partner: p.partner,
            actor_churn,
            partner_churn,
            collecting: self.collecting(port),
            distributing: self.distributing(port),
        }
    }

    pub fn active_aggregator(&self) -> Option<AggregatorStatus> {
        let id = self.active?;
        let a = &self.aggregators[id];
        Some(AggregatorStatus {
            id: id + 1,
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
