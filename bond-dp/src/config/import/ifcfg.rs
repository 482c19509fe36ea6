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
        let prefix = get("PREFIX").map_or("32".to_string(), |(_, p, _)| p.clone());
        out.bond(&bond).addresses.push(format!("{ip}/{prefix}"));
    }
    Ok(())
}
