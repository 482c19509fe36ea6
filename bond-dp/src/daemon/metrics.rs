//! The Prometheus endpoint: `GET /metrics` renders every bond's status (see
//! [`crate::control::metrics`]) as the monitor last published it (at most `PUBLISH_EVERY`
//! old), served by the bounded poll loop of [`crate::control::server`] on a thread of its own.
//! A scrape never takes a bond's lock, so scrapes cannot delay the monitor.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::board::StatusBoard;
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
    board: Arc<StatusBoard>,
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
    let page = move || render(&board.load(), started_unix);
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
