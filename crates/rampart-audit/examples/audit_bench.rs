//! Benchmark driver for `bench/audit.sh`, built from this crate alone (so it needs nothing else of
//! the workspace to compile):
//!
//! - `audit_bench append DIR WRITERS RECORDS`: durable appends through `AuditLog` with WRITERS
//!   concurrent tasks; prints records/s and acknowledgement latency percentiles.
//! - `audit_bench verify DIR`: `rampart_audit::verify` of the log (the code `rampart audit verify`
//!   runs); prints the record count and the time.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_audit::{AuditConfig, AuditKey, AuditLog, Error, Principal, Record};

fn record(i: u64, key: &AuditKey) -> Record {
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

async fn append(dir: &str, writers: usize, records: u64) -> Result<String, Error> {
    let log = AuditLog::open(dir, AuditConfig::default())?;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers.max(1) {
        let log = log.clone();
        let next = next.clone();
        let key = log.audit_key().clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= records {
                    break;
                }
                let rec = record(i, &key);
                let t = Instant::now();
                log.append(rec).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| Error::Invalid(e.to_string()))??);
    }
    let took = start.elapsed();
    let c = log.counters();
    log.shutdown().await;
    lat.sort_unstable();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(format!(
        "append: records {} writers {writers} seconds {:.2} records_per_s {:.0} p50_ms {:.2} p99_ms {:.2} max_ms {:.2} batches {} avg_batch {:.1} checkpoints {}",
        lat.len(),
        took.as_secs_f64(),
        lat.len() as f64 / took.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        c.batches,
        lat.len() as f64 / c.batches.max(1) as f64,
        c.checkpoints,
    ))
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
