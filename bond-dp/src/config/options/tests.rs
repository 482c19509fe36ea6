use super::*;

fn parse(s: &str) -> BondOptions {
    BondOptions::parse(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .0
}

fn error(s: &str) -> String {
    BondOptions::parse(s).expect_err(s).to_string()
}

fn warnings(s: &str) -> Vec<String> {
    BondOptions::parse(s)
        .unwrap()
        .1
        .into_iter()
        .map(|w| w.0)
        .collect()
}

#[test]
fn kernel_defaults() {
    let o = parse("");
    assert_eq!(o.mode, Mode::BalanceRr);
    assert_eq!(o.miimon, 0);
    assert_eq!(o.xmit_hash_policy, HashPolicy::Layer2);
    assert_eq!(o.packets_per_slave, 1);
    assert_eq!(o.num_peer_notif, 1);
    assert_eq!(o.arp_missed_max, 2);
    assert_eq!(o.ad_actor_sys_prio, 65535);
    assert_eq!(o.lacp_rate, LacpRate::Slow);
    assert!(o.lacp_active && o.use_carrier && o.tlb_dynamic_lb);
    assert_eq!(o.lp_interval, 1);
    assert_eq!(o.resend_igmp, 1);
}

#[test]
fn nmcli_and_ifcfg_forms_agree() {
    let nmcli = parse("mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4");
    let ifcfg = parse("mode=4 miimon=100 lacp_rate=1 xmit_hash_policy=1");
    let quoted = parse("\"mode=802.3ad  miimon=100, lacp_rate=fast xmit_hash_policy=layer3+4\"");
    assert_eq!(nmcli, ifcfg);
    assert_eq!(nmcli, quoted);
    assert_eq!(nmcli.mode, Mode::Lacp);
    assert_eq!(nmcli.lacp_rate, LacpRate::Fast);
    assert_eq!(nmcli.xmit_hash_policy, HashPolicy::Layer34);
}

#[test]
fn modes_by_name_and_number() {
    for m in Mode::ALL {
        assert_eq!(parse(&format!("mode={}", m.name())).mode, m);
        assert_eq!(parse(&format!("mode={}", m.number())).mode, m);
    }
    assert_eq!(
        error("mode=7"),
        "option mode: invalid value \"7\" (allowed: balance-rr (0), active-backup (1), balance-xor (2), broadcast (3), 802.3ad (4), balance-tlb (5), balance-alb (6))"
    );
    assert!(error("mode=lacp").contains("option mode: invalid value \"lacp\""));
}

#[test]
fn ranges_and_names() {
    assert_eq!(parse("miimon=off").miimon, 0);
    assert_eq!(parse("mode=1 miimon=maxval").miimon, i32::MAX as u32);
    assert_eq!(
        error("miimon=-5"),
        "option miimon: invalid value \"-5\" (allowed: 0 - 2147483647, or off (0))"
    );
    assert_eq!(
        error("miimon=fast"),
        "option miimon: invalid value \"fast\" (allowed: 0 - 2147483647, or off (0))"
    );
    assert!(error("mode=802.3ad ad_actor_sys_prio=0").contains("allowed: 1 - 65535"));
    assert!(error("mode=802.3ad ad_user_port_key=1024").contains("allowed: 0 - 1023"));
    assert!(error("num_grat_arp=256").contains("allowed: 0 - 255"));
    assert!(error("arp_missed_max=0").contains("allowed: 1 - 255"));
    assert_eq!(parse("num_unsol_na=3").num_peer_notif, 3);
    assert_eq!(parse("num_grat_arp=4").num_peer_notif, 4);
}

#[test]
fn unknown_options_suggest_the_nearest() {
    assert_eq!(
        error("mimon=100"),
        "unknown option \"mimon\" (did you mean \"miimon\"?)"
    );
    assert_eq!(
        error("xmit-hash-policy=layer3+4"),
        "unknown option \"xmit-hash-policy\" (did you mean \"xmit_hash_policy\"?)"
    );
    assert_eq!(
        error("lacp-rate=fast"),
        "unknown option \"lacp-rate\" (did you mean \"lacp_rate\"?)"
    );
    assert_eq!(error("frobnicate=1"), "unknown option \"frobnicate\"");
    assert_eq!(error("miimon"), "expected key=value, got \"miimon\"");
}

#[test]
fn options_refused_outside_their_modes() {
    assert_eq!(
        error("mode=802.3ad,arp_interval=100,arp_ip_target=10.0.0.1"),
        "option arp_interval=100: not supported in mode 802.3ad (allowed in: balance-rr, active-backup, balance-xor, broadcast)"
    );
    assert_eq!(
        error("mode=balance-xor,lacp_rate=fast"),
        "option lacp_rate=fast: not supported in mode balance-xor (allowed in: 802.3ad)"
    );
    assert!(error("mode=balance-xor primary=eth0")
        .contains("allowed in: active-backup, balance-tlb, balance-alb"));
    assert!(error("mode=active-backup packets_per_slave=2").contains("allowed in: balance-rr"));
    assert!(error("mode=802.3ad tlb_dynamic_lb=0").contains("allowed in: balance-tlb, balance-alb"));
    assert!(
        error("mode=balance-tlb arp_validate=all").contains("not supported in mode balance-tlb")
    );
    // Order does not matter: the mode may come last.
    assert_eq!(
        parse("lacp_rate=fast,mode=802.3ad").lacp_rate,
        LacpRate::Fast
    );
}

#[test]
fn delays_need_miimon_and_round_to_it() {
    assert_eq!(
        error("mode=active-backup,updelay=200"),
        "option updelay=200: requires miimon (MII monitoring is disabled)"
    );
    assert!(error("mode=1 downdelay=100").starts_with("option downdelay=100: requires miimon"));
    let (o, w) = BondOptions::parse("mode=1 miimon=100 updelay=250 downdelay=200").unwrap();
    assert_eq!((o.updelay, o.downdelay), (200, 200));
    assert!(
        w.iter()
            .any(|w| w.0
                == "updelay (250) is not a multiple of miimon (100), value rounded to 200 ms")
    );
}

#[test]
fn monitoring_rules() {
    assert_eq!(
        error("mode=1 miimon=100 arp_interval=200 arp_ip_target=10.0.0.1"),
        "option arp_interval=200: cannot be used together with miimon=100: choose MII (link) or ARP monitoring"
    );
    assert_eq!(
        error("mode=1 arp_interval=200"),
        "option arp_interval=200: needs at least one arp_ip_target (or ns_ip6_target) to probe"
    );
    // 802.3ad, tlb and alb get miimon=100 when it is not set, as the kernel forces.
    for mode in ["802.3ad", "balance-tlb", "balance-alb"] {
        assert_eq!(parse(&format!("mode={mode}")).miimon, 100);
    }
    assert!(warnings("mode=802.3ad miimon=0")
        .iter()
        .any(|w| w.starts_with("miimon=0 is not allowed in mode 802.3ad")));
    assert!(warnings("mode=active-backup")
        .iter()
        .any(|w| w.contains("no failover")));
    assert!(!warnings("mode=active-backup miimon=100")
        .iter()
        .any(|w| w.contains("no failover")));
}

#[test]
fn arp_targets() {
    let o = parse("mode=1 arp_interval=100 arp_ip_target=10.0.0.1,10.0.0.2 arp_validate=all arp_all_targets=all");
    assert_eq!(
        o.arp_ip_target,
        [
            "10.0.0.1".parse::<Ipv4Addr>().unwrap(),
            "10.0.0.2".parse().unwrap()
        ]
    );
    assert_eq!(o.arp_validate, ArpValidate::All);
    assert_eq!(o.arp_all_targets, ArpAllTargets::All);
    // Space-separated list continuation and the sysfs +/- form.
    let o =
        parse("mode=1 arp_interval=100 arp_ip_target=10.0.0.1 10.0.0.2 arp_ip_target=-10.0.0.1");
    assert_eq!(o.arp_ip_target, ["10.0.0.2".parse::<Ipv4Addr>().unwrap()]);
    assert!(error("arp_ip_target=10.0.0.1,10.0.0.1").contains("target 10.0.0.1 is already present"));
    assert!(error("arp_ip_target=0.0.0.0").contains("unicast IPv4"));
    assert!(error("arp_ip_target=10.0.0").contains("n.n.n.n"));
    let many: Vec<String> = (1..=17).map(|i| format!("10.0.0.{i}")).collect();
    assert!(error(&format!(
        "mode=1 arp_interval=100 arp_ip_target={}",
        many.join(",")
    ))
    .contains("at most 16 targets, got 17"));
    for v in ArpValidate::VALUES {
        parse(&format!(
            "mode=1 arp_interval=100 arp_ip_target=10.0.0.1 arp_validate={}",
            v.0
        ));
    }
    let o = parse("mode=1 arp_interval=100 ns_ip6_target=2001:db8::1");
    assert_eq!(o.ns_ip6_target.len(), 1);
    assert!(error("ns_ip6_target=ff02::1").contains("unicast IPv6"));
}

#[test]
fn active_backup_options() {
    let o = parse("mode=active-backup,miimon=100,primary=eth1,primary_reselect=better,fail_over_mac=active,num_grat_arp=3,peer_notif_delay=200,prio=eth0:10,prio=eth1:-5");
    assert_eq!(o.primary.as_deref(), Some("eth1"));
    assert_eq!(o.primary_reselect, PrimaryReselect::Better);
    assert_eq!(o.fail_over_mac, FailOverMac::Active);
    assert_eq!(o.num_peer_notif, 3);
    assert_eq!(o.prio.get("eth0"), Some(&10));
    assert_eq!(o.prio.get("eth1"), Some(&-5));
    assert!(error("mode=1 prio=eth0").contains("IFACE:N"));
    assert!(error("primary=this-name-is-far-too-long").contains("at most 15 characters"));
    let members = vec!["eth0".to_string(), "eth1".to_string()];
    assert!(o.check_members(&members).is_ok());
    let o = parse("mode=1 miimon=100 primary=eth9");
    assert_eq!(
        o.check_members(&members).unwrap_err().to_string(),
        "option primary=eth9: eth9 is not a member of the bond (members: eth0, eth1)"
    );
}

#[test]
fn lacp_options() {
    let o = parse("mode=802.3ad lacp_rate=fast lacp_active=off ad_select=bandwidth ad_actor_sys_prio=100 ad_actor_system=02:11:22:33:44:55 ad_user_port_key=7 min_links=2");
    assert!(!o.lacp_active);
    assert_eq!(o.ad_select, AdSelect::Bandwidth);
    assert_eq!(o.ad_actor_sys_prio, 100);
    assert_eq!(o.ad_actor_system.unwrap().to_string(), "02:11:22:33:44:55");
    assert_eq!(o.ad_user_port_key, 7);
    assert_eq!(o.min_links, 2);
    assert!(error("mode=4 ad_actor_system=01:00:5e:00:00:01").contains("unicast MAC"));
    assert!(o.check_members(&["a".into()]).unwrap()[0]
        .0
        .contains("never have carrier"));
}

#[test]
fn pain_points_are_warned() {
    assert!(warnings("mode=802.3ad")
        .iter()
        .any(|w| w.contains("layer2 (the default) in 802.3ad")));
    assert!(warnings("mode=balance-xor xmit_hash_policy=layer2")
        .iter()
        .any(|w| w.contains("single member")));
    assert!(
        !warnings("mode=balance-xor xmit_hash_policy=layer3+4 miimon=100")
            .iter()
            .any(|w| w.contains("single member"))
    );
    assert!(warnings("mode=balance-rr miimon=100")
        .iter()
        .any(|w| w.contains("out of order")));
}

#[test]
fn canonical_string_round_trips() {
    for s in [
        "mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4,min_links=1",
        "mode=active-backup,miimon=50,updelay=100,primary=eth1,prio=eth0:3,arp_all_targets=all",
        "mode=balance-rr,arp_interval=100,arp_ip_target=10.0.0.1,arp_ip_target=10.0.0.2,packets_per_slave=3",
    ] {
        let o = parse(s);
        assert_eq!(parse(&o.to_option_string()), o, "{s} -> {}", o.to_option_string());
    }
}

#[test]
fn a_target_list_with_a_bad_item_changes_nothing() {
    let mut o = parse("mode=1 arp_interval=100 arp_ip_target=10.0.0.1");
    let before = o.arp_ip_target.clone();
    assert!(o.set("arp_ip_target", "+10.0.0.2,+not-an-address").is_err());
    assert!(o.set("arp_ip_target", "+10.0.0.3,-10.0.0.9").is_err());
    assert_eq!(o.arp_ip_target, before, "all or nothing");
    o.set("arp_ip_target", "+10.0.0.2,-10.0.0.1").unwrap();
    assert_eq!(o.arp_ip_target, ["10.0.0.2".parse::<Ipv4Addr>().unwrap()]);
    // Interface names follow the kernel's rule; empty clears.
    assert!(o.set("primary", "a/b").is_err());
    assert!(o.set("primary", "sixteen-chars-xx").is_err());
    o.set("primary", "eth0").unwrap();
    o.set("primary", "").unwrap();
    assert_eq!(o.primary, None);
}
