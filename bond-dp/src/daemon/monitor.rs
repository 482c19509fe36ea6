//! The link monitor's loop: looks at each bond's members as its monitor (MII or ARP) says,
//! feeds what it sees to the pure state in [`Bond`], and carries out what comes back:
//! publishing to the data plane, probes, peer notifications, MAC changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use super::board::{StatusBoard, PUBLISH_EVERY};
use super::requests::bond_status;
use super::{log_event, DaemonError, SharedPlane};
use crate::bond::{Bond, Event, MacPlan};
use crate::config::CarrierWatch;
use crate::dataplane::{DataPlane, DataPlaneError, Joining, Leftovers, Stopped};
use crate::monitor::stall::{TxCounts, TX_STALL};
use crate::monitor::{
    host_addresses, read_ifindex, read_link, read_mac, read_mtu, set_carrier, set_mac, set_mtu,
    AddressEvents, Arrivals, CarrierReader, HostAddress, LinkEvents, PacketSocket, StallWatch,
};
use crate::wire::{arp, ethertype, ndisc, MacAddr};

/// What the monitor keeps per bond.
struct BondWatch<'a> {
    bond: &'a Mutex<Bond>,
    plane: &'a Mutex<Option<DataPlane>>,
    /// The members, in order, as the per-member fields below know them.
    names: Vec<String>,
    /// Per member: its carrier, and a socket for peer notifications.
    carriers: Vec<CarrierReader>,
    sockets: Vec<Option<PacketSocket>>,
    /// The carriers the bond last observed.
    seen: Vec<bool>,
    /// Carrier looked at every 250 µs and on link notifications, not only every miimon.
    fast: bool,
    /// The interface whose addresses peer notifications announce (the TAP).
    host_iface: Option<String>,
    /// Its addresses as last read, for the ARP monitor, and what says they may have changed
    /// (without it, they are read on every ARP interval).
    host_addresses: Option<Vec<HostAddress>>,
    address_events: Option<AddressEvents>,
    /// Frames the data plane had moved at the last look, and until when the bond counts as
    /// busy (the carrier watch looks often only then).
    moved_before: u64,
    busy_until: Duration,
    /// The carrier last given to the TAP.
    host_carrier: Option<bool>,
    /// The TAP's MTU as last seen: a change is passed on to the members.
    host_mtu: Option<u32>,
    next_poll: Duration,
    /// The XDP program's per-member counts at the last ARP interval.
    frames_before: Vec<u64>,
    neighbours_before: Vec<u64>,
    /// The MACs set on the members and the host side.
    macs: MacPlan,
    /// Per member: whether it stopped transmitting, as of the last poll.
    stalls: Vec<StallWatch>,
    stalled: Vec<bool>,
    /// Per member: the device the data plane is attached to (`None`: absent).
    devices: Vec<Option<u32>>,
    /// A data plane stopped to attach to a member's new device, whose start failed: tried
    /// again at every poll until it runs.
    stopped: Option<Stopped>,
    /// A member's new device being set up for the running data plane, away from this
    /// thread (verifying the program for a device takes the kernel tens of milliseconds,
    /// which every bond's monitoring would wait for).
    setting_up: Option<SettingUp>,
    /// Where the bond's record is kept.
    run_dir: PathBuf,
}

impl<'a> BondWatch<'a> {
    fn new(
        bond: &'a Mutex<Bond>,
        plane: &'a Mutex<Option<DataPlane>>,
        run_dir: &Path,
    ) -> BondWatch<'a> {
        let b = bond.lock().expect("bond lock");
        let mut watched = BondWatch {
            bond,
            plane,
            names: Vec::new(),
            carriers: Vec::new(),
            sockets: Vec::new(),
            seen: Vec::new(),
            fast: b.config.options.miimon > 0
                && b.config.engine.carrier_watch == CarrierWatch::Fast,
            host_iface: b.config.tap_name().map(String::from),
            host_addresses: None,
            address_events: b.arp_monitor().and_then(|_| address_events(&b)),
            host_carrier: None,
            moved_before: 0,
            busy_until: Duration::ZERO,
            host_mtu: None,
            next_poll: Duration::ZERO,
            frames_before: Vec::new(),
            neighbours_before: Vec::new(),
            macs: MacPlan {
                members: Vec::new(),
                // The TAP starts with the planned MAC (`DataPlane::start`).
                host: b.macs().host,
            },
            stalls: Vec::new(),
            stalled: Vec::new(),
            devices: Vec::new(),
            stopped: None,
            setting_up: None,
            run_dir: run_dir.to_path_buf(),
        };
        watched.members_changed(&b);
        watched.follow_carrier(&b);
        watched
    }

    /// Follows the bond's member list (at start, and when members joined or left): what is
    /// known of a member that stays, stays.
    fn members_changed(&mut self, b: &Bond) {
        let old = std::mem::take(&mut self.names);
        let kept = |name: &str| old.iter().position(|o| o == name);
        let mut macs = Vec::new();
        let mut sockets = Vec::new();
        for (name, own) in b.permanent_macs() {
            macs.push(kept(name).map_or(own, |i| self.macs.members[i]));
            sockets.push(match kept(name) {
                Some(i) => self.sockets[i].take(),
                None => {
                    // 802.3ad reads the LACPDUs the XDP program passes to the kernel.
                    let socket = if b.runs_lacp() {
                        PacketSocket::open_receiving(name, ethertype::SLOW_PROTOCOLS)
                    } else {
                        PacketSocket::open(name)
                    };
                    socket
                        .map_err(|e| warn!(bond = b.name(), member = name, "no packet socket: {e}"))
                        .ok()
                }
            });
        }
        let n = b.member_count();
        self.names = b.member_names().map(String::from).collect();
        self.carriers = self.names.iter().map(|m| CarrierReader::new(m)).collect();
        self.sockets = sockets;
        self.macs.members = macs;
        self.seen.clear();
        // Arrivals count from the program's counts as they are now (members that stay keep
        // theirs; a rebuilt data plane's program counts from zero).
        let counts = self.with_plane(DataPlane::xdp_live).unwrap_or_default();
        let at = |m: usize| counts.get(m).copied().unwrap_or_default();
        self.frames_before = (0..n).map(|m| at(m).arrived()).collect();
        self.neighbours_before = (0..n).map(|m| at(m).neighbour).collect();
        self.stalls = vec![StallWatch::default(); n];
        self.stalled = vec![false; n];
        self.devices = self
            .with_plane(|p| p.ifindexes.clone())
            .unwrap_or_else(|| b.member_links().map(|(_, l)| Some(l.ifindex)).collect());
    }

    /// Members joined, left or got a new device since the last look: follow the bond's list
    /// and publish it.
    fn follow_membership(&mut self, b: &mut Bond) {
        if b.take_membership_changed() {
            self.members_changed(b);
            self.publish(b);
        }
    }

    /// Members whose device went away or was replaced (deleted and created again, moved to
    /// another namespace and back): a gone one is reported (its carrier is gone too, so the
    /// bond takes it down); a new device of a member's name is attached to, as the member.
    fn follow_devices(&mut self, b: &mut Bond) {
        self.finish_setting_up(b);
        let mut replaced = Vec::new();
        for m in 0..self.names.len() {
            let now = read_ifindex(&self.names[m]).ok();
            if now == self.devices[m] {
                continue;
            }
            let name = self.names[m].clone();
            match now.and_then(|_| read_link(&name).ok()) {
                None => warn!(
                    bond = b.name(),
                    member = %name,
                    "the member's device is gone: it counts as down until a device of that name appears"
                ),
                Some(facts) => {
                    info!(
                        bond = b.name(),
                        member = %name,
                        ifindex = facts.ifindex,
                        mac = %facts.mac,
                        "a device of the member's name appeared: attaching to it"
                    );
                    b.member_replaced(m, facts);
                    replaced.push((m, name));
                    // Its packet socket and what it carries start afresh.
                    self.names[m].clear();
                }
            }
            self.devices[m] = now;
        }
        let in_place = match replaced.as_slice() {
            [(m, name)] if self.stopped.is_none() => self.set_up_in_place(b, *m, name),
            _ => false,
        };
        if (!replaced.is_empty() && !in_place) || self.stopped.is_some() {
            self.restart_plane(b);
        }
        if !replaced.is_empty() {
            super::takeover::save(b, &self.run_dir);
        }
        self.follow_host_mtu(b);
        self.follow_macs_and_mtus(b);
    }

    /// A member's MAC changed from outside is put back (a NIC filters other addresses, so
    /// the member would stop receiving the bond's frames); an MTU changed from outside is
    /// kept, as the kernel keeps it, and frames too long for it are dropped and counted.
    fn follow_macs_and_mtus(&mut self, b: &mut Bond) {
        for m in 0..self.names.len() {
            if self.devices[m].is_none() || self.names[m].is_empty() {
                continue;
            }
            let name = self.names[m].clone();
            if let Ok(mac) = read_mac(&name) {
                let planned = self.macs.members[m];
                if mac != planned {
                    warn!(
                        bond = b.name(),
                        member = %name,
                        "its MAC was changed from outside to {mac}: putting back {planned}"
                    );
                    if let Err(e) = set_mac(&name, planned) {
                        warn!(bond = b.name(), member = %name, "putting back {planned}: {e}");
                        self.macs.members[m] = mac;
                    }
                }
            }
            let Ok(mtu) = read_mtu(&name) else { continue };
            if let Some(old) = b.update_mtu(m, mtu) {
                let max = b.config.max_mtu();
                warn!(
                    bond = b.name(),
                    member = %name,
                    "MTU changed from {old} to {mtu}: kept; frames longer than it allows are \
                     dropped and counted (tx_too_big){}",
                    if mtu > max {
                        format!("; the engine carries frames up to MTU {max} only")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }

    /// `ip link set bond0 mtu N` on the TAP reaches every member, as the kernel's bond passes
    /// its MTU to its slaves; an MTU larger than the engine carries is set back.
    fn follow_host_mtu(&mut self, b: &mut Bond) {
        let Some(iface) = self.host_iface.clone() else {
            return;
        };
        let Ok(mtu) = read_mtu(&iface) else { return };
        let Some(before) = self.host_mtu.replace(mtu) else {
            return; // the first look
        };
        if mtu == before {
            return;
        }
        let max = b.config.max_mtu();
        if mtu > max {
            error!(
                bond = b.name(),
                "{iface}: MTU {mtu} is larger than the engine carries ({max}): set back to \
                 {before}{}",
                jumbo_hint(&b.config)
            );
            if set_mtu(&iface, before).is_ok() {
                self.host_mtu = Some(before);
            }
            return;
        }
        info!(
            bond = b.name(),
            "{iface}: MTU {mtu}, passed on to the members"
        );
        for (m, name) in self.names.clone().iter().enumerate() {
            match set_mtu(name, mtu) {
                Ok(()) => {
                    b.update_mtu(m, mtu);
                }
                Err(e) => warn!(bond = b.name(), member = %name, "setting MTU {mtu}: {e}"),
            }
        }
    }

    /// Starts setting member `m`'s new device up for the running data plane on a thread of
    /// its own; false where that cannot be (another is being set up, no workers), and the
    /// caller rebuilds the data plane.
    fn set_up_in_place(&mut self, b: &Bond, m: usize, name: &str) -> bool {
        if self.setting_up.is_some() {
            return false;
        }
        let Some(joiner) = self.with_plane_mut(|p| p.joiner_for(b, m)).flatten() else {
            return false;
        };
        let member = name.to_string();
        let spawned = thread::Builder::new()
            .name(format!("{}-setup", b.name()))
            .spawn(move || joiner.prepare(&member));
        match spawned {
            Ok(thread) => {
                self.setting_up = Some(SettingUp {
                    member: name.to_string(),
                    thread,
                });
                true
            }
            Err(e) => {
                warn!(
                    bond = b.name(),
                    "no thread to set {name}'s device up on: {e}"
                );
                false
            }
        }
    }

    /// A member's new device set up (`set_up_in_place`) takes its place in the data plane;
    /// if that cannot be, the data plane is rebuilt around it.
    fn finish_setting_up(&mut self, b: &Bond) {
        if !self
            .setting_up
            .as_ref()
            .is_some_and(|s| s.thread.is_finished())
        {
            return;
        }
        let SettingUp { member, thread } = self.setting_up.take().expect("checked above");
        let prepared = thread
            .join()
            .unwrap_or_else(|_| Err(DataPlaneError::Engine("its set-up panicked".into())));
        let m = b.member_id(&member);
        let outcome = match (prepared, m) {
            (Ok(joining), Some(m)) if read_ifindex(&member).ok() == joining.ifindex() => {
                let mut plane = self.plane.lock().expect("plane lock");
                match plane.as_mut().map(|p| p.member_replaced(b, m, joining)) {
                    Some(Ok(leftovers)) => Ok(leftovers),
                    Some(Err(not)) => {
                        // Off the device before the rebuild attaches a new program to it.
                        not.leftovers.finish();
                        Err(not.why)
                    }
                    None => Ok(Leftovers::default()),
                }
            }
            (Ok(joining), _) => {
                Leftovers::from(joining).finish();
                Err(DataPlaneError::Engine(
                    "the device changed again meanwhile".into(),
                ))
            }
            (Err(e), _) => Err(e),
        };
        match outcome {
            // Closing the old device's sockets waits on the kernel: not on this thread.
            Ok(leftovers) => finish_elsewhere(b.name(), leftovers),
            Err(why) => {
                info!(bond = b.name(), member = %member, "rebuilding the data plane around the member's new device: {why}");
                self.restart_plane(b);
            }
        }
    }

    fn with_plane_mut<T>(&self, f: impl FnOnce(&mut DataPlane) -> T) -> Option<T> {
        self.plane.lock().expect("plane lock").as_mut().map(f)
    }

    /// Brings the data plane up again around the bond's members as they are now, keeping the
    /// TAP; a start that fails keeps what it stopped for the next try.
    fn restart_plane(&mut self, b: &Bond) {
        let mut plane = self.plane.lock().expect("plane lock");
        let mut stopped = match (self.stopped.take(), plane.take()) {
            (Some(stopped), _) => stopped,
            (None, Some(running)) => running.stop(),
            (None, None) => return, // --host none: no data plane
        };
        match stopped.start(b) {
            Ok(started) => *plane = Some(started),
            Err(e) => {
                error!(bond = b.name(), "data plane down, trying again: {e}");
                self.stopped = Some(stopped);
            }
        }
    }

    /// Looks at the bond's members as their monitor says is due at `now`, and sends the peer
    /// notifications due; returns when to look again.
    fn poll_bond(&mut self, b: &mut Bond, now: Duration) -> Option<Duration> {
        self.follow_membership(b);
        if b.take_changed() {
            self.publish(b);
        }
        let interval = match (b.config.options.miimon, b.arp_monitor()) {
            (0, Some(arp)) => arp.interval(),
            (0, None) => return None,
            (miimon, _) => Duration::from_millis(miimon.into()),
        };
        let polled = now >= self.next_poll;
        if polled {
            self.next_poll = now + interval;
            self.follow_devices(b);
            self.follow_membership(b);
        }
        if b.arp_monitor().is_some() {
            if polled {
                self.arp_round(b, now);
            }
        } else {
            self.mii_look(b, polled, now);
        }
        if b.runs_lacp() && b.lacp_due().is_none_or(|t| now >= t) {
            self.lacp_round(b, now);
        }
        if let Some(member) = b.peer_notification_due(now) {
            notify_peers(b, member, self);
        }
        let look = self.fast.then(|| now + self.carrier_look_interval(now));
        [Some(self.next_poll), b.next_wakeup(), look]
            .into_iter()
            .flatten()
            .min()
    }

    /// How soon the fast carrier watch looks again: every 250 µs while frames flow (a lost
    /// carrier costs frames), every 10 ms on a quiet bond (link notifications still wake it
    /// at once where the kernel sends them without delay).
    fn carrier_look_interval(&mut self, now: Duration) -> Duration {
        let moved = self.with_plane(|p| p.counters.frames_moved()).unwrap_or(0);
        if moved != self.moved_before {
            self.moved_before = moved;
            self.busy_until = now + QUIET_AFTER;
        }
        if now < self.busy_until {
            FAST_CARRIER_LOOK
        } else {
            QUIET_CARRIER_LOOK
        }
    }

    /// MII monitoring: the carrier on a poll, a running delay's end, or (fast watch) a change.
    /// A member that stopped transmitting counts as one without carrier.
    fn mii_look(&mut self, b: &mut Bond, polled: bool, now: Duration) {
        let deadline = b.next_wakeup().is_some_and(|t| now >= t);
        if !(self.fast || polled || deadline) {
            return;
        }
        let mut carriers: Vec<bool> = self.carriers.iter_mut().map(|c| c.carrier()).collect();
        if polled {
            self.look_for_stalls(b, now);
        }
        for (carrier, &stalled) in carriers.iter_mut().zip(&self.stalled) {
            *carrier &= !stalled;
        }
        if polled || deadline || carriers != self.seen {
            // A link that changed may have a new speed and duplex (a cable plugged in after
            // the start): read them again before the bond sees the change.
            for (m, &carrier) in carriers.iter().enumerate() {
                if self.seen.get(m) != Some(&carrier) {
                    if let Ok(facts) = read_link(&self.names[m]) {
                        b.update_link(m, &facts);
                    }
                }
            }
            let events = b.observe(&carriers, now);
            self.act_on(b, &events);
            self.seen = carriers;
        }
    }

    /// Which members stopped transmitting: frames wait in their TX rings and no completion
    /// comes back (the data plane counts both).
    fn look_for_stalls(&mut self, b: &Bond, now: Duration) {
        let Some(view) = self.with_plane(|p| p.counters.view()) else {
            return;
        };
        for (m, name) in b.member_names().enumerate() {
            let c = &view.members[m];
            let transitions = self.carriers[m].transitions();
            let tx = TxCounts {
                in_flight: c.tx_in_flight,
                completed: c.tx_completed,
                errors: c.tx_errors,
            };
            let stalled = self.stalls[m].look(now, tx, transitions);
            if stalled && !self.stalled[m] {
                warn!(
                    bond = b.name(),
                    member = name,
                    in_flight = c.tx_in_flight,
                    tx_errors = c.tx_errors,
                    "stopped transmitting (no TX completion for {} ms, or the kernel refused to \
                     send), treating it as failed",
                    TX_STALL.as_millis()
                );
            }
            self.stalled[m] = stalled;
        }
    }

    /// One ARP monitor interval: what arrived since the last (the XDP program counts every
    /// frame per member; the data plane hands over ARP packets), the verdicts, the probes.
    fn arp_round(&mut self, b: &mut Bond, now: Duration) {
        let (counts, reports) = self
            .with_plane(|p| {
                let counts: Vec<(u64, u64)> = p
                    .xdp_live()
                    .iter()
                    .map(|c| (c.arrived(), c.neighbour))
                    .collect();
                let mut reports = Vec::new();
                p.take_arp_reports(&mut reports);
                (counts, reports)
            })
            .unwrap_or_default();
        let arrived: Vec<Arrivals> = counts
            .iter()
            .zip(
                self.frames_before
                    .iter_mut()
                    .zip(&mut self.neighbours_before),
            )
            .map(|(&(frames, neighbours), (f, n))| Arrivals {
                frames: std::mem::replace(f, frames) != frames,
                neighbours: std::mem::replace(n, neighbours) != neighbours,
            })
            .collect();
        let addresses = self.current_host_addresses();
        let host_ips: Vec<IpAddr> = addresses.iter().map(|a| a.ip).collect();
        let seen = reports.iter().map(|r| (r.member, r.msg));
        let (events, probes) = b.arp_tick(now, &arrived, seen, &host_ips);
        self.act_on(b, &events);
        let mac = self.host_mac(b);
        let targets = b
            .arp_monitor()
            .map(|a| a.targets.clone())
            .unwrap_or_default();
        for member in probes {
            let Some(Some(socket)) = self.sockets.get(member) else {
                continue;
            };
            let mut sent = false;
            for &target in &targets {
                sent |= socket.send(&probe(mac, target, &addresses)).is_ok();
            }
            if sent {
                b.arp_sent(member, now);
            }
        }
    }

    /// The host side's addresses: read again only when an address notification came (or
    /// there is no notification socket, or the last read failed).
    fn current_host_addresses(&mut self) -> Vec<HostAddress> {
        let changed = self
            .address_events
            .as_mut()
            .is_none_or(AddressEvents::changed);
        if changed || self.host_addresses.is_none() {
            self.host_addresses = self
                .host_iface
                .as_deref()
                .and_then(|iface| host_addresses(iface).ok());
        }
        self.host_addresses.clone().unwrap_or_default()
    }

    /// 802.3ad: the slow-protocol frames members received go to LACP, its machines run, and
    /// what it sends leaves on the members' packet sockets.
    fn lacp_round(&mut self, b: &mut Bond, now: Duration) {
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        for (m, socket) in self.sockets.iter().enumerate() {
            let Some(socket) = socket else { continue };
            while let Some(n) = socket.recv(&mut buf) {
                if let Err(why) = b.lacp_receive(m, &buf[..n], &mut out) {
                    debug!(
                        bond = b.name(),
                        member = b.member_name(m),
                        "slow-protocol frame dropped: {why}"
                    );
                }
            }
        }
        let (frames, events) = b.lacp_advance(now);
        out.extend(frames);
        for (m, frame) in out {
            if let Some(Some(socket)) = self.sockets.get(m) {
                if let Err(e) = socket.send(&frame) {
                    warn!(
                        bond = b.name(),
                        member = b.member_name(m),
                        "sending an LACPDU: {e}"
                    );
                }
            }
        }
        self.act_on(b, &events);
    }

    /// What a pass changed, if anything: logged for the operator and published. Most passes
    /// change nothing, and then the workers' snapshot and the XDP maps are left alone.
    fn act_on(&mut self, b: &Bond, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        // The data plane first: a failover reaches the workers before anything is written.
        self.publish(b);
        for event in events {
            log_event(b.name(), event);
        }
    }

    /// Publishes the bond's state to the data plane, and gives members and the host side the
    /// MACs the bond plans for them.
    fn publish(&mut self, b: &Bond) {
        self.with_plane(|p| p.update(b));
        self.set_macs(b, b.macs().clone());
        self.follow_carrier(b);
    }

    /// The TAP has carrier while the bond has (some member usable; 802.3ad: min_links).
    fn follow_carrier(&mut self, b: &Bond) {
        let Some(iface) = &self.host_iface else {
            return;
        };
        let carrier = b.carrier();
        if self.host_carrier == Some(carrier) {
            return;
        }
        match set_carrier(iface, carrier) {
            Ok(()) => self.host_carrier = Some(carrier),
            Err(e) => warn!(bond = b.name(), "setting {iface}'s carrier: {e}"),
        }
    }

    /// A worker of the bond's data plane that died, as the daemon's error.
    fn dead_worker(&self, b: &Bond) -> Option<DaemonError> {
        let (thread, reason) = self
            .plane
            .lock()
            .expect("plane lock")
            .as_mut()?
            .dead_worker()?;
        Some(DaemonError::WorkerDied {
            bond: b.name().to_string(),
            thread,
            reason,
        })
    }

    /// Runs `f` on the bond's data plane, if it has one.
    fn with_plane<T>(&self, f: impl FnOnce(&DataPlane) -> T) -> Option<T> {
        self.plane.lock().expect("plane lock").as_ref().map(f)
    }

    /// Gives the members and the host side the MACs of `plan`, where they differ from what
    /// they carry. A driver that refuses is reported with what it means.
    fn set_macs(&mut self, b: &Bond, plan: MacPlan) {
        let names: Vec<&str> = b.member_names().collect();
        for (m, &mac) in plan.members.iter().enumerate() {
            if self.macs.members[m] == mac {
                continue;
            }
            match set_mac(names[m], mac) {
                Ok(()) => self.macs.members[m] = mac,
                Err(e) => warn!(
                    bond = b.name(),
                    member = names[m],
                    "cannot set its MAC to {mac} ({e}): it receives only frames for {}; \
                     use fail_over_mac=active or put it in promiscuous mode",
                    self.macs.members[m]
                ),
            }
        }
        if let (Some(iface), true) = (&self.host_iface, self.macs.host != plan.host) {
            match set_mac(iface, plan.host) {
                Ok(()) => self.macs.host = plan.host,
                Err(e) => warn!(
                    bond = b.name(),
                    "cannot set {iface}'s MAC to {}: {e}", plan.host
                ),
            }
        }
    }

    /// Gives the members back their own MACs (at exit).
    fn restore_macs(&mut self) {
        let mut b = self.bond.lock().expect("bond lock");
        // Members that joined or left since the last look (a change just before the stop).
        if b.take_membership_changed() {
            self.members_changed(&b);
        }
        let plan = MacPlan {
            members: b.permanent_macs().map(|(_, mac)| mac).collect(),
            host: self.macs.host,
        };
        self.set_macs(&b, plan);
    }

    /// The MAC the host side uses (the TAP's), which probes and announcements carry.
    fn host_mac(&self, b: &Bond) -> MacAddr {
        self.host_iface
            .as_deref()
            .and_then(|iface| read_link(iface).ok())
            .map_or_else(|| b.bond_mac(), |f| f.mac)
    }
}

/// The probe for `target` at `mac`: an ARP request for an IPv4 target, a neighbour
/// solicitation for an IPv6 one. It comes from the host side's address on the target's
/// subnet (and that address's VLAN), else its first untagged address of the family, else the
/// unspecified address untagged, as the kernel probes when the bond has no address.
fn probe(mac: MacAddr, target: IpAddr, addresses: &[HostAddress]) -> Vec<u8> {
    let same_family = |a: &&HostAddress| a.ip.is_ipv4() == target.is_ipv4();
    let source = addresses
        .iter()
        .filter(same_family)
        .find(|a| a.on_subnet(target))
        .or_else(|| {
            addresses
                .iter()
                .filter(same_family)
                .find(|a| a.vlan.is_none())
        })
        .map(|a| (a.ip, a.vlan));
    match (target, source) {
        (IpAddr::V4(t), Some((IpAddr::V4(s), vlan))) => arp::request(mac, s, t, vlan),
        (IpAddr::V4(t), _) => arp::request(mac, Ipv4Addr::UNSPECIFIED, t, None),
        (IpAddr::V6(t), Some((IpAddr::V6(s), vlan))) => ndisc::solicitation(mac, s, t, vlan),
        (IpAddr::V6(t), _) => ndisc::solicitation(mac, Ipv6Addr::UNSPECIFIED, t, None),
    }
}

/// How often the monitor updates systemd's status line (the watchdog may ask for more).
const SYSTEMD_EVERY: Duration = Duration::from_millis(500);

/// How often a fast carrier watch looks between notifications, while frames flow.
const FAST_CARRIER_LOOK: Duration = Duration::from_micros(250);
/// ... and on a quiet bond.
const QUIET_CARRIER_LOOK: Duration = Duration::from_millis(10);
/// How long after the last frame a bond counts as busy.
const QUIET_AFTER: Duration = Duration::from_millis(50);

/// Watches every bond's members: every miimon ms (bonds with miimon=0 are not monitored, as in
/// the kernel) and, with `carrier_watch=fast`, also on the kernel's link notifications and
/// whenever a look at the carrier (every 250 µs) finds it changed. Logs what changes,
/// publishes it to the bond's data plane and sends the peer notifications a new active
/// member calls for.
/// `start`: the monitor's clock (failover times count from it).
/// Returns why it stopped early: a worker thread died (the bond would sit half dead, so the
/// daemon exits for its service manager to restart it).
pub(super) fn monitor_loop(
    bonds: &[Arc<Mutex<Bond>>],
    planes: &[SharedPlane],
    stop: &AtomicBool,
    start: Instant,
    run_dir: &Path,
    outlets: Outlets,
    reload_if_asked: &mut dyn FnMut(),
) -> Option<DaemonError> {
    let Outlets { systemd, board } = outlets;
    let mut watched: Vec<BondWatch> = bonds
        .iter()
        .zip(planes)
        .map(|(bond, plane)| BondWatch::new(bond, plane, run_dir))
        .collect();
    for w in &mut watched {
        let b = w.bond.lock().expect("bond lock");
        w.set_macs(&b, b.macs().clone());
    }
    // Every monitor judges by the clock (miimon's downdelay, the ARP monitor's missed
    // intervals, LACP's timeouts): a round that runs late blames the members for the wait.
    realtime_priority();
    let any_fast = watched.iter().any(|w| w.fast);
    let mut events = match any_fast.then(LinkEvents::open) {
        Some(Ok(events)) => Some(events),
        Some(Err(e)) => {
            warn!("no link notifications ({e}): looking at the carrier every 250 µs");
            None
        }
        None => None,
    };
    let mut died = None;
    let mut next_systemd = Instant::now();
    let mut next_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) && died.is_none() {
        reload_if_asked();
        let now = start.elapsed();
        let mut wake = now + Duration::from_millis(100);
        let publish = board.is_some() && Instant::now() >= next_publish;
        let mut statuses = Vec::new();
        for w in &mut watched {
            // A bond busy elsewhere (its data plane being rebuilt around new members) is
            // looked at again shortly: one bond's rebuild never holds up the others'
            // failover.
            let Some(mut b) = try_lock(w.bond) else {
                wake = wake.min(now + BUSY_RETRY);
                continue;
            };
            died = died.or_else(|| w.dead_worker(&b));
            if let Some(next) = w.poll_bond(&mut b, now) {
                wake = wake.min(next);
            }
            if publish {
                statuses.push(bond_status(&b, w.plane));
            }
        }
        if let Some(board) = board.filter(|_| publish && statuses.len() == watched.len()) {
            board.publish(statuses);
            next_publish = Instant::now() + PUBLISH_EVERY;
        }
        // systemd's watchdog and status line: from this loop, so a hung monitor stops them.
        if Instant::now() >= next_systemd {
            let guards: Vec<_> = watched.iter().map_while(|w| try_lock(w.bond)).collect();
            if guards.len() == watched.len() {
                let all: Vec<&Bond> = guards.iter().map(|g| &**g).collect();
                systemd.tick(&all);
                let soon = systemd.next_due().unwrap_or(SYSTEMD_EVERY);
                next_systemd = Instant::now() + soon.min(SYSTEMD_EVERY);
            }
        }
        let timeout = wake
            .saturating_sub(start.elapsed())
            .min(Duration::from_millis(50));
        match &mut events {
            Some(ev) => {
                if let Err(e) = ev.wait(timeout) {
                    warn!("link notifications failed ({e}): looking at the carrier only");
                    events = None;
                }
            }
            None => thread::sleep(timeout),
        }
    }
    for w in &mut watched {
        w.restore_macs();
    }
    died
}

/// Address notifications for a bond's ARP monitor; `None`, said once, when they cannot be
/// had (the monitor then reads the addresses every interval).
fn address_events(b: &Bond) -> Option<AddressEvents> {
    AddressEvents::open()
        .map_err(|e| {
            warn!(
                bond = b.name(),
                "no address notifications ({e}): the ARP monitor reads the addresses every \
                 interval"
            )
        })
        .ok()
}

/// A member's new device being set up on a thread of its own.
struct SettingUp {
    member: String,
    thread: thread::JoinHandle<Result<Joining, DataPlaneError>>,
}

/// Finishes what a member change left (closing sockets, detaching) on a thread of its own.
/// Without one, dropping the leftovers still closes and detaches; only the frames of the
/// closed sockets stay out of their workers' pools.
fn finish_elsewhere(bond: &str, leftovers: Leftovers) {
    let spawned = thread::Builder::new()
        .name(format!("{bond}-close"))
        .spawn(move || leftovers.finish());
    if let Err(e) = spawned {
        warn!(
            bond,
            "no thread to close a replaced device's sockets on: {e}"
        );
    }
}

/// How soon a bond that was busy is looked at again.
const BUSY_RETRY: Duration = Duration::from_millis(1);

/// The bond's lock if nobody holds it; `None` while a request (a rebuild) does.
fn try_lock(bond: &Mutex<Bond>) -> Option<std::sync::MutexGuard<'_, Bond>> {
    match bond.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::WouldBlock) => None,
        Err(std::sync::TryLockError::Poisoned(_)) => panic!("bond lock poisoned"),
    }
}

/// Where the monitor reports besides the log: systemd (readiness, status, watchdog) and the
/// status board that metrics scrapes read (when there is a metrics endpoint).
pub(super) struct Outlets<'a> {
    pub systemd: &'a mut super::systemd::Systemd,
    pub board: Option<&'a StatusBoard>,
}

/// Puts the calling thread (the monitor) at a low real-time priority: its wake-ups are short,
/// but on cores that busy-polling workers, a storm's softirqs and the application keep full,
/// an ordinary thread can wait many milliseconds for its turn, and a failover with it (or,
/// for the ARP monitor, a failover it should not make: replies that came are read late).
fn realtime_priority() {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: sets the calling thread's policy; `param` is valid for the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc != 0 {
        warn!(
            "link monitor stays at normal priority ({}): busy cores can delay failover",
            std::io::Error::from_raw_os_error(rc)
        );
    }
}

/// Announces the host side's addresses on `member`: a gratuitous ARP per IPv4 address and an
/// unsolicited neighbour advertisement per IPv6 address, on their VLANs, from the host's MAC.
fn notify_peers(b: &Bond, member: usize, w: &BondWatch) {
    let (Some(iface), Some(Some(socket))) = (&w.host_iface, w.sockets.get(member)) else {
        return;
    };
    let name = b.member_name(member);
    let addresses = match host_addresses(iface) {
        Ok(addresses) => addresses,
        Err(e) => {
            warn!(bond = b.name(), "peer notification: reading {iface}: {e}");
            return;
        }
    };
    let mac = w.host_mac(b);
    let (mut arps, mut nas) = (0, 0);
    for a in &addresses {
        let frame = match a.ip {
            IpAddr::V4(ip) => {
                arps += 1;
                arp::gratuitous(mac, ip, a.vlan)
            }
            IpAddr::V6(ip) => {
                nas += 1;
                ndisc::unsolicited_na(mac, ip, a.vlan)
            }
        };
        if let Err(e) = socket.send(&frame) {
            warn!(
                bond = b.name(),
                member = name,
                "peer notification for {}: {e}",
                a.ip
            );
        }
    }
    info!(
        bond = b.name(),
        member = name,
        gratuitous_arps = arps,
        unsolicited_nas = nas,
        "peers notified of the new active member"
    );
}

/// What to change for larger frames, after an MTU the engine cannot carry.
pub(super) fn jumbo_hint(config: &crate::config::BondConfig) -> &'static str {
    if config.multi_buffer() {
        ""
    } else {
        "; jumbo=on carries MTUs up to 9216"
    }
}
