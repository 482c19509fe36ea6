//! The in-process API for appliances: the application sends and receives bursts of frames
//! that live in the bond's UMEM, without a copy, and the bond's work runs on the application's
//! own thread when it calls in (run to completion, as with DPDK's `rte_eth_tx_burst`).
//!
//! Each [`AppPort`] owns a share of the member queues and of the UMEM frames, so no frame and
//! no header crosses cores: handing frames to a worker on another core cost 12% of the
//! transmit rate. An application thread per port, each on its own core, scales like workers.
//! The application must call in regularly ([`AppPort::recv_burst`] or [`AppPort::poll`]):
//! that is when completions are reclaimed and the fill rings topped up.
//!
//! Ownership: a frame the application got from [`AppPort::alloc`] or [`AppPort::recv_burst`]
//! is the application's until it hands it back with [`AppPort::send_burst`] or
//! [`AppPort::free`], to the port it came from.

use xsk_rs::FrameDesc;

use crate::engine::MemberQueues;

pub struct AppPort {
    queues: MemberQueues,
    /// The member socket `recv_burst` reads first, rotated so that none starves.
    next_rx: usize,
}

impl AppPort {
    pub fn new(queues: MemberQueues) -> AppPort {
        AppPort { queues, next_rx: 0 }
    }

    /// A frame to fill, if one is free (frames come back as their transmission completes).
    pub fn alloc(&mut self) -> Option<FrameDesc> {
        if let Some(desc) = self.queues.pool.take() {
            return Some(desc);
        }
        self.queues.service(&mut []);
        self.queues.pool.take()
    }

    /// Writes `bytes` as the frame's contents; false when they do not fit in a UMEM frame.
    pub fn write(&self, desc: &mut FrameDesc, bytes: &[u8]) -> bool {
        self.queues.umem.write(desc, bytes)
    }

    /// The frame's contents.
    pub fn data(&self, desc: &FrameDesc) -> &[u8] {
        self.queues.umem.data(desc)
    }

    /// The frame's contents, to edit in place.
    pub fn data_mut<'a>(&'a self, desc: &'a mut FrameDesc) -> &'a mut [u8] {
        self.queues.umem.data_mut(desc)
    }

    /// Sends frames through the bond; all of them are the bond's again. Each goes to the
    /// member the mode picks; like a NIC queue, a member whose TX ring is full drops what
    /// does not fit, and the drop is counted. Completed frames are reclaimed first, so the
    /// rings fill only when the kernel falls behind.
    pub fn send_burst(&mut self, frames: &[FrameDesc]) {
        self.queues.refresh();
        self.queues.service(&mut []);
        self.queues.transmit(frames);
    }

    /// Frames the bond received, appended to `out` (at most `max`); also does the upkeep
    /// [`AppPort::poll`] does.
    pub fn recv_burst(&mut self, out: &mut Vec<FrameDesc>, max: usize) -> usize {
        self.poll();
        let ports = self.queues.ports.len();
        let mut got = 0;
        for k in 0..ports {
            if got == max {
                break;
            }
            got += self.queues.recv((self.next_rx + k) % ports, out, max - got);
        }
        self.next_rx = (self.next_rx + 1) % ports;
        got
    }

    /// Upkeep for an application that only transmits: takes back completed frames, gives
    /// the kernel frames to receive into, and wakes it where it asks.
    pub fn poll(&mut self) {
        self.queues.service(&mut []);
    }

    /// Gives a frame back (one received, or allocated and not sent).
    pub fn free(&mut self, desc: FrameDesc) {
        self.queues.pool.put(desc);
    }

    /// UMEM frames the port holds (free, or in its sockets' rings); the rest of its share
    /// is in the application's hands.
    pub fn frames_held(&self) -> usize {
        self.queues.frames_held(&[])
    }

    /// The port's share of the UMEM.
    pub fn frames_owned(&self) -> usize {
        self.queues.frames_owned()
    }
}
