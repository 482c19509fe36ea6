//! Bond status as `/proc/net/bonding/bondX` prints it (`bond_procfs.c`). The status model
//! itself is [`crate::status`]; JSON is its serde form.

use std::fmt::Write;

use crate::policy::Mode;
use crate::status::{BondStatus, LacpStatus, MemberStatus};

impl BondStatus {
    /// The text of `/proc/net/bonding/<name>`.
    pub fn to_proc(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_monitoring(&mut s);
        if let Some(l) = &self.lacp {
            self.write_lacp(&mut s, l);
        }
        for m in &self.members {
            write_member(&mut s, m);
        }
        s
    }

    /// The driver line, the mode, the hash policy, the primary and the active member.
    fn write_header(&self, s: &mut String) {
        let mode = Mode::from_number(self.mode_number.into()).unwrap_or_default();
        let _ = writeln!(
            s,
            "Ethernet Channel Bonding Driver: v{}-bond-dp\n",
            self.version
        );
        let _ = write!(s, "Bonding Mode: {}", mode.description());
        if mode == Mode::ActiveBackup && self.fail_over_mac != "none" {
            let _ = write!(s, " (fail_over_mac {})", self.fail_over_mac);
        }
        s.push('\n');
        if let Some((name, number)) = &self.xmit_hash_policy {
            let _ = writeln!(s, "Transmit Hash Policy: {name} ({number})");
        }
        if mode.uses_primary() {
            match &self.primary {
                Some(p) => {
                    let _ = writeln!(
                        s,
                        "Primary Slave: {p} (primary_reselect {})",
                        self.primary_reselect
                    );
                }
                None => s.push_str("Primary Slave: None\n"),
            }
            let _ = writeln!(
                s,
                "Currently Active Slave: {}",
                self.active.as_deref().unwrap_or("None")
            );
        }
    }

    /// The bond's carrier, the MII timings and the ARP monitor's settings.
    fn write_monitoring(&self, s: &mut String) {
        let carrier = if self.carrier { "up" } else { "down" };
        let _ = writeln!(s, "MII Status: {carrier}");
        let _ = writeln!(s, "MII Polling Interval (ms): {}", self.miimon);
        let _ = writeln!(s, "Up Delay (ms): {}", self.updelay);
        let _ = writeln!(s, "Down Delay (ms): {}", self.downdelay);
        let _ = writeln!(s, "Peer Notification Delay (ms): {}", self.peer_notif_delay);
        if self.arp_interval > 0 {
            let _ = writeln!(s, "ARP Polling Interval (ms): {}", self.arp_interval);
            let _ = writeln!(s, "ARP Missed Max: {}", self.arp_missed_max);
            let targets = comma_list(&self.arp_ip_target);
            let _ = writeln!(s, "ARP IP target/s (n.n.n.n form):{targets}");
            let targets = comma_list(&self.ns_ip6_target);
            let _ = writeln!(s, "NS IPv6 target/s (xx::xx form):{targets}");
        }
    }

    /// The 802.3ad block: settings and the active aggregator.
    fn write_lacp(&self, s: &mut String, l: &LacpStatus) {
        s.push_str("\n802.3ad info\n");
        let active = if l.lacp_active { "on" } else { "off" };
        let _ = writeln!(s, "LACP active: {active}");
        let _ = writeln!(s, "LACP rate: {}", l.lacp_rate);
        let _ = writeln!(s, "Min links: {}", l.min_links);
        let _ = writeln!(
            s,
            "Aggregator selection policy (ad_select): {}",
            l.ad_select
        );
        let _ = writeln!(s, "System priority: {}", l.system_priority);
        let _ = writeln!(s, "System MAC address: {}", l.system_mac);
        let Some(a) = &l.active_aggregator else {
            let _ = writeln!(s, "bond {} has no active aggregator", self.name);
            return;
        };
        s.push_str("Active Aggregator Info:\n");
        let _ = writeln!(s, "\tAggregator ID: {}", a.id);
        let _ = writeln!(s, "\tNumber of ports: {}", a.ports);
        let _ = writeln!(s, "\tActor Key: {}", a.actor_key);
        let _ = writeln!(s, "\tPartner Key: {}", a.partner_key);
        let _ = writeln!(s, "\tPartner Mac Address: {}", a.partner_mac);
        if a.partner_mac == crate::wire::MacAddr::ZERO.to_string() {
            s.push_str(
                "\t(bond-dp: the partner MAC is all zeros: the far end is not speaking LACP)\n",
            );
        }
    }
}

/// One "Slave Interface" block, with its 802.3ad details where the bond runs LACP.
fn write_member(s: &mut String, m: &MemberStatus) {
    let _ = writeln!(s, "\nSlave Interface: {}", m.name);
    let _ = writeln!(s, "MII Status: {}", m.mii_status);
    match m.speed_mbps {
        Some(speed) => {
            let _ = writeln!(s, "Speed: {speed} Mbps");
        }
        None => s.push_str("Speed: Unknown\n"),
    }
    let duplex = match m.full_duplex {
        Some(true) => "full",
        Some(false) => "half",
        None => "Unknown",
    };
    let _ = writeln!(s, "Duplex: {duplex}");
    let _ = writeln!(s, "Link Failure Count: {}", m.link_failure_count);
    let _ = writeln!(s, "Permanent HW addr: {}", m.permanent_hw_addr);
    let _ = writeln!(s, "Slave queue ID: {}", m.queue_id);
    let Some(l) = &m.lacp else { return };
    match l.aggregator_id {
        Some(id) => {
            let _ = writeln!(s, "Aggregator ID: {id}");
        }
        None => s.push_str("Aggregator ID: N/A\n"),
    }
    let _ = writeln!(s, "Actor Churn State: {}", l.actor_churn_state);
    let _ = writeln!(s, "Partner Churn State: {}", l.partner_churn_state);
    let _ = writeln!(s, "Actor Churned Count: {}", l.actor_churned_count);
    let _ = writeln!(s, "Partner Churned Count: {}", l.partner_churned_count);
    for (side, d, key) in [
        ("actor", &l.actor, "port key"),
        ("partner", &l.partner, "oper key"),
    ] {
        let _ = writeln!(s, "details {side} lacp pdu:");
        let _ = writeln!(s, "    system priority: {}", d.system_priority);
        let _ = writeln!(s, "    system mac address: {}", d.system_mac);
        let _ = writeln!(s, "    {key}: {}", d.key);
        let _ = writeln!(s, "    port priority: {}", d.port_priority);
        let _ = writeln!(s, "    port number: {}", d.port_number);
        let _ = writeln!(s, "    port state: {}", d.port_state);
    }
}

fn comma_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!(" {i}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BondOptions;

    fn member(name: &str, mac: &str) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            mii_status: "up".into(),
            speed_mbps: Some(10000),
            full_duplex: Some(true),
            link_failure_count: 0,
            permanent_hw_addr: mac.into(),
            queue_id: 0,
            prio: 0,
            lacp: None,
        }
    }

    #[test]
    fn active_backup_matches_the_kernel_page() {
        let (o, _) = BondOptions::parse("mode=active-backup,miimon=100,primary=m0").unwrap();
        let mut st = BondStatus::from_options("bond0", &o, "tap".into());
        st.version = "0.1.0".into();
        st.active = Some("m0".into());
        st.carrier = true;
        st.members = vec![member("m0", "02:00:00:00:00:01")];
        assert_eq!(
            st.to_proc(),
            "Ethernet Channel Bonding Driver: v0.1.0-bond-dp

Bonding Mode: fault-tolerance (active-backup)
Primary Slave: m0 (primary_reselect always)
Currently Active Slave: m0
MII Status: up
MII Polling Interval (ms): 100
Up Delay (ms): 0
Down Delay (ms): 0
Peer Notification Delay (ms): 0

Slave Interface: m0
MII Status: up
Speed: 10000 Mbps
Duplex: full
Link Failure Count: 0
Permanent HW addr: 02:00:00:00:00:01
Slave queue ID: 0
"
        );
    }

    #[test]
    fn xor_shows_the_hash_policy_and_arp_monitor() {
        let (o, _) = BondOptions::parse(
            "mode=balance-xor xmit_hash_policy=layer3+4 arp_interval=200 arp_ip_target=10.0.0.1,10.0.0.2",
        )
        .unwrap();
        let text = BondStatus::from_options("bond1", &o, "none".into()).to_proc();
        assert!(text
            .contains("Bonding Mode: load balancing (xor)\nTransmit Hash Policy: layer3+4 (1)\n"));
        assert!(!text.contains("Primary Slave"));
        assert!(text.contains(
            "ARP Polling Interval (ms): 200\nARP Missed Max: 2\nARP IP target/s (n.n.n.n form): 10.0.0.1, 10.0.0.2\n"
        ));
    }

    #[test]
    fn lacp_block_and_json_round_trip() {
        let (o, _) =
            BondOptions::parse("mode=802.3ad lacp_rate=fast xmit_hash_policy=layer2+3").unwrap();
        let st = BondStatus::from_options("bond2", &o, "tap".into());
        let text = st.to_proc();
        assert!(text.contains(
            "IEEE 802.3ad Dynamic link aggregation\nTransmit Hash Policy: layer2+3 (2)\n"
        ));
        assert!(text.contains("\n802.3ad info\nLACP active: on\nLACP rate: fast\nMin links: 0\nAggregator selection policy (ad_select): stable\nSystem priority: 65535\n"));
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<BondStatus>(&json).unwrap(), st);
    }
}
