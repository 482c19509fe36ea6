//! ifupdown / ifupdown2 `/etc/network/interfaces`, as Proxmox writes it:
//!
//! ```text
//! auto bond0
//! iface bond0 inet manual
//!     bond-slaves eno1 eno2
//!     bond-miimon 100
//!     bond-mode 802.3ad
//!     bond-xmit-hash-policy layer3+4
//!
//! auto vmbr0
//! iface vmbr0 inet static
//!     address 192.0.2.10/24
//!     bridge-ports bond0
//!     bridge-vlan-aware yes
//! ```
//!
//! `bond-*` keys are the kernel's options with dashes; members come from `bond-slaves` on the
//! bond or `bond-master` on the member. A bridge over the bond keeps its addresses: bond-dp
//! serves the bond as a TAP device, which goes into the bridge in the bond's place.

use super::{lines, ImportError, Imported, Origin};

pub(super) fn claims(text: &str) -> bool {
    lines(text).any(|(_, l)| l.starts_with("iface ") || l.starts_with("auto "))
}

/// An option line of a stanza: key, value, where.
type OptionLine = (String, String, Origin);

/// `bond-*` keys that are not kernel options.
const MEMBER_KEYS: &[&str] = &["bond-slaves", "bond-master"];

pub(super) fn read(file: &str, text: &str, out: &mut Imported) -> Result<(), ImportError> {
    // Each stanza: the interface, where it starts, and its option lines.
    let mut stanzas: Vec<(String, Origin, Vec<OptionLine>)> = Vec::new();
    for (line, l) in lines(text) {
        let origin = Origin {
            file: file.to_string(),
            line,
        };
        let mut words = l.split_whitespace();
        let first = words.next().unwrap_or("");
        match first {
            "iface" => {
                let Some(name) = words.next() else {
                    return Err(ImportError::Syntax {
                        origin,
                        reason: "iface needs a name".into(),
                    });
                };
                stanzas.push((name.to_string(), origin, Vec::new()));
            }
            "source" | "source-directory" => out.warnings.push(format!(
                "{origin}: {l}: bonds in those files are not read; name them to bond-dp import \
                 too"
            )),
            "auto" | "allow-hotplug" | "mapping" => {}
            key => {
                if let Some((_, _, options)) = stanzas.last_mut() {
                    let value = words.collect::<Vec<_>>().join(" ");
                    options.push((key.to_string(), value, origin));
                }
            }
        }
    }
    let is_bond = |options: &[OptionLine]| {
        options
            .iter()
            .any(|(k, _, _)| k.starts_with("bond-") && k != "bond-master")
    };
    for (name, _, options) in &stanzas {
        if is_bond(options) {
            out.bond(name);
            for (key, value, origin) in options {
                match key.as_str() {
                    "bond-slaves" | "bond-ports" if value != "none" => {
                        for member in value.split_whitespace() {
                            out.add_member(name, member);
                        }
                    }
                    k if k.starts_with("bond-") && !MEMBER_KEYS.contains(&k) => {
                        let option = k["bond-".len()..].replace('-', "_");
                        // Lists (arp targets) are space separated here.
                        let value = value.split_whitespace().collect::<Vec<_>>().join(",");
                        out.option(name, &option, &value, origin)?;
                    }
                    "address" => out.bond(name).addresses.push(value.clone()),
                    "bond-slaves" | "bond-ports" | "bond-master" => {}
                    // The stanza's own business (how it comes up, its routes): reported.
                    _ => out.warnings.push(format!(
                        "{origin}: {key} {value} is not about the bond: left out"
                    )),
                }
            }
        }
        if let Some((_, bond, _)) = options.iter().find(|(k, _, _)| k == "bond-master") {
            out.add_member(bond, name);
        }
    }
    // Bridges over a bond: the TAP device goes into the bridge; the addresses stay on it.
    for (name, stanza, options) in &stanzas {
        let bridge_ports = options.iter().find(|(k, _, _)| k == "bridge-ports");
        let over_a_bond = bridge_ports.is_some_and(|(_, ports, _)| {
            ports
                .split_whitespace()
                .any(|p| out.bonds.iter().any(|b| b.name == p))
        });
        let is_member = out.bonds.iter().any(|b| b.members.contains(name));
        if is_member && !is_bond(options) {
            for (key, value, origin) in options.iter().filter(|(k, _, _)| k != "bond-master") {
                out.warnings.push(format!(
                    "{origin}: {key} {value} is on member {name}, not the bond: left out"
                ));
            }
        }
        if !over_a_bond && !is_member && !is_bond(options) {
            // Nothing dropped silently: the stanza is named once, not line by line.
            out.warnings.push(format!(
                "{stanza}: iface {name} is not a bond, a member or a bridge over a bond: left \
                 out"
            ));
        }
        let Some((_, ports, origin)) = bridge_ports else {
            continue;
        };
        for port in ports.split_whitespace() {
            if out.bonds.iter().any(|b| b.name == port) {
                let vlan_aware = options
                    .iter()
                    .any(|(k, v, _)| k == "bridge-vlan-aware" && v == "yes");
                let vlans = if vlan_aware {
                    ", VLAN-aware: tagged frames cross the bond as they are"
                } else {
                    ""
                };
                out.warnings.push(format!(
                    "{origin}: bridge {name} is over bond {port}: bond-dp serves {port} as a \
                     TAP device; keep the bridge and its addresses, and add the TAP to it \
                     (ip link set {port} master {name}){vlans}"
                ));
            }
        }
    }
    Ok(())
}
