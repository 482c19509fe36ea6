//! modprobe configuration: `options bonding mode=... miimon=... max_bonds=N` gives the
//! options of every bond the module creates (bond0 .. bondN-1), and `alias netdev-bond0
//! bonding` / `alias bond0 bonding` names one. Members are not written there.

use super::{lines, ImportError, Imported, Origin};

pub(super) fn claims(text: &str) -> bool {
    lines(text).any(|(_, l)| {
        let words: Vec<&str> = l.split_whitespace().collect();
        matches!(
            words.as_slice(),
            ["options", "bonding", ..] | ["alias", _, "bonding"]
        )
    })
}

/// Module parameters that are not bond options.
const MODULE_ONLY: &[&str] = &["max_bonds", "tx_queues"];

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    let mut max_bonds = 1;
    let mut options = Vec::new();
    let mut named = Vec::new();
    for (line, l) in lines(text) {
        let origin = Origin {
            file: file.to_string(),
            line,
        };
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            ["options", "bonding", rest @ ..] => {
                for word in rest {
                    let Some((key, value)) = word.split_once('=') else {
                        return Err(ImportError::Syntax {
                            origin,
                            reason: format!("expected key=value, got \"{word}\""),
                        });
                    };
                    match key {
                        "max_bonds" => {
                            max_bonds = value.parse().map_err(|_| ImportError::Syntax {
                                origin: origin.clone(),
                                reason: format!("max_bonds: not a number: \"{value}\""),
                            })?
                        }
                        k if MODULE_ONLY.contains(&k) => out.warnings.push(format!(
                            "{origin}: {k} is a module parameter bond-dp has no use for: left out"
                        )),
                        _ => options.push((key.to_string(), value.to_string(), origin.clone())),
                    }
                }
            }
            ["alias", name, "bonding"] => {
                named.push(name.strip_prefix("netdev-").unwrap_or(name).to_string())
            }
            _ => {}
        }
    }
    let mut bonds: Vec<String> = (0..max_bonds).map(|i| format!("bond{i}")).collect();
    for name in named {
        if !bonds.contains(&name) {
            bonds.push(name);
        }
    }
    for bond in &bonds {
        out.bond(bond);
        for (key, value, origin) in &options {
            out.option(bond, key, value, origin)?;
        }
    }
    Ok(())
}
