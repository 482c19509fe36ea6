//! The in-process API for appliances: the application sends and receives bursts of frames that
//! live in the bond's UMEM, without a copy. Frames pass by descriptor through single-producer
//! single-consumer rings between the application thread and one worker: a burst costs one
//! atomic store per ring, not one per frame (per-frame MPMC queues halved the transmit rate).
//!
//! Ownership: a frame the application got from [`AppPort::alloc`] or [`AppPort::recv_burst`]
//! is the application's until it hands it back with [`AppPort::send_burst`] or
//! [`AppPort::free`]. Frames never leave the UMEM, and a frame goes back through the port it
//! came from (each worker has its own share of the UMEM).

use rtrb::{Consumer, Producer, RingBuffer};
use xsk_rs::FrameDesc;

use crate::xdp::UmemArea;

/// Frames an application keeps in its own stash before it returns the surplus to the worker.
const STASH_MAX: usize = 512;

/// The worker's ends of the rings.
pub struct AppRings {
    /// Free frames for the application to fill.
    pub free: Producer<FrameDesc>,
    /// Frames the application sends through the bond.
    pub to_bond: Consumer<FrameDesc>,
    /// Frames the bond received for the application.
    pub from_bond: Producer<FrameDesc>,
    /// Free frames the application gives back.
    pub returned: Consumer<FrameDesc>,
}

/// Pops up to `max` items into `out`; returns how many.
pub fn pop_burst(ring: &mut Consumer<FrameDesc>, out: &mut Vec<FrameDesc>, max: usize) -> usize {
    let n = ring.slots().min(max);
    if n == 0 {
        return 0;
    }
    let Ok(chunk) = ring.read_chunk(n) else {
        return 0;
    };
    let (a, b) = chunk.as_slices();
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    chunk.commit_all();
    n
}

/// Pushes as many of `frames` as fit; returns how many.
pub fn push_burst(ring: &mut Producer<FrameDesc>, frames: &[FrameDesc]) -> usize {
    ring.push_partial_slice(frames).0.len()
}

/// The application's end of one worker.
pub struct AppPort {
    umem: UmemArea,
    free: Consumer<FrameDesc>,
    to_bond: Producer<FrameDesc>,
    from_bond: Consumer<FrameDesc>,
    returned: Producer<FrameDesc>,
    /// Free frames the application holds for its next allocations.
    stash: Vec<FrameDesc>,
    /// Frames in the stash or the application's hands.
    held: usize,
}

/// Both ends for a worker whose share of the UMEM is `frames` frames.
pub fn app_rings(umem: UmemArea, frames: usize) -> (AppPort, AppRings) {
    let (free_p, free_c) = RingBuffer::new(frames);
    let (to_p, to_c) = RingBuffer::new(frames);
    let (from_p, from_c) = RingBuffer::new(frames);
    let (ret_p, ret_c) = RingBuffer::new(frames);
    let port = AppPort {
        umem,
        free: free_c,
        to_bond: to_p,
        from_bond: from_c,
        returned: ret_p,
        stash: Vec::with_capacity(STASH_MAX * 2),
        held: 0,
    };
    let rings = AppRings {
        free: free_p,
        to_bond: to_c,
        from_bond: from_p,
        returned: ret_c,
    };
    (port, rings)
}

impl AppPort {
    /// A frame to fill, if the bond has one free.
    pub fn alloc(&mut self) -> Option<FrameDesc> {
        if self.stash.is_empty() {
            let got = pop_burst(&mut self.free, &mut self.stash, STASH_MAX);
            self.held += got;
        }
        self.stash.pop()
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
    pub fn send_burst(&mut self, frames: &[FrameDesc]) -> usize {
        let sent = push_burst(&mut self.to_bond, frames);
        self.held -= sent;
        sent
    }

    /// Frames the bond received, appended to `out` (at most `max`).
    pub fn recv_burst(&mut self, out: &mut Vec<FrameDesc>, max: usize) -> usize {
        let n = pop_burst(&mut self.from_bond, out, max);
        self.held += n;
        n
    }

    /// Gives a frame back (one received, or allocated and not sent). It stays at hand for the
    /// next `alloc`; a surplus goes back to the worker.
    pub fn free(&mut self, desc: FrameDesc) {
        self.stash.push(desc);
        if self.stash.len() >= STASH_MAX * 2 {
            let keep = self.stash.len() - STASH_MAX;
            let back = push_burst(&mut self.returned, &self.stash[keep..]);
            // push_burst takes from the front of the slice: remove exactly those.
            self.stash.drain(keep..keep + back);
            self.held -= back;
        }
    }

    /// UMEM frames on the application's side: in the rings, the stash or its hands.
    pub fn frames_held(&self) -> usize {
        let cap = self.to_bond.buffer().capacity();
        self.free.slots()
            + (cap - self.to_bond.slots())
            + self.from_bond.slots()
            + (cap - self.returned.slots())
            + self.held
    }
}
