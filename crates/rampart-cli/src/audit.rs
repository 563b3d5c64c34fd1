//! `rampart audit`: verify, query, prove and export the tamper-evident audit log of a data
//! directory, and compute the keyed hash an operator searches for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use rampart_audit::layout::{Layout, load_audit_key, load_verifier_key};
use rampart_audit::tools::{self, Filter};
use rampart_audit::{AuditConfig, AuditLog, Principal, Record, TlogProof, VerifierKey, audit_dir};

use crate::output;

/// Arguments of `rampart audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

/// The data directory (the audit log lives in `DATA/audit`).
#[derive(Debug, Args)]
struct DataArg {
    /// Data directory.
    #[arg(long, env = "RAMPART_DATA", default_value = "./rampart-data")]
    data: PathBuf,
}

impl DataArg {
    fn audit(&self) -> PathBuf {
        audit_dir(&self.data)
    }

    fn existing_audit(&self) -> Result<PathBuf> {
        let dir = self.audit();
        if !dir.is_dir() {
            bail!("no audit log at {}", dir.display());
        }
        Ok(dir)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Re-hash every record, check sequence numbers and times, recompute the Merkle root, and check
    /// every signed checkpoint and its consistency with the records (and with a trusted checkpoint
    /// kept elsewhere). Exits 1 naming the first bad index and the kind of damage.
    Verify {
        #[command(flatten)]
        data: DataArg,
        /// A signed checkpoint saved earlier, outside the log; the log must still contain it.
        #[arg(long, value_name = "FILE")]
        trusted_checkpoint: Option<PathBuf>,
        /// The log's verifier key (`name+id+base64`), or a file containing it. Without it the key
        /// stored in the log directory is used, which an intruder could replace.
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
    },
    /// List records: who did what to which model, when.
    Log {
        #[command(flatten)]
        data: DataArg,
        /// Only records of this principal id.
        #[arg(long)]
        principal: Option<String>,
        /// Only records of this action: blob.pull, blob.push, blob.delete, manifest.pull,
        /// manifest.push, manifest.delete, tags.list, referrers.list, registry.catalog, token.issue,
        /// admin.<resource>.<method>, ...
        #[arg(long)]
        action: Option<String>,
        /// Only records of this repository.
        #[arg(long)]
        repo: Option<String>,
        /// Only records at or after this time (RFC 3339, or a date).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339, or a date).
        #[arg(long)]
        until: Option<String>,
        /// Output format: aligned text, or the stored canonical JSON lines.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a C2SP tlog-proof that record INDEX is in the tree of the latest signed checkpoint.
    Prove {
        /// Record index.
        index: u64,
        #[command(flatten)]
        data: DataArg,
    },
    /// Check a tlog-proof offline: the checkpoint signature and the inclusion of the record (read
    /// from --record, or from the data directory).
    CheckProof {
        /// The proof file (`-` for stdin is not supported; pass a path).
        file: PathBuf,
        /// The log's verifier key, or a file containing it (default: the data directory's).
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
        /// A file holding the record line the proof is for.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
    },
    /// Export the log: C2SP tlog-tiles (checkpoint, hash tiles, entry bundles) or JSONL.
    Export {
        #[command(flatten)]
        data: DataArg,
        /// Write C2SP tlog-tiles into this directory.
        #[arg(
            long,
            value_name = "DIR",
            conflicts_with = "jsonl",
            required_unless_present = "jsonl"
        )]
        tiles: Option<PathBuf>,
        /// Write every record, one canonical JSON object per line, to this file.
        #[arg(long, value_name = "FILE")]
        jsonl: Option<PathBuf>,
    },
    /// Print HMAC-SHA256(audit key, VALUE) and the key id: what records carry instead of a secret.
    Hash {
        /// The secret value (a token, say).
        value: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Measure durable appends with concurrent writers (used by bench/audit.sh).
    #[command(hide = true)]
    Bench {
        #[command(flatten)]
        data: DataArg,
        /// Concurrent writers.
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Records to append in total.
        #[arg(long, default_value_t = 200_000)]
        records: u64,
    },
}

/// Runs `rampart audit`.
pub(crate) fn run(args: &AuditArgs) -> Result<ExitCode> {
    match &args.command {
        AuditCommand::Verify {
            data,
            trusted_checkpoint,
            key,
        } => verify(data, trusted_checkpoint.as_deref(), key.as_deref()),
        AuditCommand::Log {
            data,
            principal,
            action,
            repo,
            since,
            until,
            format,
        } => {
            let filter = Filter {
                principal: principal.clone(),
                action: action.clone(),
                repository: repo.clone(),
                since_ms: since.as_deref().map(Filter::parse_time).transpose()?,
                until_ms: until.as_deref().map(Filter::parse_time).transpose()?,
            };
            log(data, &filter, *format)
        }
        AuditCommand::Prove { index, data } => {
            let proof = tools::prove(&data.existing_audit()?, *index)?;
            output::stdout(proof.to_text().as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::CheckProof {
            file,
            key,
            record,
            data,
        } => check_proof(file, key.as_deref(), record.as_deref(), data),
        AuditCommand::Export { data, tiles, jsonl } => {
            let dir = data.existing_audit()?;
            if let Some(out) = tiles {
                let n = tools::export_tiles(&dir, out)?;
                output::info(&format!(
                    "exported {n} records as tiles to {}",
                    out.display()
                ));
            } else if let Some(out) = jsonl {
                let n = tools::export_jsonl(&dir, out)?;
                output::info(&format!("exported {n} records to {}", out.display()));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Hash { value, data } => {
            let key = load_audit_key(&Layout::new(data.existing_audit()?))?;
            let line = format!("{} {}\n", key.id(), key.hash_secret(value.as_bytes()));
            output::stdout(line.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Bench {
            data,
            writers,
            records,
        } => bench(data, *writers, *records),
    }
}

/// A verifier key given inline or as a file.
fn parse_key(arg: &str) -> Result<VerifierKey> {
    if let Ok(k) = arg.parse::<VerifierKey>() {
        return Ok(k);
    }
    let text = std::fs::read_to_string(arg)
        .with_context(|| format!("--key {arg:?} is neither a verifier key nor a readable file"))?;
    text.trim()
        .parse()
        .with_context(|| format!("reading the verifier key in {arg}"))
}

fn verify(data: &DataArg, trusted: Option<&Path>, key: Option<&str>) -> Result<ExitCode> {
    let dir = data.existing_audit()?;
    let key = key.map(parse_key).transpose()?;
    let trusted = trusted
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let start = Instant::now();
    let report = rampart_audit::verify(&dir, trusted.as_deref(), key.as_ref())?;
    let took = start.elapsed();
    for w in &report.warnings {
        output::info(&format!("warning: {w}"));
    }
    match &report.failure {
        None => {
            let latest = report
                .latest
                .as_ref()
                .map_or("none".to_owned(), |c| c.size.to_string());
            output::info(&format!(
                "audit log OK: {} records, {} checkpoints checked, latest signed size {latest} ({:.2} s)",
                report.records,
                report.checkpoints,
                took.as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            output::info(&format!(
                "audit log DAMAGED: first bad index {}: {} ({})",
                f.index, f.kind, f.detail
            ));
            Ok(ExitCode::from(1))
        }
    }
}

fn text_line(r: &Record) -> String {
    let p = r
        .principal
        .as_ref()
        .map_or("-".to_owned(), |p: &Principal| {
            format!("{}({})", p.id, p.kind)
        });
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    format!(
        "{:>8} {} {:<9} {:<8} {:<20} {}:{} {} {} {}\n",
        r.seq,
        r.time,
        format!("{:?}", r.stage).to_lowercase(),
        r.action,
        p,
        opt(&r.repository),
        opt(&r.reference),
        opt(&r.digest),
        r.status.map_or("-".into(), |s| s.to_string()),
        opt(&r.decision),
    )
}

fn log(data: &DataArg, filter: &Filter, format: Format) -> Result<ExitCode> {
    let dir = data.existing_audit()?;
    let mut out = String::new();
    let mut io_err = None;
    tools::query(&dir, filter, |r| {
        match format {
            Format::Text => out.push_str(&text_line(r)),
            Format::Json => match r.to_line() {
                Ok(l) => {
                    out.push_str(&l);
                    out.push('\n');
                }
                Err(e) => io_err = Some(e),
            },
        }
        if out.len() > 1 << 20 {
            if let Err(e) = output::stdout(out.as_bytes()) {
                io_err.get_or_insert(rampart_audit::Error::Invalid(e.to_string()));
            }
            out.clear();
        }
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    output::stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn check_proof(
    file: &Path,
    key: Option<&str>,
    record: Option<&Path>,
    data: &DataArg,
) -> Result<ExitCode> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let proof = TlogProof::parse(&text)?;
    let key = match key {
        Some(k) => parse_key(k)?,
        None => load_verifier_key(&Layout::new(data.existing_audit()?))?,
    };
    let entry = match record {
        Some(p) => {
            let mut b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            if b.last() == Some(&b'\n') {
                b.pop();
            }
            b
        }
        None => tools::read_record_line(&data.existing_audit()?, proof.index)?,
    };
    match proof.check(&entry, std::slice::from_ref(&key)) {
        Ok(cp) => {
            output::info(&format!(
                "proof OK: record {} is in the tree of size {} signed by {}",
                proof.index,
                cp.size,
                key.name()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            output::info(&format!("proof FAILED: {e}"));
            Ok(ExitCode::from(1))
        }
    }
}

fn bench(data: &DataArg, writers: usize, records: u64) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let log = AuditLog::open(data.audit(), AuditConfig::default())?;
        let before = log.size();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..writers.max(1) {
            let log = log.clone();
            let next = next.clone();
            let key = log.audit_key().clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= records {
                        break;
                    }
                    let rec = bench_record(i, &key);
                    let t = Instant::now();
                    log.append(rec).await?;
                    lat.push(t.elapsed());
                }
                Ok::<_, rampart_audit::Error>(lat)
            }));
        }
        let mut lat: Vec<Duration> = Vec::new();
        for t in tasks {
            lat.extend(t.await.context("bench task")??);
        }
        let took = start.elapsed();
        let counters = log.counters();
        log.shutdown().await;
        lat.sort_unstable();
        let pct = |p: f64| {
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        output::stdout(
            format!(
                "records {} writers {} seconds {:.2} records_per_s {:.0} p50_ms {:.2} p99_ms {:.2} max_ms {:.2} batches {} avg_batch {:.1} log_size {}\n",
                lat.len(),
                writers,
                took.as_secs_f64(),
                lat.len() as f64 / took.as_secs_f64(),
                pct(0.5),
                pct(0.99),
                pct(1.0),
                counters.batches,
                lat.len() as f64 / counters.batches.max(1) as f64,
                before + lat.len() as u64,
            )
            .as_bytes(),
        )?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A realistic record (~330 bytes), as the server would write for a pull.
fn bench_record(i: u64, key: &rampart_audit::AuditKey) -> Record {
    let mut r = Record::new(format!("01JD{i:022}"), "pull");
    r.principal = Some(Principal {
        id: format!("ci-bot-{}", i % 17),
        kind: "token".into(),
        token_hash: Some(key.hash_secret(format!("token-{}", i % 17).as_bytes())),
        key_id: Some(key.id().to_owned()),
    });
    r.source_ip = Some(format!("10.1.{}.{}", (i >> 8) % 256, i % 256));
    r.repository = Some(format!("acme/llama-{}", i % 9));
    r.reference = Some("v1.0".into());
    r.digest = Some(format!(
        "sha256:{:064x}",
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    ));
    r.decision = Some("allow".into());
    r.rule = Some("role:reader".into());
    r.status = Some(200);
    r.bytes = Some(1 << 20);
    r.duration_ms = Some(i % 50);
    r
}
