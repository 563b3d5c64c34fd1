//! Rampart's development tasks.
//!
//! `cargo xtask audit` checks Rampart's own dependencies against the offline RustSec snapshot in
//! `../shared/advisory-db` and the licence, ban and source policy in `deny.toml`, using cargo-deny.

// This is a developer tool whose whole interface is its terminal output.
#![allow(clippy::disallowed_macros)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

mod snapshot;

use snapshot::Freshness;

/// The directory name cargo-deny derives from the default RustSec URL (name + xxhash64 of the URL).
const DB_DIR_NAME: &str = "advisory-db-3157b0e258782691";

const USAGE: &str = "\
usage: cargo xtask audit [--manifest-path PATH] [--config DENY_TOML] [--advisory-db DIR]

Checks a Cargo.lock against the offline RustSec snapshot and the licence, ban and source policy of
deny.toml (cargo-deny). Fails when any advisory is not ignored, or when the snapshot's `date:` line in
SNAPSHOT.txt is more than 180 days old (warns past 90).

  --manifest-path PATH  the workspace to audit (default: Rampart's Cargo.toml)
  --config DENY_TOML    the cargo-deny policy (default: Rampart's deny.toml)
  --advisory-db DIR     the snapshot (default: $RAMPART_ADVISORY_DB or ../shared/advisory-db)";

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let root = workspace_root();
    let mut args = args.into_iter();
    match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("audit") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => bail!("{USAGE}"),
    }
    let mut manifest = root.join("Cargo.toml");
    let mut config = root.join("deny.toml");
    let mut db = std::env::var_os("RAMPART_ADVISORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/advisory-db"));
    while let Some(flag) = args.next() {
        let mut value = || args.next().map(PathBuf::from).context("missing value");
        match flag.to_str() {
            Some("--manifest-path") => manifest = value()?,
            Some("--config") => config = value()?,
            Some("--advisory-db") => db = value()?,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    audit(&absolute(&manifest)?, &absolute(&config)?, &absolute(&db)?)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

fn audit(manifest: &Path, config: &Path, db: &Path) -> Result<ExitCode> {
    let snapshot_txt = db.join("SNAPSHOT.txt");
    let text = std::fs::read_to_string(&snapshot_txt)
        .with_context(|| format!("reading {}", snapshot_txt.display()))?;
    let date = snapshot::date(&text).with_context(|| format!("in {}", snapshot_txt.display()))?;
    let today = snapshot::days_since_epoch(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("system clock before 1970")?
            .as_secs(),
    );
    match snapshot::freshness(date, today) {
        Freshness::Fresh { age_days } => {
            eprintln!("advisory snapshot {date} is {age_days} days old")
        }
        Freshness::Aging { age_days } => eprintln!(
            "warning: advisory snapshot {date} is {age_days} days old (over {}); refresh {}",
            snapshot::WARN_DAYS,
            db.display()
        ),
        Freshness::Stale { age_days } => bail!(
            "advisory snapshot {date} is {age_days} days old, over the {}-day limit: a stale \
             database passes everything. Refresh {}",
            snapshot::MAX_DAYS,
            db.display()
        ),
        Freshness::Future { days_ahead } => bail!(
            "advisory snapshot {date} is dated {days_ahead} days in the future; check the clock \
             and SNAPSHOT.txt"
        ),
    }

    // cargo-deny reads the database through git and resolves a relative `db-path` against the current
    // directory, so give each run its own scratch directory with a committed copy at that path.
    let scratch = Scratch::new()?;
    let copy = scratch.0.join("target/advisory-dbs").join(DB_DIR_NAME);
    copy_dir(db, &copy)?;
    for git_args in [
        &["init", "-q"][..],
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=rampart-audit",
            "-c",
            "user.email=audit@rampart.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "advisory snapshot",
        ][..],
    ] {
        let status = Command::new("git")
            .args(git_args)
            .current_dir(&copy)
            .status()
            .context("running git (needed to hand the snapshot to cargo-deny)")?;
        if !status.success() {
            bail!("git {} failed in {}", git_args.join(" "), copy.display());
        }
    }

    // `cargo metadata --offline` inside cargo-deny needs every crate on disk first.
    let status = Command::new(cargo())
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(manifest)
        .status()
        .context("running cargo fetch")?;
    if !status.success() {
        bail!("cargo fetch failed for {}", manifest.display());
    }

    let status = Command::new(cargo())
        .args([
            "deny",
            "--offline",
            "--locked",
            "--workspace",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--config")
        .arg(config)
        .args(["check", "--show-stats"])
        .current_dir(&scratch.0)
        .status()
        .context("running cargo deny (install it: cargo install --locked cargo-deny)")?;
    if status.success() {
        eprintln!("audit passed: {}", manifest.display());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("audit FAILED: {}", manifest.display());
        Ok(ExitCode::from(1))
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A temporary directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("rampart-audit-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
