//! Per-burst cost of the engine's transmit (`QueueShare::transmit`): selection, MAC rewrites,
//! per-member batches, MTU checks, counting and the TX rings, for bursts of 64 mixed frames,
//! on in-memory member queues (no root, no kernel: the rings are `MemoryPort`s). Throughput
//! is in frames; writing the frames and taking completions back are outside the timing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bond_dp::engine::{MemoryPort, QueueShare, SnapshotCell, WorkerPort};
use bond_dp::policy::{HashPolicy, Mode, TxSelector, TxSnapshot};
use bond_dp::xdp::{PortConfig, UmemArea};
use bond_dp_bench::mixed_burst;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MEMBERS: usize = 2;
const RING: usize = 512;

fn share(mode: Mode) -> QueueShare<MemoryPort> {
    let cfg = PortConfig {
        frame_count: 4096,
        frame_size: 2048,
        ring_size: RING as u32,
        zero_copy: None,
        multi_buffer: false,
    };
    let (umem, pool) = UmemArea::in_memory(&cfg).expect("an in-memory UMEM");
    let ports = (0..MEMBERS)
        .map(|m| WorkerPort {
            member: m,
            queue: 0,
            port: MemoryPort::new(&format!("m{m}"), &umem, RING),
        })
        .collect();
    let selector = TxSelector::new(mode, HashPolicy::Layer34, 1, true, 1);
    let snapshots = Arc::new(SnapshotCell::new(TxSnapshot::all_up(MEMBERS)));
    let (mut share, _) = QueueShare::new(umem, pool, MEMBERS, ports, selector, snapshots);
    share.refresh();
    share
}

fn transmit(c: &mut Criterion) {
    let burst = mixed_burst(42);
    let mut g = c.benchmark_group("transmit a burst of 64, 2 in-memory members");
    g.throughput(Throughput::Elements(burst.len() as u64));
    for mode in [
        Mode::BalanceXor,
        Mode::ActiveBackup,
        Mode::BalanceRr,
        Mode::Lacp,
        Mode::BalanceTlb,
        Mode::Broadcast,
    ] {
        let mut q = share(mode);
        let mut held = Vec::with_capacity(burst.len());
        g.bench_function(mode.name(), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    held.clear();
                    for f in &burst {
                        q.hold(f, &mut held).expect("a free frame");
                    }
                    let start = Instant::now();
                    q.transmit(black_box(&held));
                    timed += start.elapsed();
                    for m in 0..MEMBERS {
                        q.port_mut(m).complete(usize::MAX);
                    }
                    q.service(&mut []);
                }
                timed
            })
        });
    }
    g.finish();
}

criterion_group!(benches, transmit);
criterion_main!(benches);
