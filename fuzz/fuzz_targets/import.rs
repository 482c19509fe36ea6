//! Every import dialect: ifcfg, modprobe, nmcli, networkd, ifupdown. The first byte picks the
//! file name (some dialects go by it), the rest is the file.
#![no_main]

use bond_dp::config::import::import;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "ifcfg-bond0",
    "bonding.conf",
    "runbook.sh",
    "25-bond0.netdev",
    "25-bond0.network",
    "interfaces",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let name = NAMES[pick as usize % NAMES.len()].to_string();
    if let Ok(imported) = import(&[(name, text.to_string())]) {
        let _ = imported.to_toml();
    }
});
