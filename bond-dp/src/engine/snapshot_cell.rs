//! The usable-member snapshot, published by the monitor and read by workers without a lock
//! per packet: a worker compares a generation number once per burst and only takes the lock
//! (to clone an `Arc`) when the monitor has published something new.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::policy::TxSnapshot;

pub struct SnapshotCell {
    generation: AtomicU64,
    current: Mutex<Arc<TxSnapshot>>,
}

impl SnapshotCell {
    pub fn new(snap: TxSnapshot) -> Self {
        SnapshotCell {
            generation: AtomicU64::new(1),
            current: Mutex::new(Arc::new(snap)),
        }
    }

    /// Publishes a new snapshot (the monitor, on any change).
    pub fn publish(&self, snap: TxSnapshot) {
        *self.current.lock().expect("snapshot lock") = Arc::new(snap);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Makes the workers look again, at the same snapshot (and at whatever else they take
    /// then, such as frames given back).
    pub fn nudge(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Refreshes a worker's copy if a newer one was published; cheap when nothing changed.
    #[inline]
    pub fn refresh(&self, seen: &mut u64, snap: &mut Arc<TxSnapshot>) {
        let now = self.generation.load(Ordering::Acquire);
        if now != *seen {
            *snap = Arc::clone(&self.current.lock().expect("snapshot lock"));
            *seen = now;
        }
    }

    pub fn load(&self) -> Arc<TxSnapshot> {
        Arc::clone(&self.current.lock().expect("snapshot lock"))
    }
}
