//! Length-framed messages over a unix stream socket: a 4-byte little-endian length, then the
//! payload. A frame may carry one file descriptor (`SCM_RIGHTS`), attached to its first byte.

use std::io;
#[cfg(test)]
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Largest frame accepted (64 MiB): a length above it is a protocol error, not an allocation.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Why a receive ended without a frame.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The peer closed the socket (at a frame boundary or in the middle of one).
    Eof,
    /// The deadline passed.
    TimedOut,
    /// A length above [`MAX_FRAME`].
    TooLarge(usize),
    /// Any other error.
    Io(io::Error),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eof => f.write_str("connection closed"),
            Self::TimedOut => f.write_str("timed out"),
            Self::TooLarge(n) => write!(f, "frame of {n} bytes exceeds the limit"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Sends one frame, with `pass` attached when given.
pub(crate) fn send(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    pass: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let header = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?
        .to_le_bytes();
    let mut iov = [
        libc::iovec {
            iov_base: header.as_ptr() as *mut libc::c_void,
            iov_len: header.len(),
        },
        libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        },
    ];
    // u64 array: aligned for cmsghdr; 32 bytes >= CMSG_SPACE(sizeof(int)) on every Linux target.
    let mut cmsg_buf = [0u64; 4];
    // SAFETY: msghdr is a plain C struct; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len();
    if let Some(fd) = pass {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` bytes (<= 32) of aligned, writable memory, so
        // CMSG_FIRSTHDR returns a valid header pointer and CMSG_DATA stays inside the buffer.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    let total = header.len() + payload.len();
    let sent = loop {
        // SAFETY: msg and everything it points to (iov, header, payload, cmsg_buf) outlive the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // The rest (the descriptor went with the first byte) as a plain byte stream.
    let mut done = sent;
    while done < total {
        let (buf, off) = if done < header.len() {
            (&header[..], done)
        } else {
            (payload, done - header.len())
        };
        let rest = &buf[off..];
        // SAFETY: rest is a live slice; send reads at most rest.len() bytes from it.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// Waits until `fd` is readable: busy-polls for up to `spin`, then blocks until `deadline`.
/// Returns `false` when the deadline passed first.
pub(crate) fn wait_readable(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    spin: Duration,
) -> io::Result<bool> {
    let poll = |timeout: Option<Duration>| -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: pfd is one valid pollfd; ts_ptr is null or points at a live timespec.
        let n = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(n > 0)
    };
    if !spin.is_zero() {
        let end = Instant::now() + spin;
        loop {
            if poll(Some(Duration::ZERO))? {
                return Ok(true);
            }
            if Instant::now() >= end {
                break;
            }
            std::hint::spin_loop();
        }
    }
    loop {
        let timeout = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                Some(d - now)
            }
            None => None,
        };
        if poll(timeout)? {
            return Ok(true);
        }
    }
}

/// Reads exactly `buf.len()` bytes, waiting up to `deadline`.
fn read_exact(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<(), RecvError> {
    let mut done = 0;
    while done < buf.len() {
        if !wait_readable(sock, deadline, Duration::ZERO).map_err(RecvError::Io)? {
            return Err(RecvError::TimedOut);
        }
        let rest = &mut buf[done..];
        // SAFETY: rest is a live, writable slice of rest.len() bytes.
        let n = unsafe { libc::read(sock.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            0 => return Err(RecvError::Eof),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(RecvError::Io(e));
                }
            }
            n => done += n as usize,
        }
    }
    Ok(())
}

/// Receives one frame and the descriptor sent with it, if any (close-on-exec).
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    deadline: Option<Instant>,
    spin: Duration,
) -> Result<(Vec<u8>, Option<OwnedFd>), RecvError> {
    if !wait_readable(sock, deadline, spin).map_err(RecvError::Io)? {
        return Err(RecvError::TimedOut);
    }
    let mut header = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: header.as_mut_ptr().cast(),
        iov_len: header.len(),
    };
    let mut cmsg_buf = [0u64; 4];
    // SAFETY: msghdr is a plain C struct; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg_buf);
    let got = loop {
        // SAFETY: msg points at a live iovec over `header` and at the live, aligned cmsg_buf.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(RecvError::Io(e));
        }
    };
    let mut passed = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/NXTHDR walk only
    // within msg_controllen bytes of cmsg_buf, and each SCM_RIGHTS header holds whole ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count =
                    ((*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    // The kernel just installed this descriptor for us: we own it.
                    let owned = OwnedFd::from_raw_fd(fd);
                    if passed.is_none() {
                        passed = Some(owned);
                    } // extra descriptors are closed by dropping `owned`
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if got == 0 {
        return Err(RecvError::Eof);
    }
    if got < header.len() {
        read_exact(sock, &mut header[got..], deadline)?;
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(RecvError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    read_exact(sock, &mut payload, deadline)?;
    Ok((payload, passed))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Seek as _, Write as _};
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn frames_round_trip_with_and_without_a_descriptor() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"passed along").unwrap();
        send(a.as_fd(), b"first", Some(file.as_fd())).unwrap();
        // Larger than the socket buffer: the writer blocks until the reader drains it.
        let writer = std::thread::spawn(move || send(a.as_fd(), &vec![7u8; 300_000], None));
        let (p, fd) = recv(b.as_fd(), None, Duration::ZERO).unwrap();
        assert_eq!(p, b"first");
        let mut got = std::fs::File::from(fd.unwrap());
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "passed along");
        let (p, fd) = recv(b.as_fd(), None, Duration::from_micros(50)).unwrap();
        assert_eq!(p.len(), 300_000);
        assert!(fd.is_none());
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn oversized_lengths_eof_and_deadlines_are_errors() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(matches!(
            recv(b.as_fd(), soon, Duration::ZERO),
            Err(RecvError::TimedOut)
        ));
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        assert!(matches!(
            recv(b.as_fd(), None, Duration::ZERO),
            Err(RecvError::TooLarge(_))
        ));
        drop(a);
        assert!(matches!(
            recv(b.as_fd(), None, Duration::ZERO),
            Err(RecvError::Eof)
        ));
    }
}
