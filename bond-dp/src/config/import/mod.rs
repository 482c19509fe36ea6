//! Importing the bonds operators already wrote for other tools, into bond-dp's TOML.
//!
//! Each dialect reads its files into bonds (name, members, option words, addresses); option
//! words go through the same rules as `--options`. An unknown key is reported with its file
//! and line and the nearest known option (typos travel from blog posts into configs) and left
//! out; a bad value refuses the import, as the kernel would refuse the bond.
//!
//! Dialects: RHEL ifcfg files (`ifcfg`), modprobe options (`modprobe`), nmcli command lines
//! (`nmcli`), systemd-networkd `.netdev`/`.network` files (`networkd`), ifupdown / Proxmox
//! `/etc/network/interfaces` (`ifupdown`).

mod ifcfg;
mod ifupdown;
mod modprobe;
mod networkd;
mod nmcli;

use std::fmt;
use std::fmt::Write as _;

use thiserror::Error;

use super::{BondOptions, OptionError};

/// Where something was read: "file:line".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("{origin}: {error}")]
    Option { origin: Origin, error: OptionError },
    #[error("{origin}: {reason}")]
    Syntax { origin: Origin, reason: String },
    #[error("{file}: cannot tell which tool wrote it (bond-dp imports ifcfg files, modprobe options, nmcli command lines, systemd-networkd files and /etc/network/interfaces)")]
    UnknownDialect { file: String },
}

/// One bond as another tool described it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedBond {
    pub name: String,
    pub members: Vec<String>,
    pub options: BondOptions,
    /// Addresses the tool put on the bond, which go on bond-dp's TAP device.
    pub addresses: Vec<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Imported {
    pub bonds: Vec<ImportedBond>,
    /// Keys left out, and what the operator should know; each names its origin.
    pub warnings: Vec<String>,
    /// Addresses of interfaces not known to be bonds yet (a .network file read before its
    /// .netdev).
    pending_addresses: Vec<(String, Vec<String>)>,
}

impl Imported {
    /// The bond named `name`, created (with default options) on first mention.
    fn bond(&mut self, name: &str) -> &mut ImportedBond {
        let i = match self.bonds.iter().position(|b| b.name == name) {
            Some(i) => i,
            None => {
                self.bonds.push(ImportedBond {
                    name: name.to_string(),
                    members: Vec::new(),
                    options: BondOptions::default(),
                    addresses: Vec::new(),
                });
                self.bonds.len() - 1
            }
        };
        &mut self.bonds[i]
    }

    fn add_member(&mut self, bond: &str, member: &str) {
        let b = self.bond(bond);
        if !b.members.iter().any(|m| m == member) {
            b.members.push(member.to_string());
        }
    }

    /// Applies an option string to `bond`, as `--options` takes it (nmcli's commas or
    /// BONDING_OPTS' spaces).
    fn options(&mut self, bond: &str, text: &str, origin: &Origin) -> Result<(), ImportError> {
        let words = super::tokenize(text).map_err(|error| ImportError::Option {
            origin: origin.clone(),
            error,
        })?;
        for (key, value) in words {
            self.option(bond, &key, &value, origin)?;
        }
        Ok(())
    }

    /// Applies one option: an unknown key is a warning, a bad value an error.
    fn option(
        &mut self,
        bond: &str,
        key: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<(), ImportError> {
        match self.bond(bond).options.set(key, value) {
            Ok(()) => Ok(()),
            Err(error @ OptionError::Unknown { .. }) => {
                self.warnings.push(format!("{origin}: {error}: left out"));
                Ok(())
            }
            Err(error) => Err(ImportError::Option {
                origin: origin.clone(),
                error,
            }),
        }
    }

    /// The bonds as bond-dp's TOML, with the warnings and addresses as comments.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# Imported by bond-dp import.\n");
        for w in &self.warnings {
            let _ = writeln!(out, "# warning: {w}");
        }
        for b in &self.bonds {
            let members: Vec<String> = b.members.iter().map(|m| format!("\"{m}\"")).collect();
            let _ = writeln!(out, "\n[bond.{}]", b.name);
            let _ = writeln!(out, "members = [{}]", members.join(", "));
            let _ = writeln!(out, "options = \"{}\"", b.options.to_option_string());
            for a in &b.addresses {
                let _ = writeln!(
                    out,
                    "# address: {a}: put it on the TAP device: ip addr add {a} dev {}",
                    b.name
                );
            }
        }
        out
    }
}

/// Whether another tool wrote `text` (one of the dialects claims it).
pub fn claims(text: &str) -> bool {
    ifcfg::claims(text)
        || modprobe::claims(text)
        || nmcli::claims(text)
        || networkd::claims(text)
        || ifupdown::claims(text)
}

/// Reads files of any dialect into bonds; several files may describe one bond (an ifcfg
/// file per member, say).
pub fn import(files: &[(String, String)]) -> Result<Imported, ImportError> {
    let mut imported = Imported::default();
    for (file, text) in files {
        if ifcfg::claims(text) {
            ifcfg::read(file, text, &mut imported)?;
        } else if modprobe::claims(text) {
            modprobe::read(file, text, &mut imported)?;
        } else if nmcli::claims(text) {
            nmcli::read(file, text, &mut imported)?;
        } else if networkd::claims(text) {
            networkd::read(file, text, &mut imported)?;
        } else if ifupdown::claims(text) {
            ifupdown::read(file, text, &mut imported)?;
        } else {
            return Err(ImportError::UnknownDialect { file: file.clone() });
        }
    }
    for (name, addresses) in std::mem::take(&mut imported.pending_addresses) {
        if imported.bonds.iter().any(|b| b.name == name) {
            imported.bond(&name).addresses.extend(addresses);
        }
    }
    for b in &mut imported.bonds {
        if b.members.is_empty() {
            imported.warnings.push(format!(
                "bond {} has no members: add them to its members list",
                b.name
            ));
        }
    }
    Ok(imported)
}

/// Lines without comments and blank lines, numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Splits a line into words as a shell would: quotes group, backslashes escape.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
        if quote.is_some() {
            in_word = true;
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests;
