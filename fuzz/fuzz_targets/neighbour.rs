//! ARP and neighbour discovery as the ARP/NS monitor reads them from members.
#![no_main]

use bond_dp::wire::arp::ArpPacket;
use bond_dp::wire::NeighbourMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = NeighbourMsg::parse(frame);
    for offset in [14, 18, 22] {
        let _ = ArpPacket::parse(frame, offset);
        let _ = bond_dp::wire::ndisc::parse(frame, offset);
    }
});
