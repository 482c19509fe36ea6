//! No heap allocation per frame: a counting global allocator watches the whole process while
//! frames go through a bond's data plane (the in-process API on one side, AF_XDP members on a
//! veth testbed on the other), after a warm-up.
//!
//! The outer test makes the testbed and runs this same test binary inside the bond's network
//! namespace, where the inner test brings the data plane up in-process.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bond_dp::config::{BondConfig, HostSpec};
use bond_dp::dataplane::DataPlane;
use common::{require_root, Testbed};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INNER: &str = "BOND_DP_ALLOC_INNER";

#[test]
fn no_heap_allocation_per_frame() {
    if !require_root() {
        return;
    }
    let tb = Testbed::new("alloc", 2);
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &tb.bond_ns])
        .arg(exe)
        .args([
            "--exact",
            "inner_burst_loop",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("allocations during the burst loop: 0"),
        "{text}"
    );
}

/// Run by `no_heap_allocation_per_frame` inside the testbed's bond namespace.
#[test]
#[ignore = "run inside a testbed namespace by no_heap_allocation_per_frame"]
fn inner_burst_loop() {
    if std::env::var(INNER).is_err() {
        return;
    }
    let config = BondConfig::new(
        "bond0",
        vec!["m0".into(), "m1".into()],
        "mode=balance-xor,miimon=100,xmit_hash_policy=layer3+4",
        HostSpec::None,
    )
    .unwrap();
    let bond = bond_dp::daemon::in_process_bond(config).unwrap();
    let (plane, mut apps) = DataPlane::start_in_process(&bond).unwrap();
    let mut app = apps.remove(0);

    // 64 flows of UDP, made before anything is counted.
    let frames: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let mut f = vec![0x02, 0, 0, 0, 0x99, 0x99, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
            f.extend_from_slice(&[
                0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2,
            ]);
            f.extend_from_slice(&(20000 + i).to_be_bytes());
            f.extend_from_slice(&[0x51, 0xe8, 0, 8, 0, 0]);
            f.resize(60, 0);
            f
        })
        .collect();
    let mut burst = Vec::with_capacity(64);
    let mut received = Vec::with_capacity(64);
    let mut run = |total: usize| {
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent < total && Instant::now() < deadline {
            burst.clear();
            while burst.len() < 64 {
                let Some(mut desc) = app.alloc() else { break };
                app.write(&mut desc, &frames[(sent + burst.len()) % frames.len()]);
                burst.push(desc);
            }
            sent += burst.len();
            app.send_burst(&mut burst);
            app.recv_burst(&mut received, 64);
            for frame in received.drain(..) {
                app.free(frame);
            }
        }
        sent
    };

    run(5_000); // warm-up: rings, pools and lazily built state settle
    COUNTING.store(true, Ordering::SeqCst);
    let sent = run(20_000);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    println!("frames sent: {sent}");
    println!("allocations during the burst loop: {allocations}");
    assert!(sent >= 20_000, "{sent} frames sent");

    // The frames went out over both members, and once the last completions are back every
    // UMEM frame is accounted for.
    std::thread::sleep(Duration::from_millis(200));
    app.poll();
    let view = plane.counters.view();
    assert!(view.members.iter().all(|m| m.tx_packets > 1000), "{view:?}");
    assert_eq!(app.frames_owned(), plane.frame_count);
    assert_eq!(app.frames_held(), plane.frame_count);
}
