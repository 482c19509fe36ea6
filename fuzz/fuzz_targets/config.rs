//! The TOML config file.
#![no_main]

use bond_dp::config::ConfigFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ConfigFile::parse(text, "fuzz.toml");
});
