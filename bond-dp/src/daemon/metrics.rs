//! The Prometheus endpoint: `GET /metrics` renders every bond's status (see
//! [`crate::control::metrics`]), served by the bounded poll loop of [`crate::control::server`]
//! on a thread of its own.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::requests::bond_status;
use super::SharedPlane;
use crate::bond::Bond;
use crate::control::http;
use crate::control::metrics::render;
use crate::control::server::{self, Limits, Listener, Verdict};

/// A scrape's head is a few hundred bytes; a client gets this many.
const HEAD_BYTES: usize = 8192;
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
const MAX_CLIENTS: usize = 64;

/// Serves metrics until `stop` is set.
pub(super) fn serve(
    addr: SocketAddr,
    bonds: Vec<(Arc<Mutex<Bond>>, SharedPlane)>,
    started_unix: f64,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics on {addr}: {e}")))?;
    let limits = Limits {
        request_bytes: HEAD_BYTES,
        deadline: CLIENT_DEADLINE,
        clients: MAX_CLIENTS,
    };
    let page = move || {
        let statuses: Vec<_> = bonds
            .iter()
            .map(|(bond, plane)| bond_status(&bond.lock().expect("bond lock"), plane))
            .collect();
        render(&statuses, started_unix)
    };
    server::serve(
        "metrics",
        Listener::Tcp(listener),
        limits,
        stop,
        http::too_large(),
        move |bytes, _| match http::answer(bytes, "/metrics", &page) {
            Some(answer) => Verdict::Answer(answer),
            None => Verdict::More,
        },
    )
}
