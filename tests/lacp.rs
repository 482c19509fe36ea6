//! 802.3ad against a real switch implementation: Open vSwitch as the LACP peer on a veth
//! testbed (root). Negotiation at fast and slow rates and with a passive switch, flows spread
//! over both links in both directions, member loss, and a switch that goes away and returns.

mod common;

use std::time::Duration;

use common::{ping_once, repo_path, require_root, sh, terminate, wait_for, Testbed};

const LACP_FAST: &str = "mode=802.3ad,lacp_rate=fast,xmit_hash_policy=layer3+4";

/// OVS's view of its LACP bond.
fn lacp_show(tb: &Testbed) -> String {
    tb.ovs_appctl("lacp/show bond0")
}

/// bond-dp's LACP system MAC, from its status.
fn system_mac(tb: &Testbed) -> String {
    tb.status_json("bond0")["lacp"]["system_mac"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until OVS reports the bond negotiated, with bond-dp's system as the partner of every
/// member, and both members collecting and distributing on both sides.
fn wait_negotiated(tb: &Testbed) -> String {
    let ours = system_mac(tb);
    wait_for(
        "negotiated with Open vSwitch",
        Duration::from_secs(20),
        || {
            let show = lacp_show(tb);
            let ok = show.contains("negotiated")
                && show.matches(&format!("partner sys_id: {ours}")).count() == 2
                && show.matches("current attached").count() == 2
                && tb
                    .status("bond0", &[])
                    .is_some_and(|s| s.contains("Number of ports: 2\n"));
            ok.then_some(show)
        },
    )
}

/// Per member: frames sent and received, from bond-dp's counters.
fn member_counts(tb: &Testbed) -> [(u64, u64); 2] {
    let json = tb.status_json("bond0");
    let m = &json["data_plane"]["counters"]["members"];
    let get = |i: usize, k: &str| m[i][k].as_u64().unwrap_or(0);
    [
        (get(0, "tx_packets"), get(0, "rx_packets")),
        (get(1, "tx_packets"), get(1, "rx_packets")),
    ]
}

/// 64 UDP flows from the namespace `from` to `to`.
fn flows(from: &str, to: &str) {
    sh(&format!(
        "ip netns exec {from} python3 {} send {to} --flows 64 --per-flow 4",
        repo_path("tests/flows.py").display()
    ));
}

/// What each member carried while `traffic` ran: (sent, received) differences.
fn carried(tb: &Testbed, traffic: impl FnOnce()) -> [(u64, u64); 2] {
    let before = member_counts(tb);
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    let after = member_counts(tb);
    [0, 1].map(|i| (after[i].0 - before[i].0, after[i].1 - before[i].1))
}

#[test]
fn negotiates_with_open_vswitch_and_spreads_flows_both_ways() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("ovsl", 2, "--peer ovs-lacp");
    let bond = tb.start_tap_bond(LACP_FAST);
    let show = wait_negotiated(&tb);
    assert!(show.contains("lacp_time: fast"), "{show}");
    let page = tb.status("bond0", &[]).unwrap();
    assert!(
        page.contains("Actor Churn State: none\nPartner Churn State: none\n"),
        "{page}"
    );
    assert!(!page.contains("not speaking LACP"), "{page}");

    let (bond_ns, peer_ns) = (tb.bond_ns.clone(), tb.peer_ns.clone());
    let out = carried(&tb, || flows(&bond_ns, "10.77.0.2"));
    assert!(
        out[0].0 > 20 && out[1].0 > 20,
        "bond-dp spreads its flows: {out:?}"
    );
    let back = carried(&tb, || flows(&peer_ns, "10.77.0.1"));
    assert!(
        back[0].1 > 20 && back[1].1 > 20,
        "OVS spreads its flows: {back:?}"
    );

    // A member's link goes: both sides move everything to the other one.
    tb.in_peer("ip link set p1 down");
    wait_for("m1 down", Duration::from_secs(10), || {
        (tb.status_json("bond0")["members"][1]["mii_status"] == "down").then_some(())
    });
    let out = carried(&tb, || flows(&bond_ns, "10.77.0.2"));
    assert!(out[0].0 >= 256 && out[1].0 == 0, "all on m0: {out:?}");
    let back = carried(&tb, || flows(&peer_ns, "10.77.0.1"));
    assert!(
        back[0].1 >= 256 && back[1].1 == 0,
        "OVS sends all on p0: {back:?}"
    );
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn negotiates_at_the_slow_rate_and_with_a_passive_switch() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("ovsp", 2, "--peer ovs-lacp");
    tb.ovs_vsctl("set port bond0 other_config:lacp-time=slow");
    let bond = tb.start_tap_bond("mode=802.3ad,lacp_rate=slow,xmit_hash_policy=layer3+4");
    let show = wait_negotiated(&tb);
    assert!(show.contains("lacp_time: slow"), "{show}");
    assert!(terminate(tb.child(bond)).success());

    // The switch only answers; bond-dp speaks first.
    tb.ovs_vsctl("set port bond0 lacp=passive other_config:lacp-time=fast");
    let bond = tb.start_tap_bond(LACP_FAST);
    let show = wait_negotiated(&tb);
    assert!(show.contains("status: passive negotiated"), "{show}");
    wait_for("ping", Duration::from_secs(10), || ping_once(&tb.bond_ns));
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_switch_that_goes_away_expires_then_defaults_and_renegotiates_on_return() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("ovsx", 2, "--peer ovs-lacp");
    let bond = tb.start_tap_bond(LACP_FAST);
    wait_negotiated(&tb);
    tb.testbed_sh("ovs-stop");
    // Fast rate: expired after 3 s without LACPDUs, defaulted 3 s later.
    wait_for("ports expired", Duration::from_secs(5), || {
        let j = tb.status_json("bond0");
        let state = j["members"][0]["lacp"]["actor"]["port_state"].as_u64()?;
        (state & 0x80 != 0).then_some(())
    });
    let page = wait_for("ports defaulted", Duration::from_secs(8), || {
        let j = tb.status_json("bond0");
        let states: Vec<u64> = (0..2)
            .filter_map(|m| j["members"][m]["lacp"]["actor"]["port_state"].as_u64())
            .collect();
        let defaulted = states.len() == 2 && states.iter().all(|s| s & 0x40 != 0 && s & 0x80 == 0);
        let page = tb.status("bond0", &[])?;
        (defaulted && page.contains("Partner Mac Address: 00:00:00:00:00:00")).then_some(page)
    });
    // Like the kernel, one member goes on carrying traffic as an individual link.
    assert!(
        page.contains("\nMII Status: up\nMII Polling"),
        "the bond keeps carrier: {page}"
    );
    assert!(page.contains("not speaking LACP"), "{page}");

    tb.testbed_sh("ovs-start");
    wait_negotiated(&tb);
    wait_for("ping after renegotiation", Duration::from_secs(15), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn a_member_unplugged_at_start_joins_the_aggregator_when_plugged_in() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::with("ovsu", 2, "--peer ovs-lacp");
    // m1's cable is out when the bond starts: no speed, no duplex, key 0. (A veth reports
    // its speed while its peer is down; one that is down itself reports none, as a NIC
    // without a cable does.)
    tb.in_bond("ip link set m1 down");
    let bond = tb.start_tap_bond(LACP_FAST);
    let page = tb.status_when("bond0", "m1 down", |s| {
        common::member_block(s, "m1").contains("MII Status: down")
    });
    assert!(
        common::member_block(&page, "m1").contains("Speed: Unknown"),
        "{page}"
    );
    // Plugged in: its speed is read again, its key matches m0's and it aggregates with it.
    tb.in_bond("ip link set m1 up");
    wait_negotiated(&tb);
    let page = tb.status("bond0", &[]).unwrap();
    let m1 = common::member_block(&page, "m1");
    assert!(m1.contains("Speed: 10000 Mbps"), "{page}");
    assert!(page.contains("Actor Key: 15"), "{page}");
    assert!(terminate(tb.child(bond)).success());
}

/// bond-dp's actor (port number, state) for the member named `name`.
fn actor(tb: &Testbed, name: &str) -> Option<(u64, u64)> {
    let json = tb.status_json("bond0");
    let m = json["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?
        .clone();
    let a = &m["lacp"]["actor"];
    Some((a["port_number"].as_u64()?, a["port_state"].as_u64()?))
}

fn distributing(tb: &Testbed, name: &str) -> bool {
    actor(tb, name).is_some_and(|(_, state)| state & 0x30 == 0x30)
}

/// Asserts for `seconds` that the members named keep distributing.
fn undisturbed(tb: &Testbed, names: &[&str], seconds: u64) {
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < end {
        for name in names {
            assert!(distributing(tb, name), "{name} stopped distributing");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn members_come_and_go_without_disturbing_the_others_and_leaving_is_announced() {
    if !require_root() {
        return;
    }
    // The slow rate: without a last LACPDU the switch would use a gone link for 90 s.
    let mut tb = Testbed::with("ovsm", 3, "--peer ovs-lacp");
    tb.ovs_vsctl("set port bond0 other_config:lacp-time=slow");
    let bond = tb.start_tap_bond("mode=802.3ad,lacp_rate=slow,xmit_hash_policy=layer3+4");
    wait_for("m0 and m1 distributing", Duration::from_secs(20), || {
        (distributing(&tb, "m0") && distributing(&tb, "m1")).then_some(())
    });
    assert_eq!(actor(&tb, "m0").unwrap().0, 1);
    assert_eq!(actor(&tb, "m1").unwrap().0, 2);

    let out = tb.set(&["slaves", "+m2"]);
    assert!(out.status.success(), "{out:?}");
    undisturbed(&tb, &["m0", "m1"], 3);
    wait_for("m2 distributing", Duration::from_secs(20), || {
        distributing(&tb, "m2").then_some(())
    });
    assert_eq!(actor(&tb, "m2").unwrap().0, 3, "a new number");

    let out = tb.set(&["slaves", "-m0"]);
    assert!(out.status.success(), "{out:?}");
    wait_for("OVS disables p0 at once", Duration::from_secs(5), || {
        tb.ovs_appctl("bond/show bond0")
            .contains("member p0: disabled")
            .then_some(())
    });
    undisturbed(&tb, &["m1", "m2"], 2);
    assert_eq!(actor(&tb, "m1").unwrap().0, 2, "numbers stay");
    assert_eq!(actor(&tb, "m2").unwrap().0, 3, "numbers stay");

    let out = tb.set(&["slaves", "+m0"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(actor(&tb, "m0").unwrap().0, 4, "never reused");
    assert!(terminate(tb.child(bond)).success());
}
