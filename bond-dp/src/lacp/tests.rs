//! Scenario tests in simulated time: two LACP systems wired port to port, or one system and
//! a scripted partner.

use super::*;
use pdu::Lacpdu;

const TEN_G: PortLink = PortLink {
    up: true,
    speed_mbps: 10_000,
    full_duplex: true,
};

fn link(speed_mbps: u32) -> PortLink {
    PortLink {
        speed_mbps,
        ..TEN_G
    }
}

/// A system with MAC 02:00:00:00:ID:00 and ports 02:00:00:00:ID:NN.
fn system(id: u8, options: &str, links: &[PortLink]) -> Lacp {
    let (o, _) = BondOptions::parse(&format!("mode=802.3ad {options}")).unwrap();
    let ports: Vec<_> = links
        .iter()
        .enumerate()
        .map(|(i, &l)| (MacAddr([2, 0, 0, 0, id, i as u8 + 1]), l))
        .collect();
    Lacp::new(
        LacpConfig::from_options(&o, MacAddr([2, 0, 0, 0, id, 0])),
        &ports,
    )
}

/// Two systems with these links at the fast rate, wired port to port.
fn fast_pair(links: &[PortLink]) -> Wire {
    Wire::new(
        system(1, "lacp_rate=fast", links),
        system(2, "lacp_rate=fast", links),
    )
}

/// Systems `a` and `b`, port i of one wired to port i of the other.
struct Wire {
    a: Lacp,
    b: Lacp,
    now: Duration,
    /// Per link: whether frames from b still reach a.
    b_to_a: Vec<bool>,
    sent_by_a: u64,
}

impl Wire {
    fn new(a: Lacp, b: Lacp) -> Wire {
        let links = a.ports.len();
        Wire {
            a,
            b,
            now: Duration::ZERO,
            b_to_a: vec![true; links],
            sent_by_a: 0,
        }
    }

    fn run(&mut self, seconds: u64) {
        for _ in 0..seconds * 10 {
            self.now += TICK;
            let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
            self.a.advance(self.now, &mut from_a);
            self.b.advance(self.now, &mut from_b);
            self.sent_by_a += from_a.len() as u64;
            for (port, frame) in from_a {
                let _ = self.b.receive(port, &frame, &mut Vec::new());
            }
            for (port, frame) in from_b {
                if self.b_to_a[port] {
                    let _ = self.a.receive(port, &frame, &mut Vec::new());
                }
            }
        }
    }
}

fn distributing(l: &Lacp) -> Vec<bool> {
    (0..l.ports.len()).map(|p| l.distributing(p)).collect()
}

#[test]
fn two_active_systems_negotiate_one_aggregator() {
    let mut w = Wire::new(
        system(1, "lacp_rate=fast", &[TEN_G, TEN_G]),
        system(2, "lacp_rate=fast", &[TEN_G, TEN_G]),
    );
    w.run(1);
    assert_ne!(distributing(&w.a), [true, true], "aggregate wait first");
    w.run(4);
    assert_eq!(distributing(&w.a), [true, true]);
    assert_eq!(distributing(&w.b), [true, true]);
    let agg = w.a.active_aggregator().unwrap();
    assert_eq!(
        (agg.ports, agg.partner_mac),
        (2, MacAddr([2, 0, 0, 0, 2, 0]))
    );
    // 10 Gb/s (the kernel's AD_LINK_SPEED_10000MBPS, 7), full duplex: key 15.
    assert_eq!((agg.actor_key, agg.partner_key), (15, 15));
    let s = w.a.port_status(1);
    assert_eq!(s.aggregator_id, w.a.port_status(0).aggregator_id);
    assert_eq!(s.partner.port, 2);
    assert_eq!(
        s.actor.state.0 & 0x3f,
        0x3f,
        "active, fast, aggregating, in sync, coll/dist"
    );
    assert_eq!(s.actor_churn, (Churn::None, 0));
    assert_eq!(s.partner_churn, (Churn::None, 0));
}

#[test]
fn fast_and_slow_rates_set_the_partners_pace() {
    for (rate, per_minute) in [("fast", 40..=80), ("slow", 2..=12)] {
        let mut w = Wire::new(
            system(1, &format!("lacp_rate={rate}"), &[TEN_G]),
            system(2, &format!("lacp_rate={rate}"), &[TEN_G]),
        );
        w.run(10);
        assert_eq!(distributing(&w.a), [true], "lacp_rate={rate}");
        let before = w.sent_by_a;
        w.run(60);
        let sent = w.sent_by_a - before;
        assert!(
            per_minute.contains(&sent),
            "lacp_rate={rate}: {sent} LACPDUs a minute"
        );
    }
}

#[test]
fn passive_answers_an_active_partner_but_two_passive_never_speak() {
    let mut w = Wire::new(
        system(1, "lacp_rate=fast", &[TEN_G, TEN_G]),
        system(2, "lacp_rate=fast lacp_active=off", &[TEN_G, TEN_G]),
    );
    w.run(5);
    assert_eq!(distributing(&w.b), [true, true]);
    assert!(!w.b.port_status(0).actor.state.has(PortState::ACTIVITY));

    let mut w = Wire::new(
        system(1, "lacp_active=off", &[TEN_G]),
        system(2, "lacp_active=off", &[TEN_G]),
    );
    w.run(10);
    assert_eq!(w.a.totals().lacpdus_sent + w.b.totals().lacpdus_sent, 0);
    assert_eq!(w.a.port_status(0).partner.system, MacAddr::ZERO);
}

#[test]
fn a_silent_partner_expires_then_defaults_and_leaves_the_aggregator() {
    let mut w = Wire::new(
        system(1, "lacp_rate=fast", &[TEN_G, TEN_G]),
        system(2, "lacp_rate=fast", &[TEN_G, TEN_G]),
    );
    w.run(5);
    assert_eq!(distributing(&w.a), [true, true]);
    w.b_to_a = vec![false, false];
    w.run(2);
    assert_eq!(distributing(&w.a), [true, true], "within the 3 s timeout");
    w.run(2);
    let s = w.a.port_status(0);
    assert!(s.actor.state.has(PortState::EXPIRED), "{s:?}");
    assert_eq!(
        distributing(&w.a),
        [false, false],
        "expired: partner out of sync"
    );
    w.run(3);
    let s = w.a.port_status(0);
    assert!(s.actor.state.has(PortState::DEFAULTED) && !s.actor.state.has(PortState::EXPIRED));
    assert_eq!(s.partner.system, MacAddr::ZERO, "the partner is gone");
    // Back to the defaults: each port is an individual link in its own aggregator, and the
    // active one carries traffic alone, as the kernel does with a switch that has no LACP.
    assert_ne!(s.aggregator_id, w.a.port_status(1).aggregator_id);
    assert_eq!(distributing(&w.a).iter().filter(|&&d| d).count(), 1);
    // The partner comes back: they negotiate again.
    w.b_to_a = vec![true, true];
    w.run(5);
    assert_eq!(distributing(&w.a), [true, true]);
}

#[test]
fn different_keys_make_two_aggregators_and_ad_select_chooses() {
    // Ports 0 and 1 run at 10 Gb/s, port 2 at 100 Gb/s: two keys, two aggregators.
    let links = [TEN_G, TEN_G, link(100_000)];
    for (select, carrying) in [
        ("count", [true, true, false]),
        ("bandwidth", [false, false, true]),
    ] {
        let mut w = Wire::new(
            system(1, &format!("lacp_rate=fast ad_select={select}"), &links),
            system(2, &format!("lacp_rate=fast ad_select={select}"), &links),
        );
        w.run(6);
        assert_eq!(distributing(&w.a), carrying, "ad_select={select}");
        assert_eq!(
            distributing(&w.b),
            carrying,
            "ad_select={select}, partner side"
        );
        let (s0, s2) = (w.a.port_status(0), w.a.port_status(2));
        assert_ne!(s0.aggregator_id, s2.aggregator_id);
        assert_ne!(s0.actor.key, s2.actor.key);
    }
}

#[test]
fn stable_keeps_the_working_aggregator() {
    let links = [TEN_G, TEN_G, link(100_000)];
    let mut w = fast_pair(&links);
    w.run(6);
    let first = w.a.active_aggregator().unwrap().id;
    // The 100 Gb/s link drops to 1 Gb/s: bandwidth would now prefer the other aggregator,
    // stable keeps the one carrying traffic as long as it works.
    w.a.set_link(2, link(1000));
    w.b.set_link(2, link(1000));
    w.run(6);
    assert_eq!(w.a.active_aggregator().unwrap().id, first);
}

/// A scripted partner that answers every LACPDU but never gets in sync.
#[test]
fn a_partner_that_never_syncs_is_churned_after_60_s() {
    let mut a = system(1, "lacp_rate=fast", &[TEN_G]);
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    for _ in 0..700 {
        now += TICK;
        out.clear();
        a.advance(now, &mut out);
        let me = a.port_status(0).actor;
        let partner = PortInfo {
            system_priority: 1,
            system: MacAddr([2, 0, 0, 0, 9, 0]),
            key: 15,
            port_priority: 1,
            port: 1,
            state: PortState(
                PortState::ACTIVITY | PortState::SHORT_TIMEOUT | PortState::AGGREGATION,
            ),
        };
        let pdu = Lacpdu {
            actor: partner,
            partner: me,
            collector_max_delay: 0,
        };
        a.receive(0, &pdu.to_frame(partner.system), &mut out)
            .unwrap();
    }
    let s = a.port_status(0);
    assert_eq!(s.partner_churn, (Churn::Churned, 1));
    assert_eq!(
        s.actor_churn,
        (Churn::None, 0),
        "we are in sync, the partner is not"
    );
    assert!(!s.distributing);
}

#[test]
fn malformed_lacpdus_are_counted_and_ignored() {
    let mut a = system(1, "lacp_rate=fast", &[TEN_G]);
    let mut out = Vec::new();
    a.advance(Duration::ZERO, &mut out);
    let good = Lacpdu {
        actor: PortInfo::default(),
        partner: PortInfo::default(),
        collector_max_delay: 0,
    }
    .to_frame(MacAddr([2, 0, 0, 0, 9, 1]));
    let before = a.port_status(0);
    for cut in [0, 10, 15, 30, 59] {
        assert!(a.receive(0, &good[..cut], &mut out).is_err());
    }
    let mut bad_tlv = good.clone();
    bad_tlv[16] = 7;
    assert!(a.receive(0, &bad_tlv, &mut out).is_err());
    let c = a.port_status(0).counters;
    assert_eq!((c.malformed, c.lacpdus_received), (6, 0));
    let mut before = before;
    before.counters = c;
    assert_eq!(a.port_status(0), before, "nothing else changed");
}

#[test]
fn marker_requests_get_a_response_on_the_same_port() {
    let mut a = system(1, "", &[TEN_G, TEN_G]);
    let request = Marker {
        response: false,
        port: 4,
        system: MacAddr([2, 0, 0, 0, 9, 0]),
        transaction: 77,
    };
    let mut out = Vec::new();
    a.receive(1, &request.to_frame(MacAddr([2, 0, 0, 0, 9, 4])), &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    assert_eq!(
        &out[0].1[6..12],
        &[2, 0, 0, 0, 1, 2],
        "from the port's own MAC"
    );
    assert_eq!(
        SlowPdu::parse(&out[0].1),
        Ok(SlowPdu::Marker(Marker {
            response: true,
            ..request
        }))
    );
}

#[test]
fn keys_carry_the_kernels_speed_classes() {
    use super::port::speed_class;
    // enum ad_link_speed_type in bond_3ad.c, 1 Mb/s = 1 to 800 Gb/s = 17.
    let table = [
        (1, 1),
        (10, 2),
        (100, 3),
        (1000, 4),
        (2500, 5),
        (5000, 6),
        (10_000, 7),
        (14_000, 8),
        (20_000, 9),
        (25_000, 10),
        (40_000, 11),
        (50_000, 12),
        (56_000, 13),
        (100_000, 14),
        (200_000, 15),
        (400_000, 16),
        (800_000, 17),
        (0, 0),
        (12_345, 0),
    ];
    for (mbps, class) in table {
        assert_eq!(speed_class(mbps), class, "{mbps} Mb/s");
    }
}

#[test]
fn a_port_whose_link_comes_up_later_joins_the_others() {
    // Port 2's cable was out at start: no speed, no duplex, so key 0 (the kernel's too).
    let unplugged = PortLink {
        up: false,
        speed_mbps: 0,
        full_duplex: false,
    };
    let mut w = Wire::new(
        system(1, "lacp_rate=fast", &[TEN_G, unplugged]),
        system(2, "lacp_rate=fast", &[TEN_G, TEN_G]),
    );
    w.run(5);
    assert_eq!(w.a.port_status(1).actor.key, 0);
    assert_eq!(distributing(&w.a), [true, false]);
    // The cable goes in: speed and duplex are read again, the key is recomputed, and the
    // port joins the same aggregator.
    w.a.set_link(1, TEN_G);
    assert_eq!(w.a.port_status(1).actor.key, 15);
    w.run(5);
    assert_eq!(distributing(&w.a), [true, true]);
    assert_eq!(distributing(&w.b), [true, true]);
    assert_eq!(w.a.active_aggregator().unwrap().ports, 2);
}

/// A port of one of a [`Net`]'s systems: (system, port).
type End = (usize, usize);

/// Systems wired port to port in any pattern, with links that can be cut.
struct Net {
    systems: Vec<Lacp>,
    /// (system, port) <-> (system, port), and whether the cable is in.
    links: Vec<(End, End, bool)>,
    now: Duration,
    /// Every frame each system sent, with the tick it left on, per port.
    sent: Vec<Vec<(Duration, usize, Vec<u8>)>>,
}

impl Net {
    fn new(systems: Vec<Lacp>, links: &[(End, End)]) -> Net {
        let n = systems.len();
        Net {
            systems,
            links: links.iter().map(|&(a, b)| (a, b, true)).collect(),
            now: Duration::ZERO,
            sent: vec![Vec::new(); n],
        }
    }

    fn far_end(&self, from: End) -> Option<End> {
        self.links.iter().find_map(|&(a, b, up)| match () {
            _ if !up => None,
            _ if a == from => Some(b),
            _ if b == from => Some(a),
            _ => None,
        })
    }

    /// One 100 ms tick; `each` is called after it.
    fn tick(&mut self) {
        self.now += TICK;
        let mut frames = Vec::new();
        for (s, sys) in self.systems.iter_mut().enumerate() {
            let mut out = Vec::new();
            sys.advance(self.now, &mut out);
            for (port, frame) in out {
                self.sent[s].push((self.now, port, frame.clone()));
                frames.push(((s, port), frame));
            }
        }
        for (from, frame) in frames {
            if let Some((s, p)) = self.far_end(from) {
                let _ = self.systems[s].receive(p, &frame, &mut Vec::new());
            }
        }
    }

    fn run(&mut self, seconds: u64) {
        for _ in 0..seconds * 10 {
            self.tick();
        }
    }
}

#[test]
fn members_come_and_go_without_disturbing_the_others() {
    // a's ports 0 and 1 to b's 0 and 1; b's port 2 waits for a newcomer.
    let mut net = Net::new(
        vec![
            system(1, "lacp_rate=fast", &[TEN_G, TEN_G]),
            system(2, "lacp_rate=fast", &[TEN_G, TEN_G, TEN_G]),
        ],
        &[((0, 0), (1, 0)), ((0, 1), (1, 1)), ((0, 2), (1, 2))],
    );
    net.run(5);
    assert_eq!(distributing(&net.systems[0]), [true, true]);
    let system_before = net.systems[0].port_status(0).actor.system;
    net.systems[0].add_port(MacAddr([2, 0, 0, 0, 1, 3]), TEN_G);
    for _ in 0..50 {
        net.tick();
        let a = &net.systems[0];
        assert!(
            a.distributing(0) && a.distributing(1),
            "the others never stop"
        );
    }
    assert_eq!(distributing(&net.systems[0]), [true, true, true]);
    assert_eq!(net.systems[0].port_status(2).actor.port, 3);
    // Port 1 (number 1) leaves: it says goodbye, and b stops using the link at once.
    let bye = net.systems[0]
        .farewell(0)
        .expect("a farewell on a live link");
    let state = match SlowPdu::parse(&bye) {
        Ok(SlowPdu::Lacp(pdu)) => pdu.actor.state,
        other => panic!("not an LACPDU: {other:?}"),
    };
    for bit in [
        PortState::SYNCHRONIZATION,
        PortState::COLLECTING,
        PortState::DISTRIBUTING,
        PortState::AGGREGATION,
    ] {
        assert!(!state.has(bit), "bit {bit:#x} in the farewell");
    }
    net.systems[1].receive(0, &bye, &mut Vec::new()).unwrap();
    net.systems[0].remove_port(0);
    net.links.retain(|&(a, _, _)| a != (0, 0));
    for (a, _, _) in &mut net.links {
        a.1 -= 1;
    }
    net.tick();
    assert!(
        !net.systems[1].distributing(0),
        "the partner stopped at once"
    );
    for _ in 0..50 {
        net.tick();
        let a = &net.systems[0];
        assert!(
            a.distributing(0) && a.distributing(1),
            "the others never stop"
        );
    }
    let a = &net.systems[0];
    assert_eq!(
        (a.port_status(0).actor.port, a.port_status(1).actor.port),
        (2, 3),
        "ports keep their numbers"
    );
    assert_eq!(a.port_status(0).actor.system, system_before);
    // A newcomer never reuses a number.
    net.systems[0].add_port(MacAddr([2, 0, 0, 0, 1, 4]), TEN_G);
    assert_eq!(net.systems[0].port_status(2).actor.port, 4);
    assert_eq!(net.systems[0].active_aggregator().unwrap().ports, 2);
}

#[test]
fn two_members_cabled_to_each_other_are_an_illegal_loopback() {
    let mut net = Net::new(
        vec![system(1, "lacp_rate=fast", &[TEN_G, TEN_G])],
        &[((0, 0), (0, 1))],
    );
    net.run(10);
    let a = &net.systems[0];
    assert!(a.port_status(0).counters.illegal_loopback > 0);
    assert_eq!(a.port_status(0).counters.lacpdus_received, 0);
    assert_eq!(
        a.port_status(0).partner.system,
        MacAddr::ZERO,
        "never its own partner"
    );
}

#[test]
fn only_the_active_aggregator_says_it_is_in_sync() {
    // Port 2 is slower: another key, another aggregator, which is not the active one.
    let links = [TEN_G, TEN_G, link(1000)];
    let mut w = fast_pair(&links);
    w.run(6);
    let s = w.a.port_status(2);
    assert_ne!(s.aggregator_id, w.a.port_status(0).aggregator_id);
    assert!(!s.actor.state.has(PortState::SYNCHRONIZATION), "{s:?}");
    assert!(!w.b.distributing(2), "the partner does not use the link");
    assert!(w
        .a
        .port_status(0)
        .actor
        .state
        .has(PortState::SYNCHRONIZATION));
}

#[test]
fn a_tie_keeps_the_active_aggregator() {
    for select in ["bandwidth", "count", "stable"] {
        // Port 0 to partner b, port 1 to partner c: two aggregators of equal worth.
        let mut net = Net::new(
            vec![
                system(
                    1,
                    &format!("lacp_rate=fast ad_select={select}"),
                    &[TEN_G, TEN_G],
                ),
                system(2, "lacp_rate=fast", &[TEN_G]),
                system(3, "lacp_rate=fast", &[TEN_G]),
            ],
            &[((0, 0), (1, 0)), ((0, 1), (2, 0))],
        );
        net.run(5);
        assert_eq!(distributing(&net.systems[0]), [true, false], "{select}");
        // Port 0's cable goes: port 1's aggregator takes over.
        net.systems[0].set_link(0, PortLink { up: false, ..TEN_G });
        net.links[0].2 = false;
        net.run(5);
        assert_eq!(distributing(&net.systems[0]), [false, true], "{select}");
        // It comes back: a tie, and the working aggregator stays.
        net.systems[0].set_link(0, TEN_G);
        net.links[0].2 = true;
        for _ in 0..100 {
            net.tick();
            assert!(net.systems[0].distributing(1), "{select}: no flip on a tie");
        }
    }
}

#[test]
fn individual_links_lose_to_an_aggregate() {
    let half = PortLink {
        full_duplex: false,
        ..TEN_G
    };
    // Port 0 is half duplex: no LACP on it, an individual link, never chosen over the two
    // full-duplex ports that aggregate.
    let mut w = Wire::new(
        system(
            1,
            "lacp_rate=fast ad_select=bandwidth",
            &[half, TEN_G, TEN_G],
        ),
        system(2, "lacp_rate=fast", &[TEN_G, TEN_G, TEN_G]),
    );
    w.run(6);
    assert_eq!(distributing(&w.a), [false, true, true]);
    assert!(w.a.sent_on(0) == 0, "no LACPDU on a half-duplex link");
    assert_eq!(w.a.port_status(0).actor.key & 1, 0, "no duplex bit");
}

impl Lacp {
    fn sent_on(&self, port: usize) -> u64 {
        self.port_status(port).counters.lacpdus_sent
    }
}

/// A scripted partner port's LACPDU, seeing `me` as its partner.
fn partner_pdu(me: PortInfo, state: u8) -> Vec<u8> {
    let partner = PortInfo {
        system_priority: 1,
        system: MacAddr([2, 0, 0, 0, 9, 0]),
        key: 15,
        port_priority: 1,
        port: 1,
        state: PortState(state),
    };
    Lacpdu {
        actor: partner,
        partner: me,
        collector_max_delay: 0,
    }
    .to_frame(MacAddr([2, 0, 0, 0, 9, 1]))
}

#[test]
fn never_more_than_three_lacpdus_in_any_second() {
    let mut a = system(1, "lacp_rate=fast", &[TEN_G]);
    let mut now = Duration::ZERO;
    let mut sent_at = Vec::new();
    for tick in 0..200u32 {
        now += TICK;
        let mut out = Vec::new();
        a.advance(now, &mut out);
        sent_at.extend(out.iter().map(|_| tick));
        // A partner whose view of us is always wrong: every LACPDU asks for an answer.
        let mut wrong = a.port_status(0).actor;
        wrong.key ^= tick as u16 + 1;
        let state = PortState::ACTIVITY | PortState::SHORT_TIMEOUT | PortState::AGGREGATION;
        a.receive(0, &partner_pdu(wrong, state), &mut out).unwrap();
    }
    for w in sent_at.windows(4) {
        assert!(w[3] - w[0] >= 10, "four LACPDUs within one second: {w:?}");
    }
    assert!(
        sent_at.len() >= 55,
        "the limit, not starvation: {}",
        sent_at.len()
    );
}

#[test]
fn only_frames_to_the_slow_protocols_address_are_lacp() {
    let mut a = system(1, "lacp_rate=fast", &[TEN_G]);
    let mut f = partner_pdu(
        PortInfo::default(),
        PortState::ACTIVITY | PortState::AGGREGATION,
    );
    f[..6].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
    assert_eq!(
        a.receive(0, &f, &mut Vec::new()),
        Err(Dropped::WrongDestination(MacAddr([2, 0, 0, 0, 1, 1])))
    );
    let c = a.port_status(0).counters;
    assert_eq!((c.wrong_destination, c.lacpdus_received), (1, 0));
}

#[test]
fn a_partner_that_asks_for_fast_lacpdus_gets_one_at_once() {
    let mut a = system(1, "lacp_rate=slow", &[TEN_G]);
    let slow = PortState::ACTIVITY | PortState::AGGREGATION | PortState::SYNCHRONIZATION;
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    // Settle at the slow rate: one LACPDU every 30 s.
    for _ in 0..100 {
        now += TICK;
        out.clear();
        a.advance(now, &mut out);
        let me = a.port_status(0).actor;
        a.receive(0, &partner_pdu(me, slow), &mut Vec::new())
            .unwrap();
    }
    let me = a.port_status(0).actor;
    a.receive(
        0,
        &partner_pdu(me, slow | PortState::SHORT_TIMEOUT),
        &mut Vec::new(),
    )
    .unwrap();
    let before = a.sent_on(0);
    now += TICK;
    a.advance(now, &mut out);
    assert_eq!(a.sent_on(0), before + 1, "an LACPDU on the next tick");
}
