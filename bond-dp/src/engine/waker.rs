//! What wakes sleeping workers at once: an eventfd in every worker's poll set, so that a
//! member change pauses them without waiting out their idle sleep.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Waker(OwnedFd);

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: plain eventfd(2); the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(Waker(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable: every worker polling it wakes.
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to this eventfd.
        unsafe { libc::write(self.fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Makes it unreadable again, once the workers it woke have stopped (a readable one
    /// would keep them from ever sleeping).
    pub fn reset(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; non-blocking.
        unsafe { libc::read(self.fd(), count.as_mut_ptr().cast(), count.len()) };
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_is_seen_until_reset() {
        let w = Waker::new().unwrap();
        let readable = |w: &Waker| {
            let mut fds = vec![libc::pollfd {
                fd: w.fd(),
                events: 0,
                revents: 0,
            }];
            crate::xdp::wait_readable(&mut fds, std::time::Duration::ZERO);
            fds[0].revents & libc::POLLIN != 0
        };
        assert!(!readable(&w));
        w.wake();
        w.wake();
        assert!(readable(&w));
        w.reset();
        assert!(!readable(&w));
    }
}
