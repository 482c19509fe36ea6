//! The parts of the end-to-end veth benchmark (bench/e2e.py runs them in namespaces):
//!
//! - `gen`: an AF_XDP traffic generator: 60-byte UDP frames (64 on the wire with the FCS) of
//!   many flows, as fast as the interface takes them.
//! - `sink`: drops frames in XDP on interfaces and reports how many arrived per second.
//! - `lsink`: receives stamped frames (from `gen --rate R --stamp`) on AF_XDP sockets and
//!   reports their one-way latency (p50, p99, p99.9).
//! - `fwd`: raw AF_XDP forwarding from one interface to another on one shared UMEM with no bond
//!   logic: the ceiling bond-dp's forwarding is measured against.
//! - `txonly`: frames made in-process and sent through a bond's in-process API.
//! - `pcap`: the generator's frames as a pcap file, for tcpreplay's exact-rate sending.
//! - `lacp-partner`: an LACP partner on interfaces (bond-dp's own sans-IO LACP over packet
//!   sockets), so that an 802.3ad bond under test distributes on all its members.
//!
//! All of them use bond-dp's own XDP program and socket layer, so the raw figures measure the
//! same I/O code the bond runs, without selection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bond_dp::config::{BondConfig, HostSpec};
use bond_dp::dataplane::DataPlane;
use bond_dp::xdp::{FrameDesc, FramePool, MemberAction, PortConfig, UmemArea, XdpProgram, XskPort};
use bond_dp_bench::{now_ns, quantile, stamp, stamp_of, udp_frame};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speak LACP (active, fast rate) as one system on `ifaces` for `seconds`.
    LacpPartner {
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        #[arg(long)]
        seconds: f64,
    },
    /// Write one frame of each of `flows` flows to a pcap file.
    Pcap {
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 1024)]
        flows: u16,
    },
    /// Send frames of `flows` flows on the interfaces in turn for `seconds`.
    Gen {
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        #[arg(long, default_value_t = 1024)]
        flows: u16,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        core: Option<usize>,
        /// Frames per second (0: as fast as the interface takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Put the send time in every frame, for `lsink`.
        #[arg(long)]
        stamp: bool,
    },
    /// Receive stamped frames on the interfaces and report their one-way latency between
    /// `warmup` and `warmup + seconds`: "latency_ns n N p50 X p99 Y p999 Z".
    Lsink {
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        #[arg(long)]
        warmup: f64,
        #[arg(long)]
        seconds: f64,
    },
    /// Count frames dropped in XDP on the interfaces between `warmup` and `warmup + seconds`;
    /// prints "pps N" and the per-interface counts.
    Sink {
        #[arg(long, value_delimiter = ',')]
        ifaces: Vec<String>,
        #[arg(long)]
        warmup: f64,
        #[arg(long)]
        seconds: f64,
    },
    /// Forward every frame arriving on the `from` interfaces out of `to` for `seconds`.
    Fwd {
        #[arg(long, value_delimiter = ',')]
        from: Vec<String>,
        #[arg(long)]
        to: String,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        core: Option<usize>,
    },
    /// Send frames through a bond's in-process API for `seconds`, on `core` (the bond's work
    /// runs on the application's thread).
    Txonly {
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        #[arg(long)]
        options: String,
        #[arg(long, default_value_t = 1024)]
        flows: u16,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        core: Option<usize>,
    },
}

const BURST: usize = 64;

fn main() {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let registered = unsafe {
            signal_hook::low_level::register(signal, || STOP.store(true, Ordering::Relaxed))
        };
        registered.expect("signal handler");
    }
    let result = match Cli::parse().command {
        Command::Gen {
            ifaces,
            flows,
            seconds,
            core,
            rate,
            stamp,
        } => generate(&ifaces, flows, seconds, core, Pace { rate, stamp }),
        Command::Lsink {
            ifaces,
            warmup,
            seconds,
        } => latency_sink(&ifaces, warmup, seconds),
        Command::Sink {
            ifaces,
            warmup,
            seconds,
        } => sink(&ifaces, warmup, seconds),
        Command::Fwd {
            from,
            to,
            seconds,
            core,
        } => forward(&from, &to, seconds, core),
        Command::Pcap { out, flows } => write_pcap(&out, flows),
        Command::LacpPartner { ifaces, seconds } => lacp_partner(&ifaces, seconds),
        Command::Txonly {
            members,
            options,
            flows,
            seconds,
            core,
        } => txonly(members, &options, flows, seconds, core),
    };
    if let Err(e) = result {
        eprintln!("e2e: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Set by SIGINT/SIGTERM: loops end and XDP programs are detached on the way out.
static STOP: AtomicBool = AtomicBool::new(false);

/// A deadline `seconds` away; `running(end)` is false once it passes or a signal came.
fn stop_after(seconds: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(seconds)
}

fn running(end: Instant) -> bool {
    !STOP.load(Ordering::Relaxed) && Instant::now() < end
}

/// Sleeps up to `seconds`, less if a signal comes.
fn nap(seconds: f64) {
    let end = stop_after(seconds);
    while running(end) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How the generator sends: at a rate (0: flat out), with send times in the frames or not.
#[derive(Clone, Copy)]
struct Pace {
    rate: u64,
    stamp: bool,
}

fn generate(
    ifaces: &[String],
    flows: u16,
    seconds: f64,
    core: Option<usize>,
    pace: Pace,
) -> Result<()> {
    pin(core);
    // Short sleeps as asked, not rounded up by the default 50 µs timer slack.
    // SAFETY: PR_SET_TIMERSLACK takes an integer; it only changes this thread's slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let program = XdpProgram::load()?;
    let cfg = PortConfig::default();
    let (umem, mut pool) = UmemArea::new(&cfg)?;
    let mut ports = ifaces
        .iter()
        .enumerate()
        .map(|(slot, iface)| XskPort::bind(&umem, iface, 0, slot as u32, &cfg, &program))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let frames: Vec<Vec<u8>> = (0..flows).map(udp_frame).collect();
    let mut burst = Vec::with_capacity(BURST);
    let (mut sent, mut next) = (0u64, 0usize);
    let start = Instant::now();
    let end = stop_after(seconds);
    while running(end) {
        for port in &mut ports {
            port.reclaim(&mut pool);
            let room = if pace.rate == 0 {
                BURST
            } else {
                // Frames due by now; at most a burst at once, so that a late loop does not
                // send a clump.
                let due =
                    (start.elapsed().as_nanos() as u64).saturating_mul(pace.rate) / 1_000_000_000;
                (due.saturating_sub(sent) as usize).min(BURST)
            };
            if room == 0 {
                // Ahead of the pace: sleep rather than spin, so that at low rates the sink
                // and the contender have the cores (this machine may have only two).
                std::thread::sleep(Duration::from_micros(20));
                continue;
            }
            fill_burst(&umem, &mut pool, &mut burst, &frames, &mut next, room);
            if pace.stamp {
                let now = now_ns();
                for desc in &mut burst {
                    stamp(umem.data_mut(desc), now);
                }
            }
            let dropped = port.send(&burst, &mut pool);
            sent += (burst.len() - dropped) as u64;
            burst.clear();
        }
    }
    println!("sent {sent}");
    Ok(())
}

/// Takes up to `room` free frames and writes the next flows' frames into them.
fn fill_burst(
    umem: &UmemArea,
    pool: &mut FramePool,
    burst: &mut Vec<FrameDesc>,
    frames: &[Vec<u8>],
    next: &mut usize,
    room: usize,
) {
    while burst.len() < room {
        let Some(mut desc) = pool.take() else { break };
        umem.write(&mut desc, &frames[*next % frames.len()]);
        *next += 1;
        burst.push(desc);
    }
}

/// The program on each of `ifaces`, delivering to a socket bound on its queue 0.
fn receiving(
    ifaces: &[String],
    program: &mut XdpProgram,
    umem: &UmemArea,
    cfg: &PortConfig,
) -> Result<Vec<XskPort>> {
    let mut ports = Vec::new();
    for (slot, iface) in ifaces.iter().enumerate() {
        program.attach(iface, None)?;
        program.set_member(iface, slot as u32, MemberAction::Deliver)?;
        ports.push(XskPort::bind(umem, iface, 0, slot as u32, cfg, program)?);
    }
    Ok(ports)
}

fn latency_sink(ifaces: &[String], warmup: f64, seconds: f64) -> Result<()> {
    let mut program = XdpProgram::load()?;
    let cfg = PortConfig::default();
    let (umem, mut pool) = UmemArea::new(&cfg)?;
    let mut ports = receiving(ifaces, &mut program, &umem, &cfg)?;
    let from = Instant::now() + Duration::from_secs_f64(warmup);
    let end = stop_after(warmup + seconds);
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut burst = Vec::with_capacity(BURST);
    let mut fds: Vec<libc::pollfd> = Vec::new();
    while running(end) {
        let mut got = 0;
        for port in &mut ports {
            port.refill(&mut pool);
            let _ = port.wake_rx();
            got += port.recv(&mut burst, BURST, &mut pool);
            let now = now_ns();
            let measuring = Instant::now() >= from;
            for desc in burst.drain(..) {
                if let Some(sent) = stamp_of(umem.data(&desc)).filter(|_| measuring) {
                    latencies.push(now.saturating_sub(sent));
                }
                pool.put(desc);
            }
        }
        if got == 0 {
            // Idle: sleep on the sockets rather than take the generator's or the bond's core.
            fds.clear();
            fds.extend(ports.iter().map(|p| libc::pollfd {
                fd: p.fd(),
                events: 0,
                revents: 0,
            }));
            bond_dp::xdp::wait_readable(&mut fds, Duration::from_millis(1));
        }
    }
    latencies.sort_unstable();
    println!(
        "latency_ns n {} p50 {} p99 {} p999 {}",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 0.999)
    );
    Ok(())
}

fn sink(ifaces: &[String], warmup: f64, seconds: f64) -> Result<()> {
    let program = XdpProgram::load()?;
    for (slot, iface) in ifaces.iter().enumerate() {
        program.attach(iface, None)?;
        program.set_member(iface, slot as u32, MemberAction::Drop)?;
    }
    let counters = program.counters_reader()?;
    let read = || -> Vec<u64> {
        (0..ifaces.len() as u32)
            .map(|slot| counters.read(slot).inactive_dropped)
            .collect()
    };
    nap(warmup);
    let before = read();
    let start = Instant::now();
    nap(seconds);
    let after = read();
    let elapsed = start.elapsed().as_secs_f64();
    let per_iface: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: u64 = per_iface.iter().sum();
    println!("pps {:.0}", total as f64 / elapsed);
    for (iface, n) in ifaces.iter().zip(&per_iface) {
        println!("{iface} {n}");
    }
    Ok(())
}

fn forward(from: &[String], to: &str, seconds: f64, core: Option<usize>) -> Result<()> {
    pin(core);
    let mut program = XdpProgram::load()?;
    let cfg = PortConfig::default();
    let (umem, mut pool) = UmemArea::new(&cfg)?;
    let mut rx = receiving(from, &mut program, &umem, &cfg)?;
    let mut tx = XskPort::bind(&umem, to, 0, from.len() as u32, &cfg, &program)?;
    let mut burst = Vec::with_capacity(BURST);
    let mut moved = 0u64;
    let end = stop_after(seconds);
    while running(end) {
        tx.reclaim(&mut pool);
        for port in &mut rx {
            port.refill(&mut pool);
            let _ = port.wake_rx();
            burst.clear();
            if port.recv(&mut burst, BURST, &mut pool) > 0 {
                moved += (burst.len() - tx.send(&burst, &mut pool)) as u64;
            }
        }
    }
    println!("forwarded {moved}");
    Ok(())
}

fn txonly(
    members: Vec<String>,
    options: &str,
    flows: u16,
    seconds: f64,
    core: Option<usize>,
) -> Result<()> {
    let config = BondConfig::new("bench0", members, options, HostSpec::None)?;
    let bond = bond_dp::daemon::in_process_bond(config)?;
    let (plane, mut apps) = DataPlane::start_in_process(&bond)?;
    let mut app = apps.remove(0);
    pin(core);
    let frames: Vec<Vec<u8>> = (0..flows).map(udp_frame).collect();
    let mut burst = Vec::with_capacity(BURST);
    let (mut sent, mut next) = (0u64, 0usize);
    let end = stop_after(seconds);
    while running(end) {
        while burst.len() < BURST {
            let Some(mut desc) = app.alloc() else { break };
            app.write(&mut desc, &frames[next % frames.len()]);
            next += 1;
            burst.push(desc);
        }
        sent += burst.len() as u64;
        app.send_burst(&mut burst);
    }
    let view = plane.counters.view();
    let on_wire: u64 = view.members.iter().map(|m| m.tx_packets).sum();
    println!("sent {sent} transmitted {on_wire}");
    Ok(())
}

/// A classic pcap file (microsecond timestamps, Ethernet link type) of one frame per flow.
fn write_pcap(out: &std::path::Path, flows: u16) -> Result<()> {
    let mut file = Vec::new();
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
    file.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    file.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        // zone, sigfigs, snaplen, link type Ethernet
        file.extend_from_slice(&word.to_le_bytes());
    }
    for flow in 0..flows {
        let frame = udp_frame(flow);
        let len = frame.len() as u32;
        for word in [0, u32::from(flow), len, len] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        file.extend_from_slice(&frame);
    }
    std::fs::write(out, file)?;
    Ok(())
}

/// An LACP partner: one system over `ifaces`, active and fast, until `seconds` pass. The
/// XDP sink or generator on the same interfaces passes slow-protocol frames to the kernel,
/// where the packet sockets read them.
fn lacp_partner(ifaces: &[String], seconds: f64) -> Result<()> {
    use bond_dp::config::AdSelect;
    use bond_dp::lacp::{Lacp, LacpConfig, PortLink};
    use bond_dp::monitor::{read_link, PacketSocket};
    use bond_dp::wire::{ethertype, MacAddr};

    let link = PortLink {
        up: true,
        speed_mbps: 10_000,
        full_duplex: true,
    };
    let mut ports = Vec::new();
    let mut sockets = Vec::new();
    for iface in ifaces {
        ports.push((read_link(iface)?.mac, link));
        sockets.push(PacketSocket::open_receiving(
            iface,
            ethertype::SLOW_PROTOCOLS,
        )?);
    }
    let cfg = LacpConfig {
        system: MacAddr([0x02, 0xbe, 0, 0, 0, 0x99]),
        system_priority: 32768,
        user_port_key: 0,
        fast: true,
        active: true,
        ad_select: AdSelect::Stable,
    };
    let mut lacp = Lacp::new(cfg, &ports);
    let (start, end) = (Instant::now(), stop_after(seconds));
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while running(end) {
        for (port, socket) in sockets.iter().enumerate() {
            while let Some(n) = socket.recv(&mut buf) {
                let _ = lacp.receive(port, &buf[..n], &mut out);
            }
        }
        lacp.advance(start.elapsed(), &mut out);
        for (port, frame) in out.drain(..) {
            sockets[port].send(&frame)?;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
