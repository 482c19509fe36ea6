//! `systemctl reload` (SIGHUP): the configuration is read again and its differences are
//! applied to the running bonds as `bond-dp set` applies them, with the same refusals; a
//! bond whose settings did not change is not touched.

use tracing::{error, info, warn};

use super::requests::Control;
use crate::config::{BondConfig, OPTION_NAMES};
use crate::control::Request;

/// Reads the configuration with `load` and applies it through `controls` (one per running
/// bond). A file that does not read leaves every bond as it was.
pub(super) fn apply(load: &super::Reload, controls: &[Control]) {
    let configs = match load() {
        Ok(configs) => configs,
        Err(e) => {
            error!("reload: {e}; the bonds go on as they were");
            return;
        }
    };
    let running: Vec<String> = controls
        .iter()
        .map(|c| c.bond.lock().expect("bond lock").name().to_string())
        .collect();
    for new in configs.iter().filter(|c| !running.contains(&c.name)) {
        warn!(
            bond = %new.name,
            "reload: a new bond starts with a restart of bond-dp, not a reload"
        );
    }
    for (control, name) in controls.iter().zip(&running) {
        match configs.iter().find(|c| &c.name == name) {
            Some(new) => apply_bond(control, new),
            None => warn!(
                bond = %name,
                "reload: the bond is no longer configured; it stops with a restart of bond-dp"
            ),
        }
    }
}

/// One bond: options that differ, then members that left or joined.
fn apply_bond(control: &Control, new: &BondConfig) {
    let (old_options, old_members) = {
        let bond = control.bond.lock().expect("bond lock");
        (bond.config.options.clone(), bond.config.members.clone())
    };
    let mut changes = Vec::new();
    for &name in OPTION_NAMES.iter() {
        let value = new.options.value_text(name);
        if value != old_options.value_text(name) {
            changes.push((name.to_string(), value));
        }
    }
    for gone in old_members.iter().filter(|m| !new.members.contains(m)) {
        changes.push(("slaves".into(), format!("-{gone}")));
    }
    for added in new.members.iter().filter(|m| !old_members.contains(m)) {
        changes.push(("slaves".into(), format!("+{added}")));
    }
    if changes.is_empty() {
        return;
    }
    let bond = &new.name;
    for (name, value) in changes {
        let answer = control.answer(Request::Set {
            name: name.clone(),
            value: value.clone(),
        });
        match answer.strip_prefix("error: ") {
            Some(why) => warn!(bond = %bond, "reload: {name} {value} refused: {}", why.trim()),
            None => info!(bond = %bond, "reload: {name} {value}"),
        }
    }
}
