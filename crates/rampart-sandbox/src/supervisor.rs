//! The parent's side: spawn, deadline, crash classification, restart with backoff, recycling.

use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{ChildStderr, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cgroup::Cgroup;
use crate::confine::{Layer, State};
use crate::frame::{self, RecvError};
use crate::worker::Hello;
use crate::{Error, LayerReport, Result, Spec, WORKER_ARG, WORKER_FD};

/// How the supervisor runs workers.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The worker program (default `/proc/self/exe`: a re-exec of the running binary).
    pub program: PathBuf,
    /// Its arguments (default `__worker`).
    pub args: Vec<OsString>,
    /// Per-request wall-clock deadline; past it the worker is killed and respawned.
    pub deadline: Duration,
    /// How long a new worker has to confine itself and report ready.
    pub ready_timeout: Duration,
    /// Requests after which a worker is replaced by a fresh one.
    pub recycle_after: u64,
    /// How long the supervisor busy-polls for a reply before blocking.
    pub spin: Duration,
    /// First restart delay after a crash; doubles per consecutive crash.
    pub backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![OsString::from(WORKER_ARG)],
            deadline: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(10),
            recycle_after: 1000,
            spin: Duration::ZERO,
            backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// Why a worker died (or was killed) during a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// No answer within the deadline: killed by the supervisor.
    Deadline,
    /// Out of memory: an allocation failed under `RLIMIT_AS`, or the cgroup OOM killer.
    MemoryLimit,
    /// `RLIMIT_CPU` exhausted (SIGXCPU).
    CpuLimit,
    /// A system call outside the seccomp allow-list (SIGSYS).
    Seccomp,
    /// Aborted (SIGABRT, not for memory).
    Abort,
    /// Panicked (exit code 101).
    Panic,
    /// Killed by another signal.
    Signal,
    /// Exited on its own.
    Exit,
    /// Broke the message protocol.
    Protocol,
}

impl Cause {
    /// The scanner rule naming this cause (`sandbox/timeout`, `sandbox/seccomp`, ...).
    #[must_use]
    pub fn rule(self) -> &'static str {
        match self {
            Self::Deadline => "sandbox/timeout",
            Self::MemoryLimit => "sandbox/memory-limit",
            Self::CpuLimit => "sandbox/cpu-limit",
            Self::Seccomp => "sandbox/seccomp",
            Self::Abort | Self::Panic | Self::Signal | Self::Exit | Self::Protocol => {
                "sandbox/crashed"
            }
        }
    }
}

/// A worker crash, classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    /// The classification.
    pub cause: Cause,
    /// The worker's pid.
    pub pid: i32,
    /// The terminating signal, if any.
    pub signal: Option<i32>,
    /// The exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Human-readable detail (the last line the worker wrote to stderr, if any).
    pub detail: String,
}

/// What happened to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// A worker confined itself and is ready.
    Spawned {
        /// Its pid.
        pid: i32,
        /// Spawn-to-ready time in milliseconds.
        ready_ms: f64,
    },
    /// A worker did not start.
    SpawnFailed {
        /// Why.
        detail: String,
    },
    /// A worker crashed or was killed during a request.
    Crashed(Crash),
    /// A worker was replaced after serving its quota.
    Recycled {
        /// Its pid.
        pid: i32,
        /// Requests it served.
        served: u64,
    },
}

/// A structured event for the audit log and monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A few lines of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStatus {
    /// `Seccomp:` (2 = filter mode).
    pub seccomp: Option<u32>,
    /// `NoNewPrivs:`.
    pub no_new_privs: Option<u32>,
    /// Real uid.
    pub uid: Option<u32>,
}

impl ProcStatus {
    /// Reads `/proc/<pid>/status`.
    pub fn of(pid: i32) -> Result<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(Error::sys("reading /proc/<pid>/status"))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        };
        Ok(Self {
            seccomp: field("Seccomp:"),
            no_new_privs: field("NoNewPrivs:"),
            uid: field("Uid:"),
        })
    }
}

/// A live worker.
#[derive(Debug)]
struct Worker {
    pid: i32,
    sock: OwnedFd,
    stderr: Option<ChildStderr>,
    served: u64,
    busy: Duration,
    report: LayerReport,
    cgroup: Option<Cgroup>,
}

/// Runs requests in a sandboxed worker, replacing it whenever it dies.
#[derive(Debug)]
pub struct Supervisor {
    spec: Spec,
    config: SupervisorConfig,
    worker: Option<Worker>,
    events: Vec<Event>,
    failures: u32,
    restarts: u32,
    not_before: Option<Instant>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sends SIGKILL to the worker's process group and to the worker.
fn kill(pid: i32) {
    // SAFETY: kill with a pid we spawned (its own process group) and a constant signal.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Reaps `pid`: waits up to `grace` for it to exit, then kills it and waits.
/// Returns (wait status, CPU seconds used, whether it had to be killed).
fn reap(pid: i32, grace: Duration) -> (i32, f64, bool) {
    let end = Instant::now() + grace;
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: rusage is a plain C struct; all-zero is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: status and usage are valid for writes; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return (status, cpu(usage.ru_utime) + cpu(usage.ru_stime), killed);
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return (0, 0.0, killed);
        }
        if !killed && Instant::now() >= end {
            kill(pid);
            killed = true;
        } else if !killed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn stderr_tail(stderr: Option<ChildStderr>) -> String {
    let mut text = Vec::new();
    if let Some(mut s) = stderr {
        // SAFETY: F_SETFL O_NONBLOCK on a descriptor we own.
        unsafe { libc::fcntl(s.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let _ = (&mut s).take(64 << 10).read_to_end(&mut text);
    }
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("note:"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

impl Supervisor {
    /// A supervisor that will run workers confined by `spec`. No worker starts until
    /// [`Supervisor::start`] or the first request.
    #[must_use]
    pub fn new(spec: Spec, config: SupervisorConfig) -> Self {
        Self {
            spec,
            config,
            worker: None,
            events: Vec::new(),
            failures: 0,
            restarts: 0,
            not_before: None,
        }
    }

    /// Starts a worker if none is running and returns what it has in force.
    pub fn start(&mut self) -> Result<&LayerReport> {
        if self.worker.is_none() {
            let mut last = None;
            for _ in 0..3 {
                if let Some(t) = self.not_before.take() {
                    std::thread::sleep(t.saturating_duration_since(Instant::now()));
                }
                match self.spawn() {
                    Ok(w) => {
                        self.worker = Some(w);
                        last = None;
                        break;
                    }
                    Err(e) => {
                        self.event(EventKind::SpawnFailed {
                            detail: e.to_string(),
                        });
                        self.failures += 1;
                        self.not_before = Some(Instant::now() + self.backoff());
                        last = Some(e);
                    }
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        match &self.worker {
            Some(w) => Ok(&w.report),
            None => Err(Error::Spawn("no worker".to_owned())),
        }
    }

    /// The running worker's pid.
    #[must_use]
    pub fn worker_pid(&self) -> Option<i32> {
        self.worker.as_ref().map(|w| w.pid)
    }

    /// Workers started after the first one (after crashes, deadlines or recycling).
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Takes the events recorded so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn event(&mut self, kind: EventKind) {
        self.events.push(Event {
            at_ms: now_ms(),
            kind,
        });
    }

    fn backoff(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(16);
        (self.config.backoff * (1u32 << shift)).min(self.config.max_backoff)
    }

    fn spawn(&mut self) -> Result<Worker> {
        let started = Instant::now();
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors socketpair writes.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(Error::last("socketpair"));
        }
        // SAFETY: socketpair just returned these two descriptors; we own them.
        let (sock, child_sock) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut cgroup = None;
        let mut cgroup_layer = Layer {
            state: State::Disabled,
            detail: "switched off in the spec".to_owned(),
        };
        if self.spec.layers.cgroup {
            match Cgroup::create(&self.spec.limits) {
                Ok(cg) => {
                    cgroup_layer = Layer {
                        state: State::Enforced,
                        detail: format!(
                            "{}, memory {} MiB, pids {}",
                            cg.version,
                            self.spec.limits.memory >> 20,
                            self.spec.limits.pids
                        ),
                    };
                    cgroup = Some(cg);
                }
                Err(e) => {
                    cgroup_layer = Layer {
                        state: State::Unavailable,
                        detail: e,
                    };
                }
            }
        }
        let procs: Vec<i32> = cgroup.as_ref().map(Cgroup::procs_fds).unwrap_or_default();
        let child_raw = child_sock.as_raw_fd();
        // SAFETY: getpid cannot fail.
        let parent = unsafe { libc::getpid() };
        let mut cmd = Command::new(&self.config.program);
        cmd.args(&self.config.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
        // (dup2, fcntl, prctl, getppid, write) on descriptors that are open in the child.
        unsafe {
            cmd.pre_exec(move || {
                if child_raw == WORKER_FD {
                    if libc::fcntl(WORKER_FD, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(child_raw, WORKER_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                for &fd in &procs {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(Error::sys("spawning the worker"))?;
        drop(child_sock);
        if let Some(cg) = cgroup.as_mut() {
            cg.joined();
        }
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let stderr = child.stderr.take();
        let fail = |detail: String, stderr| {
            kill(pid);
            let _ = reap(pid, Duration::ZERO);
            let tail = stderr_tail(stderr);
            Error::Spawn(if tail.is_empty() {
                detail
            } else {
                format!("{detail} ({tail})")
            })
        };
        let spec = match serde_json::to_vec(&self.spec) {
            Ok(s) => s,
            Err(e) => return Err(fail(format!("encoding the spec: {e}"), stderr)),
        };
        if let Err(e) = frame::send(sock.as_fd(), &spec, None) {
            return Err(fail(format!("sending the spec: {e}"), stderr));
        }
        let hello = frame::recv(
            sock.as_fd(),
            Some(started + self.config.ready_timeout),
            Duration::ZERO,
        );
        let mut report = match hello {
            Ok((bytes, _)) => match serde_json::from_slice::<Hello>(&bytes) {
                Ok(Hello::Ready(report)) => *report,
                Ok(Hello::Failed(msg)) => return Err(fail(msg, stderr)),
                Err(e) => return Err(fail(format!("bad ready message: {e}"), stderr)),
            },
            Err(RecvError::TimedOut) => return Err(fail("not ready in time".to_owned(), stderr)),
            Err(e) => return Err(fail(format!("no ready message: {e}"), stderr)),
        };
        report.cgroup = cgroup_layer;
        let ready_ms = started.elapsed().as_secs_f64() * 1e3;
        self.event(EventKind::Spawned { pid, ready_ms });
        Ok(Worker {
            pid,
            sock,
            stderr,
            served: 0,
            busy: Duration::ZERO,
            report,
            cgroup,
        })
    }

    /// Sends one request (with `fd` passed along, if given) and returns the worker's reply.
    /// A crash or a missed deadline kills the worker, records an [`Event`] and returns
    /// [`Error::Crashed`]; the next request starts a fresh worker (after a backoff).
    pub fn request(&mut self, payload: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<Vec<u8>> {
        self.start()?;
        let Some(w) = self.worker.as_mut() else {
            return Err(Error::Spawn("no worker".to_owned()));
        };
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        if frame::send(w.sock.as_fd(), payload, fd).is_err() {
            return Err(self.crash(None));
        }
        match frame::recv(w.sock.as_fd(), Some(deadline), self.config.spin) {
            Ok((reply, _)) => {
                w.served += 1;
                w.busy += started.elapsed();
                self.failures = 0;
                let budget = Duration::from_secs(self.spec.limits.cpu_seconds / 2);
                if w.served >= self.config.recycle_after || w.busy >= budget {
                    self.recycle();
                }
                Ok(reply)
            }
            Err(RecvError::TimedOut) => Err(self.crash(Some(Cause::Deadline))),
            Err(RecvError::TooLarge(_)) => Err(self.crash(Some(Cause::Protocol))),
            Err(RecvError::Eof | RecvError::Io(_)) => Err(self.crash(None)),
        }
    }

    /// Replaces the worker after it served its quota: closes its socket, lets it exit.
    fn recycle(&mut self) {
        if let Some(w) = self.worker.take() {
            let (pid, served) = (w.pid, w.served);
            drop(w.sock);
            let _ = reap(pid, Duration::from_millis(100));
            drop(w.cgroup);
            self.restarts += 1;
            self.event(EventKind::Recycled { pid, served });
        }
    }

    fn crash(&mut self, forced: Option<Cause>) -> Error {
        let Some(w) = self.worker.take() else {
            return Error::Spawn("no worker".to_owned());
        };
        let pid = w.pid;
        if forced.is_some() {
            kill(pid);
        }
        drop(w.sock);
        let (status, cpu, killed) = reap(pid, Duration::from_millis(200));
        let tail = stderr_tail(w.stderr);
        let oom = w.cgroup.as_ref().is_some_and(Cgroup::oom_killed);
        drop(w.cgroup);
        let signaled = libc::WIFSIGNALED(status);
        let signal = signaled.then(|| libc::WTERMSIG(status));
        let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let cpu_limit = self.spec.limits.cpu_seconds as f64;
        let (cause, what) = match (forced, signal, exit_code) {
            (Some(Cause::Deadline), ..) => (
                Cause::Deadline,
                format!("no answer within {:?}; killed", self.config.deadline),
            ),
            (Some(c), ..) => (c, "broke the message protocol; killed".to_owned()),
            (None, _, _) if killed => (Cause::Exit, "closed its socket; killed".to_owned()),
            (None, Some(libc::SIGSYS), _) => (
                Cause::Seccomp,
                "killed by seccomp (SIGSYS): a system call outside the allow-list".to_owned(),
            ),
            (None, Some(libc::SIGXCPU), _) => (
                Cause::CpuLimit,
                format!("CPU limit of {cpu_limit} s reached (SIGXCPU)"),
            ),
            (None, Some(libc::SIGKILL), _) if oom => (
                Cause::MemoryLimit,
                "killed by the cgroup OOM killer".to_owned(),
            ),
            (None, Some(libc::SIGKILL), _) if cpu + 0.05 >= cpu_limit => (
                Cause::CpuLimit,
                format!("CPU hard limit reached after {cpu:.1} s (SIGKILL)"),
            ),
            (None, Some(libc::SIGABRT), _) if tail.contains("memory allocation of") => (
                Cause::MemoryLimit,
                "allocation failed under the address-space limit (SIGABRT)".to_owned(),
            ),
            (None, Some(libc::SIGABRT), _) => (Cause::Abort, "aborted (SIGABRT)".to_owned()),
            (None, Some(s), _) => (Cause::Signal, format!("killed by signal {s}")),
            (None, None, Some(101)) => (Cause::Panic, "panicked".to_owned()),
            (None, None, code) => (Cause::Exit, format!("exited with code {code:?}")),
        };
        let detail = if tail.is_empty() {
            what
        } else {
            format!("{what}: {tail}")
        };
        let crash = Crash {
            cause,
            pid,
            signal,
            exit_code,
            detail,
        };
        self.failures += 1;
        self.restarts += 1;
        self.not_before = Some(Instant::now() + self.backoff());
        self.event(EventKind::Crashed(crash.clone()));
        Error::Crashed(crash)
    }

    /// Stops the worker, if any (it is also stopped on drop).
    pub fn shutdown(&mut self) {
        if let Some(w) = self.worker.take() {
            drop(w.sock);
            let _ = reap(w.pid, Duration::from_millis(100));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
