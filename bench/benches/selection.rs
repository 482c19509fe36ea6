//! Per-frame cost of transmit selection: flow-key parsing (bond-dp's own parser vs
//! etherparse) and member selection for every hash policy and mode, over bursts of 64 mixed
//! frames. Throughput is in frames.

use std::hint::black_box;

use bond_dp::policy::{HashPolicy, Mode, TxSelector, TxSnapshot};
use bond_dp_bench::{etherparse_layer34, mixed_burst};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BURST: u64 = 64;

fn flow_key_parsers(c: &mut Criterion) {
    let burst = mixed_burst(42);
    let mut g = c.benchmark_group("layer3+4 hash: parser");
    g.throughput(Throughput::Elements(BURST));
    g.bench_function("bond-dp wire", |b| {
        b.iter(|| {
            burst
                .iter()
                .fold(0u32, |acc, f| acc ^ HashPolicy::Layer34.hash(black_box(f)))
        })
    });
    g.bench_function("etherparse", |b| {
        b.iter(|| {
            burst
                .iter()
                .fold(0u32, |acc, f| acc ^ etherparse_layer34(black_box(f)))
        })
    });
    g.finish();
}

/// Parse + select over the burst, for each named selector.
fn bench_selectors(c: &mut Criterion, group: &str, selectors: Vec<(&str, TxSelector)>) {
    let burst = mixed_burst(42);
    let snap = TxSnapshot::all_up(2);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BURST));
    for (name, mut sel) in selectors {
        g.bench_function(name, |b| {
            b.iter(|| {
                burst
                    .iter()
                    .map(|f| sel.select(black_box(f), &snap).member().unwrap_or(0))
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn policies(c: &mut Criterion) {
    let selectors = HashPolicy::ALL
        .map(|p| (p.name(), TxSelector::new(Mode::BalanceXor, p, 1, true, 1)))
        .into();
    bench_selectors(c, "parse + select, balance-xor, 2 members", selectors);
}

fn modes(c: &mut Criterion) {
    let selectors = Mode::ALL
        .map(|m| {
            (
                m.name(),
                TxSelector::new(m, HashPolicy::Layer34, 1, true, 1),
            )
        })
        .into();
    bench_selectors(
        c,
        "parse + select per mode (layer3+4), 2 members",
        selectors,
    );
}

criterion_group!(benches, flow_key_parsers, policies, modes);
criterion_main!(benches);
