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
    /// .netdev), with where each was read.
    pending_addresses: Vec<(String, Vec<(String, Origin)>)>,
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
            let bond = imported.bond(&name);
            bond.addresses.extend(addresses.into_iter().map(|(a, _)| a));
        } else {
            for (address, origin) in addresses {
                imported.warnings.push(format!(
                    "{origin}: Address={address} is on {name}, which is not a bond: left out"
                ));
            }
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

/// Lines without comment lines and blank lines, numbered from 1. A comment is a whole line
/// starting with `#` (or `;`, as systemd allows): in these files a `#` later in a line is
/// part of the value (a quoted ifcfg value, a connection name), so it is left to the
/// dialect.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
}

/// Splits a line into words as a shell would: quotes group, backslashes escape, a `#` that
/// starts a word starts a comment.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    ::shell_words::split(line).map_err(|_| "unterminated quote".to_string())
}

/// A shell script's commands, numbered by the line each starts on: a line that ends in a
/// backslash, or leaves a quote open, goes on on the next one (as guides print long `nmcli`
/// commands). Blank and comment-only commands are left out.
fn shell_commands(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut commands = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (start, mut command) = pending.take().unwrap_or((i + 1, String::new()));
        command.push_str(line);
        let continued = line.ends_with('\\') && !line.ends_with("\\\\");
        let open_quote = ::shell_words::split(&command).is_err();
        if continued || open_quote {
            command.push('\n');
            pending = Some((start, command));
            continue;
        }
        match shell_words(&command) {
            Ok(words) if words.is_empty() => {}
            words => commands.push((start, words)),
        }
    }
    if let Some((start, command)) = pending {
        commands.push((start, shell_words(&command)));
    }
    commands
}

/// A command's words without a leading `sudo` (and its options) and with the program as
/// its file name: `sudo -E /usr/bin/nmcli con add` reads as `nmcli con add`.
fn command_words(words: &[String]) -> Vec<&str> {
    let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.first() == Some(&"sudo") {
        w.remove(0);
        while let Some(opt) = w.first().copied().filter(|o| o.starts_with('-')) {
            w.remove(0);
            // The options of sudo's that take a value, given apart.
            if matches!(
                opt,
                "-u" | "-g" | "-h" | "-p" | "-C" | "-D" | "-r" | "-t" | "-U"
            ) && !w.is_empty()
            {
                w.remove(0);
            }
        }
    }
    if let Some(program) = w.first_mut() {
        *program = program.rsplit('/').next().unwrap_or(program);
    }
    w
}

#[cfg(test)]
mod tests;
