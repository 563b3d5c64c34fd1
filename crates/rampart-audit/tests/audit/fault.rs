//! Fault injection: the storage fails, stalls or returns EIO at random under concurrent appends.
//! Every acknowledged record must be durable and the log must verify; a stall must surface as
//! `Unavailable` within the timeout; a poisoned log stays poisoned.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_audit::{
    AuditConfig, AuditLog, Error, FileStorage, Record, Storage, Unavailable, tools, verify,
};

use crate::{Rng, config, sample_record};

const TOTAL: u64 = 1000;
const TIMEOUT: Duration = Duration::from_millis(150);
const STALL: Duration = Duration::from_millis(400);

#[derive(Debug, Default, Clone, Copy)]
struct Injected {
    write_eio: u64,
    half_write: u64,
    sync_eio: u64,
    stalls: u64,
}

#[derive(Debug)]
struct Ctl {
    rng: Rng,
    calls: u64,
    /// Force this fault on the 3rd segment call of the round.
    forced: u8,
    injected: Injected,
}

#[derive(Debug)]
struct Faulty {
    inner: FileStorage,
    ctl: Arc<Mutex<Ctl>>,
    /// The first sync is the one `AuditLog::open` makes of the recovered segment: faults are
    /// injected once the log is open.
    opened: bool,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl Faulty {
    /// 0 ok, 1 fail, 2 half-write / sync fail, 3 stall.
    fn roll(&self) -> u8 {
        let mut c = self.ctl.lock().unwrap();
        c.calls += 1;
        if c.calls == 3 && c.forced != 0 {
            return c.forced;
        }
        match c.rng.below(100) {
            0..=1 => 1,
            2..=3 => 2,
            4..=6 => 3,
            _ => 0,
        }
    }
}

impl Storage for Faulty {
    fn append_segment(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.roll() {
            1 => {
                self.ctl.lock().unwrap().injected.write_eio += 1;
                Err(eio())
            }
            2 => {
                self.ctl.lock().unwrap().injected.half_write += 1;
                self.inner.append_segment(&bytes[..bytes.len() / 2])?;
                Err(eio())
            }
            3 => {
                self.ctl.lock().unwrap().injected.stalls += 1;
                std::thread::sleep(STALL);
                self.inner.append_segment(bytes)
            }
            _ => self.inner.append_segment(bytes),
        }
    }

    fn sync_segment(&mut self) -> io::Result<()> {
        if !self.opened {
            self.opened = true;
            return self.inner.sync_segment();
        }
        match self.roll() {
            1 | 2 => {
                self.ctl.lock().unwrap().injected.sync_eio += 1;
                Err(eio())
            }
            3 => {
                self.ctl.lock().unwrap().injected.stalls += 1;
                std::thread::sleep(STALL);
                self.inner.sync_segment()
            }
            _ => self.inner.sync_segment(),
        }
    }

    fn rotate(&mut self, n: u32) -> io::Result<()> {
        self.inner.rotate(n)
    }

    fn append_hashes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.append_hashes(bytes)
    }

    fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()> {
        self.inner.write_checkpoint(note)
    }
}

fn cfg() -> AuditConfig {
    AuditConfig {
        timeout: TIMEOUT,
        segment_max_bytes: 64 * 1024,
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_random_failures_stalls_and_eio() {
    let dir = tempfile::tempdir().unwrap();
    let issued = Arc::new(AtomicU64::new(0));
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut totals = Injected::default();
    let mut timeouts = 0;
    let mut poisoned_rounds = 0;
    let mut round = 0u64;
    while issued.load(Ordering::SeqCst) < TOTAL {
        round += 1;
        assert!(round < 200, "no progress");
        // Rounds 1-3 force a stall, a half write and a sync EIO; later rounds are random.
        let forced = match round {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => 0,
        };
        let ctl = Arc::new(Mutex::new(Ctl {
            rng: Rng::new(0xfa17 + round),
            calls: 0,
            forced,
            injected: Injected::default(),
        }));
        let c2 = ctl.clone();
        let log = AuditLog::open_with_storage(dir.path(), cfg(), move |fs| {
            Box::new(Faulty {
                inner: fs,
                ctl: c2,
                opened: false,
            })
        })
        .unwrap();
        assert!(log.is_healthy());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let log = log.clone();
            let issued = issued.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let k = issued.fetch_add(1, Ordering::SeqCst);
                    if k >= TOTAL {
                        break;
                    }
                    let rec = sample_record(k);
                    let id = rec.audit_id.clone();
                    let start = Instant::now();
                    let r = log.append(rec).await;
                    let stop = matches!(
                        r,
                        Err(Error::Unavailable(
                            Unavailable::Poisoned | Unavailable::WriteFailed
                        ))
                    );
                    let backoff = matches!(
                        r,
                        Err(Error::Unavailable(
                            Unavailable::Stalled | Unavailable::Timeout
                        ))
                    );
                    out.push((id, r, start.elapsed()));
                    if stop {
                        break;
                    }
                    if backoff {
                        // A client that got 503 does not hammer the server.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                out
            }));
        }
        let mut poisoned = false;
        for t in tasks {
            for (id, r, elapsed) in t.await.unwrap() {
                match r {
                    Ok(i) => acked.push((i, id)),
                    Err(Error::Unavailable(Unavailable::Timeout)) => {
                        timeouts += 1;
                        assert!(elapsed >= TIMEOUT, "timed out early: {elapsed:?}");
                        assert!(
                            elapsed < TIMEOUT + Duration::from_millis(500),
                            "a stall took {elapsed:?} to surface"
                        );
                    }
                    Err(Error::Unavailable(Unavailable::Stalled)) => {
                        assert!(
                            elapsed < Duration::from_millis(100),
                            "stalled fail-fast took {elapsed:?}"
                        );
                    }
                    Err(Error::Unavailable(Unavailable::Poisoned | Unavailable::WriteFailed)) => {
                        poisoned = true;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }
        if poisoned {
            poisoned_rounds += 1;
            // Poisoned stays poisoned: no retry, every append fails fast, readiness is down.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!log.is_healthy());
            for _ in 0..3 {
                let start = Instant::now();
                let r = log.append(Record::new("after-poison", "pull")).await;
                assert!(
                    matches!(r, Err(Error::Unavailable(Unavailable::Poisoned))),
                    "{r:?}"
                );
                assert!(start.elapsed() < Duration::from_millis(50));
            }
            assert!(log.counters().failures > 0);
        }
        log.shutdown().await;
        let inj = ctl.lock().unwrap().injected;
        totals.write_eio += inj.write_eio;
        totals.half_write += inj.half_write;
        totals.sync_eio += inj.sync_eio;
        totals.stalls += inj.stalls;
    }
    assert!(
        totals.stalls > 0 && totals.half_write > 0 && totals.sync_eio > 0,
        "{totals:?}"
    );
    assert!(timeouts > 0, "no stall surfaced as a timeout");
    assert!(poisoned_rounds >= 2);
    assert!(acked.len() > 100, "too few acknowledged: {}", acked.len());

    // Restart cleanly: recovery removes torn tails, the log verifies, and every acknowledged
    // record is at its index.
    let log = AuditLog::open(dir.path(), cfg()).unwrap();
    log.shutdown().await;
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    for (i, id) in &acked {
        let line = tools::read_record_line(dir.path(), *i).unwrap();
        let r = Record::parse_line(&line).unwrap();
        assert_eq!(&r.audit_id, id, "acknowledged record {i} lost or replaced");
        assert_eq!(r.seq, *i);
    }
    let mut idx: Vec<u64> = acked.iter().map(|(i, _)| *i).collect();
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(
        idx.len(),
        acked.len(),
        "two appends acknowledged with one index"
    );
}

/// File storage whose every segment write first blocks for the given time (a stalled disk).
#[derive(Debug)]
struct SlowAppend(FileStorage, Duration);

impl Storage for SlowAppend {
    fn append_segment(&mut self, b: &[u8]) -> io::Result<()> {
        std::thread::sleep(self.1);
        self.0.append_segment(b)
    }
    fn sync_segment(&mut self) -> io::Result<()> {
        self.0.sync_segment()
    }
    fn rotate(&mut self, n: u32) -> io::Result<()> {
        self.0.rotate(n)
    }
    fn append_hashes(&mut self, b: &[u8]) -> io::Result<()> {
        self.0.append_hashes(b)
    }
    fn write_checkpoint(&mut self, n: &[u8]) -> io::Result<()> {
        self.0.write_checkpoint(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_yields_unavailable_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with_storage(dir.path(), cfg(), |fs| {
        Box::new(SlowAppend(fs, Duration::from_millis(800)))
    })
    .unwrap();
    let start = Instant::now();
    let r = log.append(sample_record(0)).await;
    let took = start.elapsed();
    assert!(
        matches!(r, Err(Error::Unavailable(Unavailable::Timeout))),
        "{r:?}"
    );
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(300),
        "{took:?}"
    );
    // While the write is still stuck past the timeout, readiness is down and appends fail fast.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!log.is_healthy());
    let start = Instant::now();
    let r = log.append(sample_record(1)).await;
    assert!(
        matches!(r, Err(Error::Unavailable(Unavailable::Stalled))),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(50));
    // Once the write completes the log is healthy again (a stall is not a failure).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(log.is_healthy());
    log.shutdown().await;
    assert!(matches!(
        log.append(sample_record(2)).await,
        Err(Error::Unavailable(Unavailable::Closed))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_within_gives_up_on_a_hung_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with_storage(dir.path(), cfg(), |fs| {
        Box::new(SlowAppend(fs, Duration::from_secs(3)))
    })
    .unwrap();
    assert!(log.append(sample_record(0)).await.is_err());
    let start = Instant::now();
    assert!(!log.shutdown_within(Duration::from_millis(200)).await);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(
        log.append(sample_record(1)).await,
        Err(Error::Unavailable(
            Unavailable::Closed | Unavailable::Stalled
        ))
    ));
    // A healthy log stops well within the limit.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), cfg()).unwrap();
    log.append(sample_record(0)).await.unwrap();
    assert!(log.shutdown_within(Duration::from_secs(5)).await);
    assert!(verify(dir.path(), None, None).unwrap().ok());
}
