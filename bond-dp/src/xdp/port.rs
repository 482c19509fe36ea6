//! AF_XDP sockets of the members on one shared UMEM, and frame ownership.
//!
//! Every UMEM frame is in exactly one place: the [`FramePool`] (free), a member's fill ring,
//! a member's TX ring (until its completion comes back), or in the caller's hands between
//! `recv`/`take` and `send`/`put`. Each port counts what it holds, so
//! `pool.free() + Σ port.held() + in hand == frame count` can be checked at any time.
//!
//! A frame longer than one UMEM frame (jumbo frames, with AF_XDP multi-buffer) is a chain:
//! consecutive descriptors, each but the last marked [`continues`]. Rings take and give
//! whole chains; [`packets`] walks a burst chain by chain.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;

use thiserror::Error;
use xsk_rs::config::{
    BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::program::XdpProgram;

#[derive(Debug, Error)]
pub enum PortError {
    #[error("UMEM of {frames} frames of {frame_size} bytes: {reason}")]
    Umem {
        frames: u32,
        frame_size: u32,
        reason: String,
    },
    #[error("AF_XDP socket on {iface} queue {queue}: {reason}")]
    Socket {
        iface: String,
        queue: u32,
        reason: String,
    },
    #[error(transparent)]
    Xdp(#[from] super::program::XdpError),
}

/// Ring and UMEM sizes (powers of two).
#[derive(Clone, Copy, Debug)]
pub struct PortConfig {
    /// Frames in the whole UMEM.
    pub frame_count: u32,
    pub frame_size: u32,
    pub ring_size: u32,
    /// Ask for zero-copy; `None` lets the kernel choose (zero-copy where the driver can).
    pub zero_copy: Option<bool>,
    /// Bind with XDP_USE_SG: frames longer than a UMEM frame arrive and leave as chains.
    pub multi_buffer: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            frame_count: 8192,
            frame_size: 2048,
            ring_size: 1024,
            zero_copy: None,
            multi_buffer: false,
        }
    }
}

/// The number of RX queues an interface has (the sockets it takes to see all its traffic).
pub fn rx_queue_count(iface: &str) -> io::Result<u32> {
    let count = std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(count.max(1) as u32)
}

/// The UMEM every member socket of a bond shares: a frame received anywhere can leave on any
/// member without a copy.
#[derive(Clone)]
pub struct UmemArea {
    umem: Umem,
    frame_count: usize,
    /// Packets longer than a frame may be chains (the sockets take multi-buffer).
    chains: bool,
}

impl UmemArea {
    pub fn new(cfg: &PortConfig) -> Result<(UmemArea, FramePool), PortError> {
        let err = |reason: String| PortError::Umem {
            frames: cfg.frame_count,
            frame_size: cfg.frame_size,
            reason,
        };
        let ring = QueueSize::new(cfg.ring_size).map_err(|e| err(e.to_string()))?;
        let config = UmemConfig::builder()
            .frame_size(FrameSize::new(cfg.frame_size).map_err(|e| err(e.to_string()))?)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let count = NonZeroU32::new(cfg.frame_count).ok_or_else(|| err("no frames".into()))?;
        let (umem, descs) = Umem::new(config, count, false).map_err(|e| err(e.to_string()))?;
        let frame_count = descs.len();
        let area = UmemArea {
            umem,
            frame_count,
            chains: cfg.multi_buffer,
        };
        Ok((area, FramePool::new(descs)))
    }

    pub fn frame_count(&self) -> usize {
        self.frame_count
    }

    /// The bytes of a frame the caller holds.
    pub fn data(&self, desc: &FrameDesc) -> &[u8] {
        // SAFETY: `desc` came from this UMEM's pool or one of its rings, and the caller holds
        // it (it is in no ring), so the kernel does not write this frame while we read it.
        unsafe { self.umem.data(desc).contents() }
    }

    /// Starts loading a frame's first cache line: the kernel wrote it on another core, and
    /// selection reads the headers, so a burst's misses overlap instead of queueing.
    #[inline]
    pub fn prefetch(&self, desc: &FrameDesc) {
        let head = self.data(desc).as_ptr();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; it never faults, and `head` points into the UMEM.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(head.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = head;
    }

    /// The bytes of a frame the caller holds, for in-place edits (MAC rewrites).
    pub fn data_mut<'a>(&'a self, desc: &'a mut FrameDesc) -> &'a mut [u8] {
        // SAFETY: as in `data`; `&mut desc` makes this the only access through bond-dp.
        unsafe { self.umem.data_mut(desc) }.contents_mut_owned()
    }

    /// Writes `bytes` into frames from `pool`, appended to `out`: one frame, or a chain when
    /// they are longer than a frame and the sockets take multi-buffer. An error (nothing
    /// appended, every frame back in the pool) when they do not fit or the pool runs short.
    pub fn write_chain(
        &self,
        pool: &mut FramePool,
        bytes: &[u8],
        out: &mut Vec<FrameDesc>,
    ) -> Result<(), ChainError> {
        let start = out.len();
        let mut rest = bytes;
        loop {
            let Some(mut desc) = pool.take() else {
                out.drain(start..).for_each(|d| pool.put(d));
                return Err(ChainError::NoFrame);
            };
            let room = self.capacity(&mut desc);
            let (now, later) = rest.split_at(rest.len().min(room));
            self.write(&mut desc, now);
            rest = later;
            if !rest.is_empty() {
                desc.set_options(XDP_PKT_CONTD);
            }
            out.push(desc);
            if rest.is_empty() {
                return Ok(());
            }
            if !self.chains || out.len() - start >= MAX_CHAIN {
                out.drain(start..).for_each(|d| pool.put(d));
                return Err(ChainError::TooLong);
            }
        }
    }

    /// The bytes one frame holds.
    fn capacity(&self, desc: &mut FrameDesc) -> usize {
        // SAFETY: as in `data_mut`; only the length is read.
        unsafe { self.umem.data_mut(desc) }.cursor().buf_len()
    }

    /// A chain's bytes, one after another, into `buf` (cleared first).
    pub fn gather(&self, chain: &[FrameDesc], buf: &mut Vec<u8>) {
        buf.clear();
        for desc in chain {
            buf.extend_from_slice(self.data(desc));
        }
    }

    /// Writes `bytes` (a chain's length, as `gather` gave them) back over the chain.
    pub fn scatter(&self, chain: &mut [FrameDesc], mut bytes: &[u8]) {
        for desc in chain {
            let frame = self.data_mut(desc);
            let n = frame.len().min(bytes.len());
            frame[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// Replaces a held frame's contents with `bytes`; false (frame unchanged) if too long.
    /// The frame is a whole packet afterwards (not part of a chain).
    pub fn write(&self, desc: &mut FrameDesc, bytes: &[u8]) -> bool {
        desc.set_options(0);
        use std::io::Write;
        // SAFETY: as in `data_mut`.
        let mut data = unsafe { self.umem.data_mut(desc) };
        let mut cursor = data.cursor();
        if bytes.len() > cursor.buf_len() {
            return false;
        }
        cursor.set_pos(0);
        cursor.write_all(bytes).is_ok()
    }
}

/// The descriptor option that says the packet goes on in the next descriptor.
const XDP_PKT_CONTD: u32 = 1;

/// The most frames in a chain: the kernel builds a chain sent in copy mode as one skb of
/// at most MAX_SKB_FRAGS (17) fragments and its head.
pub const MAX_CHAIN: usize = 18;

/// Why `write_chain` wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    NoFrame,
    TooLong,
}

/// Whether the packet goes on in the next descriptor (multi-buffer).
#[inline]
pub fn continues(desc: &FrameDesc) -> bool {
    desc.options() & XDP_PKT_CONTD != 0
}

/// Where the packet that starts at `start` ends (one past its last descriptor).
#[inline]
pub fn packet_end(descs: &[FrameDesc], start: usize) -> usize {
    descs[start..]
        .iter()
        .position(|d| !continues(d))
        .map_or(descs.len(), |i| start + i + 1)
}

/// A burst's packets: runs of descriptors, each run ending with one that does not continue.
/// A trailing run cut short is yielded too (the callers never hold one).
pub fn packets(descs: &[FrameDesc]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= descs.len() {
            return None;
        }
        let end = packet_end(descs, start);
        let run = start..end;
        start = end;
        Some(run)
    })
}

/// The length of the longest prefix of `descs` that holds whole packets only.
fn whole_packets(descs: &[FrameDesc]) -> usize {
    descs
        .iter()
        .rposition(|d| !continues(d))
        .map_or(0, |i| i + 1)
}

/// Lets `data_mut` hand out the slice for the descriptor's lifetime.
trait OwnedContents<'a> {
    fn contents_mut_owned(self) -> &'a mut [u8];
}

impl<'a> OwnedContents<'a> for xsk_rs::umem::frame::DataMut<'a> {
    fn contents_mut_owned(mut self) -> &'a mut [u8] {
        let slice: *mut [u8] = self.contents_mut();
        // SAFETY: `DataMut<'a>` borrows the frame for 'a; the slice it yields points into the
        // UMEM mapping, which outlives 'a, and no other borrow of the frame exists for 'a.
        unsafe { &mut *slice }
    }
}

/// Free frames, and (in debug builds) the ledger of where each of the share's frames is.
pub struct FramePool {
    free: Vec<FrameDesc>,
    #[cfg(debug_assertions)]
    ledger: Ledger,
}

impl FramePool {
    fn new(free: Vec<FrameDesc>) -> FramePool {
        FramePool {
            #[cfg(debug_assertions)]
            ledger: Ledger::new(free.iter().map(FrameDesc::addr)),
            free,
        }
    }

    pub fn free(&self) -> usize {
        self.free.len()
    }

    pub fn take(&mut self) -> Option<FrameDesc> {
        let desc = self.free.pop()?;
        self.mark(&desc, Place::Free, Place::Held);
        Some(desc)
    }

    pub fn put(&mut self, mut desc: FrameDesc) {
        self.mark(&desc, Place::Held, Place::Free);
        // A frame that was part of a chain is a whole frame when it is next taken.
        desc.set_options(0);
        self.free.push(desc);
    }

    /// Debug builds: the frame moves from `from` to `to`, or the process stops here with
    /// where it really was (a frame in two places, or lost).
    #[inline]
    fn mark(&mut self, _desc: &FrameDesc, _from: Place, _to: Place) {
        #[cfg(debug_assertions)]
        self.ledger.mark(_desc.addr(), _from, _to);
    }

    /// Deals the frames out into `n` pools of equal size, one per worker.
    pub fn split(mut self, n: usize) -> Vec<FramePool> {
        let each = self.free.len() / n.max(1);
        (0..n)
            .map(|_| FramePool::new(self.free.split_off(self.free.len() - each)))
            .collect()
    }
}

/// Where a UMEM frame is: free in the pool, held by the bond or the application (received,
/// being sent), given to the kernel to receive into, or to transmit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Free,
    Held,
    Fill,
    Tx,
}

/// Each frame's one place, checked at every move (debug builds and tests): a frame freed
/// twice, sent while in the fill ring, or taken from another share stops the process at once,
/// where a count would let a duplicated and a lost frame cancel out.
#[cfg(debug_assertions)]
#[derive(Debug, Default)]
pub struct Ledger {
    places: std::collections::HashMap<usize, Place>,
}

#[cfg(debug_assertions)]
impl Ledger {
    pub fn new(free: impl IntoIterator<Item = usize>) -> Ledger {
        Ledger {
            places: free.into_iter().map(|a| (a, Place::Free)).collect(),
        }
    }

    pub fn mark(&mut self, addr: usize, from: Place, to: Place) {
        match self.places.get_mut(&addr) {
            Some(place) if *place == from => *place = to,
            Some(place) => panic!(
                "UMEM frame {addr:#x} going from {from:?} to {to:?} is {place:?}: a frame in \
                 two places"
            ),
            None => panic!("UMEM frame {addr:#x} is not this share's (going to {to:?})"),
        }
    }

    /// How many frames are in `place`.
    #[cfg(test)]
    fn count(&self, place: Place) -> usize {
        self.places.values().filter(|&&p| p == place).count()
    }
}

#[cfg(all(test, debug_assertions))]
mod ledger_tests {
    use super::{Ledger, Place};

    fn ledger() -> Ledger {
        Ledger::new([0, 2048, 4096])
    }

    #[test]
    fn frames_move_one_place_at_a_time() {
        let mut l = ledger();
        l.mark(0, Place::Free, Place::Fill);
        l.mark(0, Place::Fill, Place::Held);
        l.mark(0, Place::Held, Place::Tx);
        l.mark(2048, Place::Free, Place::Held);
        assert_eq!(
            [Place::Free, Place::Held, Place::Fill, Place::Tx].map(|p| l.count(p)),
            [1, 1, 0, 1]
        );
        l.mark(0, Place::Tx, Place::Free);
        l.mark(2048, Place::Held, Place::Free);
        assert_eq!(l.count(Place::Free), 3);
    }

    #[test]
    #[should_panic(expected = "a frame in two places")]
    fn a_frame_freed_twice_stops_at_once() {
        let mut l = ledger();
        l.mark(0, Place::Free, Place::Held);
        l.mark(0, Place::Held, Place::Free);
        l.mark(0, Place::Held, Place::Free);
    }

    #[test]
    #[should_panic(expected = "a frame in two places")]
    fn a_frame_sent_while_the_kernel_fills_it_stops_at_once() {
        let mut l = ledger();
        l.mark(4096, Place::Free, Place::Fill);
        l.mark(4096, Place::Held, Place::Tx);
    }

    #[test]
    #[should_panic(expected = "not this share's")]
    fn a_frame_of_another_share_stops_at_once() {
        ledger().mark(8192, Place::Held, Place::Free);
    }
}

/// One member queue's AF_XDP socket.
pub struct XskPort {
    pub iface: String,
    pub queue: u32,
    tx: TxQueue,
    rx: RxQueue,
    fill: FillQueue,
    comp: CompQueue,
    in_fill: usize,
    in_tx: usize,
    /// The kernel moves this socket's frames without a copy (it honours need_wakeup).
    pub zero_copy: bool,
    tx_errors: u64,
    scratch: Vec<FrameDesc>,
    /// The start of a chain whose end was not in the RX ring yet (held, not yet handed on).
    partial: Vec<FrameDesc>,
    fd: i32,
}

/// What the kernel dropped or found wrong on one socket (XDP_STATISTICS), since it was bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the kernel dropped for this socket (RX ring full, or no room at all).
    pub rx_dropped: u64,
    pub rx_ring_full: u64,
    /// Times a frame arrived and the fill ring had no buffer for it.
    pub fill_ring_empty: u64,
    /// Descriptors the kernel refused to send (out of the UMEM, too long).
    pub tx_invalid: u64,
}

impl XskPort {
    /// Binds a socket on `iface`/`queue` to the shared UMEM (bond-dp's own XDP program, not
    /// libxdp's) and registers it in the program's XSKMAP under member `slot`.
    pub fn bind(
        umem: &UmemArea,
        iface: &str,
        queue: u32,
        slot: u32,
        cfg: &PortConfig,
        program: &XdpProgram,
    ) -> Result<XskPort, PortError> {
        let err = |reason: String| PortError::Socket {
            iface: iface.to_string(),
            queue,
            reason,
        };
        let ring = QueueSize::new(cfg.ring_size).map_err(|e| err(e.to_string()))?;
        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        if cfg.multi_buffer {
            bind |= BindFlags::XDP_USE_SG;
        }
        match cfg.zero_copy {
            Some(true) => bind |= BindFlags::XDP_ZEROCOPY,
            Some(false) => bind |= BindFlags::XDP_COPY,
            None => {}
        }
        let config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .xdp_flags(XdpFlags::empty())
            .bind_flags(bind)
            .build();
        let name = iface
            .parse()
            .map_err(|_| err("invalid interface name".into()))?;
        // SAFETY: INHIBIT_PROG_LOAD is set, as xsk-rs requires for a shared UMEM; each
        // (iface, queue) is bound once per bond, so the fill/comp rings come back with it.
        let (tx, rx, rings) =
            unsafe { Socket::new(config, &umem.umem, &name, queue) }.map_err(|e| {
                let hint = if cfg.multi_buffer {
                    " (jumbo frames need AF_XDP multi-buffer: Linux 6.6 or later, and driver \
                     support in zero-copy mode; jumbo=off binds without it)"
                } else {
                    ""
                };
                err(format!("{e}{hint}"))
            })?;
        let (fill, comp) = rings.ok_or_else(|| err("queue already bound from this UMEM".into()))?;
        let fd = rx.fd().as_raw_fd_compat();
        program.bind_socket(slot, queue, fd)?;
        let zero_copy = is_zero_copy(fd);
        Ok(XskPort {
            iface: iface.to_string(),
            queue,
            tx,
            rx,
            fill,
            comp,
            in_fill: 0,
            in_tx: 0,
            zero_copy,
            tx_errors: 0,
            scratch: vec![FrameDesc::default(); cfg.ring_size as usize],
            partial: Vec::new(),
            fd,
        })
    }

    /// The socket's XDP_STATISTICS: what the kernel dropped before bond-dp saw it.
    pub fn kernel_stats(&self) -> io::Result<KernelStats> {
        // SAFETY: an all-zero xdp_statistics is a valid value (plain integers).
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: `fd` is this port's open XDP socket (it lives as long as `rx`); `st` and
        // `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(KernelStats {
            rx_dropped: st.rx_dropped,
            rx_ring_full: st.rx_ring_full,
            fill_ring_empty: st.rx_fill_ring_empty_descs,
            tx_invalid: st.tx_invalid_descs,
        })
    }

    /// The socket, for an idle worker to sleep on (readable when frames arrive).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Frames this port holds (fill ring, TX ring awaiting completion, a chain's start).
    pub fn held(&self) -> usize {
        self.in_fill + self.in_tx + self.partial.len()
    }

    /// "fill N tx N", for diagnostics.
    pub fn census(&self) -> String {
        format!("fill {} tx {}", self.in_fill, self.in_tx)
    }

    /// Gives the kernel free frames to receive into, as many as the fill ring takes.
    pub fn refill(&mut self, pool: &mut FramePool) {
        let want = pool.free.len().min(self.scratch.len()) as u32;
        let n = self.fill.nb_free(want) as usize;
        if n == 0 {
            return;
        }
        let start = pool.free.len() - n;
        // SAFETY: the frames come from the pool, so nothing else uses them; `nb_free`
        // guaranteed room for all n (produce is all-or-nothing).
        let done = unsafe { self.fill.produce(&pool.free[start..]) };
        if done == n {
            #[cfg(debug_assertions)]
            for desc in &pool.free[start..] {
                pool.ledger.mark(desc.addr(), Place::Free, Place::Fill);
            }
            pool.free.truncate(start);
            self.in_fill += n;
        }
    }

    /// Takes back frames whose transmission completed; returns how many.
    pub fn reclaim(&mut self, pool: &mut FramePool) -> usize {
        // SAFETY: completed frames are no longer used by the kernel.
        let n = unsafe { self.comp.consume(&mut self.scratch) };
        self.in_tx -= n;
        for desc in &self.scratch[..n] {
            pool.mark(desc, Place::Tx, Place::Free);
        }
        pool.free.extend_from_slice(&self.scratch[..n]);
        if n == 0 && self.in_tx > 0 {
            // Frames are queued but none completed: they may be waiting for a kick (copy
            // mode sends at most a batch of 32 per kick).
            self.kick_tx();
        }
        n
    }

    /// Frames in the TX ring waiting for their completion.
    pub fn in_flight(&self) -> usize {
        self.in_tx
    }

    /// Asks the kernel to transmit what the TX ring holds. Copy mode never raises
    /// need_wakeup yet transmits only when kicked; zero-copy drivers that clear the flag are
    /// spared the syscall.
    /// Errors that say the device will not transmit (ENETDOWN, ENXIO, ...) are counted;
    /// a full queue or a busy driver (EAGAIN, EBUSY, ENOBUFS) is not an error.
    fn kick_tx(&mut self) {
        if !self.zero_copy || self.tx.needs_wakeup() {
            if let Err(e) = self.tx.wakeup() {
                let transient = [libc::EAGAIN, libc::EBUSY, libc::ENOBUFS, libc::EINTR];
                if !e
                    .raw_os_error()
                    .is_some_and(|code| transient.contains(&code))
                {
                    self.tx_errors += 1;
                }
            }
        }
    }

    /// TX wake-ups the kernel refused with an error that is not transient.
    pub fn tx_errors(&self) -> u64 {
        self.tx_errors
    }

    /// Received packets, appended to `out` (at most `max` frames, whole chains only, though
    /// one chain may pass `max`); the caller now holds them (`pool` keeps the ledger).
    /// Returns the frames appended.
    pub fn recv(&mut self, out: &mut Vec<FrameDesc>, max: usize, pool: &mut FramePool) -> usize {
        let start = out.len();
        out.append(&mut self.partial);
        let mut want = max.saturating_sub(out.len() - start).max(1);
        loop {
            let n = self.consume(out, want, pool);
            // The kernel publishes a chain whole; a read cut it short when `want` ran out.
            if n == 0 || !out.last().is_some_and(continues) {
                break;
            }
            want = 1;
        }
        let whole = start + whole_packets(&out[start..]);
        self.partial.extend(out.drain(whole..));
        out.len() - start
    }

    /// Up to `max` descriptors from the RX ring, appended to `out`.
    fn consume(&mut self, out: &mut Vec<FrameDesc>, max: usize, pool: &mut FramePool) -> usize {
        let max = max.min(self.scratch.len());
        // SAFETY: received frames are handed to us by the kernel; it no longer writes them.
        let n = unsafe { self.rx.consume(&mut self.scratch[..max]) };
        self.in_fill -= n;
        for desc in &self.scratch[..n] {
            pool.mark(desc, Place::Fill, Place::Held);
        }
        out.extend_from_slice(&self.scratch[..n]);
        n
    }

    /// Queues held packets for transmission, as many whole ones as the ring takes; the
    /// rest go back to the pool, and how many packets that was is returned. Wakes the
    /// kernel if it asks.
    pub fn send(&mut self, frames: &[FrameDesc], pool: &mut FramePool) -> usize {
        let room = (self.tx.nb_free(frames.len() as u32) as usize).min(frames.len());
        // A chain goes into the ring whole or not at all.
        let n = whole_packets(&frames[..room]);
        let mut sent = 0;
        if n > 0 {
            // SAFETY: the caller held these frames; `nb_free` guaranteed room for n.
            sent = unsafe { self.tx.produce(&frames[..n]) };
            self.in_tx += sent;
        }
        for desc in &frames[..sent] {
            pool.mark(desc, Place::Held, Place::Tx);
        }
        let dropped = packets(&frames[sent..]).count();
        for &desc in &frames[sent..] {
            pool.put(desc);
        }
        if sent > 0 {
            self.kick_tx();
        }
        dropped
    }

    /// Kicks the kernel to fill RX if it stopped for lack of frames (need_wakeup).
    pub fn wake_rx(&mut self) -> io::Result<()> {
        if self.fill.needs_wakeup() {
            self.fill.wakeup(self.rx.fd_mut(), 0)?;
        }
        Ok(())
    }
}

/// Whether the kernel bound the AF_XDP socket `fd` in zero-copy mode (XDP_OPTIONS).
fn is_zero_copy(fd: i32) -> bool {
    let mut options = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: `options` and `len` are valid for writes of the sizes given; the kernel writes
    // at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&mut options as *mut libc::xdp_options).cast(),
            &mut len,
        )
    };
    rc == 0 && options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

/// The raw descriptor of an xsk-rs `Fd`.
trait RawFdCompat {
    fn as_raw_fd_compat(&self) -> i32;
}

impl RawFdCompat for xsk_rs::socket::Fd {
    fn as_raw_fd_compat(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.as_raw_fd()
    }
}

#[cfg(test)]
mod chain_tests {
    use super::{packets, whole_packets, FrameDesc, XDP_PKT_CONTD};

    /// A burst from a pattern: `c` a frame that continues, `e` one that ends a packet.
    fn burst(pattern: &str) -> Vec<FrameDesc> {
        pattern
            .chars()
            .map(|c| {
                let mut d = FrameDesc::default();
                d.set_options(if c == 'c' { XDP_PKT_CONTD } else { 0 });
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_splits_into_its_chains() {
        let runs: Vec<_> = packets(&burst("eccecee")).collect();
        assert_eq!(runs, [0..1, 1..4, 4..6, 6..7]);
        assert_eq!(packets(&burst("")).count(), 0);
        // A chain cut short is still one run, to the end.
        let runs: Vec<_> = packets(&burst("ecc")).collect();
        assert_eq!(runs, [0..1, 1..3]);
    }

    #[test]
    fn only_whole_packets_go_into_a_ring() {
        assert_eq!(whole_packets(&burst("eccecc")), 4);
        assert_eq!(whole_packets(&burst("ccc")), 0);
        assert_eq!(whole_packets(&burst("ee")), 2);
        assert_eq!(whole_packets(&burst("")), 0);
    }
}
