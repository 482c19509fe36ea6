//! RHEL ifcfg files: `ifcfg-bond0` with `BONDING_OPTS="mode=... miimon=..."` (and maybe
//! `IPADDR`/`PREFIX`), and an `ifcfg-eth0` per member with `MASTER=bond0` and `SLAVE=yes`.

use super::{lines, shell_words, ImportError, Imported, Origin};

pub(super) fn claims(text: &str) -> bool {
    lines(text).any(|(_, l)| {
        ["BONDING_OPTS=", "MASTER=", "BONDING_MASTER=", "DEVICE="]
            .iter()
            .any(|k| l.starts_with(k))
    })
}

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    let mut vars: Vec<(String, String, Origin)> = Vec::new();
    for (line, l) in lines(text) {
        let origin = Origin {
            file: file.to_string(),
            line,
        };
        let Some((key, value)) = l.split_once('=') else {
            return Err(ImportError::Syntax {
                origin,
                reason: format!("expected KEY=value, got \"{l}\""),
            });
        };
        let value = shell_words(value)
            .map_err(|reason| ImportError::Syntax {
                origin: origin.clone(),
                reason,
            })?
            .join(" ");
        vars.push((key.trim().to_string(), value, origin));
    }
    // Every other line is reported: nothing is dropped silently.
    for (key, value, origin) in &vars {
        if !USED.contains(&key.as_str()) {
            out.warnings.push(format!(
                "{origin}: {key}={value} is not about the bond: left out"
            ));
        }
    }
    let get = |k: &str| vars.iter().find(|(key, _, _)| key == k);
    let device = get("DEVICE").map(|(_, v, _)| v.clone()).or_else(|| {
        // ifcfg-NAME names the device when DEVICE= is missing.
        let base = file.rsplit('/').next().unwrap_or(file);
        base.strip_prefix("ifcfg-").map(String::from)
    });
    if let Some((_, master, _)) = get("MASTER") {
        if let Some(member) = &device {
            out.add_member(master, member);
        }
        return Ok(());
    }
    let is_bond = get("BONDING_OPTS").is_some()
        || get("BONDING_MASTER").is_some_and(|(_, v, _)| v.eq_ignore_ascii_case("yes"))
        || get("TYPE").is_some_and(|(_, v, _)| v.eq_ignore_ascii_case("bond"));
    let (Some(bond), true) = (device, is_bond) else {
        return Ok(());
    };
    out.bond(&bond);
    if let Some((_, opts, origin)) = get("BONDING_OPTS") {
        out.options(&bond, opts, origin)?;
    }
    if let Some((_, ip, _)) = get("IPADDR") {
        let netmask = get("NETMASK").and_then(|(_, m, _)| prefix_of(m));
        let prefix = get("PREFIX")
            .map(|(_, p, _)| p.clone())
            .or(netmask)
            .unwrap_or_else(|| "32".into());
        out.bond(&bond).addresses.push(format!("{ip}/{prefix}"));
    }
    Ok(())
}

/// The keys the importer reads; the rest of an ifcfg file is about other things (boot,
/// NetworkManager, routes) and is reported as left out.
const USED: &[&str] = &[
    "DEVICE",
    "NAME",
    "TYPE",
    "MASTER",
    "SLAVE",
    "BONDING_MASTER",
    "BONDING_OPTS",
    "IPADDR",
    "PREFIX",
    "NETMASK",
];

/// 255.255.255.0 -> "24" (RHEL 5/6 files write NETMASK where later ones write PREFIX).
fn prefix_of(netmask: &str) -> Option<String> {
    let ip: std::net::Ipv4Addr = netmask.parse().ok()?;
    let bits = u32::from(ip);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then(|| bits.leading_ones().to_string())
}
