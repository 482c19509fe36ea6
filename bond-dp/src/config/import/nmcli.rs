//! nmcli command lines, as operators keep them in runbooks:
//!
//! ```sh
//! nmcli con add type bond con-name bond0 ifname bond0 bond.options "mode=active-backup,miimon=100"
//! nmcli con add type ethernet ifname eth0 master bond0      # or type bond-slave
//! nmcli con mod bond0 bond.options "mode=802.3ad,miimon=100"   # +bond.options adds
//! nmcli con mod bond0 ipv4.addresses 192.0.2.10/24
//! ```

use super::{command_words, shell_commands, ImportError, Imported, Origin};

pub(super) fn claims(text: &str) -> bool {
    shell_commands(text).iter().any(|(_, words)| {
        words
            .as_ref()
            .is_ok_and(|w| command_words(w).first() == Some(&"nmcli"))
    })
}

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    // Connection names to the interfaces they configure (`con mod` takes the former).
    let mut connections: Vec<(String, String)> = Vec::new();
    for (line, words) in shell_commands(text) {
        let origin = Origin {
            file: file.to_string(),
            line,
        };
        let words = words.map_err(|reason| ImportError::Syntax {
            origin: origin.clone(),
            reason,
        })?;
        let words = command_words(&words);
        let unused = |out: &mut Imported, what: &str| {
            out.warnings
                .push(format!("{origin}: {what}: nothing to import, left out"))
        };
        let args: Vec<&str> = match words.split_first() {
            // nmcli's global options (-t, --wait 5, ...) come before the object.
            Some((&"nmcli", rest)) => {
                let mut args = rest.to_vec();
                while let Some(opt) = args.first().copied().filter(|a| a.starts_with('-')) {
                    args.remove(0);
                    if matches!(opt, "--wait" | "-w" | "--fields" | "-f" | "--colors")
                        && !args.is_empty()
                    {
                        args.remove(0);
                    }
                }
                args
            }
            _ => {
                unused(out, &format!("\"{}\" is not nmcli", words.join(" ")));
                continue;
            }
        };
        let (verb, rest) = match args.as_slice() {
            ["connection" | "con" | "c", verb, rest @ ..] => (*verb, rest),
            _ => {
                unused(out, &format!("\"{}\"", words.join(" ")));
                continue;
            }
        };
        let add = matches!(verb, "add" | "a");
        let (target, pairs) = match (add, rest) {
            (true, pairs) => (None, pairs),
            (false, [name, pairs @ ..]) if matches!(verb, "modify" | "mod" | "m") => {
                (Some(*name), pairs)
            }
            _ => {
                unused(out, &format!("\"{}\"", words.join(" ")));
                continue;
            }
        };
        if pairs.len() % 2 != 0 {
            return Err(ImportError::Syntax {
                origin,
                reason: "settings come in pairs: setting value".into(),
            });
        }
        let pairs: Vec<(&str, &str)> = pairs.chunks(2).map(|p| (p[0], p[1])).collect();
        let get = |k: &[&str]| {
            pairs
                .iter()
                .find(|(key, _)| k.contains(key))
                .map(|(_, v)| *v)
        };
        let ifname = get(&["ifname", "connection.interface-name"]);
        let con_name = get(&["con-name", "connection.id"]);
        let kind = get(&["type", "connection.type"]);
        let master = get(&[
            "master",
            "controller",
            "connection.master",
            "connection.controller",
        ]);
        let bond = match (target, kind, master) {
            (_, _, Some(master)) => {
                let master = resolve(&connections, master);
                if let Some(member) = ifname {
                    out.add_member(&master, member);
                }
                continue;
            }
            (None, Some("bond"), _) => {
                let Some(name) = ifname.or(con_name) else {
                    return Err(ImportError::Syntax {
                        origin,
                        reason: "a bond needs ifname".into(),
                    });
                };
                connections.push((con_name.unwrap_or(name).to_string(), name.to_string()));
                name.to_string()
            }
            (Some(name), _, _) => resolve(&connections, name),
            _ => {
                unused(
                    out,
                    &format!("a connection of type {}", kind.unwrap_or("?")),
                );
                continue;
            }
        };
        out.bond(&bond);
        for (key, value) in &pairs {
            match *key {
                "bond.options" | "+bond.options" => out.options(&bond, value, &origin)?,
                // nmcli's shorthands for bond.options.
                "mode" | "miimon" | "primary" | "updelay" | "downdelay" | "arp-interval"
                | "arp-ip-target" => out.option(&bond, &key.replace('-', "_"), value, &origin)?,
                "ipv4.addresses" | "+ipv4.addresses" | "ipv6.addresses" | "+ipv6.addresses" => {
                    let b = out.bond(&bond);
                    b.addresses
                        .extend(value.split(',').map(|a| a.trim().to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The interface a connection name stands for (itself when unknown).
fn resolve(connections: &[(String, String)], name: &str) -> String {
    connections
        .iter()
        .find(|(con, _)| con == name)
        .map_or(name, |(_, ifname)| ifname)
        .to_string()
}
