//! Transmit selection against literal frames and the member the kernel's formulas give.
//!
//! Frames: dst 02:00:00:00:00:02, src 02:00:00:00:00:01; IPv4 192.168.1.10 -> 192.168.1.20,
//! TCP 12345 -> 80; IPv6 2001:db8::1 -> 2001:db8::2, UDP 54321 -> 1234. Worked by hand for
//! `v4_tcp` (x86, addresses and ports loaded little-endian as the kernel does):
//!   eth_hash  = 0x02 ^ 0x01 ^ 0x0800                          = 0x00000803
//!   saddr     = c0 a8 01 0a -> 0x0a01a8c0, daddr -> 0x1401a8c0, xor = 0x1e000000
//!   layer2+3: h = 0x803 ^ 0x1e000000 = 0x1e000803; h ^= h>>16 -> 0x1e001603;
//!             h ^= h>>8 -> 0x1e1e1615                          = 0x1e1e1615 (% 3 = 1)
//!   layer3+4: seed = 30 39 00 50 -> 0x50003930; h = 0x4e003930; h ^= h>>16 -> 0x4e007730;
//!             h ^= h>>8 -> 0x4e4e7747; h >> 1                  = 0x27273ba3 (% 3 = 0)
//!   IPv4 fragment, layer3+4: seed 0; h = 0x1e000000 -> 0x1e001e00 -> 0x1e1e1e1e; >>1 = 0x0f0f0f0f
//!   ICMP echo id 0x1234: seed = 8 | 0 << 8 | 0x1234 << 16 = 0x12340008 -> 0x061c1c18
//!   vlan+srcmac, tag TCI 0x2064: 0x2064 ^ 0x020000 ^ 0x000001  = 0x00022065
//! ICMP errors hash as the packet they carry (`icmp_unreach` == `v4_tcp` under layer3+4), a cut
//! embedded header falls back to eth_hash; IPv6 with an extension header has no ports under
//! layer3+4 but encap3+4 walks it; GRE/IPIP/VXLAN hash by the outer header except under encap.

use super::*;
use crate::wire::from_hex;

const FRAMES: &[(&str, &str)] = &[
    ("v4_tcp", "0200000000020200000000010800450000280000000040060000c0a8010ac0a801143039005000000000000000000000000000000000"),
    ("v4_tcp_dot1q", "020000000002020000000001810020640800450000280000000040060000c0a8010ac0a801143039005000000000000000000000000000000000"),
    ("v4_tcp_qinq", "02000000000202000000000188a8000a810000140800450000280000000040060000c0a8010ac0a801143039005000000000000000000000000000000000"),
    ("v6_udp", "02000000000202000000000186dd600000000008114020010db800000000000000000000000120010db8000000000000000000000002d43104d200080000"),
    ("v6_udp_dot1q", "0200000000020200000000018100006486dd600000000008114020010db800000000000000000000000120010db8000000000000000000000002d43104d200080000"),
    ("v4_udp_mf", "02000000000202000000000108004500001c0000200040110000c0a8010ac0a80114d43104d200080000"),
    ("v4_udp_offset", "02000000000202000000000108004500001c000000b940110000c0a8010ac0a80114d43104d200080000"),
    ("v4_options", "02000000000202000000000108004600002c0000000040060000c0a8010ac0a80114010101003039005000000000000000000000000000000000"),
    ("arp", "ffffffffffff02000000000108060001080006040001020000000001c0a8010a000000000000c0a80114"),
    ("icmp_echo", "0200000000020200000000010800450000240000000040010000c0a8010ac0a8011408000000123400010000000000000000"),
    ("icmp_echo_id0", "02000000000202000000000108004500001c0000000040010000c0a8010ac0a801140800000000000001"),
    ("icmp_unreach", "02000000000202000000000108004500003800000000400100000a090909c0a801140303000000000000450000280000000040060000c0a8010ac0a801143039005000000000"),
    ("icmp_unreach_cut", "02000000000202000000000108004500002800000000400100000a090909c0a801140303000000000000450000280000000040060000"),
    ("icmpv6_echo", "02000000000202000000000186dd6000000000083a4020010db800000000000000000000000120010db800000000000000000000000280000000abcd0001"),
    ("v6_hopbyhop_udp", "02000000000202000000000186dd600000000010004020010db800000000000000000000000120010db80000000000000000000000021100010400000000d43104d200080000"),
    ("v4_truncated", "0200000000020200000000010800450000280000000040060000c0a8010a"),
    ("v4_esp", "02000000000202000000000108004500001c0000000040320000c0a8010ac0a80114deadbeef00000001"),
    ("v4_ah", "0200000000020200000000010800450000200000000040330000c0a8010ac0a8011432040000cafef00d00000001"),
    ("gre_v4_tcp", "02000000000202000000000108004500004000000000402f00000a0000010a00000200000800450000280000000040060000ac100001ac1000023039005000000000000000000000000000000000"),
    ("ipip_tcp", "02000000000202000000000108004500003c00000000400400000a0000010a000002450000280000000040060000ac100001ac1000023039005000000000000000000000000000000000"),
    ("vxlan_tcp", "02000000000202000000000108004500005a00000000401100000a0000010a000002c00012b50046000008000000000064000a00000000010a00000000020800450000280000000040060000ac100001ac1000023039005000000000000000000000000000000000"),
    ("short", "0200000000020200000000"),
];

/// (frame, policy, kernel hash, member of 3)
const EXPECTED: &[(&str, &str, u32, usize)] = &[
    ("v4_tcp", "layer2", 0x00000803, 2),
    ("v4_tcp", "layer2+3", 0x1e1e1615, 1),
    ("v4_tcp", "layer3+4", 0x27273ba3, 0),
    ("v4_tcp", "encap2+3", 0x1e1e1615, 1),
    ("v4_tcp", "encap3+4", 0x27273ba3, 0),
    ("v4_tcp", "vlan+srcmac", 0x00020001, 0),
    ("v4_tcp_dot1q", "layer2", 0x00000803, 2),
    ("v4_tcp_dot1q", "layer2+3", 0x1e1e1615, 1),
    ("v4_tcp_dot1q", "layer3+4", 0x27273ba3, 0),
    ("v4_tcp_dot1q", "encap2+3", 0x1e1e1615, 1),
    ("v4_tcp_dot1q", "encap3+4", 0x27273ba3, 0),
    ("v4_tcp_dot1q", "vlan+srcmac", 0x00022065, 0),
    ("v4_tcp_qinq", "layer2", 0x00000803, 2),
    ("v4_tcp_qinq", "layer2+3", 0x1e1e1615, 1),
    ("v4_tcp_qinq", "layer3+4", 0x27273ba3, 0),
    ("v4_tcp_qinq", "encap2+3", 0x1e1e1615, 1),
    ("v4_tcp_qinq", "encap3+4", 0x27273ba3, 0),
    ("v4_tcp_qinq", "vlan+srcmac", 0x0002000b, 1),
    ("v6_udp", "layer2", 0x000086de, 2),
    ("v6_udp", "layer2+3", 0x0303855b, 2),
    ("v6_udp", "layer3+4", 0x68eaf218, 1),
    ("v6_udp", "encap2+3", 0x0303855b, 2),
    ("v6_udp", "encap3+4", 0x68eaf218, 1),
    ("v6_udp", "vlan+srcmac", 0x00020001, 0),
    ("v6_udp_dot1q", "layer2", 0x000086de, 2),
    ("v6_udp_dot1q", "layer2+3", 0x0303855b, 2),
    ("v6_udp_dot1q", "layer3+4", 0x68eaf218, 1),
    ("v6_udp_dot1q", "encap2+3", 0x0303855b, 2),
    ("v6_udp_dot1q", "encap3+4", 0x68eaf218, 1),
    ("v6_udp_dot1q", "vlan+srcmac", 0x00020065, 1),
    ("v4_udp_mf", "layer2", 0x00000803, 2),
    ("v4_udp_mf", "layer2+3", 0x1e1e1615, 1),
    ("v4_udp_mf", "layer3+4", 0x0f0f0f0f, 0),
    ("v4_udp_mf", "encap2+3", 0x1e1e1615, 1),
    ("v4_udp_mf", "encap3+4", 0x0f0f0f0f, 0),
    ("v4_udp_mf", "vlan+srcmac", 0x00020001, 0),
    ("v4_udp_offset", "layer2", 0x00000803, 2),
    ("v4_udp_offset", "layer2+3", 0x1e1e1615, 1),
    ("v4_udp_offset", "layer3+4", 0x0f0f0f0f, 0),
    ("v4_udp_offset", "encap2+3", 0x1e1e1615, 1),
    ("v4_udp_offset", "encap3+4", 0x0f0f0f0f, 0),
    ("v4_udp_offset", "vlan+srcmac", 0x00020001, 0),
    ("v4_options", "layer2", 0x00000803, 2),
    ("v4_options", "layer2+3", 0x1e1e1615, 1),
    ("v4_options", "layer3+4", 0x27273ba3, 0),
    ("v4_options", "encap2+3", 0x1e1e1615, 1),
    ("v4_options", "encap3+4", 0x27273ba3, 0),
    ("v4_options", "vlan+srcmac", 0x00020001, 0),
    ("arp", "layer2", 0x000008f8, 1),
    ("arp", "layer2+3", 0x000008f8, 1),
    ("arp", "layer3+4", 0x000008f8, 1),
    ("arp", "encap2+3", 0x000008f8, 1),
    ("arp", "encap3+4", 0x000008f8, 1),
    ("arp", "vlan+srcmac", 0x00020001, 0),
    ("icmp_echo", "layer2", 0x00000803, 2),
    ("icmp_echo", "layer2+3", 0x1e1e1615, 1),
    ("icmp_echo", "layer3+4", 0x061c1c18, 2),
    ("icmp_echo", "encap2+3", 0x1e1e1615, 1),
    ("icmp_echo", "encap3+4", 0x061c1c18, 2),
    ("icmp_echo", "vlan+srcmac", 0x00020001, 0),
    ("icmp_echo_id0", "layer2", 0x00000803, 2),
    ("icmp_echo_id0", "layer2+3", 0x1e1e1615, 1),
    ("icmp_echo_id0", "layer3+4", 0x0f0f8f8b, 0),
    ("icmp_echo_id0", "encap2+3", 0x1e1e1615, 1),
    ("icmp_echo_id0", "encap3+4", 0x0f0f8f8b, 0),
    ("icmp_echo_id0", "vlan+srcmac", 0x00020001, 0),
    ("icmp_unreach", "layer2", 0x00000803, 2),
    ("icmp_unreach", "layer2+3", 0x1e1e1615, 1),
    ("icmp_unreach", "layer3+4", 0x27273ba3, 0),
    ("icmp_unreach", "encap2+3", 0x1d15bc75, 1),
    ("icmp_unreach", "encap3+4", 0x0e8ada3f, 1),
    ("icmp_unreach", "vlan+srcmac", 0x00020001, 0),
    ("icmp_unreach_cut", "layer2", 0x00000803, 2),
    ("icmp_unreach_cut", "layer2+3", 0x00000803, 2),
    ("icmp_unreach_cut", "layer3+4", 0x00000803, 2),
    ("icmp_unreach_cut", "encap2+3", 0x1d15bc75, 1),
    ("icmp_unreach_cut", "encap3+4", 0x0e8ada3f, 1),
    ("icmp_unreach_cut", "vlan+srcmac", 0x00020001, 0),
    ("icmpv6_echo", "layer2", 0x000086de, 2),
    ("icmpv6_echo", "layer2+3", 0x0303855b, 2),
    ("icmpv6_echo", "layer3+4", 0x5432b2f2, 2),
    ("icmpv6_echo", "encap2+3", 0x0303855b, 2),
    ("icmpv6_echo", "encap3+4", 0x5432b2f2, 2),
    ("icmpv6_echo", "vlan+srcmac", 0x00020001, 0),
    ("v6_hopbyhop_udp", "layer2", 0x000086de, 2),
    ("v6_hopbyhop_udp", "layer2+3", 0x0303855b, 2),
    ("v6_hopbyhop_udp", "layer3+4", 0x01818181, 1),
    ("v6_hopbyhop_udp", "encap2+3", 0x0303855b, 2),
    ("v6_hopbyhop_udp", "encap3+4", 0x68eaf218, 1),
    ("v6_hopbyhop_udp", "vlan+srcmac", 0x00020001, 0),
    ("v4_truncated", "layer2", 0x00000803, 2),
    ("v4_truncated", "layer2+3", 0x00000803, 2),
    ("v4_truncated", "layer3+4", 0x00000803, 2),
    ("v4_truncated", "encap2+3", 0x00000803, 2),
    ("v4_truncated", "encap3+4", 0x00000803, 2),
    ("v4_truncated", "vlan+srcmac", 0x00020001, 0),
    ("v4_esp", "layer2", 0x00000803, 2),
    ("v4_esp", "layer2+3", 0x1e1e1615, 1),
    ("v4_esp", "layer3+4", 0x78a7f11e, 0),
    ("v4_esp", "encap2+3", 0x1e1e1615, 1),
    ("v4_esp", "encap3+4", 0x78a7f11e, 0),
    ("v4_esp", "vlan+srcmac", 0x00020001, 0),
    ("v4_ah", "layer2", 0x00000803, 2),
    ("v4_ah", "layer2+3", 0x1e1e1615, 1),
    ("v4_ah", "layer3+4", 0x09f18eeb, 0),
    ("v4_ah", "encap2+3", 0x1e1e1615, 1),
    ("v4_ah", "encap3+4", 0x09f18eeb, 0),
    ("v4_ah", "vlan+srcmac", 0x00020001, 0),
    ("gre_v4_tcp", "layer2", 0x00000803, 2),
    ("gre_v4_tcp", "layer2+3", 0x03030b08, 1),
    ("gre_v4_tcp", "layer3+4", 0x01818181, 1),
    ("gre_v4_tcp", "encap2+3", 0x03030b08, 1),
    ("gre_v4_tcp", "encap3+4", 0x29a9b52d, 1),
    ("gre_v4_tcp", "vlan+srcmac", 0x00020001, 0),
    ("ipip_tcp", "layer2", 0x00000803, 2),
    ("ipip_tcp", "layer2+3", 0x03030b08, 1),
    ("ipip_tcp", "layer3+4", 0x01818181, 1),
    ("ipip_tcp", "encap2+3", 0x03030b08, 1),
    ("ipip_tcp", "encap3+4", 0x29a9b52d, 1),
    ("ipip_tcp", "vlan+srcmac", 0x00020001, 0),
    ("vxlan_tcp", "layer2", 0x00000803, 2),
    ("vxlan_tcp", "layer2+3", 0x03030b08, 1),
    ("vxlan_tcp", "layer3+4", 0x5b525232, 2),
    ("vxlan_tcp", "encap2+3", 0x03030b08, 1),
    ("vxlan_tcp", "encap3+4", 0x29a9b52d, 1),
    ("vxlan_tcp", "vlan+srcmac", 0x00020001, 0),
    ("short", "layer2", 0x00000000, 0),
    ("short", "layer2+3", 0x00000000, 0),
    ("short", "layer3+4", 0x00000000, 0),
    ("short", "encap2+3", 0x00000000, 0),
    ("short", "encap3+4", 0x00000000, 0),
    ("short", "vlan+srcmac", 0x00000000, 0),
];

fn frame(name: &str) -> Vec<u8> {
    let hex = FRAMES.iter().find(|(n, _)| *n == name).unwrap().1;
    from_hex(hex).unwrap()
}

#[test]
fn every_policy_matches_the_kernel_formula() {
    let snap = TxSnapshot::all_up(3);
    for &(name, policy, hash, member) in EXPECTED {
        let policy = HashPolicy::from_name(policy).unwrap();
        let f = frame(name);
        assert_eq!(policy.hash(&f), hash, "{name} under {policy}");
        let mut xor = TxSelector::new(Mode::BalanceXor, policy, 1, true, 1);
        assert_eq!(
            xor.select(&f, &snap).member(),
            Some(member),
            "{name} under {policy}"
        );
    }
}

#[test]
fn tags_do_not_change_the_flow_hash() {
    for policy in [HashPolicy::Layer2, HashPolicy::Layer23, HashPolicy::Layer34] {
        let plain = policy.hash(&frame("v4_tcp"));
        assert_eq!(plain, policy.hash(&frame("v4_tcp_dot1q")));
        assert_eq!(plain, policy.hash(&frame("v4_tcp_qinq")));
        assert_eq!(
            policy.hash(&frame("v6_udp")),
            policy.hash(&frame("v6_udp_dot1q"))
        );
    }
    // vlan+srcmac is the one that sees the tag.
    assert_ne!(
        HashPolicy::VlanSrcMac.hash(&frame("v4_tcp")),
        HashPolicy::VlanSrcMac.hash(&frame("v4_tcp_dot1q"))
    );
}

#[test]
fn names_and_numbers_round_trip() {
    for p in HashPolicy::ALL {
        assert_eq!(HashPolicy::from_name(p.name()), Some(p));
        assert_eq!(HashPolicy::from_number(p.number()), Some(p));
    }
    assert_eq!(HashPolicy::Layer23.number(), 2);
    assert_eq!(HashPolicy::VlanSrcMac.number(), 5);
    for m in Mode::ALL {
        assert_eq!(Mode::from_name(m.name()), Some(m));
        assert_eq!(Mode::from_number(m.number()), Some(m));
    }
}

fn snapshot(up: &[bool], active: Option<MemberId>) -> TxSnapshot {
    let members = up
        .iter()
        .enumerate()
        .map(|(i, &can_tx)| MemberTx {
            mac: MacAddr([2, 0, 0, 0, 1, i as u8]),
            speed_mbps: 10_000,
            can_tx,
            max_frame: u32::MAX,
        })
        .collect();
    TxSnapshot::new(members, active, MacAddr([2, 0, 0, 0, 0, 0xb0]))
}

use crate::wire::MacAddr;

fn members(sel: &mut TxSelector, f: &[u8], snap: &TxSnapshot, n: usize) -> Vec<MemberId> {
    (0..n)
        .map(|_| sel.select(f, snap).member().unwrap())
        .collect()
}

#[test]
fn round_robin_counts_like_the_kernel() {
    let f = frame("v4_tcp");
    let snap = snapshot(&[true, true, true], Some(0));
    // The kernel's counter is incremented before use: the first frame goes to member 1.
    let mut rr = TxSelector::new(Mode::BalanceRr, HashPolicy::Layer2, 1, true, 1);
    assert_eq!(members(&mut rr, &f, &snap, 6), [1, 2, 0, 1, 2, 0]);
    // packets_per_slave=2: counter / 2.
    let mut rr = TxSelector::new(Mode::BalanceRr, HashPolicy::Layer2, 2, true, 1);
    assert_eq!(members(&mut rr, &f, &snap, 6), [0, 1, 1, 2, 2, 0]);
    // A member that cannot send passes its turn to the next one that can.
    let snap = snapshot(&[true, false, true], Some(0));
    let mut rr = TxSelector::new(Mode::BalanceRr, HashPolicy::Layer2, 1, true, 1);
    assert_eq!(members(&mut rr, &f, &snap, 6), [2, 2, 0, 2, 2, 0]);
}

#[test]
fn round_robin_random_uses_every_member() {
    let f = frame("v4_tcp");
    let snap = snapshot(&[true, true, true, true], Some(0));
    let mut rr = TxSelector::new(Mode::BalanceRr, HashPolicy::Layer2, 0, true, 42);
    let mut seen = [0usize; 4];
    for m in members(&mut rr, &f, &snap, 4000) {
        seen[m] += 1;
    }
    assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
}

#[test]
fn round_robin_sends_igmp_out_of_the_active_member() {
    let mut igmp = frame("v4_tcp");
    igmp[14 + 9] = 2;
    let snap = snapshot(&[true, true, true], Some(2));
    let mut rr = TxSelector::new(Mode::BalanceRr, HashPolicy::Layer2, 1, true, 1);
    assert_eq!(members(&mut rr, &igmp, &snap, 3), [2, 2, 2]);
}

#[test]
fn active_backup_uses_the_active_member_only() {
    let f = frame("v4_tcp");
    let mut ab = TxSelector::new(Mode::ActiveBackup, HashPolicy::Layer2, 1, true, 1);
    assert_eq!(
        ab.select(&f, &snapshot(&[true, true], Some(1))).member(),
        Some(1)
    );
    assert_eq!(
        ab.select(&f, &snapshot(&[false, false], None)),
        Decision::Drop
    );
}

#[test]
fn xor_hashes_over_usable_members_in_order() {
    let f = frame("v4_tcp");
    // layer3+4 hash 0x27273ba3: over 3 members -> 0; with member 0 down, over [1, 2] -> 2.
    let mut xor = TxSelector::new(Mode::BalanceXor, HashPolicy::Layer34, 1, true, 1);
    assert_eq!(
        xor.select(&f, &snapshot(&[true, true, true], None))
            .member(),
        Some(0)
    );
    assert_eq!(0x27273ba3u32 % 2, 1);
    assert_eq!(
        xor.select(&f, &snapshot(&[false, true, true], None))
            .member(),
        Some(2)
    );
    assert_eq!(
        xor.select(&f, &snapshot(&[false, false, false], None)),
        Decision::Drop
    );
}

#[test]
fn lacp_hashes_over_the_distributing_members() {
    // In 802.3ad the snapshot's "can transmit" means distributing in the active aggregator.
    let f = frame("v4_tcp");
    let mut lacp = TxSelector::new(Mode::Lacp, HashPolicy::Layer34, 1, true, 1);
    assert_eq!(
        lacp.select(&f, &snapshot(&[true, false, true], None))
            .member(),
        Some(2)
    );
}

#[test]
fn broadcast_goes_everywhere_usable() {
    let f = frame("arp");
    let mut b = TxSelector::new(Mode::Broadcast, HashPolicy::Layer2, 1, true, 1);
    assert_eq!(
        b.select(&f, &snapshot(&[true, false], None)),
        Decision::AllUsable
    );
    assert_eq!(
        b.select(&f, &snapshot(&[false, false], None)),
        Decision::Drop
    );
}

#[test]
fn tlb_balances_unicast_ip_and_rewrites_the_source() {
    let snap = snapshot(&[true, true], Some(0));
    // Multicast and non-IP stay on the active member, unmodified.
    let mut tlb = TxSelector::new(Mode::BalanceTlb, HashPolicy::Layer34, 1, true, 1);
    assert_eq!(
        tlb.select(&frame("arp"), &snap),
        Decision::Send {
            member: 0,
            rewrite: Rewrite::None
        }
    );
    // Two flows in different buckets.
    let a = frame("v4_tcp");
    let mut b = a.clone();
    b[14 + 19] = 0x15; // another destination, another bucket
    assert_ne!(
        HashPolicy::Layer34.hash(&a) as u8,
        HashPolicy::Layer34.hash(&b) as u8
    );
    let mut tlb = TxSelector::new(Mode::BalanceTlb, HashPolicy::Layer34, 1, true, 1);
    // A fresh table: equal gaps, the first member wins; flow a is heavy.
    for _ in 0..100 {
        assert_eq!(
            tlb.select(&a, &snap),
            Decision::Send {
                member: 0,
                rewrite: Rewrite::None
            }
        );
    }
    // Load is learned at the rebalance: a re-learns member 0 and carries its history there,
    // so the next new bucket goes to member 1, which sends with its own source MAC.
    if let TxSelector::Tlb(t) = &mut tlb {
        t.table.rebalance(Some(0));
    }
    assert_eq!(tlb.select(&a, &snap).member(), Some(0));
    assert_eq!(
        tlb.select(&b, &snap),
        Decision::Send {
            member: 1,
            rewrite: Rewrite::SourceMac
        }
    );
}

#[test]
fn tlb_static_uses_the_hash_modulo() {
    let f = frame("v4_tcp");
    let snap = snapshot(&[true, true, true], Some(1));
    let mut tlb = TxSelector::new(Mode::BalanceTlb, HashPolicy::Layer34, 1, false, 1);
    // 0x27273ba3 % 3 = 0, not the active member: source rewritten.
    assert_eq!(
        tlb.select(&f, &snap),
        Decision::Send {
            member: 0,
            rewrite: Rewrite::SourceMac
        }
    );
}

#[test]
fn alb_teaches_clients_their_member_through_arp_replies() {
    let snap = snapshot(&[true, true], Some(0));
    let mut alb = TxSelector::new(Mode::BalanceAlb, HashPolicy::Layer2, 1, true, 1);
    let reply = |client: u8| {
        let mut f = from_hex(
            "020000000099 0200000000b0 0806 0001080006040002 0200000000b0 c0a8010a 020000000099 c0a80100",
        )
        .unwrap();
        f[41] = client;
        f
    };
    let arp_offset = 14;
    let first = alb.select(&reply(2), &snap);
    let second = alb.select(&reply(3), &snap);
    assert_eq!(
        first,
        Decision::Send {
            member: 0,
            rewrite: Rewrite::ArpSender { arp_offset }
        }
    );
    assert_eq!(
        second,
        Decision::Send {
            member: 1,
            rewrite: Rewrite::ArpSender { arp_offset }
        }
    );
    // An ARP reply that is not the bond's own goes unbalanced out of the active member.
    let mut foreign = reply(4);
    foreign[22..28].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    assert_eq!(
        alb.select(&foreign, &snap),
        Decision::Send {
            member: 0,
            rewrite: Rewrite::None
        }
    );
}

#[test]
fn alb_keeps_broadcast_igmp_and_dad_on_the_active_member() {
    let snap = snapshot(&[true, true], Some(1));
    let mut alb = TxSelector::new(Mode::BalanceAlb, HashPolicy::Layer2, 1, true, 1);
    let mut bcast = frame("v4_tcp");
    bcast[30..34].copy_from_slice(&[255; 4]);
    assert_eq!(alb.select(&bcast, &snap).member(), Some(1));
    let mut dad = frame("v6_udp");
    dad[22..38].fill(0);
    assert_eq!(alb.select(&dad, &snap).member(), Some(1));
}

#[test]
fn nothing_panics_on_any_prefix_or_mutation() {
    let snap = TxSnapshot::all_up(3);
    let mut selectors: Vec<TxSelector> = Mode::ALL
        .iter()
        .flat_map(|&m| HashPolicy::ALL.map(|p| TxSelector::new(m, p, 1, true, 7)))
        .collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for &(_, hex) in FRAMES {
        let base = from_hex(hex).unwrap();
        for cut in 0..=base.len() {
            for sel in &mut selectors {
                sel.select(&base[..cut], &snap);
            }
        }
        for _ in 0..200 {
            let mut f = base.clone();
            for _ in 0..4 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = rng as usize % f.len();
                f[at] = (rng >> 32) as u8;
            }
            for sel in &mut selectors {
                sel.select(&f, &snap);
            }
        }
    }
}
