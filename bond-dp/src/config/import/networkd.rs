//! systemd-networkd: a `.netdev` file with `[NetDev] Kind=bond` and a `[Bond]` section, and
//! `.network` files that put members in the bond (`[Network] Bond=bond0`) or give the bond
//! its addresses.

use super::{lines, ImportError, Imported, Origin};

pub(super) fn claims(text: &str) -> bool {
    lines(text).any(|(_, l)| l == "[NetDev]" || l == "[Match]" || l == "[Bond]")
}

/// `[Bond]` keys and the kernel options they set, with how the value converts.
const KEYS: &[(&str, &str, Convert)] = &[
    ("Mode", "mode", Convert::Same),
    ("TransmitHashPolicy", "xmit_hash_policy", Convert::Same),
    ("LACPTransmitRate", "lacp_rate", Convert::Same),
    ("MIIMonitorSec", "miimon", Convert::Millis),
    ("UpDelaySec", "updelay", Convert::Millis),
    ("DownDelaySec", "downdelay", Convert::Millis),
    ("PeerNotifyDelaySec", "peer_notif_delay", Convert::Millis),
    ("LearnPacketIntervalSec", "lp_interval", Convert::Seconds),
    ("AdSelect", "ad_select", Convert::Same),
    ("AdActorSystemPriority", "ad_actor_sys_prio", Convert::Same),
    ("AdUserPortKey", "ad_user_port_key", Convert::Same),
    ("AdActorSystem", "ad_actor_system", Convert::Same),
    ("FailOverMACPolicy", "fail_over_mac", Convert::Same),
    ("ARPValidate", "arp_validate", Convert::Same),
    ("ARPIntervalSec", "arp_interval", Convert::Millis),
    ("ARPIPTargets", "arp_ip_target", Convert::List),
    ("ARPAllTargets", "arp_all_targets", Convert::Same),
    ("ARPMissedMax", "arp_missed_max", Convert::Same),
    ("PrimaryReselectPolicy", "primary_reselect", Convert::Same),
    ("ResendIGMP", "resend_igmp", Convert::Same),
    ("PacketsPerSlave", "packets_per_slave", Convert::Same),
    ("GratuitousARP", "num_grat_arp", Convert::Same),
    ("AllSlavesActive", "all_slaves_active", Convert::Bool),
    (
        "DynamicTransmitLoadBalancing",
        "tlb_dynamic_lb",
        Convert::Bool,
    ),
    ("MinLinks", "min_links", Convert::Same),
];

#[derive(Clone, Copy)]
enum Convert {
    Same,
    /// A systemd time span ("100ms", "1s", "2min"; no unit means seconds) in ms.
    Millis,
    Seconds,
    /// Space-separated to comma-separated.
    List,
    /// yes/no/true/false/on/off/1/0 to 1/0.
    Bool,
}

fn convert(how: Convert, value: &str) -> Option<String> {
    Some(match how {
        Convert::Same => value.to_string(),
        Convert::List => value.split_whitespace().collect::<Vec<_>>().join(","),
        Convert::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => "1".into(),
            "no" | "false" | "off" | "0" => "0".into(),
            _ => return None,
        },
        Convert::Millis => timespan_ms(value)?.to_string(),
        Convert::Seconds => (timespan_ms(value)? / 1000).to_string(),
    })
}

/// A systemd time span in milliseconds: "100ms", "1s", "1.5s", "2min", "1s 500ms", "3".
fn timespan_ms(value: &str) -> Option<u64> {
    let mut total = 0.0;
    for part in value.split_whitespace() {
        let split = part
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(part.len());
        let (number, unit) = part.split_at(split);
        let n: f64 = number.parse().ok()?;
        let scale = match unit {
            "" | "s" | "sec" | "second" | "seconds" => 1000.0,
            "ms" | "msec" => 1.0,
            "us" | "usec" => 0.001,
            "m" | "min" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hour" | "hours" => 3_600_000.0,
            _ => return None,
        };
        total += n * scale;
    }
    Some(total.round() as u64)
}

/// One `Key=value` line of a unit file, and whether the import used it.
struct Entry {
    section: String,
    key: String,
    value: String,
    origin: Origin,
    used: bool,
}

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (line, l) in lines(text) {
        let origin = Origin {
            file: file.to_string(),
            line,
        };
        if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(ImportError::Syntax {
                origin,
                reason: format!("expected Key=value, got \"{l}\""),
            });
        };
        entries.push(Entry {
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            origin,
            used: false,
        });
    }
    let about_a_bond = read_entries(&mut entries, out)?;
    // Nothing is dropped silently: a file about a bond has each line it did not use
    // reported; a file about something else is reported once.
    if !about_a_bond {
        if let Some(first) = entries.first() {
            out.warnings.push(format!(
                "{file}: not about a bond (no [NetDev] Kind=bond, no [Network] Bond=, no \
                 addresses for a bond; first line {}): left out",
                first.origin.line
            ));
        }
        return Ok(());
    }
    for e in entries.iter().filter(|e| !e.used) {
        out.warnings.push(format!(
            "{}: [{}] {}={} is not about the bond: left out",
            e.origin, e.section, e.key, e.value
        ));
    }
    Ok(())
}

/// The last entry `section`/`key`, marked as used.
fn take<'a>(entries: &'a mut [Entry], section: &str, key: &str) -> Option<&'a Entry> {
    let e = entries
        .iter_mut()
        .rev()
        .find(|e| e.section == section && e.key == key)?;
    e.used = true;
    Some(e)
}

/// Reads a `.netdev` or `.network` file's entries into `out`, marking the ones used;
/// whether the file was about a bond at all.
fn read_entries(entries: &mut [Entry], out: &mut Imported) -> Result<bool, ImportError> {
    if entries
        .iter()
        .any(|e| e.section == "NetDev" && e.key == "Kind" && e.value == "bond")
    {
        take(entries, "NetDev", "Kind");
        let Some(bond) = take(entries, "NetDev", "Name").map(|e| e.value.clone()) else {
            return Ok(false);
        };
        out.bond(&bond);
        for e in entries.iter_mut().filter(|e| e.section == "Bond") {
            e.used = true;
            bond_key(&bond, e, out)?;
        }
        return Ok(true);
    }
    // A .network file: a member of a bond, or the bond's own addresses.
    let Some(name) = take(entries, "Match", "Name").map(|e| e.value.clone()) else {
        return Ok(false);
    };
    if let Some(bond) = take(entries, "Network", "Bond").map(|e| e.value.clone()) {
        out.add_member(&bond, &name);
        for (key, option) in [("PrimarySlave", "primary"), ("ActiveSlave", "active_slave")] {
            if let Some(e) = take(entries, "Network", key) {
                if convert(Convert::Bool, &e.value).as_deref() == Some("1") {
                    let origin = e.origin.clone();
                    out.option(&bond, option, &name, &origin)?;
                }
            }
        }
        return Ok(true);
    }
    let addresses: Vec<(String, Origin)> = entries
        .iter_mut()
        .filter(|e| (e.section == "Network" || e.section == "Address") && e.key == "Address")
        .map(|e| {
            e.used = true;
            (e.value.clone(), e.origin.clone())
        })
        .collect();
    if out.bonds.iter().any(|b| b.name == name) {
        let bond = out.bond(&name);
        bond.addresses.extend(addresses.into_iter().map(|(a, _)| a));
        Ok(true)
    } else if !addresses.is_empty() {
        // Perhaps the bond's, read before its .netdev: settled once every file is read.
        out.pending_addresses.push((name, addresses));
        Ok(true)
    } else {
        Ok(false)
    }
}

/// One `[Bond]` key as the kernel option it stands for; an unknown key is reported with
/// the nearest known one.
fn bond_key(bond: &str, e: &Entry, out: &mut Imported) -> Result<(), ImportError> {
    let (key, value, origin) = (&e.key, &e.value, &e.origin);
    match KEYS.iter().find(|(k, _, _)| k == key) {
        Some((_, option, how)) => {
            let Some(v) = convert(*how, value) else {
                return Err(ImportError::Syntax {
                    origin: origin.clone(),
                    reason: format!("{key}: invalid value \"{value}\""),
                });
            };
            out.option(bond, option, &v, origin)
        }
        None => {
            let nearest = KEYS
                .iter()
                .map(|(k, _, _)| (strsim::jaro_winkler(k, key), *k))
                .fold((0.0, ""), |best, c| if c.0 > best.0 { c } else { best });
            let hint = if nearest.0 > 0.8 {
                format!(" (did you mean \"{}\"?)", nearest.1)
            } else {
                String::new()
            };
            out.warnings.push(format!(
                "{origin}: unknown [Bond] key \"{key}\"{hint}: left out"
            ));
            Ok(())
        }
    }
}
