//! Starting after another bond-dp: refusing what a live one holds, and taking over what one
//! that died left behind, from the records in the run directory ([`record`]).
//!
//! A bond-dp that dies (kill -9, a panic, the OOM killer) leaves no XDP program (its
//! bpf_links die with it) but leaves its TAP (persistent, with the host's addresses, without
//! carrier), members carrying the bond's MAC, and its record. The next start reads the
//! members' own MACs from the record, attaches to the TAP again, gives back MACs of members
//! it no longer uses, removes a TAP no bond uses, and says so in one line per record.

use std::net::IpAddr;
use std::path::Path;

use tracing::{info, warn};

use super::record::{self, BondRecord, MemberRecord};
use super::DaemonError;
use crate::bond::Bond;
use crate::config::BondConfig;
use crate::monitor::{add_address, delete_link, host_addresses, read_link, set_mac};
use crate::xdp::program::remove_leftover;

/// Refuses a bond that a live bond-dp runs, or whose members or TAP it holds.
pub(super) fn refuse_held(config: &BondConfig, live: &[BondRecord]) -> Result<(), DaemonError> {
    for r in live {
        let held = |what: String| DaemonError::HeldElsewhere {
            what,
            bond: r.bond.clone(),
            pid: r.pid,
        };
        if r.bond == config.name {
            return Err(DaemonError::AlreadyRunning {
                bond: r.bond.clone(),
                pid: r.pid,
            });
        }
        if let Some(m) = config
            .members
            .iter()
            .find(|m| r.members.iter().any(|held| &held.name == *m))
        {
            return Err(held(format!("member {m}")));
        }
        if let (Some(tap), Some(theirs)) = (config.tap_name(), r.tap.as_deref()) {
            if tap == theirs {
                return Err(held(format!("TAP device {tap}")));
            }
        }
    }
    Ok(())
}

/// Refuses a member that must never be one: loopback, or a host device of a bond-dp bond
/// (a TAP or an access port, in `host_devices`), which would feed the bond into itself.
pub(super) fn refuse_device(member: &str, host_devices: &[&str]) -> Result<(), String> {
    const IFF_LOOPBACK: u64 = 0x8;
    let flags = std::fs::read_to_string(format!("/sys/class/net/{member}/flags"))
        .ok()
        .and_then(|f| u64::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
    if flags.is_some_and(|f| f & IFF_LOOPBACK != 0) {
        return Err(format!(
            "{member} is the loopback device: it cannot be a member"
        ));
    }
    if host_devices.contains(&member) {
        return Err(format!(
            "{member} is a bond-dp bond's host device (its TAP or access port): it cannot be a member"
        ));
    }
    Ok(())
}

/// The host devices of `configs` and of the recorded bonds.
pub(super) fn host_devices<'a>(
    configs: impl Iterator<Item = &'a BondConfig>,
    records: &'a [BondRecord],
) -> Vec<&'a str> {
    let mut out: Vec<&str> = configs
        .flat_map(|c| c.tap_name().into_iter().chain(c.access_port()))
        .collect();
    out.extend(records.iter().filter_map(|r| r.tap.as_deref()));
    out
}

/// Records the bonds about to start (carrying over addresses kept at a clean stop), then
/// cleans up after the bond-dp processes of the `dead` records.
pub(super) fn take_over(
    bonds: &[Bond],
    dead: Vec<BondRecord>,
    run_dir: &Path,
) -> Result<(), DaemonError> {
    for bond in bonds {
        let mut rec = record_of(bond);
        if let Some(old) = dead.iter().find(|r| r.bond == bond.name()) {
            rec.addresses = old.addresses.clone();
        }
        rec.write(run_dir).map_err(|source| DaemonError::Control {
            dir: run_dir.display().to_string(),
            source,
        })?;
    }
    let ours = |name: &str| bonds.iter().any(|b| b.member_names().any(|m| m == name));
    let our_tap = |name: &str| bonds.iter().any(|b| b.config.tap_name() == Some(name));
    for r in &dead {
        let mut done = Vec::new();
        for m in r.members.iter().filter(|m| !ours(&m.name)) {
            if give_back_mac(m) {
                done.push(format!("gave {} its MAC {} back", m.name, m.mac));
            }
        }
        if let Some(tap) = r.tap.as_deref() {
            if our_tap(tap) {
                done.push(format!("took over TAP {tap}"));
            } else if read_link(tap).is_ok() {
                match delete_link(tap) {
                    Ok(()) => done.push(format!("removed TAP {tap}")),
                    Err(e) => warn!("removing {tap} left by bond-dp pid {}: {e}", r.pid),
                }
            }
        }
        if !bonds.iter().any(|b| b.name() == r.bond) {
            let _ = std::fs::remove_file(BondRecord::path(run_dir, &r.bond));
        }
        if r.stopped_cleanly {
            info!(bond = %r.bond, "last stopped cleanly (pid {}); {}", r.pid, summary(&done));
        } else {
            warn!(
                bond = %r.bond,
                "bond-dp pid {} died without cleaning up; taking over: {}",
                r.pid,
                summary(&done)
            );
        }
    }
    // An XDP program attached without a link by an older bond-dp that died stays on the
    // member and drops everything; programs held by links or of other tools stay.
    for bond in bonds {
        for iface in bond.member_names().chain(bond.config.access_port()) {
            match remove_leftover(iface) {
                Ok(true) => warn!(
                    bond = bond.name(),
                    "removed a bond-dp XDP program left on {iface} by a process that died"
                ),
                Ok(false) => {}
                Err(e) => warn!(bond = bond.name(), "{e}"),
            }
        }
    }
    Ok(())
}

fn summary(done: &[String]) -> String {
    if done.is_empty() {
        "nothing was left behind".into()
    } else {
        done.join(", ")
    }
}

/// Gives a member that is still the recorded device its own MAC back; true if it had
/// another.
fn give_back_mac(m: &MemberRecord) -> bool {
    let Ok(link) = read_link(&m.name) else {
        return false;
    };
    if link.ifindex != m.ifindex || link.mac == m.mac {
        return false;
    }
    match set_mac(&m.name, m.mac) {
        Ok(()) => true,
        Err(e) => {
            warn!(member = %m.name, "giving back its MAC {}: {e}", m.mac);
            false
        }
    }
}

/// What this process records of `bond`.
pub(super) fn record_of(bond: &Bond) -> BondRecord {
    let members = bond
        .member_links()
        .map(|(name, link)| MemberRecord {
            name: name.to_string(),
            ifindex: link.ifindex,
            mac: link.mac,
        })
        .collect();
    BondRecord::new(
        bond.name(),
        bond.config.tap_name().map(String::from),
        members,
    )
}

/// Records `bond` as it is now (after members joined or left).
pub(super) fn save(bond: &Bond, run_dir: &Path) {
    if let Err(e) = record_of(bond).write(run_dir) {
        warn!(
            bond = bond.name(),
            "recording the bond in {}: {e}",
            run_dir.display()
        );
    }
}

/// Puts back on the bond's TAP the addresses it had when the bond last stopped cleanly.
pub(super) fn restore_addresses(bond: &Bond, run_dir: &Path) {
    let Some(tap) = bond.config.tap_name() else {
        return;
    };
    let Some(mut rec) = record::read_all(run_dir)
        .into_iter()
        .find(|r| r.bond == bond.name() && r.pid == std::process::id())
    else {
        return;
    };
    if rec.addresses.is_empty() {
        return;
    }
    let mut restored = Vec::new();
    for text in &rec.addresses {
        let parsed = text
            .split_once('/')
            .and_then(|(ip, len)| Some((ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?)));
        match parsed.map(|(ip, len)| add_address(tap, ip, len)) {
            Some(Ok(())) => restored.push(text.as_str()),
            Some(Err(e)) => warn!(bond = bond.name(), "putting back {text} on {tap}: {e}"),
            None => warn!(bond = bond.name(), "ignoring recorded address \"{text}\""),
        }
    }
    info!(
        bond = bond.name(),
        "{tap}: put back the addresses it had at the last stop: {}",
        restored.join(" ")
    );
    rec.addresses.clear();
    let _ = rec.write(run_dir);
}

/// After a clean stop (members have their own MACs back): removes the bond's TAP, keeping
/// its addresses in the record for the next start; without any to keep, the record goes.
pub(super) fn clean_stop(bond: &Bond, run_dir: &Path) {
    let path = BondRecord::path(run_dir, bond.name());
    let Some(tap) = bond.config.tap_name() else {
        let _ = std::fs::remove_file(path);
        return;
    };
    let addresses: Vec<String> = host_addresses(tap)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.vlan.is_none() && !is_link_local(a.ip))
        .map(|a| format!("{}/{}", a.ip, a.prefix_len))
        .collect();
    if let Err(e) = delete_link(tap) {
        warn!(bond = bond.name(), "removing {tap}: {e}");
    }
    if addresses.is_empty() {
        let _ = std::fs::remove_file(path);
        return;
    }
    let mut rec = record_of(bond);
    rec.addresses = addresses;
    rec.stopped_cleanly = true;
    if let Err(e) = rec.write(run_dir) {
        warn!(bond = bond.name(), "keeping {tap}'s addresses: {e}");
    }
}

/// IPv6 link-local addresses come back by themselves with the device.
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}
