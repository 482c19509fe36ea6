//! What a running bond writes down in the run directory (`<bond>.state`), so that whoever
//! starts next can tell a live bond-dp from one that died, and undo what a dead one left:
//! the members' own MACs (bond-dp gave them the bond's), its TAP device (persistent, so the
//! host's addresses survive a crash; the next start takes it over) and, after a clean stop,
//! the TAP's addresses for the next start to put back.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wire::MacAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondRecord {
    pub bond: String,
    pub pid: u32,
    /// The process's start time (/proc/PID/stat): a pid the kernel has given to another
    /// process since is not this one.
    pub started: u64,
    /// The bond's TAP device, if its host side is one.
    pub tap: Option<String>,
    pub members: Vec<MemberRecord>,
    /// The TAP's addresses when the bond stopped cleanly ("10.0.0.1/24"), to put back.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The bond stopped on a signal and put everything back itself.
    #[serde(default)]
    pub stopped_cleanly: bool,
}

/// A member as bond-dp found it: its own MAC, before bond-dp changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub name: String,
    pub ifindex: u32,
    pub mac: MacAddr,
}

impl BondRecord {
    /// A record of this process for `bond`.
    pub fn new(bond: &str, tap: Option<String>, members: Vec<MemberRecord>) -> BondRecord {
        let pid = std::process::id();
        BondRecord {
            bond: bond.to_string(),
            pid,
            started: start_time(pid).unwrap_or(0),
            tap,
            members,
            addresses: Vec::new(),
            stopped_cleanly: false,
        }
    }

    /// Whether the recorded process still runs the bond (and is not this one). One that
    /// stopped cleanly holds nothing, even while it is still exiting.
    pub fn alive(&self) -> bool {
        !self.stopped_cleanly
            && self.pid != std::process::id()
            && start_time(self.pid) == Some(self.started)
    }

    pub fn path(run_dir: &Path, bond: &str) -> PathBuf {
        run_dir.join(format!("{bond}.state"))
    }

    /// Writes the record whole or not at all (a crash mid-write leaves the old one).
    pub fn write(&self, run_dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(run_dir)?;
        let path = Self::path(run_dir, &self.bond);
        let tmp = path.with_extension("state.tmp");
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    }

    /// The member record of `name` if it is still the same device (same ifindex).
    pub fn member(&self, name: &str, ifindex: u32) -> Option<&MemberRecord> {
        self.members
            .iter()
            .find(|m| m.name == name && m.ifindex == ifindex)
    }
}

/// Every bond record in `run_dir`; unreadable ones are reported and left out.
pub fn read_all(run_dir: &Path) -> Vec<BondRecord> {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("state") {
            continue;
        }
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(record) => records.push(record),
            Err(e) => tracing::warn!("ignoring {}: {e}", path.display()),
        }
    }
    records.sort_by(|a: &BondRecord, b| a.bond.cmp(&b.bond));
    records
}

/// When process `pid` started (clock ticks after boot, field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// The command name in /proc/PID/stat may hold spaces and parentheses: fields are counted
/// after its closing parenthesis, where field 3 (the state) begins.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_after_the_command_name() {
        let stat = "4242 (bond (dp) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 10 20 0 0 20 0 \
                    5 0 987654 123456789 100 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn records_round_trip_and_tell_the_living_from_the_dead() {
        let dir = tempfile::tempdir().unwrap();
        let member = MemberRecord {
            name: "m0".into(),
            ifindex: 7,
            mac: "02:00:00:00:00:01".parse().unwrap(),
        };
        let own = BondRecord::new("bond0", Some("bond0".into()), vec![member.clone()]);
        own.write(dir.path()).unwrap();
        // This process's own record is not "another live bond-dp".
        assert!(!own.alive());
        let mut parent = own.clone();
        parent.bond = "bond1".into();
        parent.pid = std::os::unix::process::parent_id();
        parent.started = start_time(parent.pid).unwrap();
        assert!(parent.alive());
        // Same pid, another start time: the pid was reused, the recorded process is gone.
        parent.started += 1;
        assert!(!parent.alive());
        parent.write(dir.path()).unwrap();
        std::fs::write(dir.path().join("broken.state"), "{").unwrap();
        let all = read_all(dir.path());
        assert_eq!(all, vec![own.clone(), parent]);
        assert_eq!(own.member("m0", 7), Some(&member));
        assert_eq!(
            own.member("m0", 8),
            None,
            "a re-created m0 is another device"
        );
    }
}
