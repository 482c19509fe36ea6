//! The engine without root: a [`QueueShare`] over [`MemoryPort`]s on a UMEM in memory, for
//! transmit in every mode, broadcast copies, drops by reason, full rings, receive and frame
//! ownership.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::{MemoryPort, QueueShare, SharedCounters, SnapshotCell, WorkerPort, BURST};
use crate::policy::{Decision, HashPolicy, Mode, Rewrite, TxSelector, TxSnapshot};
use crate::wire::checksum::{complete_l4_checksum, fold, pseudo_header, L4Checksum};
use crate::wire::MacAddr;
use crate::xdp::{FrameDesc, PortConfig, UmemArea};

const SEED: u64 = 0x5eed;

/// A share of `members` in-memory member queues with rings of `ring` entries.
struct Rig {
    share: QueueShare<MemoryPort>,
    counters: SharedCounters,
    snapshots: Arc<SnapshotCell>,
}

fn rig(mode: Mode, snap: TxSnapshot, ring: usize, multi_buffer: bool) -> Rig {
    rig_with(mode, snap, ring, multi_buffer, |_| true)
}

/// As `rig`, with a socket only for the members `present` says (the others' devices gone).
fn rig_with(
    mode: Mode,
    snap: TxSnapshot,
    ring: usize,
    multi_buffer: bool,
    present: impl Fn(usize) -> bool,
) -> Rig {
    let cfg = PortConfig {
        frame_count: 512,
        frame_size: 2048,
        ring_size: ring as u32,
        zero_copy: None,
        multi_buffer,
    };
    let (umem, pool) = UmemArea::in_memory(&cfg).unwrap();
    let members = snap.members.len();
    let ports = (0..members)
        .filter(|&m| present(m))
        .map(|m| WorkerPort {
            member: m,
            queue: 0,
            port: MemoryPort::new(&format!("m{m}"), &umem, ring),
        })
        .collect();
    let selector = TxSelector::new(mode, HashPolicy::Layer34, 1, false, SEED);
    let snapshots = Arc::new(SnapshotCell::new(snap));
    let (mut share, counters) =
        QueueShare::new(umem, pool, members, ports, selector, Arc::clone(&snapshots));
    share.refresh();
    Rig {
        share,
        counters,
        snapshots,
    }
}

impl Rig {
    /// `frames` written into the share's own frames, as the host side hands them over.
    fn hold(&mut self, frames: &[Vec<u8>]) -> Vec<FrameDesc> {
        let mut held = Vec::new();
        for f in frames {
            self.share.hold(f, &mut held).unwrap();
        }
        held
    }

    fn sent(&self, port: usize) -> Vec<Vec<u8>> {
        self.share.ports[port].sent()
    }

    /// Sends `frames` through the share, and checks that each went where a selector of the
    /// same settings sends it over `snap`: `port_of[m]` is the port member `m` sends on.
    fn transmit_as_policy_says(
        &mut self,
        mode: Mode,
        snap: &TxSnapshot,
        frames: &[Vec<u8>],
        port_of: &[usize],
    ) {
        let mut reference = TxSelector::new(mode, HashPolicy::Layer34, 1, false, SEED);
        let before: Vec<usize> = port_of.iter().map(|&p| self.sent(p).len()).collect();
        let mut expected = vec![0; port_of.len()];
        for f in frames {
            if let Decision::Send { member, .. } = reference.select(f, snap) {
                expected[member] += 1;
            }
        }
        let held = self.hold(frames);
        self.share.transmit(&held);
        for (m, &p) in port_of.iter().enumerate() {
            assert_eq!(self.sent(p).len() - before[m], expected[m], "member {m}");
        }
    }

    fn queue(&self, port: usize, counter: impl Fn(&super::QueueCounters) -> &AtomicU64) -> u64 {
        counter(&self.counters.queues[port]).load(Relaxed)
    }

    /// Completes every transmission, takes the frames back, and checks that each of the
    /// share's frames is free again.
    fn settle(&mut self) {
        for p in &mut self.share.ports {
            p.complete(usize::MAX);
        }
        self.share.service(&mut []);
        assert_eq!(self.share.frames_held(&[]), self.share.frames_owned());
    }
}

/// A UDP/IPv4 frame 10.0.0.1:`sport` -> 10.0.0.2:80 from the bond's MAC, `len` bytes long.
fn udp(sport: u16, len: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xaa, 2, 0, 0, 0, 0xff, 0, 0x08, 0x00];
    let ip_len = (len - 14) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no checksum
    f.resize(len, 0x5a);
    f
}

fn flows(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| udp(1000 + i as u16 * 7, 100 + i)).collect()
}

#[test]
fn every_mode_sends_each_packet_where_its_policy_says_with_the_rewrite() {
    for mode in Mode::ALL {
        let snap = TxSnapshot::all_up(3);
        let mut r = rig(mode, snap.clone(), 256, false);
        let frames = flows(40);
        // What the policy decides, frame by frame, from a selector of the same settings.
        let mut reference = TxSelector::new(mode, HashPolicy::Layer34, 1, false, SEED);
        let mut expected = vec![Vec::new(); 3];
        for f in &frames {
            match reference.select(f, &snap) {
                Decision::Send { member, rewrite } => {
                    let mut f = f.clone();
                    if rewrite == Rewrite::SourceMac {
                        f[6..12].copy_from_slice(&snap.members[member].mac.0);
                    }
                    expected[member].push(f);
                }
                Decision::AllUsable => expected.iter_mut().for_each(|e| e.push(f.clone())),
                Decision::Drop => {}
            }
        }
        let held = r.hold(&frames);
        r.share.transmit(&held);
        for (m, want) in expected.iter().enumerate() {
            assert_eq!(&r.sent(m), want, "{mode:?}: member {m}");
            let bytes: u64 = want.iter().map(|f| f.len() as u64).sum();
            assert_eq!(r.queue(m, |c| &c.tx_packets), want.len() as u64, "{mode:?}");
            assert_eq!(r.queue(m, |c| &c.tx_bytes), bytes, "{mode:?}");
        }
        let total: usize = expected.iter().map(Vec::len).sum();
        let copies = if mode == Mode::Broadcast { 3 } else { 1 };
        assert_eq!(
            total,
            frames.len() * copies,
            "{mode:?}: every packet went out"
        );
        r.settle();
    }
}

#[test]
fn broadcast_copies_are_frames_of_their_own() {
    let mut r = rig(Mode::Broadcast, TxSnapshot::all_up(2), 64, false);
    let held = r.hold(&flows(4));
    let free_before = r.share.pool.free();
    r.share.transmit(&held);
    assert_eq!(
        r.share.pool.free(),
        free_before - 4,
        "one copy per extra member"
    );
    assert_eq!(r.sent(0), r.sent(1));
    r.settle();
}

#[test]
fn with_no_member_to_take_them_packets_are_dropped_counted_and_kept() {
    let mut snap = TxSnapshot::all_up(2);
    for m in &mut snap.members {
        m.can_tx = false;
    }
    let snap = TxSnapshot::new(snap.members, None, snap.bond_mac);
    let mut r = rig(Mode::BalanceXor, snap, 64, false);
    let held = r.hold(&flows(10));
    r.share.transmit(&held);
    assert_eq!(r.counters.drop_no_member.load(Relaxed), 10);
    assert!(r.sent(0).is_empty() && r.sent(1).is_empty());
    r.settle();
}

#[test]
fn a_member_whose_device_is_gone_drops_as_having_no_member() {
    // Member 1 is in the snapshot but has no socket (its device vanished).
    let mut r = rig_with(
        Mode::ActiveBackup,
        TxSnapshot::new(
            TxSnapshot::all_up(2).members,
            Some(1),
            MacAddr([2, 0, 0, 0, 0xff, 0]),
        ),
        64,
        false,
        |m| m == 0,
    );
    let held = r.hold(&flows(5));
    r.share.transmit(&held);
    assert_eq!(r.counters.drop_no_member.load(Relaxed), 5);
    assert!(r.sent(0).is_empty());
    r.settle();
}

#[test]
fn a_full_tx_ring_takes_what_fits_and_the_rest_is_counted() {
    let mut r = rig(Mode::ActiveBackup, TxSnapshot::all_up(2), 8, false);
    let held = r.hold(&flows(20));
    r.share.transmit(&held);
    assert_eq!(r.sent(0).len(), 8);
    assert_eq!(r.queue(0, |c| &c.tx_packets), 8);
    assert_eq!(r.queue(0, |c| &c.tx_ring_full), 12);
    // Completions make room again.
    r.share.ports[0].complete(8);
    r.share.service(&mut []);
    assert_eq!(r.queue(0, |c| &c.tx_completed), 8);
    let held = r.hold(&flows(3));
    r.share.transmit(&held);
    assert_eq!(r.sent(0).len(), 3);
    r.settle();
}

#[test]
fn a_packet_longer_than_the_members_mtu_is_dropped_as_too_big() {
    let mut snap = TxSnapshot::all_up(1);
    snap.members[0].max_frame = 200;
    let snap = TxSnapshot::new(snap.members, Some(0), snap.bond_mac);
    let mut r = rig(Mode::ActiveBackup, snap, 64, false);
    let held = r.hold(&[udp(1, 150), udp(2, 300), udp(3, 200)]);
    r.share.transmit(&held);
    let lengths: Vec<usize> = r.sent(0).iter().map(Vec::len).collect();
    assert_eq!(lengths, [150, 200]);
    assert_eq!(r.queue(0, |c| &c.tx_too_big), 1);
    r.settle();
}

#[test]
fn a_jumbo_frame_leaves_whole_on_one_member_and_whole_in_every_copy() {
    for mode in [Mode::BalanceXor, Mode::Broadcast] {
        let mut r = rig(mode, TxSnapshot::all_up(2), 64, true);
        let jumbo = udp(9, 9000);
        let held = r.hold(&[jumbo.clone(), udp(10, 64)]);
        assert!(held.len() > 2, "a chain");
        r.share.transmit(&held);
        let all: Vec<Vec<u8>> = (0..2).flat_map(|m| r.sent(m)).collect();
        let jumbos = all.iter().filter(|f| **f == jumbo).count();
        assert_eq!(
            jumbos,
            if mode == Mode::Broadcast { 2 } else { 1 },
            "{mode:?}"
        );
        r.settle();
    }
}

#[test]
fn receive_counts_finishes_partial_checksums_and_gives_the_bond_its_frames() {
    // tlb: member 1 carries a MAC of its own; what is addressed to it is the bond's.
    let snap = TxSnapshot::all_up(2);
    let member_mac = snap.members[1].mac;
    let bond_mac = snap.bond_mac;
    let mut r = rig(Mode::BalanceTlb, snap, 64, false);
    r.share.service(&mut []); // lends frames to receive into
    let mut to_member = udp(5, 120);
    to_member[..6].copy_from_slice(&member_mac.0);
    // A UDP checksum left partial by its sender: the pseudo-header's sum.
    let mut partial = udp(6, 90);
    let udp_len = partial.len() - 34;
    let pseudo = fold(pseudo_header(&partial[14..], true, 17, udp_len));
    partial[40..42].copy_from_slice(&pseudo.to_be_bytes());
    assert!(r.share.ports[1].arrive(&to_member));
    assert!(r.share.ports[1].arrive(&partial));
    let mut out = Vec::new();
    assert_eq!(r.share.recv(1, &mut out, BURST), 2);
    assert_eq!(r.queue(1, |c| &c.rx_packets), 2);
    assert_eq!(r.queue(1, |c| &c.rx_bytes), 210);
    assert_eq!(r.queue(1, |c| &c.rx_checksum_completed), 1);
    assert_eq!(r.share.umem.data(&out[0])[..6], bond_mac.0);
    let mut finished = r.share.umem.data(&out[1]).to_vec();
    assert_eq!(complete_l4_checksum(&mut finished), L4Checksum::Finished);
    out.into_iter().for_each(|d| r.share.pool.put(d));
    r.settle();
}

#[test]
fn arrivals_find_only_the_frames_lent_and_the_rest_are_the_kernels_drops() {
    use super::MemberPort;
    let mut r = rig(Mode::ActiveBackup, TxSnapshot::all_up(1), 4, false);
    r.share.service(&mut []);
    let arrived = (0..10)
        .filter(|&i| r.share.ports[0].arrive(&udp(i, 64)))
        .count();
    assert_eq!(arrived, 4, "the RX ring holds four");
    let mut out = Vec::new();
    assert_eq!(r.share.recv(0, &mut out, BURST), 4);
    // Nothing lent since: the next arrival has no frame to go into.
    assert!(!r.share.ports[0].arrive(&udp(99, 64)));
    let stats = r.share.ports[0].kernel_stats().unwrap();
    assert_eq!(stats.fill_ring_empty, 1);
    out.into_iter().for_each(|d| r.share.pool.put(d));
    r.settle();
}

#[test]
fn a_member_leaves_and_one_joins_with_every_frame_accounted_for() {
    use super::MemberPort;
    let mode = Mode::BalanceXor;
    let mut r = rig(mode, TxSnapshot::all_up(3), 64, false);
    r.share.service(&mut []); // lends each member's fill ring its frames
    let owned = r.share.frames_owned();
    // Member 1 leaves with frames in every place: three received and not read, and of four
    // queued for transmission, one completed.
    for i in 0..3 {
        assert!(r.share.ports[1].arrive(&udp(i, 64)));
    }
    let to_m1: Vec<Vec<u8>> = (0..200u16)
        .map(|i| udp(i, 80))
        .filter(|f| {
            let mut sel = TxSelector::new(mode, HashPolicy::Layer34, 1, false, SEED);
            matches!(
                sel.select(f, &TxSnapshot::all_up(3)),
                Decision::Send { member: 1, .. }
            )
        })
        .take(4)
        .collect();
    let held = r.hold(&to_m1);
    r.share.transmit(&held);
    assert_eq!(r.sent(1).len(), 4);
    r.share.ports[1].complete(1);
    // The socket retires: what the kernel gave back (three received, one completed)
    // returns at once, and the rest (61 lent, three queued) goes with the socket.
    let (counters, retired) = r.share.member_left(1);
    assert_eq!(r.share.frames_owned(), owned - 64);
    assert_eq!(r.share.frames_held(&[]), r.share.frames_owned());
    // Closed away from the share, it gives those back, taken at the next snapshot.
    let [port]: [MemoryPort; 1] = retired.ports.try_into().ok().expect("m1's one socket");
    r.share.frame_returns().give(port.close());
    r.snapshots.nudge();
    r.share.refresh();
    assert_eq!(r.share.frames_owned(), owned);
    assert_eq!(r.share.frames_held(&[]), r.share.frames_owned());
    assert_eq!(counters.queues.len(), 2);
    assert!(r.share.ports[1].census().starts_with("m2"), "m2 moved up");
    assert_eq!(counters.queues[1].member, 1);
    r.counters = counters;

    // The bond without m1: m2 is member 1 now, and sends on what was m2's socket.
    let two = TxSnapshot::all_up(2);
    r.snapshots.publish(two.clone());
    r.share.refresh();
    r.transmit_as_policy_says(mode, &two, &flows(40), &[0, 1]);
    assert_eq!(r.queue(1, |c| &c.tx_packets), r.sent(1).len() as u64);

    // m3 joins after the others.
    let port = MemoryPort::new("m3", &r.share.umem, 64);
    let (counters, retired) = r.share.put_member(2, vec![(0, port)], None);
    assert!(retired.ports.is_empty());
    r.counters = counters;
    let three = TxSnapshot::all_up(3);
    r.snapshots.publish(three.clone());
    r.share.refresh();
    r.transmit_as_policy_says(mode, &three, &flows(40), &[0, 1, 2]);
    assert!(r.share.ports[2].census().starts_with("m3"));
    assert_eq!(r.counters.queues[2].member, 2);

    // m2's device is replaced: its old socket retires (everything it held comes back once
    // closed), and the new one serves member 1.
    r.share.service(&mut []);
    let owned = r.share.frames_owned();
    let port = MemoryPort::new("m2-new", &r.share.umem, 64);
    let (counters, retired) = r.share.put_member(1, vec![(0, port)], None);
    r.counters = counters;
    let [old]: [MemoryPort; 1] = retired.ports.try_into().ok().expect("m2's old socket");
    assert!(old.census().starts_with("m2 "));
    r.share.frame_returns().give(old.close());
    r.snapshots.nudge();
    r.share.refresh();
    assert_eq!(r.share.frames_owned(), owned);
    r.transmit_as_policy_says(mode, &three, &flows(40), &[0, 2, 1]);
    assert!(r.share.ports[2].census().starts_with("m2-new"));
    assert_eq!(r.counters.queues[2].member, 1);
    r.settle();
}
