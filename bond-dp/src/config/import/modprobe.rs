//! modprobe configuration: `options bonding mode=... miimon=... max_bonds=N` gives the
//! options of every bond the module creates (bond0 .. bondN-1), and `alias netdev-bond0
//! bonding` / `alias bond0 bonding` names one; RHEL 5/6 files then give that bond its own
//! options under the alias name (`options bond0 mode=0 miimon=1000`). Members are not
//! written there. Lines about other modules are reported and left out.

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
    let origin = |line| Origin {
        file: file.to_string(),
        line,
    };
    // The aliases first: an `options NAME` line may come before its alias.
    let named: Vec<String> = lines(text)
        .filter_map(
            |(_, l)| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["alias", name, "bonding"] => {
                    Some(name.strip_prefix("netdev-").unwrap_or(name).to_string())
                }
                _ => None,
            },
        )
        .collect();
    let mut max_bonds = 1;
    let mut module_options = Vec::new();
    let mut bond_options: Vec<(String, Vec<Setting>)> = Vec::new();
    for (line, l) in lines(text) {
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            ["options", "bonding", rest @ ..] => {
                for (key, value) in pairs(rest, &origin(line))? {
                    match key.as_str() {
                        "max_bonds" => {
                            max_bonds = value.parse().map_err(|_| ImportError::Syntax {
                                origin: origin(line),
                                reason: format!("max_bonds: not a number: \"{value}\""),
                            })?;
                            if max_bonds > MAX_BONDS {
                                return Err(ImportError::Syntax {
                                    origin: origin(line),
                                    reason: format!(
                                        "max_bonds={max_bonds}: at most {MAX_BONDS} bonds are \
                                         imported from one file"
                                    ),
                                });
                            }
                        }
                        k if MODULE_ONLY.contains(&k) => out.warnings.push(format!(
                            "{}: {k} is a module parameter bond-dp has no use for: left out",
                            origin(line)
                        )),
                        _ => module_options.push((key, value, origin(line))),
                    }
                }
            }
            ["options", name, rest @ ..] if named.iter().any(|n| n == name) => {
                let options = pairs(rest, &origin(line))?
                    .into_iter()
                    .map(|(k, v)| (k, v, origin(line)))
                    .collect();
                bond_options.push((name.to_string(), options));
            }
            ["alias", _, "bonding"] => {}
            _ => out.warnings.push(format!(
                "{}: \"{l}\" is not about bonding: left out",
                origin(line)
            )),
        }
    }
    // The module's bonds, unless the file only names bonds of its own.
    let mut bonds: Vec<String> = if module_options.is_empty() && !named.is_empty() {
        Vec::new()
    } else {
        (0..max_bonds).map(|i| format!("bond{i}")).collect()
    };
    for name in &named {
        if !bonds.contains(name) {
            bonds.push(name.clone());
        }
    }
    for bond in &bonds {
        out.bond(bond);
        for (key, value, origin) in &module_options {
            out.option(bond, key, value, origin)?;
        }
        // Options under the bond's own name win over the module's.
        for (_, options) in bond_options.iter().filter(|(n, _)| n == bond) {
            for (key, value, origin) in options {
                out.option(bond, key, value, origin)?;
            }
        }
    }
    Ok(())
}

/// An option as a line set it: key, value and where.
type Setting = (String, String, Origin);

/// At most this many bonds from one `max_bonds` (a bigger figure is a typo, and would write
/// thousands of bonds).
const MAX_BONDS: usize = 64;

/// `key=value` words.
fn pairs(words: &[&str], origin: &Origin) -> Result<Vec<(String, String)>, ImportError> {
    words
        .iter()
        .map(|word| {
            word.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ImportError::Syntax {
                    origin: origin.clone(),
                    reason: format!("expected key=value, got \"{word}\""),
                })
        })
        .collect()
}
