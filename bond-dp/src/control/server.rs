//! One thread serves every client of a socket (the control socket, the metrics endpoint) with
//! poll(2): clients are hostile until bounded. A request has a size limit and a deadline, the
//! number of clients is capped (the oldest goes), and running out of file descriptors closes
//! the oldest client instead of giving up accepting. An idle or trickling client never holds
//! up another: only a whole request is answered, and answers are written as the client reads.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the loop sleeps in poll(2) at most, to notice `stop`.
const TICK: Duration = Duration::from_millis(200);

/// What one kind of socket bounds and how it answers.
pub struct Limits {
    /// The largest request, in bytes; a client that sends more is answered `too_large` and
    /// closed.
    pub request_bytes: usize,
    /// How long a client may take from connecting to the end of its answer.
    pub deadline: Duration,
    /// Clients at once; one more closes the oldest.
    pub clients: usize,
}

pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// The user id of the process at the other end of a Unix socket (SO_PEERCRED).
    pub fn peer_uid(&self) -> io::Result<u32> {
        let Stream::Unix(s) = self else {
            return Err(io::Error::other("not a Unix socket"));
        };
        let (cred, _) =
            crate::sockopt::get::<libc::ucred>(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED)?;
        Ok(cred.uid)
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
}

impl Listener {
    fn fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        let stream = match self {
            Listener::Unix(l) => Stream::Unix(l.accept()?.0),
            Listener::Tcp(l) => Stream::Tcp(l.accept()?.0),
        };
        match &stream {
            Stream::Unix(s) => s.set_nonblocking(true)?,
            Stream::Tcp(s) => s.set_nonblocking(true)?,
        }
        Ok(stream)
    }
}

/// What the protocol makes of the bytes a client sent so far.
pub enum Verdict {
    /// Not a whole request yet.
    More,
    /// The answer; the connection closes once it is written.
    Answer(Vec<u8>),
}

struct Client {
    stream: Stream,
    since: Instant,
    request: Vec<u8>,
    /// The answer, once there is one, and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
}

/// Serves `listener` on a thread of its own until `stop` is set. `answer` looks at a client's
/// bytes so far; `too_large` is what a client whose request passes the limit is told.
pub fn serve<F>(
    name: &str,
    listener: Listener,
    limits: Limits,
    stop: Arc<AtomicBool>,
    too_large: Vec<u8>,
    answer: F,
) -> io::Result<JoinHandle<()>>
where
    F: FnMut(&[u8], &Stream) -> Verdict + Send + 'static,
{
    match &listener {
        Listener::Unix(l) => l.set_nonblocking(true)?,
        Listener::Tcp(l) => l.set_nonblocking(true)?,
    }
    let mut server = Server {
        listener,
        limits,
        clients: Vec::new(),
        too_large,
        answer,
    };
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                server.round();
            }
        })
}

struct Server<F> {
    listener: Listener,
    limits: Limits,
    clients: Vec<Client>,
    too_large: Vec<u8>,
    answer: F,
}

impl<F: FnMut(&[u8], &Stream) -> Verdict> Server<F> {
    /// One poll(2) and what it found.
    fn round(&mut self) {
        let mut fds = Vec::with_capacity(self.clients.len() + 1);
        fds.push(pollfd(self.listener.fd(), libc::POLLIN));
        for c in &self.clients {
            let events = if c.answer.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(pollfd(c.stream.fd(), events));
        }
        let now = Instant::now();
        let timeout = self
            .clients
            .iter()
            .map(|c| (c.since + self.limits.deadline).saturating_duration_since(now))
            .chain([TICK])
            .min()
            .unwrap_or(TICK);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
        let ready = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis() as libc::c_int,
            )
        };
        if ready < 0 {
            return; // EINTR: go round again
        }
        // Clients first (their indexes match `fds`), then new ones.
        let mut done = vec![false; self.clients.len()];
        for (i, fd) in fds.iter().enumerate().skip(1) {
            if fd.revents != 0 {
                done[i - 1] = !self.serve_client(i - 1);
            }
        }
        let now = Instant::now();
        let deadline = self.limits.deadline;
        let mut i = 0;
        self.clients.retain(|c| {
            let keep = !done[i] && now.duration_since(c.since) < deadline;
            i += 1;
            keep
        });
        if fds[0].revents != 0 {
            self.accept_all();
        }
    }

    /// Reads or writes what a ready client allows; false when it is finished.
    fn serve_client(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        if let Some((answer, written)) = &mut c.answer {
            return match c.stream.write(&answer[*written..]) {
                Ok(n) if n > 0 => {
                    *written += n;
                    *written < answer.len()
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                _ => false,
            };
        }
        let mut buf = [0u8; 4096];
        let n = match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        let room = self.limits.request_bytes.saturating_sub(c.request.len());
        if n > room {
            c.answer = Some((self.too_large.clone(), 0));
            return true;
        }
        c.request.extend_from_slice(&buf[..n]);
        if let Verdict::Answer(a) = (self.answer)(&c.request, &c.stream) {
            c.answer = Some((a, 0));
        }
        true
    }

    /// Takes every waiting connection; past the cap, or out of file descriptors, the oldest
    /// client makes room.
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok(stream) => {
                    if self.clients.len() >= self.limits.clients {
                        self.clients.remove(0);
                    }
                    self.clients.push(Client {
                        stream,
                        since: Instant::now(),
                        request: Vec::new(),
                        answer: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    if self.clients.is_empty() {
                        // Nothing of ours to close: wait for the process to free some.
                        std::thread::sleep(Duration::from_millis(10));
                        return;
                    }
                    self.clients.remove(0);
                }
                Err(_) => return, // the client left before it was taken (ECONNABORTED)
            }
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
