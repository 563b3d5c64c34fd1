//! Per-worker cgroups (memory and pids limits), created by the supervisor when it may write the
//! cgroup tree (root on cgroup v1, or a delegated cgroup v2 subtree). The worker joins them between
//! fork and exec by writing `0` to the pre-opened `cgroup.procs` files.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Limits;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The cgroup directories of one worker; removed on drop (after the worker is reaped).
#[derive(Debug)]
pub(crate) struct Cgroup {
    /// Directories created, memory first.
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each, open for writing.
    procs: Vec<OwnedFd>,
    /// Where to read OOM kills.
    oom_file: PathBuf,
    /// `v1` or `v2`.
    pub(crate) version: &'static str,
}

/// The path of this process in the hierarchy with `controller` (v1), or the v2 path (`""`).
fn own_path(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.trim_start_matches('/').to_owned())
    })
}

fn make(dir: &Path, settings: &[(&str, String)]) -> Result<OwnedFd, String> {
    fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    for (file, value) in settings {
        let path = dir.join(file);
        fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let procs = dir.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&procs)
        .map(OwnedFd::from)
        .map_err(|e| format!("{}: {e}", procs.display()))
}

impl Cgroup {
    /// Creates the cgroups for one worker with `limits`, or says why not.
    pub(crate) fn create(limits: &Limits) -> Result<Self, String> {
        // SAFETY: getpid cannot fail.
        let name = format!(
            "rampart-worker-{}-{}",
            unsafe { libc::getpid() },
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let root = Path::new("/sys/fs/cgroup");
        let mut cg = Self {
            dirs: Vec::new(),
            procs: Vec::new(),
            oom_file: PathBuf::new(),
            version: "v2",
        };
        if root.join("cgroup.controllers").exists() {
            let base = root.join(own_path("").ok_or("no cgroup v2 path")?);
            let dir = base.join(&name);
            let fd = make(
                &dir,
                &[
                    ("memory.max", limits.memory.to_string()),
                    ("pids.max", limits.pids.to_string()),
                ],
            );
            cg.dirs.push(dir.clone());
            cg.procs.push(fd?);
            cg.oom_file = dir.join("memory.events");
        } else {
            cg.version = "v1";
            let mem = root
                .join("memory")
                .join(own_path("memory").ok_or("no cgroup v1 memory hierarchy")?)
                .join(&name);
            let fd = make(
                &mem,
                &[("memory.limit_in_bytes", limits.memory.to_string())],
            );
            cg.dirs.push(mem.clone());
            cg.procs.push(fd?);
            cg.oom_file = mem.join("memory.oom_control");
            let pids = root
                .join("pids")
                .join(own_path("pids").ok_or("no cgroup v1 pids hierarchy")?)
                .join(&name);
            let fd = make(&pids, &[("pids.max", limits.pids.to_string())]);
            cg.dirs.push(pids);
            cg.procs.push(fd?);
        }
        Ok(cg)
    }

    /// The `cgroup.procs` descriptors the worker writes `0` to before exec.
    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Closes the `cgroup.procs` descriptors (once the worker has joined).
    pub(crate) fn joined(&mut self) {
        self.procs.clear();
    }

    /// Whether the kernel's OOM killer killed a process in the memory cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        fs::read_to_string(&self.oom_file).is_ok_and(|t| {
            t.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}
