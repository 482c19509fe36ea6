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

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    let mut section = String::new();
    // (section, key, value, origin), in order.
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
        entries.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
            origin,
        ));
    }
    let get = |s: &str, k: &str| {
        entries
            .iter()
            .rev()
            .find(|(sec, key, _, _)| sec == s && key == k)
            .map(|(_, _, v, _)| v.as_str())
    };
    if get("NetDev", "Kind") == Some("bond") {
        let Some(bond) = get("NetDev", "Name") else {
            return Ok(());
        };
        out.bond(bond);
        for (_, key, value, origin) in entries.iter().filter(|e| e.0 == "Bond") {
            match KEYS.iter().find(|(k, _, _)| k == key) {
                Some((_, option, how)) => {
                    let Some(v) = convert(*how, value) else {
                        return Err(ImportError::Syntax {
                            origin: origin.clone(),
                            reason: format!("{key}: invalid value \"{value}\""),
                        });
                    };
                    out.option(bond, option, &v, origin)?;
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
                }
            }
        }
        return Ok(());
    }
    // A .network file: a member of a bond, or the bond's own addresses.
    let Some(name) = get("Match", "Name") else {
        return Ok(());
    };
    if let Some(bond) = get("Network", "Bond") {
        out.add_member(bond, name);
        for (key, option) in [("PrimarySlave", "primary"), ("ActiveSlave", "active_slave")] {
            if let Some((_, _, v, origin)) = entries
                .iter()
                .find(|(s, k, _, _)| s == "Network" && k == key)
            {
                if convert(Convert::Bool, v).as_deref() == Some("1") {
                    out.option(bond, option, name, origin)?;
                }
            }
        }
    } else if out.bonds.iter().any(|b| b.name == name) || get("Network", "Address").is_some() {
        let addresses: Vec<String> = entries
            .iter()
            .filter(|(s, k, _, _)| (s == "Network" || s == "Address") && k == "Address")
            .map(|(_, _, v, _)| v.clone())
            .collect();
        if out.bonds.iter().any(|b| b.name == name) {
            out.bond(name).addresses.extend(addresses);
        } else {
            out.pending_addresses.push((name.to_string(), addresses));
        }
    }
    Ok(())
}
