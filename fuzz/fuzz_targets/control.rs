//! What local clients send: control socket lines and metrics HTTP heads.
#![no_main]

use bond_dp::control::{http, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = Request::parse_line(&line);
    let _ = http::answer(data, "/metrics", || "bond_dp_bond_up 1\n".into());
});
