//! The worker side: applying each layer to the calling (single-threaded) process, and the report of
//! what is in force.
//!
//! Order, and why it differs in two places from the textbook order in the runtime notes:
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)` (also set between fork and exec by the supervisor);
//! 2. namespaces. Unprivileged: `unshare(USER|NET|NS|IPC|UTS)` and a one-id uid/gid map. As root:
//!    `unshare(NET|NS|IPC|UTS)` as root, then the switch to the unprivileged uid/gid (step 6 of the
//!    notes, done here so the user namespace is created by the unprivileged user and root is never
//!    mapped into it), `PDEATHSIG` again (a credential change clears it), then `unshare(USER)`;
//! 3. not dumpable: after the uid/gid maps are written, because a non-dumpable process's
//!    `/proc/self/uid_map` belongs to root and could not be written;
//! 4. rlimits; 5. `no_new_privs`; 7. Landlock; 8. seccomp allow-list (`KillProcess` otherwise).

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Spec};

/// Whether a layer is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Applied in full.
    Enforced,
    /// Applied, but not every part the kernel could offer.
    Partial,
    /// Could not be applied on this host or for this user.
    Unavailable,
    /// Switched off in the spec.
    Disabled,
    /// Does not apply (e.g. the uid switch when not started as root).
    NotApplicable,
}

/// One layer's state and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Whether it is in force.
    pub state: State,
    /// What exactly (ABI version, errno, ...).
    pub detail: String,
}

impl Layer {
    fn new(state: State, detail: impl Into<String>) -> Self {
        Self {
            state,
            detail: detail.into(),
        }
    }

    /// Whether the layer protects as intended (enforced, or not applicable here).
    #[must_use]
    pub fn ok(&self) -> bool {
        matches!(self.state, State::Enforced | State::NotApplicable)
    }
}

/// What a worker applied to itself, sent to the supervisor when it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerReport {
    /// User, network, mount, IPC and UTS namespaces.
    pub namespaces: Layer,
    /// rlimits.
    pub rlimits: Layer,
    /// `no_new_privs`.
    pub no_new_privs: Layer,
    /// Switch from root to an unprivileged uid/gid.
    pub uid_drop: Layer,
    /// Landlock.
    pub landlock: Layer,
    /// seccomp allow-list.
    pub seccomp: Layer,
    /// cgroup memory and pids limits (filled in by the supervisor, which creates the cgroup).
    pub cgroup: Layer,
    /// The worker's network namespace (`net:[inode]`), read before Landlock.
    pub net_ns: Option<String>,
    /// The worker's uid after confinement (as seen outside its user namespace).
    pub uid: u32,
}

impl LayerReport {
    /// Every layer with its name, in application order.
    #[must_use]
    pub fn layers(&self) -> [(&'static str, &Layer); 7] {
        [
            ("namespaces", &self.namespaces),
            ("rlimits", &self.rlimits),
            ("no_new_privs", &self.no_new_privs),
            ("uid_drop", &self.uid_drop),
            ("landlock", &self.landlock),
            ("seccomp", &self.seccomp),
            ("cgroup", &self.cgroup),
        ]
    }

    /// Names of the layers not in force.
    #[must_use]
    pub fn missing(&self) -> Vec<&'static str> {
        self.layers()
            .into_iter()
            .filter(|(_, l)| !l.ok())
            .map(|(n, _)| n)
            .collect()
    }
}

/// Sets `PR_SET_PDEATHSIG(SIGKILL)`.
fn pdeathsig() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(Error::last("prctl(PR_SET_PDEATHSIG)"));
    }
    Ok(())
}

fn set_dumpable(on: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_DUMPABLE)"));
    }
    Ok(())
}

fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes a flag word; the process is single-threaded (required by CLONE_NEWUSER).
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Maps `uid`/`gid` to themselves in a fresh user namespace.
fn write_maps(uid: u32, gid: u32) -> io::Result<()> {
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))?;
    Ok(())
}

fn drop_ids(uid: u32, gid: u32) -> Result<()> {
    // SAFETY: setgroups with an empty list, then setresgid/setresuid with plain integers.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(Error::last("setgroups"));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(Error::last("setresgid"));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(Error::last("setresuid"));
        }
    }
    // SAFETY: getuid/geteuid cannot fail.
    if unsafe { libc::getuid() != uid || libc::geteuid() != uid } {
        return Err(Error::Layer {
            layer: "uid_drop",
            detail: "uid did not change".to_owned(),
        });
    }
    Ok(())
}

const NS_OTHER: libc::c_int =
    libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

/// Steps 1-3: death signal, namespaces, uid switch, not dumpable.
fn identity(spec: &Spec, report: &mut LayerReport) -> Result<()> {
    pdeathsig()?;
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let root = uid == 0;
    let ns = spec.layers.namespaces;
    if root {
        let other = if ns { unshare(NS_OTHER).err() } else { None };
        drop_ids(spec.uid, spec.gid)?;
        report.uid_drop = Layer::new(
            State::Enforced,
            format!("root -> uid {} gid {}", spec.uid, spec.gid),
        );
        pdeathsig()?;
        if ns {
            set_dumpable(true)?;
            let user = unshare(libc::CLONE_NEWUSER).and_then(|()| write_maps(spec.uid, spec.gid));
            report.namespaces = match (other, user) {
                (None, Ok(())) => Layer::new(State::Enforced, "user, net, mount, ipc, uts"),
                (None, Err(e)) => {
                    Layer::new(State::Partial, format!("net, mount, ipc, uts; user: {e}"))
                }
                (Some(e), Ok(())) => {
                    Layer::new(State::Partial, format!("user; net, mount, ipc, uts: {e}"))
                }
                (Some(e), Err(_)) => Layer::new(State::Unavailable, format!("unshare: {e}")),
            };
        }
    } else {
        report.uid_drop = Layer::new(State::NotApplicable, format!("not root (uid {uid})"));
        if ns {
            report.namespaces =
                match unshare(libc::CLONE_NEWUSER | NS_OTHER).and_then(|()| write_maps(uid, gid)) {
                    Ok(()) => Layer::new(State::Enforced, "user, net, mount, ipc, uts"),
                    Err(e) => Layer::new(State::Unavailable, format!("unshare: {e}")),
                };
        }
    }
    set_dumpable(false)?;
    report.net_ns = std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    // SAFETY: getuid cannot fail.
    report.uid = unsafe { libc::getuid() };
    Ok(())
}

fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(Error::last("setrlimit"));
    }
    Ok(())
}

/// Step 4: rlimits.
fn rlimits(spec: &Spec) -> Result<Layer> {
    let l = &spec.limits;
    setrlimit(libc::RLIMIT_AS, l.address_space, l.address_space)?;
    setrlimit(
        libc::RLIMIT_CPU,
        l.cpu_seconds,
        l.cpu_seconds.saturating_add(1),
    )?;
    setrlimit(libc::RLIMIT_NOFILE, l.open_files, l.open_files)?;
    setrlimit(libc::RLIMIT_NPROC, 0, 0)?;
    setrlimit(libc::RLIMIT_FSIZE, 0, 0)?;
    setrlimit(libc::RLIMIT_CORE, 0, 0)?;
    Ok(Layer::new(
        State::Enforced,
        format!(
            "address space {} MiB, cpu {} s, {} files, 0 processes, file size 0, no core",
            l.address_space >> 20,
            l.cpu_seconds,
            l.open_files
        ),
    ))
}

/// Step 5: `no_new_privs`.
fn no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    Ok(())
}

/// The Landlock ABI the kernel offers (0 when none).
#[must_use]
pub fn landlock_abi() -> i64 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute pointer and size 0 only
    // queries the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    v.max(0)
}

/// Step 7: Landlock.
fn landlock(spec: &Spec) -> Layer {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let level = if spec.strict {
        CompatLevel::HardRequirement
    } else {
        CompatLevel::BestEffort
    };
    let status = Ruleset::default()
        .set_compatibility(level)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(Ruleset::create)
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                &spec.read_paths,
                AccessFs::from_read(abi),
            ))
        })
        .and_then(|r| r.restrict_self());
    let kernel = landlock_abi();
    match status {
        Ok(s) => match s.ruleset {
            RulesetStatus::FullyEnforced => Layer::new(
                State::Enforced,
                format!(
                    "ABI {kernel}, enforced: read-only on {} path(s), TCP bind/connect denied, abstract unix sockets and signals scoped",
                    spec.read_paths.len()
                ),
            ),
            RulesetStatus::PartiallyEnforced => Layer::new(
                State::Partial,
                format!("ABI {kernel}, partially enforced (TCP or scoping needs ABI 4/6)"),
            ),
            RulesetStatus::NotEnforced => {
                Layer::new(State::Unavailable, format!("ABI {kernel}: not enforced"))
            }
        },
        Err(e) => Layer::new(State::Unavailable, format!("ABI {kernel}: {e}")),
    }
}

/// System calls a worker may make after confinement: what the scanner and the worker loop were
/// seen to use (strace over the scan corpus and the escape suite), plus what a crash needs to be
/// reported (abort, panic output). `openat` is allowed only read-only; `tgkill`/`kill` only on the
/// worker itself.
const ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_pread64,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_lseek,
    libc::SYS_fcntl,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_getrandom,
    libc::SYS_ppoll,
    libc::SYS_recvmsg,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_sendto,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
];

/// Flags that make an `openat` write, create or truncate.
const WRITE_FLAGS: u64 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

/// The BPF program of the allow-list.
fn seccomp_program() -> std::result::Result<seccompiler::BpfProgram, seccompiler::BackendError> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond,
        SeccompFilter, SeccompRule, TargetArch,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        seccompiler::BackendError::InvalidTargetArch(std::env::consts::ARCH.to_owned())
    })?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    rules.insert(
        libc::SYS_openat,
        vec![SeccompRule::new(vec![Cond::new(
            2,
            Len::Dword,
            Op::MaskedEq(WRITE_FLAGS),
            0,
        )?])?],
    );
    // SAFETY: getpid cannot fail.
    let pid = u64::try_from(unsafe { libc::getpid() }).unwrap_or(u64::MAX);
    for nr in [libc::SYS_tgkill, libc::SYS_kill] {
        rules.insert(
            nr,
            vec![SeccompRule::new(vec![Cond::new(
                0,
                Len::Dword,
                Op::Eq,
                pid,
            )?])?],
        );
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )?;
    filter.try_into()
}

/// Step 8: the seccomp allow-list.
fn seccomp() -> Layer {
    let program = match seccomp_program() {
        Ok(p) => p,
        Err(e) => return Layer::new(State::Unavailable, format!("building the filter: {e}")),
    };
    match seccompiler::apply_filter(&program) {
        Ok(()) => Layer::new(
            State::Enforced,
            format!(
                "allow-list of {} syscalls, anything else kills the worker",
                ALLOWED.len() + 3
            ),
        ),
        Err(e) => Layer::new(State::Unavailable, e.to_string()),
    }
}

fn disabled() -> Layer {
    Layer::new(State::Disabled, "switched off in the spec")
}

/// Closes every descriptor above the worker's socket (anything inherited by accident).
fn close_inherited() {
    // SAFETY: close_range only closes descriptors; none above WORKER_FD is in use by Rust code.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            (crate::WORKER_FD + 1) as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
}

/// Applies every layer of `spec` to the calling process, which must be single-threaded and must
/// not yet have read untrusted input. In strict mode, any layer not in force is an error.
pub fn apply(spec: &Spec) -> Result<LayerReport> {
    close_inherited();
    let mut report = LayerReport {
        namespaces: disabled(),
        rlimits: disabled(),
        no_new_privs: disabled(),
        uid_drop: disabled(),
        landlock: disabled(),
        seccomp: disabled(),
        cgroup: Layer::new(State::Unavailable, "not set up by the supervisor"),
        net_ns: None,
        uid: 0,
    };
    identity(spec, &mut report)?;
    if spec.layers.rlimits {
        report.rlimits = rlimits(spec)?;
    }
    no_new_privs()?;
    report.no_new_privs = Layer::new(State::Enforced, "set");
    if spec.layers.landlock {
        report.landlock = landlock(spec);
    }
    if spec.layers.seccomp {
        report.seccomp = seccomp();
    }
    if spec.strict {
        let missing: Vec<_> = report
            .layers()
            .into_iter()
            .filter(|(n, l)| *n != "cgroup" && !l.ok())
            .map(|(n, l)| format!("{n} ({})", l.detail))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Layer {
                layer: "strict",
                detail: missing.join("; "),
            });
        }
    }
    Ok(report)
}
