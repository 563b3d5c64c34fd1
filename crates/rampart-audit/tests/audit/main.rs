//! Integration tests of `rampart-audit`: differential tests against independent implementations,
//! tamper detection, fault injection, crash recovery, tile export, and fuzz-corpus replay.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
mod crash;
mod deferred;
mod fault;
mod mirror;
mod oracle;
mod tamper;
mod tiles;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_audit::{AuditConfig, AuditLog, Principal, Record, Stage};

/// A small deterministic PRNG (xorshift64*), so failures reproduce from the printed seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(crate) fn sample_record(i: u64) -> Record {
    let mut r = Record::new(
        format!("req-{i:06}"),
        ["pull", "push", "delete", "login"][(i % 4) as usize],
    );
    r.stage = if i.is_multiple_of(3) {
        Stage::Received
    } else {
        Stage::Completed
    };
    r.principal = Some(Principal {
        id: format!("user{}", i % 5),
        kind: "token".into(),
        token_hash: Some(format!("{:064x}", i * 7919)),
        key_id: Some("hmac-00000000".into()),
    });
    r.source_ip = Some(format!("10.0.{}.{}", i % 256, (i / 256) % 256));
    r.repository = Some(format!("acme/model-{}", i % 7));
    r.reference = Some("v1".into());
    r.digest = Some(format!("sha256:{:064x}", i));
    r.decision = Some("allow".into());
    r.rule = Some("role:writer".into());
    r.status = Some(200);
    r.bytes = Some(i * 1000);
    r.duration_ms = Some(i % 100);
    r
}

pub(crate) fn config() -> AuditConfig {
    AuditConfig {
        origin: "test.example/audit".into(),
        timeout: Duration::from_secs(5),
        checkpoint_interval: Duration::from_millis(5),
        ..AuditConfig::default()
    }
}

/// Builds a log of `n` records in `dir` with several checkpoints and segments, and shuts it down
/// (so the latest checkpoint covers every record).
pub(crate) fn build_log(dir: &Path, n: u64, segment_max_bytes: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A checkpoint every ~30 ms: several per log, few enough that debug-build Ed25519
        // verification stays quick.
        let cfg = AuditConfig {
            segment_max_bytes,
            checkpoint_interval: Duration::from_millis(30),
            ..config()
        };
        let log = AuditLog::open(dir, cfg).unwrap();
        // Chunks of 50 records from 4 concurrent writers (so batches form), with a pause longer
        // than the checkpoint interval between chunks (so every chunk ends with a checkpoint).
        for chunk in (0..n).step_by(50) {
            let end = (chunk + 50).min(n);
            let mut handles = Vec::new();
            for w in 0..4u64 {
                let log = log.clone();
                handles.push(tokio::spawn(async move {
                    for i in (chunk + w..end).step_by(4) {
                        log.append(sample_record(i)).await.unwrap();
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(45)).await;
        }
        log.shutdown().await;
    });
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let dest: PathBuf = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
