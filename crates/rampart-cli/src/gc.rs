//! `rampart gc` and `rampart fsck`: storage hygiene on a data directory, safe while the server runs
//! (see `rampart_store::gc` for the protocol).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use rampart_store::SqliteMetadata;
use rampart_store::gc::GcOptions;

use crate::config::{ConfigArgs, parse_duration};
use crate::output;
use crate::serve::runtime;

/// Arguments of `rampart gc`.
#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Only report what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this (e.g. 1h, 30m, 0s) [default: gc.grace, 1h].
    #[arg(long, value_parser = |s: &str| parse_duration(s, true))]
    grace: Option<Duration>,
    /// Data directory [default: from the config, else ./rampart-data].
    #[arg(long, env = "RAMPART_DATA")]
    data: Option<PathBuf>,
    /// TOML configuration file (for `data` and `gc.grace`).
    #[arg(long, env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
}

/// Arguments of `rampart fsck`.
#[derive(Debug, Args)]
pub(crate) struct FsckArgs {
    /// Data directory [default: from the config, else ./rampart-data].
    #[arg(long, env = "RAMPART_DATA")]
    data: Option<PathBuf>,
    /// TOML configuration file (for `data`).
    #[arg(long, env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
}

async fn open_db(data: &Path) -> anyhow::Result<SqliteMetadata> {
    let db = data.join("meta.db");
    if !db.exists() {
        bail!(
            "{} is not a Rampart data directory (no meta.db)",
            data.display()
        );
    }
    SqliteMetadata::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))
}

pub(crate) fn gc(args: &GcArgs) -> anyhow::Result<ExitCode> {
    let config = ConfigArgs::data_only(args.config.clone(), args.data.clone()).load()?;
    let opts = GcOptions {
        grace: args.grace.unwrap_or(config.gc_grace),
        dry_run: args.dry_run,
    };
    runtime()?.block_on(async {
        let db = open_db(&config.data).await?;
        let report = rampart_store::gc::gc(&config.data, &db, opts).await;
        db.close().await;
        let report = report.context("garbage collection")?;
        let mut out = String::new();
        for (d, size) in &report.deleted {
            out.push_str(&format!(
                "{} {d} ({size} bytes)\n",
                if opts.dry_run {
                    "would delete"
                } else {
                    "deleted"
                }
            ));
        }
        output::stdout(out.as_bytes())?;
        output::info(&format!(
            "gc: {} blobs scanned, {} {} ({} bytes), {} unreferenced but younger than {}s kept",
            report.scanned,
            report.deleted.len(),
            if opts.dry_run {
                "would be deleted"
            } else {
                "deleted"
            },
            report.bytes(),
            report.young,
            opts.grace.as_secs()
        ));
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn fsck(args: &FsckArgs) -> anyhow::Result<ExitCode> {
    let config = ConfigArgs::data_only(args.config.clone(), args.data.clone()).load()?;
    runtime()?.block_on(async {
        let db = open_db(&config.data).await?;
        let report = rampart_store::gc::fsck(&config.data, &db).await;
        db.close().await;
        let report = report.context("consistency check")?;
        let mut out = String::new();
        for p in &report.problems {
            out.push_str(p);
            out.push('\n');
        }
        output::stdout(out.as_bytes())?;
        output::info(&format!(
            "fsck: {} blobs and {} references checked, {} problems",
            report.blobs,
            report.references,
            report.problems.len()
        ));
        Ok(if report.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
