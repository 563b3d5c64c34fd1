//! `rampart scan`: find code-execution payloads in model files without executing them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use rampart_formats::source::FileSource;
use rampart_scan::engine::Scanner;
use rampart_scan::limits::ScanLimits;
use rampart_scan::render::{self, FileResult};
use rampart_scan::{Finding, Severity, Verdict};

use crate::output;
use crate::sandbox::SandboxedScanner;

/// How deep `rampart scan` descends into directories.
const MAX_DIR_DEPTH: usize = 64;

/// Arguments of `rampart scan`.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files or directories to scan. Directories are walked recursively; symbolic links are never
    /// followed (they are reported), and formats are recognised by content, never by name.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format: `text` for people, `json` (a stable interface, version 1), `sarif` (2.1.0).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when any file is at or above this verdict. A file that could not be fully analysed
    /// (`error`) always fails the scan.
    #[arg(long, value_enum, default_value_t = FailOn::Review)]
    fail_on: FailOn,
    /// A TOML file overriding scanner limits (entry counts, nesting depth, decompressed sizes,
    /// header sizes, pickle opcode count and stack depth). Unknown keys are rejected.
    #[arg(long, value_name = "FILE")]
    limits: Option<PathBuf>,
    /// Parse in this process instead of a sandboxed worker (not recommended: a parser bug then
    /// runs with all of your privileges).
    #[arg(long)]
    no_sandbox: bool,
    /// Per-file time limit of the sandboxed parser, in seconds; a file that takes longer gets
    /// verdict `error` (rule `sandbox/timeout`).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    sandbox_timeout: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailOn {
    Review,
    Malicious,
}

impl FailOn {
    fn fails(self, v: Verdict) -> bool {
        matches!(
            (self, v),
            (_, Verdict::Error | Verdict::Malicious) | (FailOn::Review, Verdict::Review)
        )
    }
}

/// One thing found while walking the arguments.
enum Entry {
    File(PathBuf),
    NotScanned(PathBuf, &'static str, String),
}

pub(crate) fn scan(args: &ScanArgs) -> Result<ExitCode> {
    let (limits, limits_toml) = match &args.limits {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading limits file {}", path.display()))?;
            let limits = toml::from_str::<ScanLimits>(&text)
                .with_context(|| format!("in limits file {}", path.display()))?;
            (limits, text)
        }
        None => (ScanLimits::default(), String::new()),
    };
    let mut entries = Vec::new();
    for path in &args.paths {
        // A path named on the command line must exist: a typo is a usage error, not a clean scan.
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("cannot scan {}", path.display()))?;
        walk(path, &meta, 0, &mut entries)?;
    }

    let timeout = Duration::try_from_secs_f64(args.sandbox_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .context("--sandbox-timeout must be a positive number of seconds")?;
    let mut sandboxed = if args.no_sandbox || entries.is_empty() {
        if args.no_sandbox {
            output::info(
                "warning: --no-sandbox: model parsers run in this process, unconfined; a parser bug \
                 would run with all of your privileges",
            );
        }
        None
    } else {
        Some(SandboxedScanner::start(&limits, &limits_toml, timeout)?)
    };
    let scanner = Scanner::new(limits);
    let mut io_failure = false;
    let mut files = Vec::with_capacity(entries.len());
    for entry in entries {
        let result = match entry {
            Entry::File(path) => {
                let opened = std::fs::File::open(&path);
                match (sandboxed.as_mut(), opened) {
                    // The worker gets the open, read-only descriptor; it cannot open paths.
                    (Some(sb), Ok(file)) => sb.scan(display(&path), &file)?,
                    (None, opened) => match opened.and_then(FileSource::new) {
                        Ok(src) => {
                            let scanned = scanner.scan_source(&src);
                            FileResult {
                                path: display(&path),
                                format: scanned.format.to_owned(),
                                verdict: scanned.report.verdict,
                                findings: scanned.report.findings,
                            }
                        }
                        Err(e) => {
                            io_failure = true;
                            not_scanned(
                                &path,
                                "fs/read-failed",
                                format!("cannot read the file: {e}"),
                            )
                        }
                    },
                    (Some(_), Err(e)) => {
                        io_failure = true;
                        not_scanned(
                            &path,
                            "fs/read-failed",
                            format!("cannot read the file: {e}"),
                        )
                    }
                }
            }
            Entry::NotScanned(path, rule, message) => not_scanned(&path, rule, message),
        };
        files.push(result);
    }

    let rendered = match args.format {
        Format::Text => render::text(&files),
        Format::Json => format!("{:#}\n", render::json(&files)),
        Format::Sarif => format!("{:#}\n", render::sarif(&files, env!("CARGO_PKG_VERSION"))),
    };
    output::stdout(rendered.as_bytes())?;
    if io_failure {
        return Ok(ExitCode::from(2));
    }
    let failed = files.iter().any(|f| args.fail_on.fails(f.verdict));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn not_scanned(path: &Path, rule: &str, message: String) -> FileResult {
    FileResult {
        path: display(path),
        format: "none".to_owned(),
        verdict: Verdict::Error,
        findings: vec![Finding {
            rule: rule.to_owned(),
            severity: Severity::Medium,
            message,
            member: None,
            offset: None,
            evidence: None,
        }],
    }
}

fn walk(path: &Path, meta: &std::fs::Metadata, depth: usize, out: &mut Vec<Entry>) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".to_owned());
        out.push(Entry::NotScanned(
            path.to_owned(),
            "fs/symlink-not-followed",
            format!("symbolic link to {target} not followed; scan the target itself"),
        ));
    } else if kind.is_file() {
        out.push(Entry::File(path.to_owned()));
    } else if kind.is_dir() {
        if depth >= MAX_DIR_DEPTH {
            bail!(
                "{} is nested more than {MAX_DIR_DEPTH} directories deep",
                path.display()
            );
        }
        let mut children = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("reading directory {}", path.display()))?;
        children.sort_by_key(std::fs::DirEntry::file_name);
        for child in children {
            let child_path = child.path();
            let meta = std::fs::symlink_metadata(&child_path)
                .with_context(|| format!("reading {}", child_path.display()))?;
            walk(&child_path, &meta, depth + 1, out)?;
        }
    } else {
        out.push(Entry::NotScanned(
            path.to_owned(),
            "fs/special-file",
            "not a regular file (device, socket or FIFO); not opened".to_owned(),
        ));
    }
    Ok(())
}
