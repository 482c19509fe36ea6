//! One poll-mode worker thread: serves its share of the member queues and a host port, and
//! moves bursts between them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::xdp::FrameDesc;

use std::sync::Arc;

use super::{HostPort, Waker};
use super::{QueueShare, WorkerCounters, BURST};
use crate::wire::gro::Coalescer;
use crate::wire::gso::{self, VnetHdr};
use crate::xdp::{self, ChainError, XskPort, MAX_CHAIN};

/// Room for the longest frame the host port hands over: a TAP's TCP super-frame is up to
/// 64 KiB of packet plus its Ethernet header (a TAP gives one frame per read).
const HOST_BUF: usize = 65536 + 4096;

/// Empty loops before the worker sleeps, so an idle bond does not burn its core while a
/// busy one keeps polling.
const SPIN_BEFORE_SLEEP: u32 = 2000;
/// How long an idle worker sleeps at most when nothing wakes it: its sockets and host port
/// wake it as soon as a frame arrives; this bounds how late it sees a new member snapshot,
/// reclaims completions and notices a stop.
const IDLE_SLEEP: Duration = Duration::from_millis(10);

// Debug builds only: `BOND_DP_FAULT=worker-panic` makes workers panic on their first frames,
// for the tests that prove a dead worker takes the daemon down (for a restart) rather than
// leaving a half-dead bond.
use crate::fault::injected;

/// Debug builds only: `BOND_DP_FAULT=worker-slow` makes workers nap this long every loop, so
/// that a test can overrun the sockets' rings whatever the machine's speed.
const INJECTED_NAP: Duration = Duration::from_millis(50);

/// Where the bond's host side is, as one worker sees it.
pub enum HostSide {
    /// The worker's queue of the bond's TAP: frames are copied to and from it.
    Tap(Box<dyn HostPort>),
    /// AF_XDP sockets on the bond's own UMEM (the access port's queues this worker serves):
    /// frames cross between them and the members without a copy. The first one transmits.
    AccessPort(Vec<XskPort>),
}

pub struct Worker {
    queues: QueueShare,
    host: HostSide,
    // Per-burst scratch, allocated once.
    burst: Vec<FrameDesc>,
    /// A frame to or from the host port in one piece.
    host_buf: Vec<u8>,
    /// A chain's bytes in one piece, for the host port.
    chain_buf: Vec<u8>,
    /// One segment of a super-frame from the host being cut.
    segment: Vec<u8>,
    /// TCP segments of one flow on their way to the host, merged into one super-frame.
    gro: Coalescer,
    /// What an idle worker sleeps on: its sockets, the host port, and what wakes it to stop.
    wait: Vec<libc::pollfd>,
    waker: Option<Arc<Waker>>,
}

impl Worker {
    pub fn new(mut queues: QueueShare, host: HostSide) -> Worker {
        queues.set_host_takes_partial(matches!(&host, HostSide::Tap(h) if h.takes_super_frames()));
        Worker {
            queues,
            host,
            burst: Vec::with_capacity(BURST + MAX_CHAIN),
            host_buf: vec![0; HOST_BUF],
            chain_buf: Vec::new(),
            segment: Vec::new(),
            gro: Coalescer::default(),
            wait: Vec::new(),
            waker: None,
        }
    }

    /// Sleeps on `waker` too, which wakes it to stop without waiting out its sleep.
    pub fn with_waker(mut self, waker: Arc<Waker>) -> Worker {
        self.waker = Some(waker);
        self
    }

    /// Runs until `stop` is set; hands itself back, to run again (around changed members)
    /// or to give up its host side.
    pub fn run(mut self, stop: &AtomicBool) -> Worker {
        let mut idle = 0u32;
        let fault = injected("worker-panic");
        let slow = injected("worker-slow");
        while !stop.load(Ordering::Relaxed) {
            let moved = self.poll_once();
            if fault && moved > 0 {
                panic!("fault injected by BOND_DP_FAULT=worker-panic: the first frames moved");
            }
            if slow {
                std::thread::sleep(INJECTED_NAP);
            }
            debug_assert!(
                self.frames_accounted(),
                "a UMEM frame was lost or counted twice: {}",
                self.queues.frame_census(self.access())
            );
            if moved == 0 {
                idle += 1;
                if idle > SPIN_BEFORE_SLEEP {
                    self.sleep_until_work();
                }
            } else {
                idle = 0;
            }
        }
        self
    }

    /// Its share of the member queues, to change while it does not run.
    pub fn queues_mut(&mut self) -> &mut QueueShare {
        &mut self.queues
    }

    /// Its host side, as it stops for good.
    pub fn into_host(self) -> HostSide {
        self.host
    }

    /// Sleeps until a frame arrives on a member socket, an access-port socket or the host
    /// port, or `IDLE_SLEEP` passes: an idle bond costs almost nothing, and the first frame
    /// after a quiet spell wakes the worker at once.
    fn sleep_until_work(&mut self) {
        let fd = |fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        self.wait.clear();
        self.wait
            .extend(self.queues.ports.iter().map(|p| fd(p.fd())));
        match &self.host {
            HostSide::Tap(host) => self.wait.extend(host.wait_fd().map(fd)),
            HostSide::AccessPort(ports) => self.wait.extend(ports.iter().map(|p| fd(p.fd()))),
        }
        self.wait.extend(self.waker.as_ref().map(|w| fd(w.fd())));
        crate::xdp::wait_readable(&mut self.wait, IDLE_SLEEP);
    }

    /// One pass over every port; returns how many frames moved.
    pub fn poll_once(&mut self) -> usize {
        self.queues.refresh();
        let access = match &mut self.host {
            HostSide::AccessPort(ports) => &mut ports[..],
            HostSide::Tap(_) => &mut [],
        };
        self.queues.service(access);
        self.members_to_host() + self.host_to_members()
    }

    fn members_to_host(&mut self) -> usize {
        let mut moved = 0;
        for i in 0..self.queues.ports.len() {
            self.burst.clear();
            let n = self.queues.recv(i, &mut self.burst, BURST);
            if n == 0 {
                continue;
            }
            moved += n;
            let q = &mut self.queues;
            let busy = match &mut self.host {
                HostSide::AccessPort(access) => access[0].send(&self.burst, &mut q.pool),
                HostSide::Tap(host) => {
                    let (busy, coalesced) = to_copy_host(
                        host.as_mut(),
                        q,
                        &self.burst,
                        &mut self.chain_buf,
                        &mut self.gro,
                    );
                    WorkerCounters::add(&q.counters.to_host_coalesced, coalesced);
                    busy
                }
            };
            WorkerCounters::add(&q.counters.drop_host_busy, busy as u64);
        }
        moved
    }

    /// Sends a burst of frames from the host side through the bond; returns how many came.
    fn host_to_members(&mut self) -> usize {
        self.burst.clear();
        let q = &mut self.queues;
        match &mut self.host {
            HostSide::AccessPort(access) => {
                for port in access.iter_mut() {
                    let room = BURST - self.burst.len();
                    port.recv(&mut self.burst, room, &mut q.pool);
                }
                q.transmit(&self.burst);
                self.burst.len()
            }
            HostSide::Tap(host) => {
                let mut from_host = 0;
                // At most a burst of reads: super-frames that go whole leave the burst
                // empty, and the members' side must not wait on a host that keeps writing.
                while self.burst.len() < BURST && from_host < BURST {
                    let Some((len, hdr)) = host.recv(&mut self.host_buf) else {
                        break;
                    };
                    from_host += 1;
                    let frame = &mut self.host_buf[..len];
                    match gso::prepare(frame, &hdr) {
                        Ok(None) => hold(q, frame, &mut self.burst),
                        Ok(Some(segs)) => {
                            if q.takes_super_frames() {
                                // In order: what came before it goes first.
                                q.transmit(&self.burst);
                                self.burst.clear();
                                if q.transmit_super(frame, hdr, &segs) {
                                    continue;
                                }
                            }
                            for i in 0..segs.count() {
                                segs.write(frame, i, &mut self.segment);
                                hold(q, &self.segment, &mut self.burst);
                            }
                        }
                        Err(_) => WorkerCounters::add(&q.counters.drop_host_offload, 1),
                    }
                }
                WorkerCounters::add(&q.counters.drop_too_long, host.take_dropped());
                q.transmit(&self.burst);
                from_host
            }
        }
    }

    /// The access port's sockets, if the host side is one.
    fn access(&self) -> &[XskPort] {
        match &self.host {
            HostSide::AccessPort(ports) => ports,
            HostSide::Tap(_) => &[],
        }
    }

    /// Every frame accounted for: free, in a port's rings, or (between calls) nowhere else.
    pub fn frames_accounted(&self) -> bool {
        self.queues.frames_held(self.access()) == self.queues.frames_owned()
    }
}

/// Sends a frame to a host port as it came from a member: with a header that says where its
/// checksum is partial, where the port takes headers (a TAP); the share finished such
/// checksums for a port that does not.
fn send_as_is(host: &mut dyn HostPort, frame: &[u8]) -> bool {
    if host.takes_super_frames() {
        host.send_super(frame, VnetHdr::for_checksum(frame))
    } else {
        host.send(frame)
    }
}

/// Puts a frame from a host port that copies (the TAP) into UMEM frames appended to `burst`:
/// a chain where it is longer than one and jumbo frames are on; dropped and counted where it
/// cannot be.
fn hold(q: &mut QueueShare, frame: &[u8], burst: &mut Vec<FrameDesc>) {
    match q.hold(frame, burst) {
        Ok(()) => {}
        Err(ChainError::NoFrame) => WorkerCounters::add(&q.counters.drop_no_frame, 1),
        Err(ChainError::TooLong) => WorkerCounters::add(&q.counters.drop_too_long, 1),
    }
}

/// Hands a burst to a host port that copies (the TAP), every frame back to the pool: a
/// chain in one piece, and runs of one flow's TCP segments as one super-frame where the port
/// takes them (GRO). Returns the packets the port could not take, and the segments merged.
fn to_copy_host(
    host: &mut dyn HostPort,
    q: &mut QueueShare,
    burst: &[FrameDesc],
    chain_buf: &mut Vec<u8>,
    gro: &mut Coalescer,
) -> (usize, u64) {
    let (mut busy, mut coalesced) = (0, 0);
    let mut flush = |host: &mut dyn HostPort, gro: &mut Coalescer| {
        let segments = gro.segments();
        match gro.finish() {
            Some((hdr, frame)) if host.send_super(frame, hdr) => {
                if segments > 1 {
                    coalesced += segments as u64;
                }
                0
            }
            Some(_) => segments,
            None => 0,
        }
    };
    let merging = host.takes_super_frames();
    for run in xdp::packets(burst) {
        let chain = &burst[run];
        if merging && chain.len() == 1 {
            let data = q.umem.data(&chain[0]);
            if !gro.try_add(data) {
                busy += flush(host, gro);
                if !gro.try_add(data) {
                    busy += usize::from(!send_as_is(host, data));
                }
            }
            if gro.is_closed() {
                busy += flush(host, gro);
            }
        } else {
            // In order: what was merged before this packet goes first.
            busy += flush(host, gro);
            let sent = if chain.len() == 1 {
                send_as_is(host, q.umem.data(&chain[0]))
            } else {
                q.umem.gather(chain, chain_buf);
                send_as_is(host, chain_buf)
            };
            busy += usize::from(!sent);
        }
        chain.iter().for_each(|&d| q.pool.put(d));
    }
    busy += flush(host, gro);
    (busy, coalesced)
}
