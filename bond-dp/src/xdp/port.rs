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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use thiserror::Error;

use super::program::XdpProgram;
pub use super::ring::FrameDesc;
use super::ring::{self, Ring, Which};

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
    mem: Arc<UmemMemory>,
    /// Packets longer than a frame may be chains (the sockets take multi-buffer).
    chains: bool,
}

/// The UMEM's memory, and the AF_XDP socket it is registered on. The first port bound uses
/// that socket; the others share the UMEM through it (XDP_SHARED_UMEM).
struct UmemMemory {
    base: NonNull<u8>,
    len: usize,
    frame_size: usize,
    /// `None` for a UMEM in memory only (tests and benchmarks), which no socket binds to.
    fd: Option<OwnedFd>,
    /// Where the UMEM's own socket is bound (device index, queue), once the first port is:
    /// it stays there as long as the UMEM, whatever becomes of that port.
    home: Mutex<Option<(u32, u32)>>,
}

// SAFETY: the memory is shared by design. Each frame has one owner at a time (a worker's
// pool or ring, or the kernel: see the module's ledger), and only its owner touches it.
unsafe impl Send for UmemMemory {}
// SAFETY: as above.
unsafe impl Sync for UmemMemory {}

impl Drop for UmemMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is this UMEM's; no port is left (each holds the memory), so
        // nothing reads or writes it. The kernel pinned the pages it uses while registered.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Room the kernel keeps before a received packet (XDP_PACKET_HEADROOM); frames bond-dp
/// writes itself start there too.
const HEADROOM: usize = 256;

impl UmemArea {
    /// A UMEM registered with the kernel, for AF_XDP sockets to bind to.
    pub fn new(cfg: &PortConfig) -> Result<(UmemArea, FramePool), PortError> {
        let err = umem_error(cfg);
        let fd = xdp_socket().map_err(|e| err(format!("AF_XDP socket: {e}")))?;
        let (mut area, pool) = Self::in_memory(cfg)?;
        let mem = &area.mem;
        let reg = libc::xdp_umem_reg {
            addr: mem.base.as_ptr() as u64,
            len: mem.len as u64,
            chunk_size: mem.frame_size as u32,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        // The memory it names lives as long as the UMEM, which every socket bound to it keeps.
        crate::sockopt::set(fd.as_raw_fd(), libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(|e| err(format!("XDP_UMEM_REG: {e}")))?;
        Arc::get_mut(&mut area.mem).expect("not shared yet").fd = Some(fd);
        Ok((area, pool))
    }

    /// A UMEM in memory only, with no socket: the engine's tests and benchmarks run on it
    /// with [`crate::engine::MemoryPort`]s, without root.
    pub fn in_memory(cfg: &PortConfig) -> Result<(UmemArea, FramePool), PortError> {
        let err = umem_error(cfg);
        let frame_size = cfg.frame_size as usize;
        if !frame_size.is_power_of_two() || !(2048..=65536).contains(&frame_size) {
            return Err(err(
                "the frame size is a power of two from 2048 to 65536".into()
            ));
        }
        if cfg.frame_count == 0 {
            return Err(err("no frames".into()));
        }
        let len = frame_size * cfg.frame_count as usize;
        // SAFETY: a new private anonymous mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        let base = NonNull::new(base.cast::<u8>())
            .filter(|_| base != libc::MAP_FAILED)
            .ok_or_else(|| err(format!("mmap: {}", io::Error::last_os_error())))?;
        let mem = UmemMemory {
            base,
            len,
            frame_size,
            fd: None,
            home: Mutex::new(None),
        };
        let descs = (0..cfg.frame_count as usize)
            .map(|i| FrameDesc::new((i * frame_size + HEADROOM) as u64, 0, 0))
            .collect::<Vec<_>>();
        let area = UmemArea {
            mem: Arc::new(mem),
            chains: cfg.multi_buffer,
        };
        Ok((area, FramePool::new(descs, frame_size)))
    }

    /// The socket the UMEM is registered on.
    fn fd(&self) -> io::Result<RawFd> {
        self.mem
            .fd
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| io::Error::other("a UMEM in memory only takes no socket"))
    }

    /// A socket for a port to bind on queue `queue` of device `ifindex`: `None` for the
    /// first, which uses the UMEM's own socket, and a new one (which shares the UMEM) after
    /// that. Refused on the queue the UMEM's own socket holds (its port's member left and
    /// came back): no second socket binds there while the UMEM lives.
    fn socket_for_port(&self, ifindex: u32, queue: u32) -> io::Result<Option<OwnedFd>> {
        self.fd()?;
        let mut home = self.mem.home.lock().expect("UMEM home lock");
        match *home {
            None => {
                *home = Some((ifindex, queue));
                Ok(None)
            }
            Some(h) if h == (ifindex, queue) => Err(io::Error::other(
                "the UMEM's own socket is still bound to this queue (the first member it was \
                 set up with left since): only a data plane set up again binds here",
            )),
            Some(_) => xdp_socket().map(Some),
        }
    }

    pub fn frame_count(&self) -> usize {
        self.mem.len / self.mem.frame_size
    }

    /// Where a frame's bytes are, kept inside the UMEM whatever the descriptor says.
    fn span(&self, desc: &FrameDesc) -> (usize, usize) {
        let start = desc.addr().min(self.mem.len);
        (start, desc.len().min(self.mem.len - start))
    }

    /// The bytes of a frame the caller holds.
    pub fn data(&self, desc: &FrameDesc) -> &[u8] {
        let (start, len) = self.span(desc);
        // SAFETY: the span lies inside the UMEM's mapping. `desc` came from this UMEM's pool
        // or one of its rings, and the caller holds it (it is in no ring), so neither the
        // kernel nor another worker writes this frame while it is read.
        unsafe { std::slice::from_raw_parts(self.mem.base.as_ptr().add(start), len) }
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
        let (start, len) = self.span(desc);
        // SAFETY: as in `data`; `&mut desc` makes this the only access through bond-dp.
        unsafe { std::slice::from_raw_parts_mut(self.mem.base.as_ptr().add(start), len) }
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
            let room = self.capacity(&desc);
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

    /// The bytes one frame holds, from where its packet starts to the frame's end.
    fn capacity(&self, desc: &FrameDesc) -> usize {
        let size = self.mem.frame_size;
        (size - desc.addr() % size).min(self.mem.len.saturating_sub(desc.addr()))
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
        if bytes.len() > self.capacity(desc) {
            return false;
        }
        desc.set_options(0);
        desc.set_len(bytes.len());
        self.data_mut(desc).copy_from_slice(bytes);
        true
    }
}

/// The descriptor option that says the packet goes on in the next descriptor.
use libc::XDP_PKT_CONTD;

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

/// Free frames, and (in debug builds) the ledger of where each of the share's frames is.
pub struct FramePool {
    free: Vec<FrameDesc>,
    /// The UMEM's frame size: a descriptor's frame is where its address falls.
    frame_size: usize,
    #[cfg(debug_assertions)]
    ledger: Ledger,
}

impl FramePool {
    fn new(free: Vec<FrameDesc>, frame_size: usize) -> FramePool {
        FramePool {
            #[cfg(debug_assertions)]
            ledger: Ledger::new(free.iter().map(|d| d.addr() / frame_size)),
            free,
            frame_size,
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
        self.ledger.mark(_desc.addr() / self.frame_size, _from, _to);
    }

    /// Lends up to `n` free frames to a port's fill ring: they are the kernel's to receive
    /// into until `received`.
    pub(crate) fn lend(&mut self, n: usize) -> std::vec::Drain<'_, FrameDesc> {
        let start = self.free.len() - n.min(self.free.len());
        for i in start..self.free.len() {
            let desc = self.free[i];
            self.mark(&desc, Place::Free, Place::Fill);
        }
        self.free.drain(start..)
    }

    /// A frame of the fill ring came back with a received packet: the caller holds it.
    pub(crate) fn received(&mut self, desc: &FrameDesc) {
        self.mark(desc, Place::Fill, Place::Held);
    }

    /// Held packets bound for a TX ring with `room` free slots: the whole packets that fit
    /// (a prefix of `frames`) are the ring's until their completion, and the rest come back
    /// to the pool. Returns how many frames go to the ring, and how many packets came back.
    pub(crate) fn queue_for_tx(&mut self, frames: &[FrameDesc], room: usize) -> (usize, usize) {
        // A chain goes into the ring whole or not at all.
        let sent = whole_packets(&frames[..room.min(frames.len())]);
        for desc in &frames[..sent] {
            self.mark(desc, Place::Held, Place::Tx);
        }
        let dropped = packets(&frames[sent..]).count();
        for &desc in &frames[sent..] {
            self.put(desc);
        }
        (sent, dropped)
    }

    /// A frame's transmission completed: it is free again.
    pub(crate) fn completed(&mut self, desc: FrameDesc) {
        self.mark(&desc, Place::Tx, Place::Free);
        self.free.push(desc);
    }

    /// Frames a closed socket gave back (`FrameReturns`), each from where it was: free
    /// again. Returns how many.
    pub fn take_returned(&mut self, returns: &FrameReturns) -> usize {
        let returned = std::mem::take(&mut *returns.0.lock().expect("frame returns lock"));
        for &(desc, from) in &returned {
            match from {
                Place::Tx => self.completed(desc),
                _ => {
                    self.received(&desc);
                    self.put(desc);
                }
            }
        }
        returned.len()
    }

    /// Deals the frames out into `n` pools of equal size, one per worker.
    pub fn split(mut self, n: usize) -> Vec<FramePool> {
        let each = self.free.len() / n.max(1);
        (0..n)
            .map(|_| FramePool::new(self.free.split_off(self.free.len() - each), self.frame_size))
            .collect()
    }
}

/// Frames on their way back to a pool from sockets closed outside its worker (whose pool
/// only its worker touches), with where each was: lent to a fill ring, or queued to send.
#[derive(Clone, Debug, Default)]
pub struct FrameReturns(Arc<Mutex<Vec<(FrameDesc, Place)>>>);

impl FrameReturns {
    pub fn give(&self, frames: impl IntoIterator<Item = (FrameDesc, Place)>) {
        self.0.lock().expect("frame returns lock").extend(frames);
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

    /// Frame number `frame` (its address over the frame size) moves.
    pub fn mark(&mut self, frame: usize, from: Place, to: Place) {
        match self.places.get_mut(&frame) {
            Some(place) if *place == from => *place = to,
            Some(place) => panic!(
                "UMEM frame {frame} going from {from:?} to {to:?} is {place:?}: a frame in \
                 two places"
            ),
            None => panic!("UMEM frame {frame} is not this share's (going to {to:?})"),
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
        Ledger::new([0, 1, 2])
    }

    #[test]
    fn frames_move_one_place_at_a_time() {
        let mut l = ledger();
        l.mark(0, Place::Free, Place::Fill);
        l.mark(0, Place::Fill, Place::Held);
        l.mark(0, Place::Held, Place::Tx);
        l.mark(1, Place::Free, Place::Held);
        assert_eq!(
            [Place::Free, Place::Held, Place::Fill, Place::Tx].map(|p| l.count(p)),
            [1, 1, 0, 1]
        );
        l.mark(0, Place::Tx, Place::Free);
        l.mark(1, Place::Held, Place::Free);
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
        l.mark(2, Place::Free, Place::Fill);
        l.mark(2, Place::Held, Place::Tx);
    }

    #[test]
    #[should_panic(expected = "not this share's")]
    fn a_frame_of_another_share_stops_at_once() {
        ledger().mark(3, Place::Held, Place::Free);
    }
}

/// One member queue's AF_XDP socket.
pub struct XskPort {
    pub iface: String,
    /// The device's index when bound.
    pub ifindex: u32,
    pub queue: u32,
    tx: Ring<FrameDesc>,
    rx: Ring<FrameDesc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    in_fill: usize,
    in_tx: usize,
    /// The kernel moves this socket's frames without a copy (it honours need_wakeup).
    pub zero_copy: bool,
    tx_errors: u64,
    ring_size: usize,
    /// Completed addresses, read in one go.
    completed: Vec<u64>,
    /// The start of a chain whose end was not in the RX ring yet (held, not yet handed on).
    partial: Vec<FrameDesc>,
    /// The socket's descriptor: `own_fd`'s, or (the first port) the UMEM's.
    fd: RawFd,
    /// Held for their lifetimes: the socket this port opened (`None` for the first port,
    /// whose socket is the UMEM's, kept open by `_umem`) and the UMEM the kernel writes into
    /// while the socket is bound. Declared after the rings, which unmap before it closes.
    own_fd: Option<OwnedFd>,
    _umem: UmemArea,
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
        let ifindex = crate::monitor::read_ifindex(iface).map_err(|e| err(e.to_string()))?;
        let ring_size = cfg.ring_size;
        if !ring_size.is_power_of_two() {
            return Err(err(format!("ring size {ring_size} is not a power of two")));
        }
        let own_fd = umem
            .socket_for_port(ifindex, queue)
            .map_err(|e| err(format!("AF_XDP socket: {e}")))?;
        let umem_fd = umem.fd().map_err(|e| err(e.to_string()))?;
        let fd = own_fd.as_ref().map_or(umem_fd, AsRawFd::as_raw_fd);
        let rings = || -> io::Result<_> {
            for which in [Which::Rx, Which::Tx, Which::Fill, Which::Completion] {
                ring::set_ring_size(fd, which, ring_size)?;
            }
            let offsets = ring::mmap_offsets(fd)?;
            Ok((
                Ring::map(fd, &offsets, Which::Tx, ring_size)?,
                Ring::map(fd, &offsets, Which::Rx, ring_size)?,
                Ring::map(fd, &offsets, Which::Fill, ring_size)?,
                Ring::map(fd, &offsets, Which::Completion, ring_size)?,
            ))
        };
        let (tx, rx, fill, comp) = rings().map_err(|e| err(format!("rings: {e}")))?;
        let mut flags = libc::XDP_USE_NEED_WAKEUP;
        if cfg.multi_buffer {
            flags |= libc::XDP_USE_SG;
        }
        match cfg.zero_copy {
            Some(true) => flags |= libc::XDP_ZEROCOPY,
            Some(false) => flags |= libc::XDP_COPY,
            None => {}
        }
        if own_fd.is_some() {
            // A socket that shares the UMEM takes the first one's mode; the kernel refuses
            // flags of its own.
            flags = libc::XDP_SHARED_UMEM;
        }
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: umem_fd as u32,
        };
        if let Err(e) = bind_xdp(fd, &addr) {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) => " (another AF_XDP socket holds this queue)",
                Some(libc::EINVAL | libc::EOPNOTSUPP) if cfg.multi_buffer => {
                    " (jumbo frames need AF_XDP multi-buffer: Linux 6.6 or later, and driver \
                     support in zero-copy mode; jumbo=off binds without it)"
                }
                _ => "",
            };
            return Err(err(format!("bind: {e}{hint}")));
        }
        program.bind_socket(slot, queue, fd)?;
        Ok(XskPort {
            iface: iface.to_string(),
            ifindex,
            queue,
            tx,
            rx,
            fill,
            comp,
            in_fill: 0,
            in_tx: 0,
            zero_copy: is_zero_copy(fd),
            tx_errors: 0,
            ring_size: ring_size as usize,
            completed: Vec::with_capacity(ring_size as usize),
            partial: Vec::new(),
            fd,
            own_fd,
            _umem: umem.clone(),
        })
    }

    /// Whether this is the UMEM's own socket, which stays bound to its queue as long as the
    /// UMEM lives (no other socket binds there): a member that leaves and comes back is
    /// served by it again (`serve_again`).
    pub fn holds_umem(&self) -> bool {
        self.own_fd.is_none()
    }

    /// The UMEM's own socket, kept since its member left (its frames still lent), serves the
    /// member again at `slot`: its queue goes back into the program's socket map.
    pub fn serve_again(&self, slot: u32, program: &XdpProgram) -> Result<(), PortError> {
        program.bind_socket(slot, self.queue, self.fd)?;
        Ok(())
    }

    /// The socket's XDP_STATISTICS: what the kernel dropped before bond-dp saw it.
    pub fn kernel_stats(&self) -> io::Result<KernelStats> {
        let (st, _) = crate::sockopt::get::<libc::xdp_statistics>(
            self.fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
        )?;
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
        let n = (self.fill.free() as usize).min(pool.free());
        if n == 0 {
            return;
        }
        self.fill.produce(pool.lend(n).map(|d| d.addr() as u64));
        self.in_fill += n;
    }

    /// Takes back frames whose transmission completed; returns how many.
    pub fn reclaim(&mut self, pool: &mut FramePool) -> usize {
        self.completed.clear();
        let n = self.comp.consume(&mut self.completed, self.ring_size);
        self.in_tx -= n;
        for &addr in &self.completed {
            pool.completed(FrameDesc::new(addr, 0, 0));
        }
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
        if self.zero_copy && !self.tx.needs_wakeup() {
            return;
        }
        // SAFETY: a zero-length send on this port's socket, no buffers: the AF_XDP wake-up.
        let rc = unsafe {
            libc::sendto(
                self.fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let code = io::Error::last_os_error().raw_os_error();
            let transient = [libc::EAGAIN, libc::EBUSY, libc::ENOBUFS, libc::EINTR];
            if !code.is_some_and(|c| transient.contains(&c)) {
                self.tx_errors += 1;
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
        let from = out.len();
        let n = self.rx.consume(out, max);
        self.in_fill -= n;
        for desc in &out[from..] {
            pool.received(desc);
        }
        n
    }

    /// Queues held packets for transmission, as many whole ones as the ring takes; the
    /// rest go back to the pool, and how many packets that was is returned. Wakes the
    /// kernel if it asks.
    pub fn send(&mut self, frames: &[FrameDesc], pool: &mut FramePool) -> usize {
        let (sent, dropped) = pool.queue_for_tx(frames, self.tx.free() as usize);
        if sent > 0 {
            self.tx.produce(frames[..sent].iter().copied());
            self.in_tx += sent;
            self.kick_tx();
        }
        dropped
    }

    /// The socket is leaving (its member left), while its worker is paused: completed and
    /// received frames (and a chain's start) return to `pool`. Returns the frames it still
    /// has in its fill and TX rings, which leave the pool's keeping with it (see `close`).
    pub fn retire(&mut self, pool: &mut FramePool) -> usize {
        self.reclaim(pool);
        let mut received = std::mem::take(&mut self.partial);
        while self.consume(&mut received, self.ring_size, pool) > 0 {}
        for desc in received {
            pool.put(desc);
        }
        self.in_fill + self.in_tx
    }

    /// Closes a retired socket (slow: the kernel waits for every receive in flight), and
    /// returns the frames that come back, with where they were. Once `close` returns no
    /// receive or transmit uses a socket of its own, so what its rings hold comes back (in
    /// copy mode; a zero-copy driver keeps the fill ring's a little longer, and those are
    /// lost). The UMEM's own socket stays open for the others to share the UMEM through:
    /// only what its rings gave back returns, and frames still lent to it are lost.
    pub fn close(mut self) -> Vec<(FrameDesc, Place)> {
        let closed = self.own_fd.take().is_some();
        // Received into frames lent, or lent and never used: both were the fill ring's.
        let mut lent = Vec::new();
        while self.rx.consume(&mut lent, self.ring_size) > 0 {}
        // Transmitted, or queued and never sent: both were the TX ring's.
        let mut sent: Vec<FrameDesc> = Vec::new();
        let mut completed = Vec::new();
        while self.comp.consume(&mut completed, self.ring_size) > 0 {}
        sent.extend(completed.into_iter().map(|a| FrameDesc::new(a, 0, 0)));
        if closed {
            // A zero-copy driver lets go of the fill ring only in the kernel's deferred
            // release of the socket, after `close`: what it holds or may still take stays
            // lost. Off the TX list, no driver takes from the TX ring any more.
            if !self.zero_copy {
                let mut addrs = Vec::new();
                self.fill.take_back(&mut addrs);
                lent.extend(addrs.into_iter().map(|a| FrameDesc::new(a, 0, 0)));
            }
            self.tx.take_back(&mut sent);
        }
        let lent = lent.into_iter().map(|d| (d, Place::Fill));
        lent.chain(sent.into_iter().map(|d| (d, Place::Tx)))
            .collect()
    }

    /// Kicks the kernel to fill RX if it stopped for lack of frames (need_wakeup).
    pub fn wake_rx(&mut self) -> io::Result<()> {
        if self.fill.needs_wakeup() {
            // SAFETY: a zero-length receive on this port's socket, no buffers: the AF_XDP
            // wake-up for the fill ring.
            let rc = unsafe {
                libc::recvfrom(
                    self.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EAGAIN) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// How long a bind waits for a queue that a socket closed a moment ago still holds: the
/// kernel lets go of the queue in deferred work after `close` returns.
const QUEUE_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Binds AF_XDP socket `fd` to `addr`, waiting (up to QUEUE_RELEASE_WAIT) while the queue is
/// busy.
fn bind_xdp(fd: RawFd, addr: &libc::sockaddr_xdp) -> io::Result<()> {
    let deadline = std::time::Instant::now() + QUEUE_RELEASE_WAIT;
    loop {
        // SAFETY: `addr` is a valid sockaddr_xdp for the length given.
        let rc = unsafe {
            libc::bind(
                fd,
                (addr as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) || std::time::Instant::now() >= deadline {
            return Err(e);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Whether the kernel bound the AF_XDP socket `fd` in zero-copy mode (XDP_OPTIONS).
fn is_zero_copy(fd: i32) -> bool {
    crate::sockopt::get::<libc::xdp_options>(fd, libc::SOL_XDP, libc::XDP_OPTIONS)
        .is_ok_and(|(o, _)| o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
}

fn umem_error(cfg: &PortConfig) -> impl Fn(String) -> PortError + '_ {
    move |reason| PortError::Umem {
        frames: cfg.frame_count,
        frame_size: cfg.frame_size,
        reason,
    }
}

/// A new AF_XDP socket.
fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
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
