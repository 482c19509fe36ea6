//! `bond-dp watch`: per-member rates between two status readings, as a table.

use std::fmt::Write as _;

use super::BondStatus;

/// The table for `cur`, with rates over the `seconds` since `prev` (the same bond).
pub fn table(prev: Option<&BondStatus>, cur: &BondStatus, seconds: f64) -> String {
    let mut out = String::new();
    let carrier = if cur.carrier { "up" } else { "down" };
    let _ = writeln!(
        out,
        "{} ({}, {carrier}, active {}, {} failover(s))",
        cur.name,
        cur.mode,
        cur.active.as_deref().unwrap_or("-"),
        cur.failovers
    );
    let _ = writeln!(
        out,
        "  {:<12} {:<10} {:>12} {:>12} {:>10} {:>10}",
        "member", "link", "tx pkt/s", "rx pkt/s", "tx Mb/s", "rx Mb/s"
    );
    let counters = |s: &BondStatus| s.data_plane.as_ref().map(|d| d.counters.members.clone());
    let (before, now) = (prev.and_then(counters), counters(cur));
    for (i, m) in cur.members.iter().enumerate() {
        let rate = |pick: fn(&crate::status::MemberCountersView) -> u64| -> f64 {
            match (&before, &now) {
                (Some(b), Some(n)) if seconds > 0.0 => {
                    let (b, n) = (b.get(i).map_or(0, pick), n.get(i).map_or(0, pick));
                    n.saturating_sub(b) as f64 / seconds
                }
                _ => 0.0,
            }
        };
        let active = if cur.active.as_deref() == Some(m.name.as_str()) {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            out,
            "{active} {:<12} {:<10} {:>12.0} {:>12.0} {:>10.1} {:>10.1}",
            m.name,
            m.mii_status,
            rate(|c| c.tx_packets),
            rate(|c| c.rx_packets),
            rate(|c| c.tx_bytes) * 8.0 / 1e6,
            rate(|c| c.rx_bytes) * 8.0 / 1e6,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BondOptions;
    use crate::control::{DataPlaneStatus, MemberStatus};
    use crate::status::{CountersView, MemberCountersView};

    fn status(tx: u64) -> BondStatus {
        let (o, _) = BondOptions::parse("mode=balance-xor miimon=100").unwrap();
        let mut st = BondStatus::from_options("bond0", &o, "tap".into());
        st.members = vec![MemberStatus {
            name: "m0".into(),
            mii_status: "up".into(),
            speed_mbps: None,
            full_duplex: None,
            link_failure_count: 0,
            permanent_hw_addr: String::new(),
            queue_id: 0,
            prio: 0,
            lacp: None,
        }];
        st.data_plane = Some(DataPlaneStatus {
            xdp_modes: vec![],
            workers: 1,
            max_mtu: 1500,
            counters: CountersView {
                members: vec![MemberCountersView {
                    tx_packets: tx,
                    tx_bytes: tx * 125,
                    ..Default::default()
                }],
                ..Default::default()
            },
            xdp: vec![],
        });
        st
    }

    #[test]
    fn rates_between_two_readings() {
        let t = table(Some(&status(1000)), &status(3000), 2.0);
        assert!(
            t.starts_with("bond0 (balance-xor, down, active -, 0 failover(s))\n"),
            "{t}"
        );
        // 2000 frames of 125 bytes in 2 s: 1000 pkt/s, 1 Mb/s.
        assert!(
            t.contains(
                "  m0           up                 1000            0        1.0        0.0\n"
            ),
            "{t}"
        );
        assert!(table(None, &status(5), 1.0).contains("           0            0"));
    }
}
