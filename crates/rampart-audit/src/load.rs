//! Load generation for benchmarks and crash tests (`bench/audit.sh`, the hidden `rampart audit bench`):
//! concurrent durable appends of realistic records, with acknowledgement latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{AuditKey, AuditLog, Error, Principal, Record};

/// A realistic record (~500 bytes), as the server writes for a pull; `i` varies its fields.
#[must_use]
pub fn sample_record(i: u64, key: &AuditKey) -> Record {
    let mut r = Record::new(format!("01JD{i:022}"), "blob.pull");
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
    r.rule = Some("role reader on acme/**".into());
    r.status = Some(200);
    r.bytes = Some(1 << 20);
    r.duration_ms = Some(i % 50);
    r
}

/// What [`appends`] measured.
#[derive(Debug, Clone)]
pub struct AppendStats {
    /// Concurrent writers.
    pub writers: usize,
    /// Acknowledged appends.
    pub records: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Acknowledgement latencies, sorted.
    pub latencies: Vec<Duration>,
    /// Group commits.
    pub batches: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
}

impl AppendStats {
    /// The latency at quantile `p` (0..=1), in milliseconds.
    #[must_use]
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        let i = ((n.saturating_sub(1)) as f64 * p).round() as usize;
        self.latencies
            .get(i)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

impl std::fmt::Display for AppendStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "append: records {} writers {} seconds {:.2} records_per_s {:.0} p50_ms {:.2} p99_ms {:.2} max_ms {:.2} batches {} avg_batch {:.1} checkpoints {}",
            self.records,
            self.writers,
            secs,
            self.records as f64 / secs.max(f64::MIN_POSITIVE),
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            self.batches,
            self.records as f64 / self.batches.max(1) as f64,
            self.checkpoints,
        )
    }
}

/// Appends `records` [`sample_record`]s to `log` from `writers` concurrent tasks, each waiting for
/// durability before its next append. Must run inside a multi-threaded Tokio runtime.
///
/// # Errors
/// The first append that failed.
pub async fn appends(log: &AuditLog, writers: usize, records: u64) -> Result<AppendStats, Error> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let before = log.counters();
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
                let rec = sample_record(i, &key);
                let t = Instant::now();
                log.append(rec).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| Error::Invalid(e.to_string()))??);
    }
    let elapsed = start.elapsed();
    let after = log.counters();
    latencies.sort_unstable();
    Ok(AppendStats {
        writers: writers.max(1),
        records: latencies.len() as u64,
        elapsed,
        latencies,
        batches: after.batches - before.batches,
        checkpoints: after.checkpoints - before.checkpoints,
    })
}
