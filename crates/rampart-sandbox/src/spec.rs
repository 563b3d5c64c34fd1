//! What a worker may do: the explicit spec sent to it before it confines itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The confinement of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Paths (files or directories) the worker may read; nothing else is readable, nothing writable.
    pub read_paths: Vec<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Fail the worker's start when any layer cannot be applied in full.
    pub strict: bool,
    /// The uid a worker started as root switches to.
    pub uid: u32,
    /// The gid a worker started as root switches to.
    pub gid: u32,
    /// Which layers to apply (all by default; switching one off is for measuring layers alone).
    pub layers: Layers,
    /// How long the worker busy-polls for the next request before blocking, in microseconds
    /// (0 for batch jobs; 100-500 for latency-sensitive serving).
    pub spin_us: u64,
    /// Opaque start-up data for the application's request handler (e.g. scanner limits).
    pub init: String,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            read_paths: Vec::new(),
            limits: Limits::default(),
            strict: false,
            uid: 65534,
            gid: 65534,
            layers: Layers::default(),
            spin_us: 0,
            init: String::new(),
        }
    }
}

/// Resource limits of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `RLIMIT_AS`: address space in bytes.
    pub address_space: u64,
    /// `RLIMIT_CPU`: CPU seconds over the worker's life (SIGXCPU at this, SIGKILL one second later).
    pub cpu_seconds: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// cgroup memory limit in bytes (when cgroups are writable).
    pub memory: u64,
    /// cgroup pids limit (when cgroups are writable).
    pub pids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            address_space: 1 << 30,
            cpu_seconds: 60,
            open_files: 64,
            memory: 1 << 30,
            pids: 4,
        }
    }
}

/// Switches for each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::struct_excessive_bools)] // one switch per independent layer
pub struct Layers {
    /// User, network, mount, IPC and UTS namespaces.
    pub namespaces: bool,
    /// rlimits.
    pub rlimits: bool,
    /// Landlock.
    pub landlock: bool,
    /// seccomp allow-list.
    pub seccomp: bool,
    /// cgroup memory and pids limits.
    pub cgroup: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            namespaces: true,
            rlimits: true,
            landlock: true,
            seccomp: true,
            cgroup: true,
        }
    }
}

impl Layers {
    /// No layer at all (a plain worker process), for measurements.
    #[must_use]
    pub fn none() -> Self {
        Self {
            namespaces: false,
            rlimits: false,
            landlock: false,
            seccomp: false,
            cgroup: false,
        }
    }
}
