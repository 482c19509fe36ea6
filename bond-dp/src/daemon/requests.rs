//! What a bond's control socket answers: status, option changes, members joining and leaving.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing::{error, info, warn};

use super::{log_event, SharedPlane};
use crate::bond::Bond;
use crate::control::{BondStatus, DataPlaneStatus, Request};
use crate::dataplane::{DataPlane, DataPlaneError, Joining, Leftovers};
use crate::monitor::{read_link, set_mac};

/// What a bond's control socket answers from.
pub(super) struct Control {
    pub(super) bond: Arc<Mutex<Bond>>,
    pub(super) plane: SharedPlane,
    /// The other bonds of the process: a member belongs to one bond only.
    pub(super) others: Vec<Arc<Mutex<Bond>>>,
    /// Where the bond's record is kept (members and their own MACs).
    pub(super) run_dir: PathBuf,
}

impl Control {
    pub(super) fn answer(&self, req: Request) -> String {
        if let Request::Set { name, value } = &req {
            if name == "slaves" {
                return self.change_members(value);
            }
        }
        match req {
            Request::Status => self.status().to_proc(),
            Request::StatusJson => {
                serde_json::to_string_pretty(&self.status()).unwrap_or_default() + "\n"
            }
            Request::Set { name, value } => {
                set_option(&mut self.bond.lock().expect("bond lock"), &name, &value)
            }
        }
    }

    /// The bond's status, copied under its lock and rendered after: the monitor waits on a
    /// status request no longer than the copy takes.
    fn status(&self) -> BondStatus {
        bond_status(&self.bond.lock().expect("bond lock"), &self.plane)
    }

    /// `bond-dp set BOND slaves +IF|-IF`, as the kernel's sysfs `slaves` file takes it: the
    /// member joins or leaves and the data plane is rebuilt around the new member list.
    fn change_members(&self, value: &str) -> String {
        let (add, iface) = match (value.strip_prefix('+'), value.strip_prefix('-')) {
            (Some(iface), _) => (true, iface),
            (_, Some(iface)) => (false, iface),
            _ => {
                return format!(
                "error: slaves takes +IF to add a member or -IF to remove one, not \"{value}\"\n"
            )
            }
        };
        if add {
            let mut configs = Vec::new();
            for other in &self.others {
                let other = other.lock().expect("bond lock");
                if other.member_names().any(|m| m == iface) {
                    return format!("error: {iface} is a member of bond {}\n", other.name());
                }
                configs.push(other.config.clone());
            }
            configs.push(self.bond.lock().expect("bond lock").config.clone());
            let records = super::record::read_all(&self.run_dir);
            let hosts = super::takeover::host_devices(configs.iter(), &records);
            if let Err(e) = super::takeover::refuse_device(iface, &hosts) {
                return format!("error: {e}\n");
            }
            let held = records.iter().filter(|r| r.alive());
            if let Some(r) = held
                .into_iter()
                .find(|r| r.members.iter().any(|m| m.name == iface))
            {
                return format!(
                    "error: {iface} is a member of bond {} of another bond-dp (pid {})\n",
                    r.bond, r.pid
                );
            }
        }
        // A member that joins is set up first (the program verified for its device, its
        // sockets bound), without the bond's locks: the monitor never waits on that.
        let joining = if add { self.prepare_join(iface) } else { None };
        let mut leftovers = Leftovers::default();
        let reply = self.apply_change(add, iface, joining, &mut leftovers);
        // Closing sockets and detaching the program wait on the kernel: without the locks.
        leftovers.finish();
        reply
    }

    /// A member set up to join the running data plane; `None` where there is no data plane,
    /// another member is joining, or the set-up failed (the data plane is rebuilt then).
    fn prepare_join(&self, iface: &str) -> Option<Joining> {
        let joiner = {
            let bond = self.bond.lock().expect("bond lock");
            if bond.member_id(iface).is_some() {
                return None; // refused below, with the reason
            }
            let mut plane = self.plane.lock().expect("plane lock");
            plane.as_mut()?.joiner(&bond, iface)?
        };
        match joiner.prepare(iface) {
            Ok(joining) => Some(joining),
            Err(e) => {
                info!(bond = %self.name(), member = iface, "setting the member up for the running data plane: {e}");
                None
            }
        }
    }

    fn name(&self) -> String {
        self.bond.lock().expect("bond lock").name().to_string()
    }

    /// The member change itself, under the bond's locks: the bond's member list, then the
    /// data plane (in place where it can be, rebuilt otherwise). What is left to close goes
    /// into `leftovers`.
    fn apply_change(
        &self,
        add: bool,
        iface: &str,
        mut joining: Option<Joining>,
        leftovers: &mut Leftovers,
    ) -> String {
        let value = if add {
            format!("+{iface}")
        } else {
            format!("-{iface}")
        };
        let mut bond = self.bond.lock().expect("bond lock");
        let mut plane = self.plane.lock().expect("plane lock");
        let locked = std::time::Instant::now();
        let leaving = bond.member_id(iface);
        let changed = if add {
            read_link(iface)
                .map_err(|e| format!("{iface}: {e}"))
                .and_then(|facts| bond.add_member(iface, facts))
                .map(|events| (events, None))
        } else {
            // Not the last member: that one is refused.
            if let Some(id) = bond.member_id(iface).filter(|_| bond.member_count() > 1) {
                super::lacp_farewell(&mut bond, id);
            }
            bond.remove_member(iface)
                .map(|(events, own_mac)| (events, Some(own_mac)))
        };
        let (events, own_mac) = match changed {
            Ok(changed) => changed,
            Err(e) => {
                if let Some(j) = joining.take() {
                    *leftovers = Leftovers::from(j);
                }
                return format!("error: {e}\n");
            }
        };
        if crate::fault::injected("rebuild-slow") {
            // Debug builds: a member change that takes long, with the bond's locks held, for
            // the test that proves it does not hold up the other bonds' monitoring.
            std::thread::sleep(SLOW_REBUILD);
        }
        let in_place = match (plane.as_mut(), leaving, joining.take()) {
            (None, _, _) => Ok(()), // --host none: no data plane
            (Some(p), _, Some(j)) if add => p.member_joined(&bond, j).map_err(|not| {
                // Off the device before a rebuild attaches a new program to it.
                not.leftovers.finish();
                not.why
            }),
            (Some(_), _, _) if add => Err(DataPlaneError::Engine(
                "the member could not be set up for it".into(),
            )),
            (Some(p), Some(left), _) => p.member_left(&bond, left).map(|rest| *leftovers = rest),
            (Some(_), None, _) => unreachable!("remove_member refuses a non-member"),
        };
        if let Err(why) = in_place {
            info!(
                bond = bond.name(),
                member = iface,
                "rebuilding the data plane around the new members: {why}"
            );
            if let Err(e) = rebuild(&mut plane, &mut bond, add, iface) {
                return format!("error: {value}: {e}\n");
            }
        }
        super::takeover::save(&bond, &self.run_dir);
        let verb = if add { "added" } else { "removed" };
        info!(
            bond = bond.name(),
            member = iface,
            locks_held_us = locked.elapsed().as_micros() as u64,
            "member {verb}"
        );
        for event in &events {
            log_event(bond.name(), event);
        }
        if let Some(mac) = own_mac {
            // A member that leaves gets its own MAC back.
            if read_link(iface).is_ok_and(|f| f.mac != mac) {
                if let Err(e) = set_mac(iface, mac) {
                    warn!(
                        bond = bond.name(),
                        member = iface,
                        "giving back its MAC {mac}: {e}"
                    );
                }
            }
        }
        "ok\n".into()
    }
}

/// A bond's status with its data plane's counters.
pub(super) fn bond_status(bond: &Bond, plane: &Mutex<Option<DataPlane>>) -> BondStatus {
    let mut status = bond.status();
    let plane = plane.lock().expect("plane lock");
    status.data_plane = plane.as_ref().map(|p| DataPlaneStatus {
        xdp_modes: p
            .attach_modes
            .iter()
            .map(|m| m.map_or("absent".into(), |m| format!("{m:?}").to_lowercase()))
            .collect(),
        workers: bond.config.engine.workers,
        max_mtu: bond.config.max_mtu(),
        counters: p.counters_view(),
        xdp: p.xdp_counters(),
    });
    status
}

/// How long `BOND_DP_FAULT=rebuild-slow` makes a member change take.
const SLOW_REBUILD: std::time::Duration = std::time::Duration::from_secs(3);

/// Rebuilds a bond's data plane around its new member list. If that fails, undoes the change
/// of member `iface` (`added` or removed) and rebuilds around the members that worked.
fn rebuild(
    plane: &mut Option<DataPlane>,
    bond: &mut Bond,
    added: bool,
    iface: &str,
) -> Result<(), String> {
    let Some(old) = plane.take() else {
        return Ok(()); // --host none: no data plane
    };
    let mut stopped = old.stop();
    let error = match stopped.start(bond) {
        Ok(started) => {
            *plane = Some(started);
            return Ok(());
        }
        Err(e) => e.to_string(),
    };
    let undone = if added {
        bond.remove_member(iface).map(|_| ())
    } else {
        read_link(iface)
            .map_err(|e| e.to_string())
            .and_then(|facts| bond.add_member(iface, facts).map(|_| ()))
    };
    match undone.and_then(|()| stopped.start(bond).map_err(|e| e.to_string())) {
        Ok(started) => *plane = Some(started),
        Err(undo) => error!(bond = bond.name(), "data plane down: {undo}"),
    }
    Err(error)
}

/// `bond-dp set`: changes the option and logs it; the monitor publishes the change to the
/// data plane within its next look.
fn set_option(bond: &mut Bond, name: &str, value: &str) -> String {
    match bond.set_option(name, value) {
        Ok((events, warnings)) => {
            info!(bond = bond.name(), "{name} set to {value}");
            for event in &events {
                log_event(bond.name(), event);
            }
            let mut answer = String::from("ok\n");
            for w in warnings {
                warn!(bond = bond.name(), "{w}");
                answer += &format!("warning: {w}\n");
            }
            answer
        }
        Err(e) => format!("error: {e}\n"),
    }
}
