//! The sandboxed scanner worker, `rampart sandbox check`, and the hidden overhead benchmark.

use std::os::fd::AsFd as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use rampart_formats::source::FileSource;
use rampart_sandbox::worker::Request;
use rampart_sandbox::{Cause, Error, ProcStatus, Spec, Supervisor, SupervisorConfig};
use rampart_scan::engine::Scanner;
use rampart_scan::limits::ScanLimits;
use rampart_scan::render::FileResult;
use rampart_scan::{Finding, Report, Severity, Verdict};
use serde::{Deserialize, Serialize};

use crate::output;

/// Arguments of `rampart sandbox`.
#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Start a throwaway worker and report which layers are in force for this host and user
    /// (namespaces, rlimits, no_new_privs, uid switch, Landlock, seccomp, cgroups). With
    /// --strict, exits 1 when any layer is missing.
    Check {
        /// Exit 1 unless every layer is in force.
        #[arg(long)]
        strict: bool,
    },
    /// Measure the per-request overhead of the sandboxed scanner against in-process scanning,
    /// and spawn-to-ready time (used by bench/sandbox.sh).
    #[command(hide = true)]
    Bench {
        /// The file scanned by every request.
        file: std::path::PathBuf,
        /// Requests per path.
        #[arg(long, default_value_t = 3000)]
        requests: usize,
        /// Busy-poll budget of both ends, in microseconds.
        #[arg(long, default_value_t = 0)]
        spin_us: u64,
        /// Worker spawns to time.
        #[arg(long, default_value_t = 30)]
        spawns: usize,
    },
}

/// Requests to the scanner worker.
#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    /// Scan the file passed with the request.
    Scan,
    /// Liveness.
    Ping,
}

/// Replies of the scanner worker.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The scan result.
    Scanned {
        /// The outermost format.
        format: String,
        /// Findings and verdict.
        report: Report,
    },
    /// The worker could not read the descriptor it was given.
    Failed(String),
    /// Answer to [`Ask::Ping`].
    Pong,
}

/// Entry point of `rampart __worker`: confine, then scan the files the parent passes in.
pub(crate) fn worker() -> ExitCode {
    rampart_sandbox::worker::serve(|init: &str| {
        let limits: ScanLimits = toml::from_str(init).map_err(|e| format!("limits: {e}"))?;
        let scanner = Scanner::new(limits);
        Ok(move |req: Request| {
            let reply = match serde_json::from_slice::<Ask>(&req.payload) {
                Ok(Ask::Ping) => Reply::Pong,
                Ok(Ask::Scan) => match req.fd {
                    Some(fd) => match FileSource::new(std::fs::File::from(fd)) {
                        Ok(src) => {
                            let scanned = scanner.scan_source(&src);
                            Reply::Scanned {
                                format: scanned.format.to_owned(),
                                report: scanned.report,
                            }
                        }
                        Err(e) => Reply::Failed(format!("cannot read the file: {e}")),
                    },
                    None => Reply::Failed("no file passed".to_owned()),
                },
                Err(e) => Reply::Failed(format!("bad request: {e}")),
            };
            serde_json::to_vec(&reply).unwrap_or_default()
        })
    })
}

/// A scanner running in a sandboxed worker.
#[derive(Debug)]
pub(crate) struct SandboxedScanner {
    sup: Supervisor,
}

impl SandboxedScanner {
    /// Starts the worker with the scanner `limits` (as TOML text; empty for defaults).
    pub(crate) fn start(
        limits: &ScanLimits,
        limits_toml: &str,
        deadline: Duration,
    ) -> Result<Self> {
        let mut spec = Spec {
            init: limits_toml.to_owned(),
            // No busy-polling: a scan alternates parent and worker, and on a loaded machine a
            // spinning side only steals the core the other needs (bench/sandbox.sh, BENCHMARKS.md).
            spin_us: 0,
            ..Spec::default()
        };
        // The scanner itself bounds what it holds (max_total_bytes + one member); leave room
        // for that plus the program, so sandboxed and in-process scans agree.
        let memory = limits
            .container
            .max_total_bytes
            .saturating_add(limits.container.max_member_bytes)
            .saturating_add(1 << 30);
        spec.limits.address_space = memory;
        spec.limits.memory = memory;
        spec.limits.cpu_seconds = 600;
        let config = SupervisorConfig {
            deadline,
            spin: Duration::ZERO,
            ..SupervisorConfig::default()
        };
        let mut sup = Supervisor::new(spec, config);
        sup.start().context(
            "cannot start the sandboxed scanner (see `rampart sandbox check`; --no-sandbox scans in-process)",
        )?;
        Ok(Self { sup })
    }

    /// Scans an open file in the worker. A worker crash or timeout becomes an `error` verdict
    /// with a finding naming the cause; only a worker that cannot be restarted is an `Err`.
    pub(crate) fn scan(&mut self, path: String, file: &std::fs::File) -> Result<FileResult> {
        let ask = serde_json::to_vec(&Ask::Scan)?;
        let reply = match self.sup.request(&ask, Some(file.as_fd())) {
            Ok(bytes) => bytes,
            Err(Error::Crashed(c)) => {
                let what = match c.cause {
                    Cause::Deadline => "the scan timed out",
                    Cause::MemoryLimit => "the scan exceeded the memory limit",
                    Cause::CpuLimit => "the scan exceeded the CPU limit",
                    Cause::Seccomp => "the parser made a forbidden system call",
                    _ => "the parser crashed",
                };
                return Ok(error_result(
                    path,
                    c.cause.rule(),
                    format!("{what}; the file was not analysed ({})", c.detail),
                    Some(format!("{:?}", c.cause).to_lowercase()),
                ));
            }
            Err(e) => return Err(e).context("the sandboxed scanner stopped"),
        };
        Ok(match serde_json::from_slice::<Reply>(&reply) {
            Ok(Reply::Scanned { format, report }) => FileResult {
                path,
                format,
                verdict: report.verdict,
                findings: report.findings,
            },
            Ok(Reply::Failed(msg)) => error_result(path, "fs/read-failed", msg, None),
            Ok(Reply::Pong) | Err(_) => error_result(
                path,
                "sandbox/crashed",
                "the worker sent a malformed reply; the file was not analysed".to_owned(),
                None,
            ),
        })
    }
}

fn error_result(path: String, rule: &str, message: String, evidence: Option<String>) -> FileResult {
    FileResult {
        path,
        format: "none".to_owned(),
        verdict: Verdict::Error,
        findings: vec![Finding {
            rule: rule.to_owned(),
            severity: Severity::High,
            message,
            member: None,
            offset: None,
            evidence,
        }],
    }
}

pub(crate) fn run(args: &SandboxArgs) -> Result<ExitCode> {
    match &args.command {
        SandboxCommand::Check { strict } => check(*strict),
        SandboxCommand::Bench {
            file,
            requests,
            spin_us,
            spawns,
        } => bench(file, *requests, *spin_us, *spawns),
    }
}

fn state_word(l: &rampart_sandbox::Layer) -> &'static str {
    match l.state {
        rampart_sandbox::State::Enforced => "enforced",
        rampart_sandbox::State::Partial => "partial",
        rampart_sandbox::State::Unavailable => "MISSING",
        rampart_sandbox::State::Disabled => "disabled",
        rampart_sandbox::State::NotApplicable => "not applicable",
    }
}

fn check(strict: bool) -> Result<ExitCode> {
    let mut sup = Supervisor::new(
        Spec {
            init: String::new(),
            ..Spec::default()
        },
        SupervisorConfig {
            deadline: Duration::from_secs(10),
            ..SupervisorConfig::default()
        },
    );
    let report = sup.start().context("starting a throwaway worker")?.clone();
    let pid = sup.worker_pid().unwrap_or(0);
    let mut lines = String::new();
    let uid = ProcStatus::of(std::process::id().try_into().unwrap_or(0))
        .ok()
        .and_then(|s| s.uid)
        .unwrap_or(u32::MAX);
    lines += &format!("user: uid {uid}\n");
    for (name, layer) in report.layers() {
        lines += &format!("{name}: {}, {}\n", state_word(layer), layer.detail);
    }
    let mut missing: Vec<String> = report.missing().iter().map(|s| (*s).to_owned()).collect();
    let status = ProcStatus::of(pid).unwrap_or_default();
    let proc_ok = status.seccomp == Some(2) && status.no_new_privs == Some(1);
    lines += &format!(
        "worker /proc/{pid}/status: Seccomp {}, NoNewPrivs {}, Uid {} ({})\n",
        status.seccomp.map_or("?".to_owned(), |v| v.to_string()),
        status
            .no_new_privs
            .map_or("?".to_owned(), |v| v.to_string()),
        status.uid.map_or("?".to_owned(), |v| v.to_string()),
        if proc_ok {
            "confirmed"
        } else {
            "NOT confirmed"
        }
    );
    if !proc_ok {
        missing.push("proc-status".to_owned());
    }
    let own = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let separate = report.net_ns.as_deref().is_some_and(|n| n != own);
    lines += &format!(
        "network namespace: {} (worker {}, this process {own})\n",
        if separate { "separate" } else { "SHARED" },
        report.net_ns.as_deref().unwrap_or("?")
    );
    let alive = serde_json::to_vec(&Ask::Ping)
        .ok()
        .and_then(|a| sup.request(&a, None).ok())
        .is_some_and(|r| matches!(serde_json::from_slice(&r), Ok(Reply::Pong)));
    lines += &format!(
        "worker answers requests: {}\n",
        if alive { "yes" } else { "NO" }
    );
    if !alive {
        missing.push("worker".to_owned());
    }
    lines += &if missing.is_empty() {
        "all layers in force\n".to_owned()
    } else {
        format!("missing: {}\n", missing.join(", "))
    };
    output::stdout(lines.as_bytes())?;
    Ok(if strict && !missing.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench(file: &std::path::Path, requests: usize, spin_us: u64, spawns: usize) -> Result<ExitCode> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let scanner = Scanner::new(ScanLimits::default());
    let src = FileSource::new(f.try_clone()?)?;
    let mut inproc = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let s = scanner.scan_source(&src);
        std::hint::black_box(&s);
        inproc.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let spec = Spec {
        spin_us,
        ..Spec::default()
    };
    let config = SupervisorConfig {
        spin: Duration::from_micros(spin_us),
        recycle_after: u64::MAX,
        ..SupervisorConfig::default()
    };
    let mut sup = Supervisor::new(spec.clone(), config.clone());
    sup.start()?;
    let ask = serde_json::to_vec(&Ask::Scan)?;
    let mut boxed = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let r = sup.request(&ask, Some(f.as_fd()))?;
        std::hint::black_box(&r);
        boxed.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(sup);
    let mut ready = Vec::with_capacity(spawns);
    for _ in 0..spawns {
        let t = Instant::now();
        let mut s = Supervisor::new(spec.clone(), config.clone());
        s.start()?;
        ready.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for v in [&mut inproc, &mut boxed, &mut ready] {
        v.sort_by(f64::total_cmp);
    }
    if inproc.is_empty() || boxed.is_empty() {
        bail!("no requests");
    }
    let (ip50, ip99) = (percentile(&inproc, 0.5), percentile(&inproc, 0.99));
    let (sp50, sp99) = (percentile(&boxed, 0.5), percentile(&boxed, 0.99));
    let text = format!(
        "file {} ({} bytes), {requests} requests, spin {spin_us} us\n\
         in-process  p50 {ip50:.1} us  p99 {ip99:.1} us\n\
         sandboxed   p50 {sp50:.1} us  p99 {sp99:.1} us\n\
         overhead    p50 {:+.1} %  p99 {:+.1} %\n\
         spawn-to-ready ({spawns} spawns) p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms\n",
        file.display(),
        std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        (sp50 / ip50 - 1.0) * 100.0,
        (sp99 / ip99 - 1.0) * 100.0,
        percentile(&ready, 0.5),
        percentile(&ready, 0.99),
        ready.last().copied().unwrap_or(0.0),
    );
    output::stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
