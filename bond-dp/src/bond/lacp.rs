//! The bond's 802.3ad side: the LACP engine (sans-IO, in [`crate::lacp`]) fed with the
//! members' links and the slow-protocol frames they receive; which members distribute decides
//! what the data plane may use.

use std::time::Duration;

use super::{Bond, Event};
use crate::lacp::pdu::PortInfo;
use crate::lacp::{Dropped, Lacp, LacpConfig, PortLink};
use crate::policy::{MemberId, Mode};
use crate::status::{AggregatorInfo, BondStatus, LacpduDetails, MemberLacpStatus};
use crate::wire::MacAddr;

/// How long a starting bond waits for its partner before it says the far end is silent.
const SILENCE_GRACE: Duration = Duration::from_secs(5);

impl Bond {
    /// The LACP engine for an 802.3ad bond, over the members as they are now.
    pub(super) fn new_lacp(&self) -> Option<Lacp> {
        if self.config.options.mode != Mode::Lacp {
            return None;
        }
        let cfg = LacpConfig::from_options(&self.config.options, self.bond_mac());
        let ports: Vec<(MacAddr, PortLink)> = (0..self.members.len())
            .map(|m| (self.members[m].facts.mac, self.port_link(m)))
            .collect();
        Some(Lacp::new(cfg, &ports))
    }

    pub(super) fn port_link(&self, member: MemberId) -> PortLink {
        let m = &self.members[member];
        PortLink {
            up: m.mii.carries_traffic(),
            speed_mbps: m.facts.speed_mbps.unwrap_or(0),
            full_duplex: m.facts.full_duplex.unwrap_or(false),
        }
    }

    /// A member's link became usable or stopped being usable.
    pub(super) fn lacp_link_changed(&mut self, member: MemberId) {
        let link = self.port_link(member);
        if let Some(lacp) = self.lacp.as_mut() {
            lacp.set_link(member, link);
        }
    }

    pub fn runs_lacp(&self) -> bool {
        self.lacp.is_some()
    }

    /// When the LACP machines run next.
    pub fn lacp_due(&self) -> Option<Duration> {
        self.lacp.as_ref().and_then(Lacp::next_tick)
    }

    /// A slow-protocol frame `member` received; returns the frames to send in answer (marker
    /// responses), or why the frame was dropped (it is counted by reason).
    pub fn lacp_receive(
        &mut self,
        member: MemberId,
        frame: &[u8],
        out: &mut Vec<(MemberId, Vec<u8>)>,
    ) -> Result<(), Dropped> {
        match self.lacp.as_mut() {
            Some(lacp) => lacp.receive(member, frame, out),
            None => Ok(()),
        }
    }

    /// The last LACPDU of a member that leaves the bond, or of every member when the bond
    /// stops: it tells the partner to stop using the link now.
    pub fn lacp_farewell(&mut self, member: MemberId) -> Option<Vec<u8>> {
        self.lacp.as_mut()?.farewell(member)
    }

    /// Runs the LACP machines up to `now`. Returns the LACPDUs to send, and what changed for
    /// the operator, which the caller publishes to the data plane (who distributes).
    pub fn lacp_advance(&mut self, now: Duration) -> (Vec<(MemberId, Vec<u8>)>, Vec<Event>) {
        let mut out = Vec::new();
        let Some(lacp) = self.lacp.as_mut() else {
            return (out, Vec::new());
        };
        let n = self.members.len();
        let before: Vec<bool> = (0..n).map(|m| lacp.distributing(m)).collect();
        lacp.advance(now, &mut out);
        let mut events = Vec::new();
        for (m, &was) in before.iter().enumerate() {
            let is = lacp.distributing(m);
            if is != was {
                events.push(Event::Distributing(self.members[m].name.clone(), is));
            }
        }
        // Say it once when the far end stays silent past the first exchanges, and once when
        // it answers again.
        let silent = lacp
            .active_aggregator()
            .is_some_and(|a| a.partner_mac == MacAddr::ZERO);
        if silent != self.lacp_silence_reported && (!silent || now >= SILENCE_GRACE) {
            self.lacp_silence_reported = silent;
            events.push(Event::NoLacpPartner(silent));
        }
        (out, events)
    }

    /// Fills the 802.3ad parts of a status page.
    pub(super) fn lacp_status(&self, st: &mut BondStatus) {
        let Some(lacp) = &self.lacp else { return };
        if let Some(block) = st.lacp.as_mut() {
            block.system_mac = lacp.config().system.to_string();
            block.active_aggregator = lacp.active_aggregator().map(|a| AggregatorInfo {
                id: a.id,
                ports: a.ports,
                actor_key: a.actor_key,
                partner_key: a.partner_key,
                partner_mac: a.partner_mac.to_string(),
            });
        }
        for (m, member) in st.members.iter_mut().enumerate() {
            let p = lacp.port_status(m);
            member.lacp = Some(MemberLacpStatus {
                aggregator_id: p.aggregator_id,
                actor_churn_state: p.actor_churn.0.as_str().into(),
                partner_churn_state: p.partner_churn.0.as_str().into(),
                actor_churned_count: p.actor_churn.1,
                partner_churned_count: p.partner_churn.1,
                actor: details(&p.actor),
                partner: details(&p.partner),
                frames: p.counters,
            });
        }
    }
}

fn details(i: &PortInfo) -> LacpduDetails {
    LacpduDetails {
        system_priority: i.system_priority,
        system_mac: i.system.to_string(),
        key: i.key,
        port_priority: i.port_priority,
        port_number: i.port,
        port_state: i.state.0,
    }
}
