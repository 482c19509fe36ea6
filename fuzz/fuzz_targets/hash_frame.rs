//! `bond-dp hash --frame HEX`: the hex text, then the hash of what it decodes to.
#![no_main]

use bond_dp::policy::HashPolicy;
use bond_dp::wire::from_hex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = from_hex(text) {
        for n in 0..=8 {
            if let Some(p) = HashPolicy::from_number(n) {
                let _ = p.hash(&frame);
            }
        }
    }
});
