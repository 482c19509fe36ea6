//! Link monitoring and failover on veth testbeds (root), modelled on the kernel's bonding
//! selftests: the cable comes loose while a ping runs; recovery by primary_reselect; the
//! first member back is used at once; exactly num_grat_arp announcements on the wire; a bond
//! with no member up drops and counts.

mod common;

use std::time::Duration;

use common::{
    member_block, ping_once, ping_received, require_root, tap_bond_args, terminate, wait_for,
    Testbed,
};

/// A ping of `count` packets, `interval` s apart, run while `during` happens half a second
/// in; returns how many were answered, and ping's output.
fn ping_through(
    tb: &mut Testbed,
    count: usize,
    interval: &str,
    during: impl FnOnce(&Testbed),
) -> (usize, String) {
    let ns = tb.bond_ns.clone();
    let count = count.to_string();
    let ping = tb.spawn_in(
        &ns,
        "ping",
        &["-c", &count, "-i", interval, "-W", "1", "-D", "10.77.0.2"],
    );
    std::thread::sleep(Duration::from_millis(500));
    during(tb);
    let out = tb.take(ping).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (ping_received(&text), text)
}

#[test]
fn carrier_loss_fails_over_without_waiting_for_miimon() {
    if !require_root() {
        return;
    }
    // miimon=5000: a poll alone would leave the bond on the dead link for up to 5 s.
    let mut tb = Testbed::new("fev", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=5000,primary=m0");
    let (received, text) = ping_through(&mut tb, 200, "0.01", |tb| {
        tb.in_peer("ip link set p0 down");
    });
    assert!(
        received >= 197,
        "a ping every 10 ms loses at most a couple on carrier loss: {received} of 200\n{text}"
    );
    let page = tb.status_when("bond0", "failover", |s| {
        s.contains("Currently Active Slave: m1")
    });
    assert!(member_block(&page, "m0").contains("MII Status: down\n"));
    assert!(member_block(&page, "m0").contains("Link Failure Count: 1\n"));

    // The member itself set down is a failure too, seen as an event as well.
    tb.in_peer("ip link set p0 up");
    tb.status_when("bond0", "primary back", |s| {
        s.contains("Currently Active Slave: m0")
    });
    // The peer's bridge enables its port only when the kernel's linkwatch gets to it, which
    // can be after bond-dp already took m0 back (updelay is for such switches): measure the
    // next failover from a path that works.
    wait_for("ping over m0", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    let (received, text) = ping_through(&mut tb, 200, "0.01", |tb| {
        tb.in_bond("ip link set m0 down");
    });
    assert!(
        received >= 197,
        "member set down: {received} of 200\n{text}"
    );
    let page = tb.status_when("bond0", "failover", |s| {
        s.contains("Currently Active Slave: m1")
    });
    assert!(member_block(&page, "m0").contains("Link Failure Count: 2\n"));
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn primary_reselect_decides_the_way_back() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("prs", 2);
    // Both veth members run at the same speed, so "better" finds the primary no better.
    for (policy, back_to) in [("always", "m0"), ("better", "m1"), ("failure", "m1")] {
        let bond = tb.start_tap_bond(&format!(
            "mode=active-backup,miimon=50,primary=m0,primary_reselect={policy}"
        ));
        tb.status_when("bond0", "primary active", |s| {
            s.contains("Currently Active Slave: m0")
        });
        tb.in_peer("ip link set p0 down");
        tb.status_when("bond0", "failover", |s| {
            s.contains("Currently Active Slave: m1")
        });
        tb.in_peer("ip link set p0 up");
        let page = tb.status_when("bond0", "m0 up again", |s| {
            member_block(s, "m0").contains("MII Status: up\n")
        });
        // Let a few polls pass: a reselection would have happened by now.
        std::thread::sleep(Duration::from_millis(300));
        let page = tb.status("bond0", &[]).unwrap_or(page);
        assert!(
            page.contains(&format!("Currently Active Slave: {back_to}\n")),
            "primary_reselect={policy}: {page}"
        );
        assert!(page.contains(&format!("Primary Slave: m0 (primary_reselect {policy})")));
        assert!(terminate(tb.child(bond)).success());
    }
}

#[test]
fn with_no_member_up_the_first_back_is_used_at_once_whatever_updelay() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("upd", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=50,updelay=60000");
    tb.in_peer("ip link set p0 down; ip link set p1 down");
    let page = tb.status_when("bond0", "bond down", |s| {
        s.contains("Currently Active Slave: None")
    });
    assert!(page.contains("\nMII Status: down\n"), "{page}");
    tb.in_peer("ip link set p1 up");
    // A minute of updelay would hold m1 back; with no member up it is taken at once.
    let page = tb.status_when("bond0", "m1 active", |s| {
        s.contains("Currently Active Slave: m1")
    });
    assert!(member_block(&page, "m1").contains("MII Status: up\n"));
    // With a member up again, the next one waits out its updelay.
    tb.in_peer("ip link set p0 up");
    let page = tb.status_when("bond0", "m0 going back", |s| {
        member_block(s, "m0").contains("MII Status: going back\n")
    });
    assert!(page.contains("Currently Active Slave: m1\n"));
    wait_for("ping over m1", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
}

/// Lines of a tcpdump capture on the peer of the new active member.
fn capture_during(
    tb: &mut Testbed,
    iface: &str,
    seconds: u32,
    during: impl FnOnce(&Testbed),
) -> String {
    let peer = tb.peer_ns.clone();
    let secs = seconds.to_string();
    let cap = tb.spawn_in(
        &peer,
        "timeout",
        &[&secs, "tcpdump", "-l", "-n", "-i", iface, "arp or icmp6"],
    );
    // tcpdump says "listening on" once it captures.
    std::thread::sleep(Duration::from_millis(1500));
    during(tb);
    let out = tb.take(cap).wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn failover_sends_exactly_num_grat_arp_announcements() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("garp", 2);
    let bond = tb.start_tap_bond(
        "mode=active-backup,miimon=50,primary=m0,num_grat_arp=3,peer_notif_delay=100",
    );
    // An IPv6 address too: it gets unsolicited neighbour advertisements.
    tb.in_bond("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.bond0.disable_ipv6=0");
    tb.in_bond("ip -6 addr add fd00:77::1/64 dev bond0 nodad");
    tb.in_peer("sysctl -qw net.ipv6.conf.all.disable_ipv6=0");
    let text = capture_during(&mut tb, "p1", 4, |tb| {
        tb.in_peer("ip link set p0 down");
    });
    let arps = text
        .lines()
        .filter(|l| l.contains("Request who-has 10.77.0.1 tell 10.77.0.1,"))
        .count();
    let nas = text
        .lines()
        .filter(|l| l.contains("neighbor advertisement") && l.contains("tgt is fd00:77::1"))
        .count();
    assert_eq!(arps, 3, "gratuitous ARPs on the new active member:\n{text}");
    assert_eq!(nas, 3, "unsolicited NAs on the new active member:\n{text}");
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn with_every_member_down_frames_are_dropped_and_counted_until_one_returns() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("alldn", 2);
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=50,xmit_hash_policy=layer3+4");
    tb.in_peer("ip link set p0 down; ip link set p1 down");
    let page = tb.status_when("bond0", "bond down", |s| s.contains("\nMII Status: down\n"));
    assert!(member_block(&page, "m0").contains("MII Status: down"));
    assert!(
        ping_once(&tb.bond_ns).is_none(),
        "no path while every member is down"
    );
    let json = tb.status_json("bond0");
    let dropped = json["data_plane"]["counters"]["drop_no_member"]
        .as_u64()
        .unwrap_or(0);
    assert!(dropped > 0, "frames with no member are counted: {json}");
    // The TAP loses carrier with the bond, as the kernel's bond device does.
    wait_for("bond0 without carrier", Duration::from_secs(5), || {
        (!has_carrier(&tb, "bond0")).then_some(())
    });
    tb.in_peer("ip link set p1 up");
    wait_for("ping over m1", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(has_carrier(&tb, "bond0"), "carrier back with a member");
    assert!(
        terminate(tb.child(bond)).success(),
        "no crash while all members were down"
    );
}

#[test]
fn the_operator_moves_the_active_member_and_changes_options_at_runtime() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("set", 2);
    let bond = tb.start_tap_bond("mode=active-backup,miimon=100");
    tb.status_when("bond0", "m0 active", |s| {
        s.contains("Currently Active Slave: m0")
    });
    let out = tb.set(&["active_slave", "m1"]);
    assert!(out.status.success(), "{out:?}");
    tb.status_when("bond0", "m1 active", |s| {
        s.contains("Currently Active Slave: m1")
    });
    // The data plane follows: traffic now crosses m1 (m0's frames are dropped).
    wait_for("ping over m1", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    let json = tb.status_json("bond0");
    let before = json["data_plane"]["counters"]["members"][1]["tx_packets"]
        .as_u64()
        .unwrap();
    ping_once(&tb.bond_ns).expect("ping");
    let json = tb.status_json("bond0");
    let after = json["data_plane"]["counters"]["members"][1]["tx_packets"]
        .as_u64()
        .unwrap();
    assert!(after > before, "m1 transmits: {before} -> {after}");

    // OPTION=VALUE works too; a rounded value comes back as a warning.
    let out = tb.set(&["miimon=50"]);
    assert!(out.status.success(), "{out:?}");
    tb.status_when("bond0", "miimon 50", |s| {
        s.contains("MII Polling Interval (ms): 50\n")
    });
    let out = tb.set(&["downdelay", "120"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rounded"),
        "{out:?}"
    );

    // The kernel's runtime options: the transmit hash, the ARP monitor's settings.
    for args in [
        &["xmit_hash_policy", "layer3+4"][..],
        &["arp_validate", "all"][..],
    ] {
        let out = tb.set(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    // Refusals name what was wrong and change nothing.
    for (args, says) in [
        (&["foo", "1"][..], "unknown option"),
        (&["active_slave", "m7"][..], "m7 is not a member"),
        (
            &["mode", "balance-rr"][..],
            "mode cannot be changed while the bond runs",
        ),
        (&["miimon", "often"][..], "miimon"),
    ] {
        let out = tb.set(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    tb.in_peer("ip link set p0 down");
    tb.status_when("bond0", "m0 down", |s| {
        member_block(s, "m0").contains("MII Status: down\n")
    });
    let out = tb.set(&["active_slave", "m0"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its link is down"),
        "{out:?}"
    );
    assert!(tb
        .status("bond0", &[])
        .unwrap()
        .contains("Currently Active Slave: m1\n"));
    assert!(terminate(tb.child(bond)).success());
}

const ARP_MONITOR: &str = "mode=active-backup,arp_interval=100,arp_ip_target=10.77.0.2,primary=m0";

/// Whether `iface` in the bond namespace still has carrier (LOWER_UP).
fn has_carrier(tb: &Testbed, iface: &str) -> bool {
    let out = tb.in_bond(&format!("ip link show {iface}"));
    String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
}

/// With `options` monitoring the peer (10.77.0.2 or fd00:77::2) as its target: a member whose
/// path to the target is cut while its carrier stays up is failed over, and comes back.
fn fails_over_when_the_path_to_the_target_is_cut(tb: &mut Testbed, options: &str, shows: &str) {
    let bond = tb.start_tap_bond(options);
    let page = tb.status_when("bond0", "both members proven", |s| {
        s.contains("Currently Active Slave: m0")
            && member_block(s, "m0").contains("MII Status: up")
            && member_block(s, "m1").contains("MII Status: up")
    });
    assert!(page.contains("ARP Polling Interval (ms): 100\n"), "{page}");
    assert!(page.contains(shows), "{page}");
    // The switch stops forwarding on p0 (a blocked bridge port): m0 keeps its carrier, but
    // the target no longer answers it.
    tb.in_peer("bridge link set dev p0 state 0");
    let page = tb.status_when("bond0", "failover", |s| {
        s.contains("Currently Active Slave: m1")
            && member_block(s, "m0").contains("MII Status: down")
    });
    assert!(has_carrier(tb, "m0"), "the carrier never went: {page}");
    wait_for("ping over m1", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    // The path heals: m0 proves itself again and the primary takes over.
    tb.in_peer("bridge link set dev p0 state 3");
    tb.status_when("bond0", "primary back", |s| {
        s.contains("Currently Active Slave: m0") && member_block(s, "m0").contains("MII Status: up")
    });
    wait_for("ping over m0", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn arp_monitor_fails_over_when_the_path_to_the_target_is_cut() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("arpmon", 2);
    fails_over_when_the_path_to_the_target_is_cut(
        &mut tb,
        &format!("{ARP_MONITOR},arp_validate=all"),
        "ARP IP target/s (n.n.n.n form): 10.77.0.2\n",
    );
}

#[test]
fn ns_monitor_fails_over_when_the_path_to_the_ipv6_target_is_cut() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("nsmon", 2);
    tb.in_peer("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.br0.disable_ipv6=0");
    tb.in_peer("ip -6 addr add fd00:77::2/64 dev br0 nodad");
    // The bond's own IPv6 address goes on once its TAP exists (start_tap_bond waits for
    // IPv4 only); until then the monitor waits with the members down, as the kernel does.
    let options = "mode=active-backup,arp_interval=100,ns_ip6_target=fd00:77::2,\
                   arp_validate=all,primary=m0";
    let ns = tb.bond_ns.clone();
    let add_address = std::thread::spawn(move || {
        wait_for("bond0", Duration::from_secs(10), || {
            common::sh_ok(&format!(
                "ip netns exec {ns} sh -c 'sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
                 net.ipv6.conf.bond0.disable_ipv6=0 && \
                 ip -6 addr add fd00:77::1/64 dev bond0 nodad'"
            ))
        });
    });
    fails_over_when_the_path_to_the_target_is_cut(
        &mut tb,
        options,
        "NS IPv6 target/s (xx::xx form): fd00:77::2\n",
    );
    add_address.join().unwrap();
}

/// An ARP request from 10.77.0.99 for 10.77.0.98: traffic on the wire that proves nothing
/// about the path to the bond's target.
fn foreign_arp_hex() -> String {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0, 0, 0x99, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend([0x02, 0, 0, 0, 0, 0x99, 10, 77, 0, 99]);
    f.extend([0, 0, 0, 0, 0, 0, 10, 77, 0, 98]);
    f.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn arp_validate_counts_only_arp_that_proves_the_path() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("arpval", 2);
    // m1 is cut off from the switch, but hears someone else's ARP chatter on its wire.
    let peer = tb.peer_ns.clone();
    let chatter = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('p1', 0))\n\
         for _ in range(600):\n    s.send(bytes.fromhex('{}'))\n    time.sleep(0.02)\n",
        foreign_arp_hex()
    );
    tb.in_peer("bridge link set dev p1 state 0");
    tb.spawn_in(&peer, "python3", &["-c", &chatter]);
    for (validate, m1_up) in [("none", true), ("backup", false)] {
        let bond = tb.start_tap_bond(&format!("{ARP_MONITOR},arp_validate={validate}"));
        tb.status_when("bond0", "m0 active", |s| {
            s.contains("Currently Active Slave: m0")
                && member_block(s, "m0").contains("MII Status: up")
        });
        // Long enough for missed_max + 1 intervals several times over.
        std::thread::sleep(Duration::from_millis(1500));
        let page = tb.status("bond0", &[]).unwrap();
        let m1 = member_block(&page, "m1");
        assert_eq!(
            m1.contains("MII Status: up"),
            m1_up,
            "arp_validate={validate}: {m1}"
        );
        assert!(terminate(tb.child(bond)).success());
    }
}

/// The MAC `iface` carries in the bond namespace.
fn mac_of(tb: &Testbed, iface: &str) -> String {
    let out = tb.in_bond(&format!("cat /sys/class/net/{iface}/address"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn members_and_the_host_carry_the_macs_fail_over_mac_asks_for() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("fomac", 2);
    let (own0, own1) = (mac_of(&tb, "m0"), mac_of(&tb, "m1"));

    // Every member takes the bond's MAC (the first member's) and gets its own back at exit.
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=50");
    assert_eq!(
        (mac_of(&tb, "m1"), mac_of(&tb, "bond0")),
        (own0.clone(), own0.clone())
    );
    assert!(terminate(tb.child(bond)).success());
    assert_eq!(mac_of(&tb, "m1"), own1, "restored at exit");

    // active: the bond's MAC follows the active member; peers learn it and traffic goes on.
    let bond = tb.start_tap_bond("mode=active-backup,miimon=50,fail_over_mac=active");
    assert_eq!(
        (mac_of(&tb, "m1"), mac_of(&tb, "bond0")),
        (own1.clone(), own0.clone())
    );
    tb.in_peer("ip link set p0 down");
    wait_for("bond0 with m1's MAC", Duration::from_secs(10), || {
        (mac_of(&tb, "bond0") == own1).then_some(())
    });
    wait_for("ping after failover", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
    tb.in_peer("ip link set p0 up");

    // follow: the new active takes the bond's MAC, the old one takes the new one's.
    let bond = tb.start_tap_bond("mode=active-backup,miimon=50,fail_over_mac=follow");
    tb.in_peer("ip link set p0 down");
    wait_for("MACs swapped", Duration::from_secs(10), || {
        (mac_of(&tb, "m1") == own0 && mac_of(&tb, "m0") == own1).then_some(())
    });
    wait_for("ping after failover", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
    assert_eq!(
        (mac_of(&tb, "m0"), mac_of(&tb, "m1")),
        (own0, own1),
        "restored at exit"
    );
}

#[test]
fn members_join_and_leave_while_traffic_flows() {
    if !require_root() {
        return;
    }
    let mut tb = Testbed::new("join", 3);
    let own1 = mac_of(&tb, "m1");
    let bond = tb.start_tap_bond("mode=balance-rr,miimon=50");
    let (received, text) = ping_through(&mut tb, 200, "0.01", |tb| {
        let out = tb.set(&["slaves", "+m2"]);
        assert!(out.status.success(), "{out:?}");
        std::thread::sleep(Duration::from_millis(500));
        let out = tb.set(&["slaves", "-m1"]);
        assert!(out.status.success(), "{out:?}");
    });
    assert!(
        received >= 190,
        "ping kept going while members joined and left: {received} of 200\n{text}"
    );
    let page = tb.status("bond0", &[]).unwrap();
    assert!(page.contains("Slave Interface: m2\n"), "{page}");
    assert!(!page.contains("Slave Interface: m1\n"), "{page}");
    // m2 carries its share (balance-rr), and m1 is given back as it was.
    let json = tb.status_json("bond0");
    let m2 = &json["data_plane"]["counters"]["members"][1];
    assert!(m2["tx_packets"].as_u64().unwrap() > 0, "{json}");
    let m1 = String::from_utf8_lossy(&tb.in_bond("ip -d link show m1").stdout).into_owned();
    assert!(!m1.contains("prog/xdp"), "XDP left on m1: {m1}");
    assert_eq!(mac_of(&tb, "m1"), own1, "m1 has its own MAC back");
    assert_eq!(
        mac_of(&tb, "m2"),
        mac_of(&tb, "m0"),
        "m2 carries the bond's MAC"
    );

    for (args, says) in [
        (&["slaves", "+m0"][..], "m0 is already a member"),
        (&["slaves", "+nosuch0"][..], "nosuch0"),
        (&["slaves", "-m7"][..], "m7 is not a member"),
        (
            &["slaves", "m1"][..],
            "+IF to add a member or -IF to remove one",
        ),
    ] {
        let out = tb.set(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    wait_for("ping over m0 and m2", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn members_join_and_leave_without_stopping_the_others() {
    if !require_root() {
        return;
    }
    // Each change stops the workers only while they take the new member's sockets or give
    // the old one's up: the program on the members that stay is the same one (a rebuild
    // loads a new one), and a ping every 2 ms loses nothing (a rebuild's pause of tens of
    // milliseconds would lose a few each time).
    let mut tb = Testbed::new("inplace", 3);
    let bond = tb.start_tap_bond("mode=balance-xor,miimon=50,xmit_hash_policy=layer3+4");
    let before = ["m0", "m1"].map(|m| tb.xdp_program_id(m));
    assert!(before.iter().all(Option::is_some), "{before:?}");
    let (received, text) = ping_through(&mut tb, 1500, "0.002", |tb| {
        for _ in 0..4 {
            for change in ["+m2", "-m2"] {
                let out = tb.set(&["slaves", change]);
                assert!(out.status.success(), "{change}: {out:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let after = ["m0", "m1"].map(|m| tb.xdp_program_id(m));
    assert_eq!(before, after, "the staying members' program was replaced");
    assert_eq!(tb.xdp_program_id("m2"), None, "XDP left on m2");
    // m1 leaves and comes back at once, again and again: each time its queue is free for its
    // new socket (the kernel lets go of a closed socket's queue a moment after the close).
    for _ in 0..25 {
        for change in ["-m1", "+m1"] {
            let out = tb.set(&["slaves", change]);
            assert!(out.status.success(), "{change}: {out:?}");
        }
    }
    assert_eq!(
        tb.xdp_program_id("m0"),
        before[0],
        "m1's return rebuilt the data plane"
    );
    // The first member too, whose socket holds the UMEM and stays bound: it serves m0 again
    // when it comes back, and carries the traffic alone once m1's link is down.
    let m1 = tb.xdp_program_id("m1");
    for change in ["-m0", "+m0"] {
        let out = tb.set(&["slaves", change]);
        assert!(out.status.success(), "{change}: {out:?}");
    }
    assert_eq!(
        tb.xdp_program_id("m1"),
        m1,
        "m0's return rebuilt the data plane"
    );
    let m0_rx = |tb: &Testbed| {
        let json = tb.status_json("bond0");
        assert_eq!(json["members"][1]["name"], "m0", "{json}");
        json["data_plane"]["counters"]["members"][1]["rx_packets"]
            .as_u64()
            .unwrap()
    };
    let rx = m0_rx(&tb);
    tb.in_peer("ip link set p1 down");
    wait_for("ping over m0 alone", Duration::from_secs(10), || {
        ping_once(&tb.bond_ns)
    });
    assert!(m0_rx(&tb) > rx, "the replies came in on m0");
    tb.in_peer("ip link set p1 up");
    assert!(
        received >= 1495,
        "a ping every 2 ms went on while m2 came and went: {received} of 1500\n{text}"
    );
    // m2 once more, and the daemon stopped right after: a clean stop (every member gets its
    // own MAC back, whether or not the monitor has seen the change yet).
    let out = tb.set(&["slaves", "+m2"]);
    assert!(out.status.success(), "{out:?}");
    assert!(terminate(tb.child(bond)).success());
    let log = common::stderr_of(tb.take(bond));
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_joining_members_set_up_does_not_hold_up_its_bonds_failover() {
    if !require_root() {
        return;
    }
    // A debug fault makes m2's set-up take 3 s (it is done without the bond's locks);
    // meanwhile the active member loses its link, and the bond fails over at once. The
    // control socket answers one request at a time, so the daemon's log tells the order.
    let mut tb = Testbed::new("joinslow", 3);
    let bond = tb.spawn_bond_dp_env(
        &tap_bond_args("mode=active-backup,miimon=50,primary=m0"),
        &[("BOND_DP_FAULT", "join-slow")],
    );
    tb.status_when("bond0", "bond0 on m0", |s| {
        s.contains("Currently Active Slave: m0") && s.matches("MII Status: up").count() == 3
    });
    let set = tb.spawn_bond_dp(&["set", "bond0", "slaves", "+m2"]);
    std::thread::sleep(Duration::from_millis(300));
    tb.in_peer("ip link set p0 down");
    let done = tb.take(set).wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    let page = tb.status_when("bond0", "m2 joined, m1 active", |s| {
        s.contains("Slave Interface: m2\n") && s.contains("Currently Active Slave: m1")
    });
    assert!(terminate(tb.child(bond)).success(), "{page}");
    let log = common::stderr_of(tb.take(bond));
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("no \"{what}\" in the log:\n{log}"))
    };
    assert!(
        at("making interface m1 the new active one") < at("member added"),
        "the bond failed over only once m2 had joined:\n{log}"
    );
}

#[test]
fn balance_alb_answers_every_peer_whatever_member_it_was_taught() {
    if !require_root() {
        return;
    }
    // Six peers, each in a namespace of its own on the peer's bridge: receive load balancing
    // teaches some of them m0's MAC and some m1's, and every one must get answers.
    let mut tb = Testbed::new("alb", 2);
    let bond = tb.start_tap_bond("mode=balance-alb,miimon=100");
    let peers: Vec<common::Netns> = (0..6)
        .map(|i| common::Netns::new(&format!("albp{i}")))
        .collect();
    for (i, ns) in peers.iter().enumerate() {
        let name = format!("pv{i}");
        tb.in_peer(&format!(
            "ip link add link br0 name {name} type macvlan mode bridge; \
             ip link set {name} netns {}",
            ns.name
        ));
        ns.exec(&format!(
            "ip addr add 10.77.0.{}/24 dev {name}; ip link set {name} up",
            20 + i
        ));
    }
    let answered = |ns: &common::Netns| {
        ns.command("ping")
            .args(["-c", "1", "-W", "1", "10.77.0.1"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for ns in &peers {
        wait_for(
            &format!("{} answered", ns.name),
            Duration::from_secs(20),
            || answered(ns).then_some(()),
        );
    }
    // Both members were taught: the bond's ARP replies spread the peers over them.
    let json = tb.status_json("bond0");
    let rx = |m: usize| {
        json["data_plane"]["counters"]["members"][m]["rx_packets"]
            .as_u64()
            .unwrap()
    };
    assert!(rx(0) > 0 && rx(1) > 0, "both members receive: {json}");
    for round in 0..3 {
        for ns in &peers {
            assert!(answered(ns), "round {round}: {} got no answer", ns.name);
        }
    }
    assert!(terminate(tb.child(bond)).success());
}

#[test]
fn tlb_and_alb_move_the_bonds_mac_to_the_new_active_member() {
    if !require_root() {
        return;
    }
    for mode in ["balance-tlb", "balance-alb"] {
        let mut tb = Testbed::new("tlbmac", 2);
        let (own0, own1) = (mac_of(&tb, "m0"), mac_of(&tb, "m1"));
        let bond = tb.start_tap_bond(&format!("mode={mode},miimon=50"));
        tb.in_peer("ip link set p0 down");
        tb.status_when("bond0", "m1 active", |s| {
            s.contains("Currently Active Slave: m1")
        });
        // As the kernel's alb_swap_mac_addr: the switch keeps sending the bond's MAC to the
        // port that now answers for it.
        wait_for(
            &format!("{mode}: MACs swapped"),
            Duration::from_secs(10),
            || (mac_of(&tb, "m1") == own0 && mac_of(&tb, "m0") == own1).then_some(()),
        );
        wait_for("ping over m1", Duration::from_secs(10), || {
            ping_once(&tb.bond_ns)
        });
        assert!(terminate(tb.child(bond)).success());
        assert_eq!(
            (mac_of(&tb, "m0"), mac_of(&tb, "m1")),
            (own0, own1),
            "{mode}: own MACs back at exit"
        );
    }
}

#[test]
fn one_bonds_rebuild_does_not_hold_up_anothers_failover() {
    if !require_root() {
        return;
    }
    // Two bonds in one daemon; a debug fault makes bond A's rebuild hold its locks for 3 s.
    let mut tb = Testbed::new("twobonds", 4);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bond-dp.toml");
    std::fs::write(
        &config,
        "[bond.bonda]\nmembers = [\"m0\", \"m1\"]\nhost = \"tap\"\n\
         options = \"mode=active-backup,miimon=50\"\n\
         [bond.bondb]\nmembers = [\"m2\", \"m3\"]\nhost = \"tap\"\n\
         options = \"mode=active-backup,miimon=50,primary=m2\"\n",
    )
    .unwrap();
    let daemon = tb.spawn_bond_dp_env(
        &["run", "--config", config.to_str().unwrap()],
        &[("BOND_DP_FAULT", "rebuild-slow")],
    );
    tb.status_when("bondb", "bond B up on m2", |s| {
        s.contains("Currently Active Slave: m2") && s.matches("MII Status: up").count() == 3
    });
    tb.status_when("bonda", "bond A up", |s| s.contains("Slave Interface: m1"));
    // Bond A's member change: its data plane is rebuilt, slowly, under its locks.
    let set = tb.spawn_bond_dp(&["set", "bonda", "slaves", "-m1"]);
    std::thread::sleep(Duration::from_millis(300));
    // Bond B's active member loses its link meanwhile, and B fails over at once.
    tb.in_peer("ip link set p2 down");
    tb.status_when("bondb", "bond B on m3", |s| {
        s.contains("Currently Active Slave: m3")
    });
    assert!(
        tb.child(set).try_wait().unwrap().is_none(),
        "bond A's rebuild was over before bond B failed over: the test proved nothing"
    );
    let done = tb.take(set).wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    tb.status_when("bonda", "bond A without m1", |s| {
        !s.contains("Slave Interface: m1")
    });
    assert!(terminate(tb.child(daemon)).success());
}
