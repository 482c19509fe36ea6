//! The AF_XDP rings the kernel shares with bond-dp (linux/if_xdp.h), mapped from a socket:
//! RX and TX carry descriptors, fill and completion carry frame addresses.
//!
//! Each ring has one producer and one consumer, the kernel being one of them. The producer
//! writes entries, then publishes them by storing its position with release ordering; the
//! consumer loads that position with acquire ordering before reading the entries, and gives
//! the slots back the same way. This is what libxdp's `xsk_ring_prod__submit` and
//! `xsk_ring_cons__release` do.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// A frame descriptor as the RX and TX rings hold it (`struct xdp_desc`): where the packet's
/// bytes are in the UMEM, how many, and whether the packet goes on in the next descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameDesc {
    addr: u64,
    len: u32,
    options: u32,
}

impl FrameDesc {
    pub(crate) fn new(addr: u64, len: u32, options: u32) -> FrameDesc {
        FrameDesc { addr, len, options }
    }

    /// The packet bytes' offset in the UMEM.
    #[inline]
    pub fn addr(&self) -> usize {
        self.addr as usize
    }

    /// How many bytes of packet the frame holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn options(&self) -> u32 {
        self.options
    }

    #[inline]
    pub fn set_options(&mut self, options: u32) {
        self.options = options;
    }

    #[inline]
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len as u32;
    }
}

/// Which ring of a socket: its mmap page offset and where `XDP_MMAP_OFFSETS` says its parts
/// are.
#[derive(Clone, Copy, Debug)]
pub enum Which {
    Rx,
    Tx,
    Fill,
    Completion,
}

/// One mapped ring of entries `T` (`FrameDesc` for RX/TX, `u64` addresses for fill and
/// completion), seen from bond-dp's side: producer of fill and TX, consumer of RX and
/// completion.
pub struct Ring<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    size: u32,
    /// bond-dp's own position (it alone moves it), and the kernel's as last loaded.
    own: u32,
    theirs: u32,
    /// The mapping to undo when the ring goes (`None` for a test's ring in memory).
    map: Option<(NonNull<libc::c_void>, usize)>,
}

// SAFETY: the mapping belongs to this ring alone; the kernel, the only other party, is
// synchronised with through the atomic positions. Moving the ring to another thread (a
// worker) moves all of bond-dp's access with it.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps ring `which` of socket `fd`, whose size (`size` entries, a power of two) was set
    /// with its setsockopt; `offsets` are the socket's `mmap_offsets`.
    pub fn map(
        fd: RawFd,
        offsets: &libc::xdp_mmap_offsets,
        which: Which,
        size: u32,
    ) -> io::Result<Ring<T>> {
        let (off, pgoff) = match which {
            Which::Rx => (offsets.rx, libc::XDP_PGOFF_RX_RING),
            Which::Tx => (offsets.tx, libc::XDP_PGOFF_TX_RING),
            Which::Fill => (offsets.fr, libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t),
            Which::Completion => (
                offsets.cr,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            ),
        };
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a new shared mapping of the socket's ring; the result is checked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // SAFETY: the kernel's offsets lie inside the mapping it made for this ring, and are
        // aligned for what they point at (positions and flags are u32, entries T).
        let at = |offset: u64| unsafe { NonNull::new_unchecked(base.add(offset as usize)) };
        let producer = at(off.producer).cast::<AtomicU32>();
        let consumer = at(off.consumer).cast::<AtomicU32>();
        // SAFETY: as above; both are u32 positions the kernel initialised.
        let (p, c) = unsafe {
            (
                producer.as_ref().load(Ordering::Acquire),
                consumer.as_ref().load(Ordering::Acquire),
            )
        };
        let producing = matches!(which, Which::Tx | Which::Fill);
        Ok(Ring {
            producer,
            consumer,
            flags: at(off.flags).cast(),
            entries: at(off.desc).cast(),
            size,
            own: if producing { p } else { c },
            theirs: if producing { c } else { p },
            // SAFETY: mmap succeeded, so the address is not null.
            map: Some((unsafe { NonNull::new_unchecked(map) }, map_len)),
        })
    }

    fn position(&self, p: NonNull<AtomicU32>) -> &AtomicU32 {
        // SAFETY: positions stay mapped as long as the ring.
        unsafe { p.as_ref() }
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: `index & (size - 1)` is inside the entries' part of the mapping.
        unsafe {
            self.entries
                .as_ptr()
                .add((index & (self.size - 1)) as usize)
        }
    }

    /// Whether the kernel asks for a system call before it looks at this ring again.
    pub fn needs_wakeup(&self) -> bool {
        // XDP_RING_NEED_WAKEUP: the kernel waits for a system call before it looks again.
        self.position(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // --- producer side (fill, TX) ---

    /// Slots free for bond-dp to produce into.
    pub fn free(&mut self) -> u32 {
        self.theirs = self.position(self.consumer).load(Ordering::Acquire);
        self.size - self.own.wrapping_sub(self.theirs)
    }

    /// Produces `items` (no more than `free` said) and publishes them.
    pub fn produce(&mut self, items: impl IntoIterator<Item = T>) -> usize {
        let mut n = 0u32;
        for item in items {
            debug_assert!(self.own.wrapping_add(n).wrapping_sub(self.theirs) < self.size);
            // SAFETY: the slot is free: the kernel consumed it (checked by `free`).
            unsafe { self.slot(self.own.wrapping_add(n)).write(item) };
            n += 1;
        }
        self.own = self.own.wrapping_add(n);
        self.position(self.producer)
            .store(self.own, Ordering::Release);
        n as usize
    }

    /// Takes back, oldest first into `out`, what was produced and not consumed: for a socket
    /// the kernel has let go of (closed), whose unconsumed entries are bond-dp's again.
    /// Returns how many.
    pub fn take_back(&mut self, out: &mut Vec<T>) -> usize {
        self.theirs = self.position(self.consumer).load(Ordering::Acquire);
        let n = self.own.wrapping_sub(self.theirs);
        for i in 0..n {
            // SAFETY: bond-dp wrote this slot and the kernel never consumed it.
            out.push(unsafe { self.slot(self.theirs.wrapping_add(i)).read() });
        }
        self.own = self.theirs;
        self.position(self.producer)
            .store(self.own, Ordering::Release);
        n as usize
    }

    // --- consumer side (RX, completion) ---

    /// Consumes up to `max` entries into `out`; returns how many.
    pub fn consume(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        if self.theirs == self.own {
            self.theirs = self.position(self.producer).load(Ordering::Acquire);
        }
        let n = (self.theirs.wrapping_sub(self.own) as usize).min(max);
        for i in 0..n as u32 {
            // SAFETY: the kernel published this entry (acquire above) and does not touch it
            // until the consumer position passes it.
            out.push(unsafe { self.slot(self.own.wrapping_add(i)).read() });
        }
        if n > 0 {
            self.own = self.own.wrapping_add(n as u32);
            self.position(self.consumer)
                .store(self.own, Ordering::Release);
        }
        n
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        if let Some((map, len)) = self.map {
            // SAFETY: the mapping is this ring's own, and nothing points into it any more.
            unsafe { libc::munmap(map.as_ptr(), len) };
        }
    }
}

/// Where the parts of each ring are in its mapping (XDP_MMAP_OFFSETS).
pub fn mmap_offsets(fd: RawFd) -> io::Result<libc::xdp_mmap_offsets> {
    let (off, len) = crate::sockopt::get(fd, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)?;
    if len != std::mem::size_of::<libc::xdp_mmap_offsets>() {
        // A kernel without the flags field (before 5.4) is not one bond-dp runs on.
        return Err(io::Error::other("kernel too old: no AF_XDP ring flags"));
    }
    Ok(off)
}

/// Sets a ring's size (entries, a power of two) before it is mapped.
pub fn set_ring_size(fd: RawFd, which: Which, size: u32) -> io::Result<()> {
    let opt = match which {
        Which::Rx => libc::XDP_RX_RING,
        Which::Tx => libc::XDP_TX_RING,
        Which::Fill => libc::XDP_UMEM_FILL_RING,
        Which::Completion => libc::XDP_UMEM_COMPLETION_RING,
    };
    crate::sockopt::set(fd, libc::SOL_XDP, opt, &size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel's side of a ring is: the two positions, the flags and the entries.
    struct Shared<T> {
        producer: AtomicU32,
        consumer: AtomicU32,
        flags: AtomicU32,
        entries: Vec<T>,
    }

    /// A ring of `size` entries over `shared` (which must outlive it), as bond-dp's producer
    /// side (`producing`) or consumer side.
    fn ring<T: Copy>(shared: &mut Shared<T>, producing: bool) -> Ring<T> {
        let size = shared.entries.len() as u32;
        let (p, c) = (
            shared.producer.load(Ordering::Relaxed),
            shared.consumer.load(Ordering::Relaxed),
        );
        Ring {
            producer: NonNull::from(&shared.producer),
            consumer: NonNull::from(&shared.consumer),
            flags: NonNull::from(&shared.flags),
            entries: NonNull::new(shared.entries.as_mut_ptr()).unwrap(),
            size,
            own: if producing { p } else { c },
            theirs: if producing { c } else { p },
            map: None,
        }
    }

    fn shared(size: usize, start: u32) -> Shared<u64> {
        Shared {
            producer: AtomicU32::new(start),
            consumer: AtomicU32::new(start),
            flags: AtomicU32::new(0),
            entries: vec![0; size],
        }
    }

    #[test]
    fn a_producer_fills_what_the_kernel_consumed_across_the_wrap() {
        // Positions near u32::MAX: they wrap while the ring is in use, as they do after
        // four billion frames.
        let mut sh = shared(8, u32::MAX - 2);
        let mut r = ring(&mut sh, true);
        assert_eq!(r.free(), 8);
        assert_eq!(r.produce([1, 2, 3, 4, 5]), 5);
        assert_eq!(r.free(), 3);
        // The kernel takes three.
        sh.consumer.fetch_add(3, Ordering::Release);
        assert_eq!(r.free(), 6);
        assert_eq!(r.produce([6, 7, 8, 9, 10, 11]), 6);
        assert_eq!(r.free(), 0);
        let published = sh.producer.load(Ordering::Acquire);
        assert_eq!(published, (u32::MAX - 2).wrapping_add(11));
        // The entries the kernel has not consumed, in order, where the mask puts them (read
        // through the ring's own pointer, as the kernel reads its mapping).
        let consumer = sh.consumer.load(Ordering::Relaxed);
        // SAFETY: the slots are inside `sh.entries`, which outlives the ring.
        let pending: Vec<u64> = (0..8u32)
            .map(|i| unsafe { r.slot(consumer.wrapping_add(i)).read() })
            .collect();
        assert_eq!(pending, [4, 5, 6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn what_the_kernel_never_consumed_comes_back_in_order() {
        let mut sh = shared(4, u32::MAX);
        let mut r = ring(&mut sh, true);
        r.produce([1, 2, 3]);
        sh.consumer.fetch_add(1, Ordering::Release);
        let mut back = Vec::new();
        assert_eq!(r.take_back(&mut back), 2);
        assert_eq!(back, [2, 3]);
        assert_eq!(r.free(), 4, "the ring is empty again");
        assert_eq!(r.take_back(&mut back), 0);
    }

    #[test]
    fn a_consumer_takes_what_the_kernel_published_in_order_and_gives_the_slots_back() {
        let mut sh = shared(4, u32::MAX - 1);
        let mut r = ring(&mut sh, false);
        let mut out = Vec::new();
        assert_eq!(r.consume(&mut out, 16), 0);
        // The kernel publishes three entries, wrapping past the end.
        for (i, v) in [10u64, 20, 30].into_iter().enumerate() {
            // SAFETY: as above; the consumer does not read a slot before it is published.
            unsafe { r.slot((u32::MAX - 1).wrapping_add(i as u32)).write(v) };
        }
        sh.producer.fetch_add(3, Ordering::Release);
        assert_eq!(r.consume(&mut out, 2), 2);
        assert_eq!(out, [10, 20]);
        assert_eq!(
            sh.consumer.load(Ordering::Acquire),
            (u32::MAX - 1).wrapping_add(2)
        );
        assert_eq!(r.consume(&mut out, 2), 1);
        assert_eq!(out, [10, 20, 30]);
        assert_eq!(r.consume(&mut out, 2), 0, "nothing new");
        assert!(!r.needs_wakeup());
        sh.flags
            .store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(r.needs_wakeup());
    }
}
