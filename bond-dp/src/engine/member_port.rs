//! The engine's contract with a member queue's socket: what a [`QueueShare`](super::QueueShare)
//! needs of it. [`XskPort`] is the real one. [`MemoryPort`] keeps its rings in memory, so the
//! engine's transmit and receive logic is tested and benchmarked without root or a kernel.
//!
//! Either way every UMEM frame is in one place at a time (the pool's ledger follows it):
//! free, lent to the fill ring, held by the engine, or queued for transmission.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

use crate::xdp::port::{KernelStats, Place};
use crate::xdp::{FrameDesc, FramePool, UmemArea, XskPort};

/// A member queue's socket, as a worker drives it.
pub trait MemberPort: Send {
    /// Received packets appended to `out` (whole chains; at most `max` frames, though one
    /// chain may pass it); the caller holds them now. Returns the frames appended.
    fn recv(&mut self, out: &mut Vec<FrameDesc>, max: usize, pool: &mut FramePool) -> usize;
    /// Queues held packets for transmission, as many whole ones as the ring takes; the rest
    /// go back to `pool`. Returns how many packets did not fit.
    fn send(&mut self, frames: &[FrameDesc], pool: &mut FramePool) -> usize;
    /// Takes back frames whose transmission completed; returns how many.
    fn reclaim(&mut self, pool: &mut FramePool) -> usize;
    /// Lends free frames to receive into.
    fn refill(&mut self, pool: &mut FramePool);
    /// Wakes the receive side if it waits for a system call.
    fn wake_rx(&mut self) -> io::Result<()>;
    /// Frames queued for transmission whose completion has not come back.
    fn in_flight(&self) -> usize;
    /// Transmit wake-ups refused with an error that is not transient.
    fn tx_errors(&self) -> u64;
    /// What the kernel dropped before the engine saw it.
    fn kernel_stats(&self) -> io::Result<KernelStats>;
    /// Frames the port holds (lent, queued, a chain's start).
    fn held(&self) -> usize;
    /// Where its frames are, for diagnostics.
    fn census(&self) -> String;
    /// A descriptor that polls readable when frames arrive (negative: none, poll skips it).
    fn fd(&self) -> RawFd;
    /// The socket is leaving (its member left), while its share is paused: what the kernel
    /// gave back (received, completed) returns to `pool`. Returns the frames it still holds,
    /// which leave the pool's keeping with it until `close` gives them back.
    fn retire(&mut self, pool: &mut FramePool) -> usize;
    /// Closes a retired socket, away from its share (it can take the kernel a while):
    /// the frames that come back, with where each was (lent, or queued to send).
    fn close(self) -> Vec<(FrameDesc, Place)>
    where
        Self: Sized;
}

impl MemberPort for XskPort {
    fn recv(&mut self, out: &mut Vec<FrameDesc>, max: usize, pool: &mut FramePool) -> usize {
        XskPort::recv(self, out, max, pool)
    }
    fn send(&mut self, frames: &[FrameDesc], pool: &mut FramePool) -> usize {
        XskPort::send(self, frames, pool)
    }
    fn reclaim(&mut self, pool: &mut FramePool) -> usize {
        XskPort::reclaim(self, pool)
    }
    fn refill(&mut self, pool: &mut FramePool) {
        XskPort::refill(self, pool)
    }
    fn wake_rx(&mut self) -> io::Result<()> {
        XskPort::wake_rx(self)
    }
    fn in_flight(&self) -> usize {
        XskPort::in_flight(self)
    }
    fn tx_errors(&self) -> u64 {
        XskPort::tx_errors(self)
    }
    fn kernel_stats(&self) -> io::Result<KernelStats> {
        XskPort::kernel_stats(self)
    }
    fn held(&self) -> usize {
        XskPort::held(self)
    }
    fn census(&self) -> String {
        format!("{}/{} {}", self.iface, self.queue, XskPort::census(self))
    }
    fn fd(&self) -> RawFd {
        XskPort::fd(self)
    }
    fn retire(&mut self, pool: &mut FramePool) -> usize {
        XskPort::retire(self, pool)
    }
    fn close(self) -> Vec<(FrameDesc, Place)> {
        XskPort::close(self)
    }
}

/// A member queue whose rings are in memory: what the kernel would do, done by the test
/// (or benchmark) that drives it. Frames arrive with [`arrive`](Self::arrive) into frames
/// the engine lent; what the engine sends waits in [`sent`](Self::sent) until
/// [`complete`](Self::complete) hands the frames back, as a NIC's completions would.
pub struct MemoryPort {
    name: String,
    umem: UmemArea,
    ring_size: usize,
    fill: VecDeque<FrameDesc>,
    rx: VecDeque<FrameDesc>,
    tx: VecDeque<FrameDesc>,
    done: Vec<FrameDesc>,
    /// Arrivals that found no frame to go into (the kernel's fill-ring-empty count).
    fill_ring_empty: u64,
}

impl MemoryPort {
    /// A port on `umem` named `name`, with rings of `ring_size` entries.
    pub fn new(name: &str, umem: &UmemArea, ring_size: usize) -> MemoryPort {
        MemoryPort {
            name: name.to_string(),
            umem: umem.clone(),
            ring_size,
            fill: VecDeque::new(),
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            done: Vec::new(),
            fill_ring_empty: 0,
        }
    }

    /// A packet arrives: written into the next lent frame and put in the RX ring. False (and
    /// counted) when no frame was lent, or the RX ring is full, as the kernel drops it.
    pub fn arrive(&mut self, bytes: &[u8]) -> bool {
        if self.rx.len() >= self.ring_size {
            return false;
        }
        let Some(mut desc) = self.fill.pop_front() else {
            self.fill_ring_empty += 1;
            return false;
        };
        if !self.umem.write(&mut desc, bytes) {
            self.fill.push_front(desc);
            return false;
        }
        self.rx.push_back(desc);
        true
    }

    /// The packets queued for transmission and not completed yet, oldest first (a chain's
    /// frames joined).
    pub fn sent(&self) -> Vec<Vec<u8>> {
        let descs: Vec<FrameDesc> = self.tx.iter().copied().collect();
        crate::xdp::packets(&descs)
            .map(|run| {
                let mut bytes = Vec::new();
                self.umem.gather(&descs[run], &mut bytes);
                bytes
            })
            .collect()
    }

    /// Completes the `n` oldest transmissions (all when `n` is larger): their frames come
    /// back at the next `reclaim`.
    pub fn complete(&mut self, n: usize) {
        let n = n.min(self.tx.len());
        self.done.extend(self.tx.drain(..n));
    }
}

impl MemberPort for MemoryPort {
    fn recv(&mut self, out: &mut Vec<FrameDesc>, max: usize, pool: &mut FramePool) -> usize {
        let n = max.min(self.rx.len());
        for desc in self.rx.drain(..n) {
            pool.received(&desc);
            out.push(desc);
        }
        n
    }

    fn send(&mut self, frames: &[FrameDesc], pool: &mut FramePool) -> usize {
        let room = self
            .ring_size
            .saturating_sub(self.tx.len() + self.done.len());
        let (sent, dropped) = pool.queue_for_tx(frames, room);
        self.tx.extend(&frames[..sent]);
        dropped
    }

    fn reclaim(&mut self, pool: &mut FramePool) -> usize {
        let n = self.done.len();
        self.done.drain(..).for_each(|d| pool.completed(d));
        n
    }

    fn refill(&mut self, pool: &mut FramePool) {
        let room = self.ring_size.saturating_sub(self.fill.len());
        self.fill.extend(pool.lend(room));
    }

    fn wake_rx(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.tx.len() + self.done.len()
    }

    fn tx_errors(&self) -> u64 {
        0
    }

    fn kernel_stats(&self) -> io::Result<KernelStats> {
        Ok(KernelStats {
            fill_ring_empty: self.fill_ring_empty,
            ..KernelStats::default()
        })
    }

    fn held(&self) -> usize {
        self.fill.len() + self.rx.len() + self.tx.len() + self.done.len()
    }

    fn census(&self) -> String {
        format!(
            "{} fill {} rx {} tx {} done {}",
            self.name,
            self.fill.len(),
            self.rx.len(),
            self.tx.len(),
            self.done.len()
        )
    }

    fn fd(&self) -> RawFd {
        -1
    }

    fn retire(&mut self, pool: &mut FramePool) -> usize {
        self.reclaim(pool);
        for desc in self.rx.drain(..) {
            pool.received(&desc);
            pool.put(desc);
        }
        self.held()
    }

    /// As a socket of its own closing: all it holds comes back (no driver holds a frame
    /// in memory).
    fn close(mut self) -> Vec<(FrameDesc, Place)> {
        let lent = self.fill.drain(..).map(|d| (d, Place::Fill));
        let queued = self.tx.drain(..).chain(self.done.drain(..));
        lent.chain(queued.map(|d| (d, Place::Tx))).collect()
    }
}
