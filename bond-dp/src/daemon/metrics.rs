//! The Prometheus endpoint: `GET /metrics` renders every bond's status (see
//! [`crate::control::metrics`]) on a thread of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

use super::control::bond_status;
use super::SharedPlane;
use crate::bond::Bond;
use crate::control::metrics::render;

/// Serves metrics until `stop` is set.
pub(super) fn serve(
    addr: SocketAddr,
    bonds: Vec<(Arc<Mutex<Bond>>, SharedPlane)>,
    started_unix: f64,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| std::io::Error::other(format!("metrics on {addr}: {e}")))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) else {
                    continue;
                };
                let response = if request.url() == "/metrics" {
                    let statuses: Vec<_> = bonds
                        .iter()
                        .map(|(bond, plane)| bond_status(&bond.lock().expect("bond lock"), plane))
                        .collect();
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4"[..],
                    )
                    .expect("a valid header");
                    tiny_http::Response::from_string(render(&statuses, started_unix))
                        .with_header(header)
                } else {
                    tiny_http::Response::from_string("metrics are at /metrics\n")
                        .with_status_code(404)
                };
                if let Err(e) = request.respond(response) {
                    warn!("metrics: answering a scrape: {e}");
                }
            }
        })
}
