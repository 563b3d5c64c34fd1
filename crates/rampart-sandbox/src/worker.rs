//! The worker's side: read the spec, confine, become ready, serve requests.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::frame::{self, RecvError};
use crate::{LayerReport, Spec, WORKER_FD, confine};

/// The worker's first message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Hello {
    /// Confined and ready; what is in force.
    Ready(Box<LayerReport>),
    /// Could not confine itself or start its handler.
    Failed(String),
}

/// One request as the handler sees it.
#[derive(Debug)]
pub struct Request {
    /// The request bytes.
    pub payload: Vec<u8>,
    /// The descriptor sent with it (e.g. a model file opened read-only by the parent).
    pub fd: Option<OwnedFd>,
}

/// Exit code of a worker that could not confine itself.
const EXIT_SETUP: u8 = 3;

/// Runs the worker: reads its [`Spec`] from the supervisor, applies every layer, calls `make`
/// with the spec's `init` data to build the request handler (inside the sandbox), reports ready,
/// then answers requests until the supervisor closes the socket. Call it first thing in `main`
/// when the process was started with [`crate::WORKER_ARG`], before any thread is started.
pub fn serve<H, F>(make: F) -> ExitCode
where
    F: FnOnce(&str) -> Result<H, String>,
    H: FnMut(Request) -> Vec<u8>,
{
    // SAFETY: F_GETFD only checks that the descriptor is open.
    if unsafe { libc::fcntl(WORKER_FD, libc::F_GETFD) } < 0 {
        return ExitCode::from(EXIT_SETUP);
    }
    // SAFETY: WORKER_FD was installed by the supervisor (dup2 before exec) and stays open for the
    // whole life of the process; nothing else closes it.
    let sock = unsafe { BorrowedFd::borrow_raw(WORKER_FD) };
    let Ok((bytes, _)) = frame::recv(sock, None, Duration::ZERO) else {
        return ExitCode::from(EXIT_SETUP);
    };
    let hello = |h: &Hello| serde_json::to_vec(h).unwrap_or_default();
    let spec: Spec = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            let _ = frame::send(sock, &hello(&Hello::Failed(format!("bad spec: {e}"))), None);
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let report = match confine::apply(&spec) {
        Ok(r) => r,
        Err(e) => {
            let _ = frame::send(sock, &hello(&Hello::Failed(e.to_string())), None);
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let mut handler = match make(&spec.init) {
        Ok(h) => h,
        Err(e) => {
            let _ = frame::send(sock, &hello(&Hello::Failed(e)), None);
            return ExitCode::from(EXIT_SETUP);
        }
    };
    if frame::send(sock, &hello(&Hello::Ready(Box::new(report))), None).is_err() {
        return ExitCode::from(EXIT_SETUP);
    }
    let spin = Duration::from_micros(spec.spin_us);
    loop {
        match frame::recv(sock, None, spin) {
            Ok((payload, fd)) => {
                let reply = handler(Request { payload, fd });
                if frame::send(sock, &reply, None).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(RecvError::Eof) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::FAILURE,
        }
    }
}
