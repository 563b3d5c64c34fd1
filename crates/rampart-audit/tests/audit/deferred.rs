//! Deferred records (`AuditLog::defer`): written at once in arrival order, flushed with the next
//! ordinary record (or a tick, or shutdown), never covered by a checkpoint before they are durable.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_audit::{
    AuditConfig, AuditLog, Error, FileStorage, Record, Storage, Unavailable, tools, verify,
};

use crate::{config, sample_record};

/// Checks the write-ahead order: a checkpoint is written only when every byte appended to the
/// segment has been synced, and counts syncs.
#[derive(Debug)]
struct Ordered {
    inner: FileStorage,
    unsynced: Arc<AtomicU64>,
    syncs: Arc<AtomicU64>,
    violated: Arc<AtomicBool>,
    fail_sync: Arc<AtomicBool>,
    sync_delay_ms: Arc<AtomicU64>,
    fail_hashes: Arc<AtomicBool>,
}

impl Storage for Ordered {
    fn append_segment(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.unsynced
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        self.inner.append_segment(bytes)
    }

    fn sync_segment(&mut self) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        std::thread::sleep(Duration::from_millis(
            self.sync_delay_ms.load(Ordering::SeqCst),
        ));
        self.inner.sync_segment()?;
        self.unsynced.store(0, Ordering::SeqCst);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn rotate(&mut self, n: u32) -> io::Result<()> {
        if self.unsynced.load(Ordering::SeqCst) != 0 {
            self.violated.store(true, Ordering::SeqCst);
        }
        self.inner.rotate(n)
    }

    fn append_hashes(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.fail_hashes.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.inner.append_hashes(bytes)
    }

    fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()> {
        if self.unsynced.load(Ordering::SeqCst) != 0 {
            self.violated.store(true, Ordering::SeqCst);
        }
        self.inner.write_checkpoint(note)
    }
}

#[derive(Debug, Default, Clone)]
struct Probes {
    unsynced: Arc<AtomicU64>,
    syncs: Arc<AtomicU64>,
    violated: Arc<AtomicBool>,
    fail_sync: Arc<AtomicBool>,
    sync_delay_ms: Arc<AtomicU64>,
    fail_hashes: Arc<AtomicBool>,
}

fn open(dir: &std::path::Path, cfg: AuditConfig, p: &Probes) -> AuditLog {
    let p = p.clone();
    AuditLog::open_with_storage(dir, cfg, move |fs| {
        Box::new(Ordered {
            inner: fs,
            unsynced: p.unsynced,
            syncs: p.syncs,
            violated: p.violated,
            fail_sync: p.fail_sync,
            sync_delay_ms: p.sync_delay_ms,
            fail_hashes: p.fail_hashes,
        })
    })
    .unwrap()
}

/// No tick during the test: only the next ordinary record (or shutdown) flushes.
fn slow_ticks() -> AuditConfig {
    AuditConfig {
        checkpoint_interval: Duration::from_secs(600),
        ..config()
    }
}

fn id_at(dir: &std::path::Path, i: u64) -> String {
    let line = tools::read_record_line(dir, i).unwrap();
    Record::parse_line(&line).unwrap().audit_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_record_is_flushed_with_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let log = open(dir.path(), slow_ticks(), &p);
    // The log's first records are signed at once: one flush and one checkpoint to start with.
    let first = log.append(sample_record(0)).await.unwrap();
    assert_eq!(first, 0);
    let syncs = p.syncs.load(Ordering::SeqCst);
    let batches = log.counters().batches;
    for k in 0..20u64 {
        let received = log.defer(sample_record(1 + 2 * k)).await.unwrap();
        // Not durable on its own: nothing flushes it until the next ordinary record.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(log.size(), 1 + 2 * k, "a deferred record was flushed alone");
        let completed = log.append(sample_record(2 + 2 * k)).await.unwrap();
        assert_eq!(received.durable().await.unwrap(), 1 + 2 * k);
        assert_eq!(completed, 2 + 2 * k);
    }
    // One flush per pair, not two.
    assert_eq!(p.syncs.load(Ordering::SeqCst) - syncs, 20);
    assert_eq!(log.counters().batches - batches, 20);
    assert_eq!(log.counters().appended, 41);
    log.shutdown().await;
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "a checkpoint covered an unflushed record"
    );
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    for i in 0..41 {
        assert_eq!(id_at(dir.path(), i), sample_record(i).audit_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_deferred_record_is_flushed_by_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let cfg = AuditConfig {
        checkpoint_interval: Duration::from_millis(50),
        ..config()
    };
    let log = open(dir.path(), cfg, &p);
    let start = Instant::now();
    let received = log.defer(sample_record(0)).await.unwrap();
    assert_eq!(received.durable().await.unwrap(), 0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // The tick signs a checkpoint too, but only after the flush.
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.counters().checkpoints == 0 {
        assert!(Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.shutdown().await;
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "a checkpoint covered an unflushed record"
    );
    assert!(verify(dir.path(), None, None).unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_deferred_records_before_the_final_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let log = open(dir.path(), slow_ticks(), &p);
    log.append(sample_record(0)).await.unwrap();
    let a = log.defer(sample_record(1)).await.unwrap();
    let b = log.defer(sample_record(2)).await.unwrap();
    log.shutdown().await;
    assert_eq!(a.durable().await.unwrap(), 1);
    assert_eq!(b.durable().await.unwrap(), 2);
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "a checkpoint covered an unflushed record"
    );
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_fails_the_deferred_records_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let log = open(dir.path(), slow_ticks(), &p);
    log.append(sample_record(0)).await.unwrap();
    let received = log.defer(sample_record(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    p.fail_sync.store(true, Ordering::SeqCst);
    let r = log.append(sample_record(2)).await;
    assert!(
        matches!(r, Err(Error::Unavailable(Unavailable::WriteFailed))),
        "{r:?}"
    );
    let r = received.durable().await;
    assert!(
        matches!(r, Err(Error::Unavailable(Unavailable::WriteFailed))),
        "{r:?}"
    );
    // Poisoned: deferring fails at once as appending does.
    let r = log.defer(sample_record(3)).await;
    assert!(
        matches!(r, Err(Error::Unavailable(Unavailable::Poisoned))),
        "{r:?}"
    );
    assert!(!log.is_healthy());
    log.shutdown().await;
}

/// Deferred records among concurrent appends, across segment rotations: every acknowledged record
/// is where its index says, and no checkpoint or rotation ever left a deferred record unflushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_and_ordinary_records_interleave_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let cfg = AuditConfig {
        segment_max_bytes: 8 * 1024,
        ..config()
    };
    let log = open(dir.path(), cfg, &p);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..40u64 {
                let n = (t * 40 + k) * 2;
                let rec = sample_record(n);
                let id = rec.audit_id.clone();
                let received = log.defer(rec).await.unwrap();
                let rec2 = sample_record(n + 1);
                let id2 = rec2.audit_id.clone();
                let i2 = log.append(rec2).await.unwrap();
                let i = received.durable().await.unwrap();
                assert!(i < i2, "the deferred record must precede the next one");
                acked.lock().unwrap().extend([(i, id), (i2, id2)]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    log.shutdown().await;
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "a checkpoint or rotation left records unflushed"
    );
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, 640);
    let segments = std::fs::read_dir(rampart_audit::layout::Layout::new(dir.path()).segments())
        .unwrap()
        .count();
    assert!(segments > 2, "no rotation: {segments} segments");
    for (i, id) in acked.lock().unwrap().iter() {
        assert_eq!(&id_at(dir.path(), *i), id);
    }
}

/// A rotation while deferred records wait flushes them in the old segment first: otherwise they
/// would be acknowledged after a flush of the new segment only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_flushes_the_deferred_records_of_the_old_segment() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let cfg = AuditConfig {
        // Every batch goes to a new segment.
        segment_max_bytes: 1,
        ..slow_ticks()
    };
    let log = open(dir.path(), cfg, &p);
    log.append(sample_record(0)).await.unwrap();
    let mut waiting = Vec::new();
    for i in 1..=3 {
        waiting.push(log.defer(sample_record(i)).await.unwrap());
        // Separate batches.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log.append(sample_record(4)).await.unwrap();
    for (i, w) in (1..).zip(waiting) {
        assert_eq!(w.durable().await.unwrap(), i);
    }
    log.shutdown().await;
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "rotated away from unflushed records"
    );
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, 5);
}

/// A deferred record is written even when its caller is gone (a dropped connection drops the
/// request's future): the step it announces may already have started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_deferred_record_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let log = open(dir.path(), slow_ticks(), &p);
    log.append(sample_record(0)).await.unwrap();
    // Keep the writer busy in a flush while the deferred record is queued and dropped.
    p.sync_delay_ms.store(150, Ordering::SeqCst);
    let busy = {
        let log = log.clone();
        tokio::spawn(async move { log.append(sample_record(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.sync_delay_ms.store(0, Ordering::SeqCst);
    drop(log.defer(sample_record(2)).await.unwrap());
    assert_eq!(busy.await.unwrap().unwrap(), 1);
    assert_eq!(log.append(sample_record(3)).await.unwrap(), 3);
    log.shutdown().await;
    for i in 0..4 {
        assert_eq!(id_at(dir.path(), i), sample_record(i).audit_id);
    }
}

/// Reopening a log (after a crash, records may be in the page cache only) syncs the current
/// segment before anything is signed over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_syncs_the_recovered_segment_before_signing() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), slow_ticks()).unwrap();
    log.append(sample_record(0)).await.unwrap();
    let _ = log.defer(sample_record(1)).await.unwrap();
    log.shutdown().await;
    let p = Probes::default();
    // A crash may leave the recovered bytes unsynced; pretend they are: the probe counts syncs
    // from 0, and flags a checkpoint written while `unsynced` is non-zero.
    p.unsynced.store(1, Ordering::SeqCst);
    let log = open(dir.path(), slow_ticks(), &p);
    assert!(p.syncs.load(Ordering::SeqCst) >= 1, "no sync on open");
    assert_eq!(log.size(), 2);
    log.shutdown().await;
    assert!(
        !p.violated.load(Ordering::SeqCst),
        "signed before syncing the recovered segment"
    );
    assert!(verify(dir.path(), None, None).unwrap().ok());
}

/// A poisoned log writes nothing more, even mid-commit: when acknowledging the records flushed
/// before a rotation fails to extend the hash file, the batch that caused the rotation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoning_during_a_rotation_stops_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = Probes::default();
    let cfg = AuditConfig {
        segment_max_bytes: 1,
        ..slow_ticks()
    };
    let log = open(dir.path(), cfg, &p);
    log.append(sample_record(0)).await.unwrap();
    let first = log.defer(sample_record(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.fail_hashes.store(true, Ordering::SeqCst);
    let second = log.defer(sample_record(2)).await.unwrap();
    // The first was synced before the rotation: durable, acknowledged.
    assert_eq!(first.durable().await.unwrap(), 1);
    let r = second.durable().await;
    assert!(
        matches!(r, Err(Error::Unavailable(_))),
        "a record was accepted after the log was poisoned: {r:?}"
    );
    assert!(!log.is_healthy());
    log.shutdown().await;
    // Nothing of the refused record reached a segment.
    let layout = rampart_audit::layout::Layout::new(dir.path());
    for n in layout.segment_numbers().unwrap() {
        let text = std::fs::read_to_string(layout.segment(n)).unwrap();
        assert!(!text.contains(&sample_record(2).audit_id), "segment {n}");
    }
}
