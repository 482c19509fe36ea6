//! Option strings as operators write them (nmcli, BONDING_OPTS, modprobe), and `bond-dp set`.
#![no_main]

use bond_dp::config::BondOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok((mut options, _)) = BondOptions::parse(text) {
        let _ = options.check_members(&["m0".into(), "m1".into()]);
        // Setting each option again with its own text must not panic either.
        if let Some((name, value)) = text.split_once('=') {
            let _ = options.set(name.trim(), value.trim());
            let _ = options.finish();
        }
    }
});
