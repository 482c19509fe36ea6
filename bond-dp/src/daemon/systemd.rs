//! Telling systemd how the daemon is (Type=notify): READY once every bond's data plane runs
//! and its TAP exists, so that `Before=network.target` means something; a STATUS line with
//! each bond's active member; WATCHDOG from the monitor loop, so that a hung monitor is
//! restarted (WatchdogSec). Without $NOTIFY_SOCKET (not under systemd) all of it is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::debug;

use crate::bond::Bond;

pub(super) struct Systemd {
    /// Half the watchdog interval, if systemd asked for one.
    watchdog: Option<Duration>,
    last_ping: Instant,
    status: String,
}

impl Systemd {
    pub(super) fn new() -> Systemd {
        let mut usec = 0;
        let watchdog =
            sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec) / 2);
        Systemd {
            watchdog,
            last_ping: Instant::now(),
            status: String::new(),
        }
    }

    /// Every bond is up.
    pub(super) fn ready(&mut self, bonds: &[&Bond]) {
        self.status = status_line(bonds);
        send(&[NotifyState::Ready, NotifyState::Status(&self.status)]);
    }

    /// From the monitor loop: the watchdog when due, and the status line when it changed.
    pub(super) fn tick(&mut self, bonds: &[&Bond]) {
        if let Some(every) = self.watchdog {
            if self.last_ping.elapsed() >= every {
                self.last_ping = Instant::now();
                send(&[NotifyState::Watchdog]);
            }
        }
        let status = status_line(bonds);
        if status != self.status {
            self.status = status;
            send(&[NotifyState::Status(&self.status)]);
        }
    }

    /// How soon `tick` must run again for the watchdog.
    pub(super) fn next_due(&self) -> Option<Duration> {
        self.watchdog
            .map(|every| every.saturating_sub(self.last_ping.elapsed()))
    }

    pub(super) fn stopping(&self) {
        send(&[NotifyState::Stopping]);
    }
}

/// "bond0: active m1; bond1: 802.3ad, 2 members up".
fn status_line(bonds: &[&Bond]) -> String {
    bonds
        .iter()
        .map(|b| {
            let carrier = if b.carrier() { "up" } else { "down" };
            let active = b.active().filter(|_| b.config.options.mode.uses_primary());
            match active {
                Some(active) => format!("{}: {carrier}, active {active}", b.name()),
                None => format!("{}: {carrier}", b.name()),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        debug!("telling systemd: {e}");
    }
}
