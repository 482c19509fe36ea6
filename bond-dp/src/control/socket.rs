//! The control socket: one Unix stream socket per bond, `<run_dir>/<bond>.sock`, mode 0600.
//! A client writes one request line and reads the answer until the server closes.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::server::{serve, Limits, Listener, Stream, Verdict};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The /proc/net/bonding page.
    Status,
    /// The same as JSON.
    StatusJson,
    /// Change an option of the running bond; the answer starts with "ok" or "error:".
    Set { name: String, value: String },
}

impl Request {
    fn as_line(&self) -> String {
        match self {
            Request::Status => "status".into(),
            Request::StatusJson => "status-json".into(),
            Request::Set { name, value } => format!("set {name} {value}"),
        }
    }

    /// A request line as a client sends it; `None` for anything else.
    pub fn parse_line(line: &str) -> Option<Request> {
        let line = line.trim();
        match line {
            "status" => Some(Request::Status),
            "status-json" => Some(Request::StatusJson),
            _ => {
                let rest = line.strip_prefix("set ")?;
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                Some(Request::Set {
                    name: name.to_string(),
                    value: value.to_string(),
                })
            }
        }
    }
}

pub fn socket_path(run_dir: &Path, bond: &str) -> PathBuf {
    run_dir.join(format!("{bond}.sock"))
}

/// Serves one bond's control socket on a thread of its own (see [`super::server`] for how
/// clients are bounded); removes the socket when dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A request line's limit: a `set` names an option and a value, nothing longer.
const REQUEST_BYTES: usize = 4096;
/// How long a client may take to send its line and read the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
const MAX_CLIENTS: usize = 32;

impl ControlServer {
    /// Binds `<run_dir>/<bond>.sock`. Fails if a live process already serves that bond;
    /// a stale socket left by a process that died is replaced.
    pub fn start<F>(run_dir: &Path, bond: &str, handler: F) -> io::Result<ControlServer>
    where
        F: Fn(Request) -> String + Send + Sync + 'static,
    {
        std::fs::create_dir_all(run_dir)?;
        std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o700))?;
        let path = socket_path(run_dir, bond);
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "bond {bond} is already running (control socket {})",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let limits = Limits {
            request_bytes: REQUEST_BYTES,
            deadline: CLIENT_DEADLINE,
            clients: MAX_CLIENTS,
        };
        let too_large = format!("error: request longer than {REQUEST_BYTES} bytes\n").into_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = serve(
            &format!("ctl-{bond}"),
            Listener::Unix(listener),
            limits,
            Arc::clone(&stop),
            too_large,
            move |bytes, stream| match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => Verdict::Answer(answer(&bytes[..end], stream, &handler).into_bytes()),
                None => Verdict::More,
            },
        )?;
        Ok(ControlServer {
            path,
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn answer(line: &[u8], stream: &Stream, handler: &dyn Fn(Request) -> String) -> String {
    // The socket's mode already keeps others out; the peer's credentials make sure even if
    // the mode is loosened, only root (or the daemon's own user) controls the bond.
    let uid = match stream.peer_uid() {
        Ok(uid) => uid,
        Err(e) => return format!("error: who is asking: {e}\n"),
    };
    // SAFETY: geteuid has no preconditions.
    let own = unsafe { libc::geteuid() };
    if uid != 0 && uid != own {
        return format!(
            "error: permission denied: the control socket answers root only, not uid {uid}\n"
        );
    }
    let line = String::from_utf8_lossy(line);
    match Request::parse_line(&line) {
        Some(req) => handler(req),
        None => format!("error: unknown request \"{}\"\n", line.trim()),
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long `bond-dp status` and `set` wait for the daemon.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the bond's process; explains a bond that is not running.
pub fn query(run_dir: &Path, bond: &str, request: &Request) -> io::Result<String> {
    let path = socket_path(run_dir, bond);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            return io::Error::new(
                e.kind(),
                format!(
                    "bond {bond}'s control socket ({}) answers root only: run this as root",
                    path.display()
                ),
            );
        }
        let why = match e.kind() {
            io::ErrorKind::NotFound => "no control socket",
            io::ErrorKind::ConnectionRefused => "stale control socket, its process is gone",
            _ => "control socket unreachable",
        };
        io::Error::new(
            e.kind(),
            format!(
                "bond {bond} is not running ({why}: {}: {e})",
                path.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(QUERY_TIMEOUT))?;
    stream.set_write_timeout(Some(QUERY_TIMEOUT))?;
    let busy = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "bond {bond} did not answer within {} s: its daemon is busy or stuck",
                QUERY_TIMEOUT.as_secs()
            ),
        ),
        _ => e,
    };
    writeln!(stream, "{}", request.as_line()).map_err(busy)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(busy)?;
    Ok(answer)
}

/// The bonds with a control socket in `run_dir`, sorted by name.
pub fn list_bonds(run_dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(run_dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".sock").map(String::from)
        })
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_and_refuses_a_second_instance() {
        let dir = tempfile::tempdir().unwrap();
        let server = ControlServer::start(dir.path(), "b0", |r| format!("{r:?}\n")).unwrap();
        assert_eq!(
            query(dir.path(), "b0", &Request::Status).unwrap(),
            "Status\n"
        );
        assert_eq!(
            query(dir.path(), "b0", &Request::StatusJson).unwrap(),
            "StatusJson\n"
        );
        let set = Request::Set {
            name: "active_slave".into(),
            value: "m1".into(),
        };
        assert_eq!(
            query(dir.path(), "b0", &set).unwrap(),
            format!("{set:?}\n"),
            "set requests cross intact"
        );
        let err = ControlServer::start(dir.path(), "b0", |_| String::new())
            .err()
            .unwrap();
        assert!(err.to_string().contains("already running"));
        assert_eq!(list_bonds(dir.path()).unwrap(), ["b0"]);
        drop(server);
        let err = query(dir.path(), "b0", &Request::Status).unwrap_err();
        assert!(err
            .to_string()
            .contains("bond b0 is not running (no control socket"));
    }
}
