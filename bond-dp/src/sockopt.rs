//! Socket options, set and read in one place: the AF_XDP sockets' rings, UMEM and statistics,
//! the packet sockets' flags, the control socket's peer credentials. The unsafe calls live
//! here, for option values that are plain data.

use std::io;
use std::os::fd::RawFd;

/// An option value the kernel may read or write as bytes: plain integers, no padding that
/// matters, every bit pattern valid.
///
/// # Safety
/// Implement only for `repr(C)` structs of integers (and integers).
pub unsafe trait OptionValue: Copy {}

// SAFETY: integers, and the kernel's structs of integers as libc declares them.
unsafe impl OptionValue for libc::c_int {}
// SAFETY: as above.
unsafe impl OptionValue for u32 {}
// SAFETY: as above.
unsafe impl OptionValue for libc::xdp_umem_reg {}
// SAFETY: as above.
unsafe impl OptionValue for libc::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl OptionValue for libc::xdp_statistics {}
// SAFETY: as above.
unsafe impl OptionValue for libc::xdp_options {}
// SAFETY: as above.
unsafe impl OptionValue for libc::ucred {}

/// setsockopt(2) with `value`.
pub fn set<T: OptionValue>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is plain data, valid for reads of its size for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// getsockopt(2): the value, and how many bytes of it the kernel wrote (an older kernel may
/// write fewer than the struct has).
pub fn get<T: OptionValue>(fd: RawFd, level: i32, name: i32) -> io::Result<(T, usize)> {
    // SAFETY: plain data; all-zero is a valid value.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given; the kernel writes at
    // most `len` bytes, and any bytes make a valid T.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((value, len as usize))
}
