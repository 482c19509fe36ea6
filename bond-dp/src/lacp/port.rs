//! One port's LACP state machines (IEEE 802.1AX, as the kernel's bond_3ad.c runs them):
//! receive, periodic transmission, mux (coupled control), transmit and churn. Selection
//! lives with the aggregators, in the parent module. Time is counted in ticks of 100 ms.

use super::pdu::{Lacpdu, PortInfo, PortState};
use super::LacpCounters;
use crate::wire::MacAddr;

/// Timers, in ticks of 100 ms.
pub const SHORT_TIMEOUT: u32 = 30;
pub const LONG_TIMEOUT: u32 = 900;
pub const FAST_PERIODIC: u32 = 10;
pub const SLOW_PERIODIC: u32 = 300;
pub const AGGREGATE_WAIT: u32 = 20;
pub const CHURN_DETECTION: u32 = 600;
/// LACPDUs a port may send in any one second (802.1AX, 6.4.16).
const TX_PER_SECOND: usize = 3;
const TICKS_PER_SECOND: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxState {
    PortDisabled,
    /// A half-duplex link: LACP does not run on it, and it is an individual link (the
    /// kernel's AD_RX_LACP_DISABLED).
    LacpDisabled,
    Expired,
    Defaulted,
    Current,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuxState {
    Detached,
    Waiting,
    Attached,
    CollectingDistributing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    Unselected,
    Selected,
}

/// A churn machine's state, as /proc shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Churn {
    None,
    Monitoring,
    Churned,
}

impl Churn {
    pub fn as_str(self) -> &'static str {
        match self {
            Churn::None => "none",
            Churn::Monitoring => "monitoring",
            Churn::Churned => "churned",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChurnMachine {
    state: Churn,
    timer: u32,
    count: u32,
}

impl ChurnMachine {
    fn new() -> Self {
        ChurnMachine {
            state: Churn::Monitoring,
            timer: CHURN_DETECTION,
            count: 0,
        }
    }

    /// One tick with the side's synchronization bit.
    fn tick(&mut self, in_sync: bool) {
        match self.state {
            _ if in_sync => self.state = Churn::None,
            Churn::None => {
                self.state = Churn::Monitoring;
                self.timer = CHURN_DETECTION;
            }
            Churn::Monitoring => {
                self.timer = self.timer.saturating_sub(1);
                if self.timer == 0 {
                    self.state = Churn::Churned;
                    self.count += 1;
                }
            }
            Churn::Churned => {}
        }
    }
}

/// A port's link as LACP needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortLink {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The key's bits 1-5: the kernel's `enum ad_link_speed_type` (`__get_link_speed` in
/// bond_3ad.c); 0 for a speed it does not know.
pub fn speed_class(mbps: u32) -> u16 {
    match mbps {
        1 => 1,
        10 => 2,
        100 => 3,
        1000 => 4,
        2500 => 5,
        5000 => 6,
        10_000 => 7,
        14_000 => 8,
        20_000 => 9,
        25_000 => 10,
        40_000 => 11,
        50_000 => 12,
        56_000 => 13,
        100_000 => 14,
        200_000 => 15,
        400_000 => 16,
        800_000 => 17,
        _ => 0,
    }
}

#[derive(Clone, Debug)]
pub struct Port {
    pub mac: MacAddr,
    pub link: PortLink,
    /// The actor information this port sends.
    pub actor: PortInfo,
    /// What the partner said last (or the defaults).
    pub partner: PortInfo,
    partner_admin: PortInfo,
    user_key: u16,
    pub rx: RxState,
    current_while: u32,
    periodic_on: bool,
    periodic_timer: u32,
    pub mux: MuxState,
    wait_while: u32,
    pub selected: Selected,
    pub ready: bool,
    matched: bool,
    pub aggregator: Option<usize>,
    ntt: bool,
    /// Ticks since the port was made, and when its last LACPDUs left (the rate limit).
    ticks: u32,
    sent_at: [Option<u32>; TX_PER_SECOND],
    actor_churn: ChurnMachine,
    partner_churn: ChurnMachine,
    pub counters: LacpCounters,
}

impl Port {
    /// Port `number` (1-based) of a system; `fast` asks the partner for fast LACPDUs, and an
    /// `active` port speaks first.
    pub fn new(
        number: u16,
        system: (u16, MacAddr),
        user_key: u16,
        mac: MacAddr,
        link: PortLink,
        fast: bool,
        active: bool,
    ) -> Port {
        let mut state = PortState(PortState::AGGREGATION);
        state.set(PortState::SHORT_TIMEOUT, fast);
        state.set(PortState::ACTIVITY, active);
        let actor = PortInfo {
            system_priority: system.0,
            system: system.1,
            key: 0,
            port_priority: 0xff,
            port: number,
            state,
        };
        // Partner defaults: no system, key 1, and silent, so that a passive port speaks
        // only once spoken to.
        let partner_admin = PortInfo {
            system_priority: 0xffff,
            system: MacAddr::ZERO,
            key: 1,
            port_priority: 0xff,
            port: 1,
            state: PortState(0),
        };
        let mut port = Port {
            mac,
            link,
            actor,
            partner: partner_admin,
            partner_admin,
            user_key,
            rx: RxState::PortDisabled,
            current_while: 0,
            periodic_on: false,
            periodic_timer: 0,
            mux: MuxState::Detached,
            wait_while: 0,
            selected: Selected::Unselected,
            ready: false,
            matched: false,
            aggregator: None,
            ntt: false,
            ticks: 0,
            sent_at: [None; TX_PER_SECOND],
            actor_churn: ChurnMachine::new(),
            partner_churn: ChurnMachine::new(),
            counters: LacpCounters::default(),
        };
        port.actor.key = port.oper_key();
        port.actor.state.set(PortState::DEFAULTED, true);
        port
    }

    /// The key: `ad_user_port_key` in bits 6-15, the speed class in bits 1-5, full duplex
    /// in bit 0. A port without link has neither speed nor duplex, as in the kernel.
    fn oper_key(&self) -> u16 {
        if !self.link.up {
            return self.user_key << 6;
        }
        let duplex = u16::from(self.link.full_duplex);
        (self.user_key << 6) | (speed_class(self.link.speed_mbps) << 1) | duplex
    }

    fn enabled(&self) -> bool {
        self.link.up
    }

    /// LACP runs only on full-duplex links, as in the kernel.
    fn lacp_enabled(&self) -> bool {
        self.link.full_duplex
    }

    /// An individual link aggregates with no other: its partner does not aggregate, or LACP
    /// does not run on it.
    pub fn individual(&self) -> bool {
        !self.partner.state.has(PortState::AGGREGATION) || self.rx == RxState::LacpDisabled
    }

    /// The link changed: a new key or a lost link takes the port out of its aggregator.
    pub fn set_link(&mut self, link: PortLink) {
        self.link = link;
        let key = self.oper_key();
        if key != self.actor.key || !link.up {
            self.actor.key = key;
            self.selected = Selected::Unselected;
            self.ntt = true;
        }
    }

    pub fn has_partner(&self) -> bool {
        self.partner.system != MacAddr::ZERO
    }

    pub fn churn(&self) -> ((Churn, u32), (Churn, u32)) {
        (
            (self.actor_churn.state, self.actor_churn.count),
            (self.partner_churn.state, self.partner_churn.count),
        )
    }

    // --- receive machine ---

    /// A received LACPDU.
    pub fn receive(&mut self, pdu: &Lacpdu) {
        if !matches!(self.rx, RxState::PortDisabled | RxState::LacpDisabled) {
            self.enter_current(pdu);
        }
    }

    /// The receive machine's tick: its timer, and the link.
    pub fn rx_tick(&mut self) {
        if !self.enabled() {
            if self.rx != RxState::PortDisabled {
                self.rx = RxState::PortDisabled;
                self.partner.state.set(PortState::SYNCHRONIZATION, false);
            }
            return;
        }
        if !self.lacp_enabled() {
            if self.rx != RxState::LacpDisabled {
                self.enter_lacp_disabled();
            }
            return;
        }
        match self.rx {
            RxState::PortDisabled | RxState::LacpDisabled => self.enter_expired(),
            RxState::Current | RxState::Expired => {
                self.current_while = self.current_while.saturating_sub(1);
                if self.current_while == 0 {
                    if self.rx == RxState::Current {
                        self.enter_expired();
                    } else {
                        self.enter_defaulted();
                    }
                }
            }
            RxState::Defaulted => {}
        }
    }

    fn enter_expired(&mut self) {
        self.rx = RxState::Expired;
        self.partner.state.set(PortState::SYNCHRONIZATION, false);
        self.partner.state.set(PortState::SHORT_TIMEOUT, true);
        self.current_while = SHORT_TIMEOUT;
        self.actor.state.set(PortState::EXPIRED, true);
    }

    fn enter_lacp_disabled(&mut self) {
        self.rx = RxState::LacpDisabled;
        self.selected = Selected::Unselected;
        self.partner = self.partner_admin;
        self.partner.state.set(PortState::AGGREGATION, false);
        self.matched = true;
        self.actor.state.set(PortState::EXPIRED, false);
    }

    fn enter_defaulted(&mut self) {
        self.rx = RxState::Defaulted;
        if !same_link(&self.partner, &self.partner_admin) {
            self.selected = Selected::Unselected;
        }
        self.partner = self.partner_admin;
        self.actor.state.set(PortState::EXPIRED, false);
        self.actor.state.set(PortState::DEFAULTED, true);
    }

    fn enter_current(&mut self, pdu: &Lacpdu) {
        self.rx = RxState::Current;
        // update_selected: a different partner means another aggregator.
        if !same_link(&pdu.actor, &self.partner) {
            self.selected = Selected::Unselected;
        }
        // update_ntt: the partner's view of us is out of date.
        let mask = PortState::ACTIVITY
            | PortState::SHORT_TIMEOUT
            | PortState::SYNCHRONIZATION
            | PortState::AGGREGATION;
        let theirs = &pdu.partner;
        if theirs.port != self.actor.port
            || theirs.port_priority != self.actor.port_priority
            || theirs.system != self.actor.system
            || theirs.system_priority != self.actor.system_priority
            || theirs.key != self.actor.key
            || theirs.state.0 & mask != self.actor.state.0 & mask
        {
            self.ntt = true;
        }
        // choose_matched: the partner sees us as we are (or it is an individual link).
        let agg = PortState::AGGREGATION;
        self.matched = (theirs.port == self.actor.port
            && theirs.port_priority == self.actor.port_priority
            && theirs.system == self.actor.system
            && theirs.system_priority == self.actor.system_priority
            && theirs.key == self.actor.key
            && theirs.state.has(agg) == self.actor.state.has(agg))
            || !pdu.actor.state.has(agg);
        // record_pdu
        self.partner = pdu.actor;
        let sync = self.matched && pdu.actor.state.has(PortState::SYNCHRONIZATION);
        self.partner.state.set(PortState::SYNCHRONIZATION, sync);
        self.actor.state.set(PortState::DEFAULTED, false);
        self.actor.state.set(PortState::EXPIRED, false);
        self.current_while = if self.actor.state.has(PortState::SHORT_TIMEOUT) {
            SHORT_TIMEOUT
        } else {
            LONG_TIMEOUT
        };
    }

    // --- periodic transmission ---

    pub fn periodic_tick(&mut self) {
        let speaks = self.actor.state.has(PortState::ACTIVITY)
            || self.partner.state.has(PortState::ACTIVITY);
        if !self.enabled() || !speaks {
            self.periodic_on = false;
            return;
        }
        let interval = if self.partner.state.has(PortState::SHORT_TIMEOUT) {
            FAST_PERIODIC
        } else {
            SLOW_PERIODIC
        };
        if !self.periodic_on {
            self.periodic_on = true;
            self.periodic_timer = FAST_PERIODIC;
        } else if interval == FAST_PERIODIC && self.periodic_timer > FAST_PERIODIC {
            // The partner asked for fast LACPDUs: it gets one now, not at the next slow
            // period (the kernel's SLOW_PERIODIC -> PERIODIC_TX).
            self.periodic_timer = 1;
        }
        self.periodic_timer = self.periodic_timer.saturating_sub(1).min(interval);
        if self.periodic_timer == 0 {
            self.ntt = true;
            self.periodic_timer = interval;
        }
    }

    // --- mux (coupled control) ---

    /// One mux tick. `agg_ready`: every port of this port's aggregator waited long enough;
    /// `agg_active`: the aggregator is the bond's active one.
    pub fn mux_tick(&mut self, agg_ready: bool, agg_active: bool) {
        let selected = self.selected == Selected::Selected;
        let partner_sync = self.partner.state.has(PortState::SYNCHRONIZATION);
        match self.mux {
            MuxState::Detached if selected => {
                self.mux = MuxState::Waiting;
                self.wait_while = AGGREGATE_WAIT;
            }
            MuxState::Detached => {}
            MuxState::Waiting if !selected => self.enter_detached(),
            MuxState::Waiting => {
                self.wait_while = self.wait_while.saturating_sub(1);
                self.ready = self.wait_while == 0;
                if self.ready && agg_ready {
                    self.set_mux(MuxState::Attached, agg_active);
                }
            }
            MuxState::Attached if !selected => self.enter_detached(),
            MuxState::Attached => {
                if partner_sync && agg_active {
                    self.set_mux(MuxState::CollectingDistributing, true);
                } else if self.actor.state.has(PortState::SYNCHRONIZATION) != agg_active {
                    // In sync only while the aggregator carries the bond's traffic, so the
                    // partner never distributes on a link whose frames we drop.
                    self.actor.state.set(PortState::SYNCHRONIZATION, agg_active);
                    self.ntt = true;
                }
            }
            MuxState::CollectingDistributing => {
                if !selected {
                    self.enter_detached();
                } else if !partner_sync || !agg_active {
                    self.set_mux(MuxState::Attached, agg_active);
                }
            }
        }
    }

    fn enter_detached(&mut self) {
        self.set_mux(MuxState::Detached, false);
        self.ready = false;
    }

    /// Enters a mux state; `agg_active`: the port's aggregator is the bond's active one (the
    /// kernel sets sync in ATTACHED only then).
    fn set_mux(&mut self, mux: MuxState, agg_active: bool) {
        self.mux = mux;
        let (sync, coll_dist) = match mux {
            MuxState::Detached | MuxState::Waiting => (false, false),
            MuxState::Attached => (agg_active, false),
            MuxState::CollectingDistributing => (true, true),
        };
        self.actor.state.set(PortState::SYNCHRONIZATION, sync);
        self.actor.state.set(PortState::COLLECTING, coll_dist);
        self.actor.state.set(PortState::DISTRIBUTING, coll_dist);
        self.ntt = true;
    }

    // --- transmit and churn ---

    /// The LACPDU to send now, if one is due and the rate limit allows it: at most three in
    /// any one second (a sliding window, not fixed ones that let six through in half a
    /// second).
    pub fn tx_tick(&mut self) -> Option<Lacpdu> {
        self.ticks = self.ticks.wrapping_add(1);
        let speaks = self.actor.state.has(PortState::ACTIVITY)
            || self.partner.state.has(PortState::ACTIVITY);
        let oldest = self.sent_at[0];
        let within_limit = oldest.is_none_or(|t| self.ticks.wrapping_sub(t) >= TICKS_PER_SECOND);
        let lacp = self.enabled() && self.lacp_enabled() && speaks;
        if !self.ntt || !lacp || !within_limit {
            return None;
        }
        self.ntt = false;
        self.sent_at.rotate_left(1);
        self.sent_at[TX_PER_SECOND - 1] = Some(self.ticks);
        Some(Lacpdu {
            actor: self.actor,
            partner: self.partner,
            collector_max_delay: 0,
        })
    }

    pub fn churn_tick(&mut self) {
        self.actor_churn
            .tick(self.actor.state.has(PortState::SYNCHRONIZATION));
        self.partner_churn
            .tick(self.partner.state.has(PortState::SYNCHRONIZATION));
    }
}

/// The same partner port as far as aggregation goes (`__update_selected`).
fn same_link(a: &PortInfo, b: &PortInfo) -> bool {
    a.port == b.port
        && a.port_priority == b.port_priority
        && a.system == b.system
        && a.system_priority == b.system_priority
        && a.key == b.key
        && a.state.has(PortState::AGGREGATION) == b.state.has(PortState::AGGREGATION)
}
