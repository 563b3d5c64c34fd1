//! Benchmark driver for `bench/audit.sh`, built from this crate alone (so it needs nothing else of
//! the workspace to compile):
//!
//! - `audit_bench append DIR WRITERS RECORDS`: durable appends through `AuditLog` with WRITERS
//!   concurrent tasks; prints records/s and acknowledgement latency percentiles.
//! - `audit_bench verify DIR`: `rampart_audit::verify` of the log (the code `rampart audit verify`
//!   runs); prints the record count and the time.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use rampart_audit::{AuditConfig, AuditLog, Error};

async fn append(dir: &str, writers: usize, records: u64) -> Result<String, Error> {
    let log = AuditLog::open(dir, AuditConfig::default())?;
    let stats = rampart_audit::load::appends(&log, writers, records).await?;
    log.shutdown().await;
    Ok(stats.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("append") if args.len() == 5 => {
            let (Ok(w), Ok(n)) = (args[3].parse(), args[4].parse()) else {
                return ExitCode::from(2);
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))
                .and_then(|rt| rt.block_on(append(&args[2], w, n)))
        }
        Some("verify") if args.len() == 3 => {
            let start = Instant::now();
            rampart_audit::verify(std::path::Path::new(&args[2]), None, None).map(|r| {
                format!(
                    "verify: records {} ok {} seconds {:.3}",
                    r.records,
                    r.ok(),
                    start.elapsed().as_secs_f64()
                )
            })
        }
        _ => Err(Error::Invalid(
            "usage: audit_bench append DIR WRITERS RECORDS | verify DIR".into(),
        )),
    };
    let mut out = std::io::stdout().lock();
    match result {
        Ok(line) => {
            let _ = writeln!(out, "{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {e}");
            ExitCode::from(2)
        }
    }
}
