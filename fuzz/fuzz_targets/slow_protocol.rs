//! LACPDUs and marker PDUs: the parser, then an LACP engine fed with them between ticks.
#![no_main]

use std::time::Duration;

use bond_dp::config::BondOptions;
use bond_dp::lacp::pdu::SlowPdu;
use bond_dp::lacp::{Lacp, LacpConfig, PortLink};
use bond_dp::wire::MacAddr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SlowPdu::parse(data);
    let (options, _) = BondOptions::parse("mode=802.3ad lacp_rate=fast").expect("valid");
    let link = PortLink {
        up: true,
        speed_mbps: 10_000,
        full_duplex: true,
    };
    let ports = [(MacAddr([2, 0, 0, 0, 0, 1]), link), (MacAddr([2, 0, 0, 0, 0, 2]), link)];
    let mut lacp = Lacp::new(LacpConfig::from_options(&options, MacAddr([2, 0, 0, 0, 0, 1])), &ports);
    let mut out = Vec::new();
    // Each 124-byte piece is one frame, on alternating ports, a tick apart.
    for (i, frame) in data.chunks(124).enumerate() {
        lacp.advance(Duration::from_millis(100 * i as u64), &mut out);
        let _ = lacp.receive(i % 2, frame, &mut out);
        let _ = lacp.port_status(i % 2);
    }
});
