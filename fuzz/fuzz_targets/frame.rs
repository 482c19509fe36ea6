//! Frames from the wire through every transmit policy: the flow dissector, each hash policy
//! and each mode's selection (with MAC rewrites), over a snapshot of three members.
#![no_main]

use bond_dp::policy::{Decision, HashPolicy, Mode, TxSelector, TxSnapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let snap = TxSnapshot::all_up(3);
    for n in 0..=8u64 {
        let Some(policy) = HashPolicy::from_number(n) else { continue };
        let _ = policy.hash(frame);
        for mode in 0..=6u64 {
            let mode = Mode::from_number(mode).expect("modes 0-6");
            let mut selector = TxSelector::new(mode, policy, 1, true, 7);
            if let Decision::Send { member, .. } = selector.select(frame, &snap) {
                assert!(member < 3);
            }
        }
    }
});
