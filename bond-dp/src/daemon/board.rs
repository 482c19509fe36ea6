//! The bonds' status as the monitor last published it, for readers that must never wait on a
//! bond's lock: a metrics scrape takes an `Arc` of the last page's data, and the monitor
//! (which holds each bond's lock on its passes anyway) replaces it every `PUBLISH_EVERY`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::control::BondStatus;

/// How often the monitor publishes: how old a scrape's figures can be.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(super) struct StatusBoard {
    /// Held only to clone or replace the `Arc`, never while a status is built.
    current: Mutex<Arc<Vec<BondStatus>>>,
}

impl StatusBoard {
    pub(super) fn publish(&self, statuses: Vec<BondStatus>) {
        *self.current.lock().expect("status board lock") = Arc::new(statuses);
    }

    pub(super) fn load(&self) -> Arc<Vec<BondStatus>> {
        Arc::clone(&self.current.lock().expect("status board lock"))
    }
}
