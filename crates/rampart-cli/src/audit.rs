//! `rampart audit`: verify, query, prove and export the tamper-evident audit log of a data
//! directory, and compute the keyed hash an operator searches for.
//!
//! `log`, `prove`, `verify` and `export` also work against a running server (`--server URL`, or
//! `RAMPART_SERVER`) through its admin API, with an `auditor` or `admin` token on `**` read from
//! `--token-file` or `RAMPART_TOKEN`; their output is the same as from the data directory.
//! `verify` and `export` download the log (checkpoints, then records page by page) into a
//! temporary directory laid out as an audit directory and run the same code on it as locally;
//! remote `verify` requires `--key`, since a key served by the server under test proves nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use rampart_audit::layout::{Layout, load_audit_key, load_verifier_key};
use rampart_audit::tools::{self, Filter};
use rampart_audit::{Principal, Record, TlogProof, VerifierKey, audit_dir};

use crate::client::{self, Server};
use crate::output;
use crate::serve::runtime;

/// The token a remote `audit` command needs, as error messages name it.
const AUDITOR: &str = "an auditor or admin token on **";
/// Records asked for per page of `GET /api/v1/audit/records` (the server allows up to 10 000).
const PAGE: u64 = 1000;
/// Records asked for per page of `GET /api/v1/audit/entries` (the server's maximum).
const ENTRIES_PAGE: u64 = 10_000;
/// Longest checkpoint history accepted from a server (`GET /api/v1/audit/checkpoints`): a year of
/// a checkpoint every second is about 15 GB.
const MAX_HISTORY: u64 = 64 << 30;
/// Why remote verification needs `--key`.
const KEY_REQUIRED: &str = "audit verify --server needs --key VKEY: the verifier key must come \
     from somewhere the server cannot change (pin DATA/audit/verifier-key, or the answer of \
     GET /api/v1/audit/verifier-key, once, out of band); a server that rewrote its log and its \
     checkpoints would also serve a key that matches them";

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

/// A running server to ask instead of the data directory.
#[derive(Debug, Args)]
struct ServerArg {
    /// Ask this running server's admin API (e.g. http://127.0.0.1:5050) instead of reading the
    /// data directory (--data is then ignored). Plain HTTP is allowed to loopback addresses only.
    #[arg(long, env = "RAMPART_SERVER", value_name = "URL")]
    server: Option<String>,
    /// With --server: a file holding an auditor or admin token on `**`. Default: the
    /// RAMPART_TOKEN environment variable. There is deliberately no flag taking the token itself.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// With an https:// --server: the PEM certificate(s) to trust for it (its CA, or its
    /// self-signed certificate if that is not marked as a CA).
    #[arg(long, env = "RAMPART_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

impl ServerArg {
    /// The server and the token to use, or `None` to read the data directory.
    fn connect(&self) -> Result<Option<(Server, String)>> {
        let Some(url) = &self.server else {
            return Ok(None);
        };
        let server = Server::parse(url, self.ca_cert.as_deref())?;
        let secret = client::read_token(self.token_file.as_deref(), AUDITOR)?;
        Ok(Some((server, secret)))
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
    ///
    /// With --server, download a running server's log through its admin API (an auditor or admin
    /// token on `**`) into a temporary directory and verify that; --key is then required.
    Verify {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        server: ServerArg,
        /// A signed checkpoint saved earlier, outside the log; the log must still contain it.
        #[arg(long, value_name = "FILE")]
        trusted_checkpoint: Option<PathBuf>,
        /// The log's verifier key (`name+id+base64`), or a file containing it. Without it the key
        /// stored in the log directory is used, which an intruder could replace. Required with
        /// --server.
        #[arg(long, value_name = "VKEY")]
        key: Option<String>,
    },
    /// List records: who did what to which model, when. With --server, from a running server's
    /// admin API (an auditor or admin token on `**`), with the same filters and output.
    Log {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        server: ServerArg,
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
        /// Output format: aligned text (index, time, stage, action, principal(kind), source address
        /// — `CLIENT via PROXY` behind a trusted proxy —, repository:reference, digest, status,
        /// decision), or the stored canonical JSON lines.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// With --server: records asked for per request (tests use a small page to exercise
        /// paging). At least 2: every request adds a record to the log, and pages of one would
        /// chase an unfiltered listing's tail forever.
        #[arg(long, hide = true, default_value_t = PAGE, value_parser = clap::value_parser!(u64).range(2..=10_000))]
        page_size: u64,
    },
    /// Print a C2SP tlog-proof that record INDEX is in the tree of the latest signed checkpoint.
    /// With --server, ask a running server's admin API (an auditor or admin token on `**`).
    Prove {
        /// Record index.
        index: u64,
        /// Also write the record line the proof is for to this file (for `check-proof --record`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        server: ServerArg,
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
    /// Export the log: C2SP tlog-tiles (checkpoint, hash tiles, entry bundles) or JSONL. With
    /// --server, of a running server's log, downloaded through its admin API.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        server: ServerArg,
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
        /// The secret value (a token, say), or `-` to read it from the first line of standard input
        /// (keeps it out of `ps` and shell history).
        value: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Append records with concurrent writers until done or killed (crash tests; bench/audit.sh
    /// uses the library's example driver).
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
            server,
            trusted_checkpoint,
            key,
        } => {
            if server.server.is_some() && key.is_none() {
                bail!("{KEY_REQUIRED}");
            }
            let key = key.as_deref().map(parse_key).transpose()?;
            let trusted = trusted_checkpoint
                .as_deref()
                .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
                .transpose()?;
            match server.connect()? {
                None => verify(&data.existing_audit()?, trusted.as_deref(), key.as_ref()),
                Some((server, secret)) => {
                    let tmp = download_dir()?;
                    let n = runtime()?.block_on(download(&server, &secret, tmp.path()))?;
                    output::info(&format!(
                        "downloaded {n} records from {}",
                        server.authority()
                    ));
                    verify(tmp.path(), trusted.as_deref(), key.as_ref())
                }
            }
        }
        AuditCommand::Log {
            data,
            server,
            principal,
            action,
            repo,
            since,
            until,
            format,
            page_size,
        } => {
            let filter = Filter {
                principal: principal.clone(),
                action: action.clone(),
                repository: repo.clone(),
                since_ms: since.as_deref().map(Filter::parse_time).transpose()?,
                until_ms: until.as_deref().map(Filter::parse_time).transpose()?,
            };
            match server.connect()? {
                None => log(data, &filter, *format),
                Some((server, secret)) => {
                    let query = LogQuery {
                        principal: principal.as_deref(),
                        action: action.as_deref(),
                        repository: repo.as_deref(),
                        since: since.as_deref(),
                        until: until.as_deref(),
                        page_size: *page_size,
                    };
                    runtime()?.block_on(remote_log(&server, &secret, &query, *format))
                }
            }
        }
        AuditCommand::Prove {
            index,
            record,
            data,
            server,
        } => {
            let (proof, entry) = match server.connect()? {
                None => {
                    let dir = data.existing_audit()?;
                    let proof = tools::prove(&dir, *index)?.to_text();
                    let entry = match record {
                        Some(_) => tools::read_record_line(&dir, *index)?,
                        None => Vec::new(),
                    };
                    (proof, entry)
                }
                Some((server, secret)) => {
                    runtime()?.block_on(remote_prove(&server, &secret, *index))?
                }
            };
            if let Some(path) = record {
                let mut line = entry;
                line.push(b'\n');
                std::fs::write(path, line)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            output::stdout(proof.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::CheckProof {
            file,
            key,
            record,
            data,
        } => check_proof(file, key.as_deref(), record.as_deref(), data),
        AuditCommand::Export {
            data,
            server,
            tiles,
            jsonl,
        } => {
            // With --server, the log is downloaded first and exported from the copy.
            let tmp = match server.connect()? {
                None => None,
                Some((server, secret)) => {
                    let tmp = download_dir()?;
                    runtime()?.block_on(download(&server, &secret, tmp.path()))?;
                    Some(tmp)
                }
            };
            let dir = match &tmp {
                Some(t) => t.path().to_owned(),
                None => data.existing_audit()?,
            };
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
            let value = if value == "-" {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)
                    .context("reading the value from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                value.clone()
            };
            let line = format!("{} {}\n", key.id(), key.hash_secret(value.as_bytes()));
            output::stdout(line.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Bench {
            data,
            writers,
            records,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(async {
                let log = rampart_audit::AuditLog::open(
                    data.audit(),
                    rampart_audit::AuditConfig::default(),
                )?;
                let stats = rampart_audit::load::appends(&log, *writers, *records).await?;
                log.shutdown().await;
                output::stdout(format!("{stats}\n").as_bytes())?;
                Ok(ExitCode::SUCCESS)
            })
        }
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

fn verify(dir: &Path, trusted: Option<&[u8]>, key: Option<&VerifierKey>) -> Result<ExitCode> {
    let start = Instant::now();
    let report = rampart_audit::verify(dir, trusted, key)?;
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
    let source = match &r.proxy_ip {
        Some(proxy) => format!("{} via {proxy}", opt(&r.source_ip)),
        None => opt(&r.source_ip),
    };
    format!(
        "{:>8} {} {:<9} {:<8} {:<20} {:<15} {}:{} {} {} {}\n",
        r.seq,
        r.time,
        format!("{:?}", r.stage).to_lowercase(),
        r.action,
        p,
        source,
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

/// The filters of `audit log --server`, as given (the server parses the times).
struct LogQuery<'a> {
    principal: Option<&'a str>,
    action: Option<&'a str>,
    repository: Option<&'a str>,
    since: Option<&'a str>,
    until: Option<&'a str>,
    page_size: u64,
}

impl LogQuery<'_> {
    /// `/api/v1/audit/records?…` for the page after record `after`.
    fn path(&self, after: Option<u64>) -> String {
        let mut path = format!("/api/v1/audit/records?limit={}", self.page_size);
        for (k, v) in [
            ("principal", self.principal),
            ("action", self.action),
            ("repository", self.repository),
            ("since", self.since),
            ("until", self.until),
        ] {
            if let Some(v) = v {
                path.push_str(&format!("&{k}={}", client::query_value(v)));
            }
        }
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        path
    }
}

/// One page of `GET /api/v1/audit/records`.
#[derive(Debug, serde::Deserialize)]
struct RecordsPage {
    records: Vec<Record>,
    next_after: Option<u64>,
}

/// `audit log --server`: every page of matching records, printed as each arrives.
async fn remote_log(
    server: &Server,
    secret: &str,
    query: &LogQuery<'_>,
    format: Format,
) -> Result<ExitCode> {
    // A page of the longest records, with room for the envelope.
    let max_bytes = usize::try_from(query.page_size)?
        .saturating_mul(rampart_audit::record::MAX_LINE_LEN + 16)
        .saturating_add(4096);
    let mut after = None;
    loop {
        let reply = server.get(secret, &query.path(after), max_bytes).await?;
        if !reply.status.is_success() {
            return Err(reply.refused_needing(AUDITOR));
        }
        let page: RecordsPage = serde_json::from_value(reply.json()?)
            .context("the server's answer is not a page of audit records")?;
        let mut out = String::new();
        for r in &page.records {
            match format {
                Format::Text => out.push_str(&text_line(r)),
                Format::Json => {
                    out.push_str(&r.to_line()?);
                    out.push('\n');
                }
            }
        }
        output::stdout(out.as_bytes())?;
        match page.next_after {
            None => return Ok(ExitCode::SUCCESS),
            // Each page must move forward, or a confused server would keep us here forever.
            Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
            Some(next) => bail!("the server's paging does not advance (next_after {next})"),
        }
    }
}

/// A temporary directory for a downloaded log (removed when dropped).
fn download_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("rampart-audit-")
        .tempdir()
        .context("creating a temporary directory for the downloaded log")
}

/// GETs `path`, which must succeed, with at most `max` bytes of answer.
async fn fetch(server: &Server, secret: &str, path: &str, max: usize) -> Result<client::Reply> {
    let reply = server.get(secret, path, max).await?;
    if !reply.status.is_success() {
        return Err(reply.refused_needing(AUDITOR));
    }
    Ok(reply)
}

/// Downloads a server's audit log into `dir`, laid out as an audit directory
/// ([`tools::Mirror`]): first the latest checkpoint and the checkpoint history, then every record
/// up to the log's size at the first page (so every checkpoint fetched is covered), page by page
/// straight to disk. Returns the number of records.
///
/// Every request adds records to the log; the download stops at the size it chose rather than
/// chasing them (records that arrive meanwhile are kept if they come in the last page).
async fn download(server: &Server, secret: &str, dir: &Path) -> Result<u64> {
    // `latest` first: the server appends to the history before replacing `latest`, so a
    // checkpoint signed between the two requests is in the history fetched second.
    let reply = server
        .get(secret, "/api/v1/audit/checkpoint", client::MAX_RESPONSE)
        .await?;
    let mut latest = match reply.status {
        s if s.is_success() => reply.bytes().to_vec(),
        // No checkpoint signed yet (the history says whether one should have been).
        axum::http::StatusCode::NOT_FOUND => Vec::new(),
        _ => return Err(reply.refused_needing(AUDITOR)),
    };
    // The history goes straight to disk (it grows by a checkpoint a second while requests arrive).
    let mut mirror = tools::Mirror::create(dir)?;
    let history_path = mirror.layout().history();
    let mut history = std::fs::File::create(&history_path)
        .with_context(|| format!("creating {}", history_path.display()))?;
    let reply = server
        .get_to(
            secret,
            "/api/v1/audit/checkpoints",
            &mut history,
            MAX_HISTORY,
        )
        .await?;
    if !reply.status.is_success() {
        return Err(reply.refused_needing(AUDITOR));
    }
    drop(history);
    // A checkpoint signed between the two requests: `latest` moved on meanwhile, which is not
    // damage (a `latest` absent from the history is, and is left for the verifier to report).
    let notes = mirror.layout().read_history()?;
    if notes.iter().any(|n| n.as_bytes() == latest.as_slice())
        && let Some(last) = notes.last()
    {
        latest = last.as_bytes().to_vec();
    }
    drop(notes);

    let max_bytes = usize::try_from(ENTRIES_PAGE)?
        .saturating_mul(rampart_audit::record::MAX_LINE_LEN + 1)
        .min(client::MAX_RESPONSE);
    let mut target: Option<u64> = None;
    loop {
        let start = mirror.len();
        if target.is_some_and(|t| start >= t) {
            break;
        }
        let path = format!("/api/v1/audit/entries?start={start}&limit={ENTRIES_PAGE}");
        let reply = fetch(server, secret, &path, max_bytes).await?;
        let size = reply
            .header(AUDIT_SIZE)
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| {
                format!("the server's page of audit records lacks a valid {AUDIT_SIZE} header")
            })?;
        let t = *target.get_or_insert(size);
        let body = reply.bytes();
        if body.is_empty() && start >= t {
            break; // an empty log
        }
        if body.is_empty() {
            bail!("the server's audit log ended after {start} records, not the {t} it announced");
        }
        if body.last() != Some(&b'\n') {
            bail!("the server sent an audit record without its newline (after record {start})");
        }
        for line in body[..body.len() - 1].split(|&b| b == b'\n') {
            mirror.push(line)?;
        }
    }
    Ok(mirror.finish(&latest)?)
}

/// The header of `GET /api/v1/audit/entries` giving the log's size.
const AUDIT_SIZE: &str = "rampart-audit-size";

/// `audit prove --server`: the proof text and the record line it is for, from
/// `GET /api/v1/audit/proof/{index}`.
async fn remote_prove(server: &Server, secret: &str, index: u64) -> Result<(String, Vec<u8>)> {
    let reply = server
        .get(
            secret,
            &format!("/api/v1/audit/proof/{index}"),
            client::MAX_RESPONSE,
        )
        .await?;
    if !reply.status.is_success() {
        return Err(reply.refused_needing(AUDITOR));
    }
    let v = reply.json()?;
    let (Some(proof), Some(entry)) = (v["proof"].as_str(), v["entry"].as_str()) else {
        bail!("the server's answer lacks the proof or the record");
    };
    // What is printed must be a proof of INDEX that `check-proof` can read.
    let parsed = TlogProof::parse(proof.as_bytes()).context("the server sent a malformed proof")?;
    if parsed.index != index {
        bail!(
            "the server sent a proof for record {} instead of {index}",
            parsed.index
        );
    }
    Ok((proof.to_owned(), entry.as_bytes().to_vec()))
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
