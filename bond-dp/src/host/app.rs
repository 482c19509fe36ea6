//! The in-process API for appliances: the application sends and receives bursts of frames that
//! live in the bond's UMEM, without a copy. Frames pass through lock-free rings between the
//! application thread and the bond's worker.
//!
//! Ownership: a frame the application got from [`AppPort::alloc`] or [`AppPort::recv_burst`]
//! is the application's until it hands it back with [`AppPort::send_burst`] or
//! [`AppPort::free`]. Frames never leave the UMEM.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use xsk_rs::FrameDesc;

use crate::xdp::UmemArea;

/// The rings shared by the application and the worker.
pub struct AppRings {
    /// Frames the application may fill (topped up by the worker from its pool).
    pub free: ArrayQueue<FrameDesc>,
    /// Frames the application sends through the bond.
    pub to_bond: ArrayQueue<FrameDesc>,
    /// Frames the bond received for the application.
    pub from_bond: ArrayQueue<FrameDesc>,
    /// Frames in the application's hands (for the ownership invariant).
    pub held_by_app: AtomicUsize,
}

impl AppRings {
    pub fn new(capacity: usize) -> Arc<AppRings> {
        Arc::new(AppRings {
            free: ArrayQueue::new(capacity),
            to_bond: ArrayQueue::new(capacity),
            from_bond: ArrayQueue::new(capacity),
            held_by_app: AtomicUsize::new(0),
        })
    }

    /// Frames in the rings or the application's hands.
    pub fn held(&self) -> usize {
        self.free.len()
            + self.to_bond.len()
            + self.from_bond.len()
            + self.held_by_app.load(Ordering::Acquire)
    }
}

/// The application's end of a bond.
pub struct AppPort {
    umem: UmemArea,
    rings: Arc<AppRings>,
}

impl AppPort {
    pub fn new(umem: UmemArea, rings: Arc<AppRings>) -> AppPort {
        AppPort { umem, rings }
    }

    /// A frame to fill, if the bond has one free.
    pub fn alloc(&self) -> Option<FrameDesc> {
        let desc = self.rings.free.pop()?;
        self.rings.held_by_app.fetch_add(1, Ordering::AcqRel);
        Some(desc)
    }

    /// Writes `bytes` as the frame's contents; false when they do not fit in a UMEM frame.
    pub fn write(&self, desc: &mut FrameDesc, bytes: &[u8]) -> bool {
        self.umem.write(desc, bytes)
    }

    /// The frame's contents.
    pub fn data(&self, desc: &FrameDesc) -> &[u8] {
        self.umem.data(desc)
    }

    /// The frame's contents, to edit in place.
    pub fn data_mut<'a>(&'a self, desc: &'a mut FrameDesc) -> &'a mut [u8] {
        self.umem.data_mut(desc)
    }

    /// Sends frames through the bond, from the front of `frames`; returns how many were
    /// taken (the rest stay with the caller: the ring was full).
    pub fn send_burst(&self, frames: &[FrameDesc]) -> usize {
        let mut sent = 0;
        for &desc in frames {
            if self.rings.to_bond.push(desc).is_err() {
                break;
            }
            sent += 1;
        }
        self.rings.held_by_app.fetch_sub(sent, Ordering::AcqRel);
        sent
    }

    /// Frames the bond received, appended to `out` (at most `max`).
    pub fn recv_burst(&self, out: &mut Vec<FrameDesc>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(desc) = self.rings.from_bond.pop() else {
                break;
            };
            out.push(desc);
            n += 1;
        }
        self.rings.held_by_app.fetch_add(n, Ordering::AcqRel);
        n
    }

    /// UMEM frames on the application's side: in the rings or in its hands.
    pub fn frames_held(&self) -> usize {
        self.rings.held()
    }

    /// Gives a frame back (one received, or allocated and not sent).
    pub fn free(&self, desc: FrameDesc) {
        // The free ring has room for every frame the application can hold.
        if self.rings.free.push(desc).is_ok() {
            self.rings.held_by_app.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
