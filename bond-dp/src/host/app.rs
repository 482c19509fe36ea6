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
//! Jumbo frames (engine setting `jumbo=on`; `auto` leaves them off here, for zero-copy) are
//! chains: consecutive frames of a burst, each but the last one [`Frame::continues`].
//! `recv_burst` hands over whole chains, [`AppPort::write_packet`] makes one, and
//! `send_burst` sends each whole.
//!
//! Ownership: a frame the application got from [`AppPort::alloc`] or [`AppPort::recv_burst`]
//! is the application's until it hands it back with [`AppPort::send_burst`] or
//! [`AppPort::free`], to the port it came from.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::xdp::FrameDesc;

use crate::engine::QueueShare;

/// A UMEM frame the application holds. It is neither `Copy` nor `Clone`: the only way to
/// give it back is to hand it over ([`AppPort::send_burst`], [`AppPort::free`]), so safe code
/// cannot touch a frame the kernel owns again.
///
/// ```compile_fail
/// fn copy<T: Copy>() {}
/// copy::<bond_dp::host::Frame>();
/// ```
/// ```compile_fail
/// fn clone<T: Clone>() {}
/// clone::<bond_dp::host::Frame>();
/// ```
#[derive(Debug)]
pub struct Frame {
    desc: FrameDesc,
    /// The port it belongs to: frames go home to the share of the UMEM they came from.
    port: u32,
}

impl Frame {
    /// Whether the packet goes on in the next frame of the burst (a jumbo frame's chain).
    pub fn continues(&self) -> bool {
        crate::xdp::port::continues(&self.desc)
    }
}

static NEXT_PORT: AtomicU32 = AtomicU32::new(1);

pub struct AppPort {
    queues: QueueShare,
    /// The member socket `recv_burst` reads first, rotated so that none starves.
    next_rx: usize,
    id: u32,
    /// Scratch for bursts crossing to the engine, allocated once.
    descs: Vec<FrameDesc>,
}

impl AppPort {
    pub fn new(queues: QueueShare) -> AppPort {
        AppPort {
            queues,
            next_rx: 0,
            id: NEXT_PORT.fetch_add(1, Ordering::Relaxed),
            descs: Vec::with_capacity(crate::engine::BURST),
        }
    }

    /// A frame to fill, if one is free (frames come back as their transmission completes).
    pub fn alloc(&mut self) -> Option<Frame> {
        let desc = match self.queues.pool.take() {
            Some(desc) => desc,
            None => {
                self.queues.service(&mut []);
                self.queues.pool.take()?
            }
        };
        Some(Frame {
            desc,
            port: self.id,
        })
    }

    /// Writes `bytes` as the frame's contents; false when they do not fit in a UMEM frame.
    pub fn write(&self, frame: &mut Frame, bytes: &[u8]) -> bool {
        self.check(frame);
        self.queues.umem.write(&mut frame.desc, bytes)
    }

    /// Writes `bytes` as one packet into frames appended to `out`: a chain when they are
    /// longer than a frame. False (nothing appended) when frames run short or the packet is
    /// longer than a chain holds.
    pub fn write_packet(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> bool {
        self.descs.clear();
        let q = &mut self.queues;
        if q.umem
            .write_chain(&mut q.pool, bytes, &mut self.descs)
            .is_err()
        {
            return false;
        }
        let port = self.id;
        out.extend(self.descs.drain(..).map(|desc| Frame { desc, port }));
        true
    }

    /// The frame's contents.
    pub fn data(&self, frame: &Frame) -> &[u8] {
        self.check(frame);
        self.queues.umem.data(&frame.desc)
    }

    /// The frame's contents, to edit in place.
    pub fn data_mut<'a>(&'a self, frame: &'a mut Frame) -> &'a mut [u8] {
        self.check(frame);
        self.queues.umem.data_mut(&mut frame.desc)
    }

    /// Sends the frames through the bond, taking them all out of `frames`: they are the
    /// bond's again. Each goes to the member the mode picks; like a NIC queue, a member whose
    /// TX ring is full drops what does not fit, and the drop is counted. Completed frames are
    /// reclaimed first, so the rings fill only when the kernel falls behind.
    pub fn send_burst(&mut self, frames: &mut Vec<Frame>) {
        self.descs.clear();
        for frame in frames.drain(..) {
            self.check(&frame);
            self.descs.push(frame.desc);
        }
        self.queues.refresh();
        self.queues.service(&mut []);
        self.queues.transmit(&self.descs);
    }

    /// Frames the bond received, appended to `out` (at most `max`); also does the upkeep
    /// [`AppPort::poll`] does.
    pub fn recv_burst(&mut self, out: &mut Vec<Frame>, max: usize) -> usize {
        self.poll();
        let ports = self.queues.ports.len();
        self.descs.clear();
        for k in 0..ports {
            if self.descs.len() >= max {
                break;
            }
            let room = max - self.descs.len();
            self.queues
                .recv((self.next_rx + k) % ports, &mut self.descs, room);
        }
        self.next_rx = (self.next_rx + 1) % ports.max(1);
        let (port, got) = (self.id, self.descs.len());
        out.extend(self.descs.drain(..).map(|desc| Frame { desc, port }));
        got
    }

    /// Upkeep for an application that only transmits: takes back completed frames, gives
    /// the kernel frames to receive into, and wakes it where it asks.
    pub fn poll(&mut self) {
        self.queues.service(&mut []);
    }

    /// Gives a frame back (one received, or allocated and not sent).
    pub fn free(&mut self, frame: Frame) {
        self.check(&frame);
        self.queues.pool.put(frame.desc);
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

    /// A frame handed to another port than the one it came from would leave one share
    /// short and the other over: a programming error, stopped where it happens.
    fn check(&self, frame: &Frame) {
        assert_eq!(
            frame.port, self.id,
            "a frame of AppPort {} handed to AppPort {}: frames go back to their own port",
            frame.port, self.id
        );
    }
}
