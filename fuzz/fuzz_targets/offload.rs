//! The host's offloads: a frame with a virtio-net header (its first 10 bytes) cut into TCP
//! segments and its partial checksum finished, as from the TAP; and the frame's pieces fed
//! to the coalescer toward the host (GRO), whose super-frame must cut back into segments.
#![no_main]

use bond_dp::wire::gro::Coalescer;
use bond_dp::wire::gso::{finish_partial, TcpSegments, VnetHdr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((hdr, frame)) = data.split_first_chunk::<{ VnetHdr::LEN }>() else {
        return;
    };
    let hdr = VnetHdr::parse(hdr);
    let mut out = Vec::new();
    if let Ok(segments) = TcpSegments::new(frame, &hdr) {
        for i in 0..segments.count().min(64) {
            segments.write(frame, i, &mut out);
        }
    }
    let mut copy = frame.to_vec();
    let _ = finish_partial(&mut copy, hdr.csum_start.into(), hdr.csum_offset.into());
    // The segments of the frame (if it is a TCP super-frame) and its pieces, coalesced.
    let mut gro = Coalescer::default();
    let pieces: Vec<&[u8]> = frame.chunks(usize::from(hdr.gso_size).max(60)).collect();
    for piece in pieces.into_iter().chain(std::iter::once(frame)) {
        if !gro.try_add(piece) {
            let _ = gro.finish();
            let _ = gro.try_add(piece);
        }
    }
    if let Some((hdr, merged)) = gro.finish() {
        if hdr.gso_type != VnetHdr::GSO_NONE {
            let segments = TcpSegments::new(merged, &hdr).expect("a super-frame cuts again");
            for i in 0..segments.count() {
                segments.write(merged, i, &mut out);
            }
        }
    }
});
