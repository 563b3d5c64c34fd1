//! Confined worker processes for handling untrusted model bytes.
//!
//! A worker is a re-exec of the current binary (`/proc/self/exe __worker`). Before it reads any
//! untrusted byte, and while it is still single-threaded, it confines itself in this order (see
//! [`confine`]): die with the parent; new user, network, mount, IPC and UTS namespaces (best effort,
//! required in strict mode); not dumpable; rlimits (address space, CPU seconds, open files, no
//! processes, file size 0, no core dumps); `no_new_privs`; when started as root, a switch to an
//! unprivileged uid/gid; Landlock (read-only on exactly the listed paths, all TCP denied, abstract
//! unix sockets and signals scoped); a seccomp allow-list that kills the process on anything else.
//! Where cgroups are writable (root on cgroup v1 or v2), memory and pids limits too.
//!
//! The [`Supervisor`] talks to the worker over a socketpair with length-framed messages (a request
//! may carry one file descriptor, e.g. the model file opened read-only by the parent), enforces a
//! per-request deadline (kill and respawn), classifies crashes ([`Cause`]) into structured
//! [`Event`]s, restarts with backoff and recycles a worker after N requests.
//!
//! This is the only crate of the workspace allowed `unsafe`; every block carries a `// SAFETY:`
//! comment.

mod cgroup;
pub mod confine;
mod frame;
mod spec;
mod supervisor;
pub mod worker;

pub use confine::{Layer, LayerReport, State};
pub use spec::{Layers, Limits, Spec};
pub use supervisor::{Cause, Crash, Event, EventKind, ProcStatus, Supervisor, SupervisorConfig};

/// The argument that makes the binary act as a worker (`rampart __worker`).
pub const WORKER_ARG: &str = "__worker";

/// The file descriptor on which a worker finds its end of the socketpair.
pub const WORKER_FD: i32 = 3;

/// Everything that can go wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker could not be started or did not become ready.
    #[error("worker failed to start: {0}")]
    Spawn(String),
    /// A layer could not be applied (in strict mode every layer is required).
    #[error("sandbox layer {layer} could not be applied: {detail}")]
    Layer {
        /// The layer (`namespaces`, `landlock`, `seccomp`, ...).
        layer: &'static str,
        /// Why.
        detail: String,
    },
    /// The worker died or overran its deadline while serving a request.
    #[error("worker {}: {}", .0.cause.rule(), .0.detail)]
    Crashed(Crash),
    /// A malformed message between supervisor and worker.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Sys { what, source }
    }

    /// The last OS error as [`Error::Sys`].
    pub(crate) fn last(what: &'static str) -> Self {
        Self::Sys {
            what,
            source: std::io::Error::last_os_error(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
