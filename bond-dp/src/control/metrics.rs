//! Prometheus text exposition of the bonds' status: per bond and member, link state, the
//! active member, LACP state, packets and bytes, drops by reason, failovers.

use std::fmt::Write as _;

use crate::status::{BondStatus, MemberCountersView, MemberLacpStatus, MemberStatus};

/// The metric families, in the order they are written: name, help, type.
const FAMILIES: &[(&str, &str, &str)] = &[
    ("bond_dp_bond_up", "Whether the bond has carrier.", "gauge"),
    // node_exporter's bonding collector's series, so that dashboards built on them show
    // bond-dp's bonds as they show the kernel's.
    (
        "node_bonding_slaves",
        "Number of configured slaves per bonding interface.",
        "gauge",
    ),
    (
        "node_bonding_active",
        "Number of active slaves per bonding interface.",
        "gauge",
    ),
    (
        "bond_dp_failovers_total",
        "Changes of active member.",
        "counter",
    ),
    (
        "bond_dp_last_failover_timestamp_seconds",
        "When the active member last changed.",
        "gauge",
    ),
    (
        "bond_dp_member_up",
        "Whether the member's link is up (MII status up).",
        "gauge",
    ),
    (
        "bond_dp_member_active",
        "Whether the member is the bond's active member.",
        "gauge",
    ),
    (
        "bond_dp_member_link_failures_total",
        "Times the member's link failed.",
        "counter",
    ),
    (
        "bond_dp_member_lacp_distributing",
        "802.3ad: whether the member collects and distributes.",
        "gauge",
    ),
    (
        "bond_dp_member_lacpdus_total",
        "802.3ad: LACPDUs the member sent and received.",
        "counter",
    ),
    (
        "bond_dp_member_lacp_markers_total",
        "802.3ad: marker PDUs received, and responses sent.",
        "counter",
    ),
    (
        "bond_dp_member_lacp_dropped_total",
        "802.3ad: slow-protocol frames dropped, by reason.",
        "counter",
    ),
    (
        "bond_dp_member_tx_packets_total",
        "Frames sent on the member.",
        "counter",
    ),
    (
        "bond_dp_member_tx_bytes_total",
        "Bytes sent on the member.",
        "counter",
    ),
    (
        "bond_dp_member_rx_packets_total",
        "Frames received on the member.",
        "counter",
    ),
    (
        "bond_dp_member_rx_bytes_total",
        "Bytes received on the member.",
        "counter",
    ),
    (
        "bond_dp_member_tx_ring_full_total",
        "Frames the member's full TX ring could not take.",
        "counter",
    ),
    (
        "bond_dp_member_tx_too_big_total",
        "Frames longer than the member's MTU allows, dropped.",
        "counter",
    ),
    (
        "bond_dp_member_kernel_drops_total",
        "What the kernel dropped or refused on the member's AF_XDP sockets before bond-dp saw \
         it (XDP_STATISTICS), by reason.",
        "counter",
    ),
    (
        "bond_dp_drops_total",
        "Frames the bond dropped, by reason.",
        "counter",
    ),
];

/// Samples gathered per family, written out family by family.
struct Exposition {
    samples: Vec<Vec<(String, f64)>>,
}

impl Exposition {
    fn new() -> Exposition {
        Exposition {
            samples: vec![Vec::new(); FAMILIES.len()],
        }
    }

    fn put(&mut self, name: &str, labels: &str, value: f64) {
        let i = FAMILIES
            .iter()
            .position(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("metric family {name} is not in FAMILIES"));
        self.samples[i].push((labels.to_string(), value));
    }

    /// A sample per reason, each labelled with it.
    fn put_by_reason(&mut self, name: &str, labels: &str, counts: &[(&str, u64)]) {
        for (reason, n) in counts {
            self.put(name, &format!("{labels},reason=\"{reason}\""), *n as f64);
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for ((name, help, kind), samples) in FAMILIES.iter().zip(&self.samples) {
            if samples.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
        out
    }
}

/// The bonds' metrics. `started_unix` is when the monitor's clock started (seconds since
/// the epoch), to turn the last failover into a timestamp.
pub fn render(bonds: &[BondStatus], started_unix: f64) -> String {
    let mut x = Exposition::new();
    for b in bonds {
        bond_samples(&mut x, b, started_unix);
        let bond = format!("bond=\"{}\"", escape(&b.name));
        let counters = b.data_plane.as_ref().map(|d| &d.counters);
        for (i, m) in b.members.iter().enumerate() {
            let labels = format!("{bond},member=\"{}\"", escape(&m.name));
            member_samples(&mut x, &labels, b, m);
            if let Some(l) = &m.lacp {
                lacp_samples(&mut x, &labels, l);
            }
            if let Some(c) = counters.and_then(|c| c.members.get(i)) {
                traffic_samples(&mut x, &labels, c);
            }
        }
        if let Some(c) = counters {
            let drops = [
                ("no_member", c.drop_no_member),
                ("host_busy", c.drop_host_busy),
                ("no_frame", c.drop_no_frame),
                ("too_long", c.drop_too_long),
                ("host_offload", c.drop_host_offload),
            ];
            x.put_by_reason("bond_dp_drops_total", &bond, &drops);
        }
    }
    x.text()
}

/// The bond's own series, and node_exporter's.
fn bond_samples(x: &mut Exposition, b: &BondStatus, started_unix: f64) {
    let bond = format!("bond=\"{}\"", escape(&b.name));
    x.put("bond_dp_bond_up", &bond, flag(b.carrier));
    let master = format!("master=\"{}\"", escape(&b.name));
    x.put("node_bonding_slaves", &master, b.members.len() as f64);
    let up = b.members.iter().filter(|m| m.is_up()).count();
    x.put("node_bonding_active", &master, up as f64);
    x.put("bond_dp_failovers_total", &bond, f64::from(b.failovers));
    if let Some(ms) = b.last_failover_ms {
        let at = started_unix + ms as f64 / 1000.0;
        x.put("bond_dp_last_failover_timestamp_seconds", &bond, at);
    }
}

fn member_samples(x: &mut Exposition, labels: &str, b: &BondStatus, m: &MemberStatus) {
    x.put("bond_dp_member_up", labels, flag(m.is_up()));
    let active = b.active.as_deref() == Some(m.name.as_str());
    x.put("bond_dp_member_active", labels, flag(active));
    let failures = f64::from(m.link_failure_count);
    x.put("bond_dp_member_link_failures_total", labels, failures);
}

fn lacp_samples(x: &mut Exposition, labels: &str, l: &MemberLacpStatus) {
    let distributing = l.actor.port_state & 0x30 == 0x30;
    x.put(
        "bond_dp_member_lacp_distributing",
        labels,
        flag(distributing),
    );
    let f = &l.frames;
    for (family, label, n) in [
        ("lacpdus", "direction=\"rx\"", f.lacpdus_received),
        ("lacpdus", "direction=\"tx\"", f.lacpdus_sent),
        ("lacp_markers", "direction=\"rx\"", f.markers_received),
        ("lacp_markers", "direction=\"tx\"", f.marker_responses_sent),
        ("lacp_dropped", "reason=\"malformed\"", f.malformed),
        (
            "lacp_dropped",
            "reason=\"unknown_subtype\"",
            f.unknown_subtype,
        ),
        (
            "lacp_dropped",
            "reason=\"wrong_destination\"",
            f.wrong_destination,
        ),
        (
            "lacp_dropped",
            "reason=\"illegal_loopback\"",
            f.illegal_loopback,
        ),
    ] {
        let name = format!("bond_dp_member_{family}_total");
        x.put(&name, &format!("{labels},{label}"), n as f64);
    }
}

fn traffic_samples(x: &mut Exposition, labels: &str, c: &MemberCountersView) {
    for (counter, n) in [
        ("tx_packets", c.tx_packets),
        ("tx_bytes", c.tx_bytes),
        ("rx_packets", c.rx_packets),
        ("rx_bytes", c.rx_bytes),
        ("tx_ring_full", c.tx_ring_full),
        ("tx_too_big", c.tx_too_big),
    ] {
        x.put(&format!("bond_dp_member_{counter}_total"), labels, n as f64);
    }
    let kernel = [
        ("rx_dropped", c.kernel_rx_dropped),
        ("rx_ring_full", c.kernel_rx_ring_full),
        ("fill_ring_empty", c.kernel_fill_ring_empty),
        ("tx_invalid", c.kernel_tx_invalid),
    ];
    x.put_by_reason("bond_dp_member_kernel_drops_total", labels, &kernel);
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// A label value as the exposition format wants it.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BondOptions;

    #[test]
    fn exposition_names_bonds_and_members() {
        let (o, _) = BondOptions::parse("mode=active-backup miimon=100").unwrap();
        let mut st = BondStatus::from_options("bond0", &o, "tap".into());
        st.carrier = true;
        st.active = Some("m1".into());
        st.failovers = 2;
        st.last_failover_ms = Some(1500);
        st.members = ["m0", "m1"]
            .iter()
            .map(|n| MemberStatus {
                name: n.to_string(),
                mii_status: if *n == "m0" { "down" } else { "up" }.into(),
                speed_mbps: None,
                full_duplex: None,
                link_failure_count: u32::from(*n == "m0"),
                permanent_hw_addr: String::new(),
                queue_id: 0,
                prio: 0,
                lacp: None,
            })
            .collect();
        let text = render(&[st], 1000.0);
        assert!(text.contains("# TYPE bond_dp_failovers_total counter\n"));
        assert!(
            text.contains("bond_dp_bond_up{bond=\"bond0\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("bond_dp_failovers_total{bond=\"bond0\"} 2\n"));
        assert!(
            text.contains("node_bonding_slaves{master=\"bond0\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("node_bonding_active{master=\"bond0\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("bond_dp_last_failover_timestamp_seconds{bond=\"bond0\"} 1001.5\n"));
        assert!(text.contains("bond_dp_member_up{bond=\"bond0\",member=\"m0\"} 0\n"));
        assert!(text.contains("bond_dp_member_active{bond=\"bond0\",member=\"m1\"} 1\n"));
        assert!(
            text.contains("bond_dp_member_link_failures_total{bond=\"bond0\",member=\"m0\"} 1\n")
        );
        assert!(
            !text.contains("lacp_distributing"),
            "no 802.3ad, no LACP family"
        );
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }

    #[test]
    fn lacp_frames_are_exported_per_member_by_direction_and_reason() {
        let (o, _) = BondOptions::parse("mode=802.3ad miimon=100").unwrap();
        let mut st = BondStatus::from_options("bond0", &o, "tap".into());
        let details = crate::control::LacpduDetails {
            system_priority: 65535,
            system_mac: "02:00:00:00:00:01".into(),
            key: 15,
            port_priority: 255,
            port_number: 1,
            port_state: 0x3f,
        };
        st.members = vec![MemberStatus {
            name: "m0".into(),
            mii_status: "up".into(),
            speed_mbps: Some(10_000),
            full_duplex: Some(true),
            link_failure_count: 0,
            permanent_hw_addr: String::new(),
            queue_id: 0,
            prio: 0,
            lacp: Some(crate::control::MemberLacpStatus {
                aggregator_id: Some(1),
                actor_churn_state: "none".into(),
                partner_churn_state: "none".into(),
                actor_churned_count: 0,
                partner_churned_count: 0,
                actor: details.clone(),
                partner: details,
                frames: crate::lacp::LacpCounters {
                    lacpdus_received: 7,
                    lacpdus_sent: 9,
                    illegal_loopback: 2,
                    ..Default::default()
                },
            }),
        }];
        let text = render(&[st], 0.0);
        let m0 = "bond=\"bond0\",member=\"m0\"";
        for line in [
            format!("bond_dp_member_lacpdus_total{{{m0},direction=\"rx\"}} 7\n"),
            format!("bond_dp_member_lacpdus_total{{{m0},direction=\"tx\"}} 9\n"),
            format!("bond_dp_member_lacp_dropped_total{{{m0},reason=\"illegal_loopback\"}} 2\n"),
            format!("bond_dp_member_lacp_distributing{{{m0}}} 1\n"),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
