//! The embedded audit log: segment files written by one writer thread with group commit, fail-closed
//! appends, periodic signed checkpoints, and crash recovery on open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::layout::{self, Layout};
use crate::merkle::{Frontier, Hash, tree_hash};
use crate::note::{Checkpoint, NoteSigner, PrevCheckpoint, VerifierKey};
use crate::record::{AuditKey, Record, format_time_ms, now_ms};
use crate::{Error, Unavailable};

/// Most records committed by one write + fsync.
pub const MAX_BATCH_RECORDS: usize = 4096;
/// Most bytes committed by one write + fsync.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Configuration of [`AuditLog::open`].
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Log origin and checkpoint key name, used when the signing key is first generated
    /// (afterwards the key's name is the origin).
    pub origin: String,
    /// How long `append` waits for durability before failing with [`Unavailable::Timeout`].
    pub timeout: Duration,
    /// Minimum interval between checkpoints while records arrive.
    pub checkpoint_interval: Duration,
    /// Rotate to a new segment when the current one would exceed this size.
    pub segment_max_bytes: u64,
    /// Capacity of the queue in front of the writer.
    pub queue: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: "rampart.local/audit".into(),
            timeout: Duration::from_secs(2),
            checkpoint_interval: Duration::from_secs(1),
            segment_max_bytes: 256 << 20,
            queue: 16_384,
        }
    }
}

/// The file operations of the writer, behind a trait so tests can inject failures and stalls.
/// Implementations must not retry a failed `sync_segment`.
pub trait Storage: Send + std::fmt::Debug + 'static {
    /// Appends whole lines to the current segment.
    ///
    /// # Errors
    /// I/O.
    fn append_segment(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `fdatasync` of the current segment.
    ///
    /// # Errors
    /// I/O.
    fn sync_segment(&mut self) -> io::Result<()>;
    /// Closes the current segment and starts segment `n`.
    ///
    /// # Errors
    /// I/O.
    fn rotate(&mut self, n: u32) -> io::Result<()>;
    /// Appends stored hashes (rebuildable from the segments, so not synced per batch).
    ///
    /// # Errors
    /// I/O.
    fn append_hashes(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Durably records a signed checkpoint: appended to the history (fsynced), then `latest`
    /// replaced atomically. The note carries the chain link to the previous one, so the history
    /// must be appended in the order the writer signs.
    ///
    /// # Errors
    /// I/O.
    fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()>;
}

/// The real files.
#[derive(Debug)]
pub struct FileStorage {
    layout: Layout,
    segment: File,
    hashes: File,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl FileStorage {
    fn open(layout: &Layout, segment: u32) -> Result<Self, Error> {
        let seg = layout.segment(segment);
        let segment = open_append(&seg).map_err(|e| Error::io(&seg, e))?;
        sync_dir(&layout.segments()).map_err(|e| Error::io(layout.segments(), e))?;
        let hp = layout.hashes();
        let hashes = open_append(&hp).map_err(|e| Error::io(&hp, e))?;
        Ok(Self {
            layout: layout.clone(),
            segment,
            hashes,
        })
    }
}

impl Storage for FileStorage {
    fn append_segment(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.segment.write_all(bytes)
    }

    fn sync_segment(&mut self) -> io::Result<()> {
        self.segment.sync_data()
    }

    fn rotate(&mut self, n: u32) -> io::Result<()> {
        self.segment = open_append(&self.layout.segment(n))?;
        sync_dir(&self.layout.segments())
    }

    fn append_hashes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hashes.write_all(bytes)
    }

    fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()> {
        self.hashes.sync_data()?;
        // One write of the note and its terminating blank line: a killed writer leaves the entry
        // whole or absent, never a note without its separator (which would merge with the next).
        let mut entry = Vec::with_capacity(note.len() + 1);
        entry.extend_from_slice(note);
        entry.push(b'\n');
        let mut h = open_append(&self.layout.history())?;
        h.write_all(&entry)?;
        h.sync_data()?;
        let tmp = self.layout.checkpoints().join("latest.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(note)?;
        f.sync_all()?;
        fs::rename(&tmp, self.layout.latest())?;
        sync_dir(&self.layout.checkpoints())
    }
}

/// What recovery did on open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of a torn final line removed.
    pub truncated_bytes: u64,
    /// Records whose stored hashes were missing and were recomputed.
    pub rehashed: u64,
    /// Whether `hashes.bin` disagreed with the records and was rebuilt.
    pub rebuilt_hashes: bool,
    /// Records present.
    pub records: u64,
    /// Size of the last signed checkpoint.
    pub checkpoint_size: u64,
    /// Whether any signed checkpoint was found (a new log signs one for its current size, usually
    /// the empty tree, before accepting records).
    pub had_checkpoint: bool,
}

/// Counters for readiness and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records acknowledged as durable since open.
    pub appended: u64,
    /// Appends that failed (timeout, write error, poisoned, stalled, closed).
    pub failures: u64,
    /// Checkpoints signed since open.
    pub checkpoints: u64,
    /// Group commits (write + fsync) since open.
    pub batches: u64,
}

#[derive(Debug, Default)]
struct Shared {
    poisoned: AtomicBool,
    closed: AtomicBool,
    /// `now_ms()` when the in-flight write started, 0 when idle.
    busy_since: AtomicU64,
    appended: AtomicU64,
    failures: AtomicU64,
    checkpoints: AtomicU64,
    batches: AtomicU64,
    size: AtomicU64,
}

type Ack = oneshot::Sender<Result<u64, Error>>;

#[derive(Debug)]
enum Msg {
    /// A record, and whether it is deferred (written without a flush of its own).
    Append(Box<Record>, Ack, bool),
    Tick,
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    config: AuditConfig,
    key: AuditKey,
    verifier: VerifierKey,
    layout: Layout,
    recovery: Recovery,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The locked `lock` file, released once the writer has stopped.
    lock: Mutex<Option<File>>,
}

/// A handle on the audit log; cheap to clone (an `Arc`). See the crate documentation for the
/// contract with the server.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl AuditLog {
    /// Opens (creating on first use) the audit log in `dir` (the `DATA/audit` directory), recovers
    /// from a crash, and starts the writer thread.
    ///
    /// First use generates `signing-key` (Ed25519, named [`AuditConfig::origin`]) and `hmac-key`,
    /// mode 0600; a key file readable by group or others is refused. Recovery: a torn final line
    /// (no newline: an unacknowledged write) is truncated; every record must carry its index;
    /// stored hashes missing from `hashes.bin` are recomputed (and a `hashes.bin` that disagrees
    /// with the records is rebuilt); `checkpoints/latest` is repaired from the history if a crash
    /// left it behind; and the records must contain, unchanged, everything the last signed
    /// checkpoint covers — otherwise [`Error::Corrupt`]: signed records are missing or modified,
    /// and the log refuses to continue (it never signs a checkpoint inconsistent with an old one).
    ///
    /// # Errors
    /// I/O, unsafe key file permissions, or a log that is inconsistent with its last signed
    /// checkpoint ([`Error::Corrupt`]).
    pub fn open(dir: impl AsRef<Path>, config: AuditConfig) -> Result<Self, Error> {
        Self::open_with_storage(dir, config, |fs| Box::new(fs))
    }

    /// As [`AuditLog::open`], wrapping the file storage (fault injection in tests).
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn open_with_storage(
        dir: impl AsRef<Path>,
        config: AuditConfig,
        wrap: impl FnOnce(FileStorage) -> Box<dyn Storage>,
    ) -> Result<Self, Error> {
        let layout = Layout::new(dir.as_ref());
        layout::create_dirs(&layout)?;
        let lock = take_lock(&layout)?;
        let signer = layout::load_or_create_signer(&layout, &config.origin)?;
        let key = layout::load_or_create_audit_key(&layout)?;
        let verifier = signer.verifier();
        let state = recover(&layout, &verifier)?;
        let mut storage = wrap(FileStorage::open(&layout, state.segment)?);
        // Records recovered from the current segment may exist only in the page cache (a process
        // killed after writing, before syncing, e.g. deferred records): make them durable before
        // any checkpoint covers them. Earlier segments were synced before each rotation.
        storage
            .sync_segment()
            .map_err(|e| Error::io(layout.segment(state.segment), e))?;
        let shared = Arc::new(Shared::default());
        shared.size.store(state.frontier.size(), Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let recovery = state.recovery.clone();
        let writer = Writer {
            storage,
            signer,
            frontier: state.frontier,
            segment: state.segment,
            segment_bytes: state.segment_bytes,
            last_time: state.last_time,
            checkpoint_size: state.recovery.checkpoint_size,
            prev: state.prev,
            last_checkpoint: Instant::now(),
            unflushed: Vec::new(),
            shared: shared.clone(),
            config: config.clone(),
        };
        let mut writer = writer;
        if !recovery.had_checkpoint {
            // A log always has a signed checkpoint from its first open on (the empty tree for a new
            // log), so "records but no checkpoint at all" can only mean lost checkpoints, never a
            // crash before the first signature.
            writer
                .sign_current()
                .map_err(|e| Error::io(layout.latest(), e))?;
        }
        let thread = std::thread::Builder::new()
            .name("rampart-audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io(layout.root(), e))?;
        // Ticker: asks for a checkpoint every interval; holds only a weak sender so dropping every
        // handle still ends the writer.
        let weak = tx.downgrade();
        let interval = config.checkpoint_interval;
        let ticker_shared = shared.clone();
        std::thread::Builder::new()
            .name("rampart-audit-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    if ticker_shared.closed.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(tx) = weak.upgrade() else { break };
                    let _ = tx.try_send(Msg::Tick);
                }
            })
            .map_err(|e| Error::io(layout.root(), e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                shared,
                config,
                key,
                verifier,
                layout,
                recovery,
                thread: Mutex::new(Some(thread)),
                lock: Mutex::new(Some(lock)),
            }),
        })
    }

    /// Appends `record` (its `seq` and `time` are assigned here) and waits until it is durable.
    /// Returns its index. Fails closed with [`Error::Unavailable`] when the log is poisoned,
    /// stalled, shut down, or does not acknowledge within the timeout; with [`Error::Record`] when
    /// the record cannot be serialised.
    ///
    /// # Errors
    /// See above.
    pub async fn append(&self, record: Record) -> Result<u64, Error> {
        match self.submit(record, false).await {
            Ok(submitted) => submitted.durable().await,
            Err(e) => Err(e),
        }
    }

    /// Queues `record` ahead of work nobody can observe yet, without paying for its own
    /// `fdatasync`: the writer gives it its index and time in arrival order and writes it at once,
    /// but it becomes durable only with the next record appended normally (or at the next
    /// checkpoint tick, within [`AuditConfig::checkpoint_interval`], if none comes). The caller
    /// does the work, appends its next record with [`AuditLog::append`], then waits for this one
    /// with [`Submitted::durable`] (immediate by then). No checkpoint covers a record before it is
    /// durable. Fails at once, as `append` does, if the log is poisoned, stalled or shut down; the
    /// timeout runs from this call.
    ///
    /// The server uses it for the `received` record of a private upload-session step, saving one
    /// `fdatasync` per step. Unlike an `append` whose caller gave up, a deferred record is written
    /// even if its [`Submitted`] was dropped: the work it announces may have started (only a log
    /// that is shutting down refuses it, as it refuses every record still queued).
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub async fn defer(&self, record: Record) -> Result<Submitted, Error> {
        self.submit(record, true).await
    }

    async fn submit(&self, record: Record, deferred: bool) -> Result<Submitted, Error> {
        let deadline = tokio::time::Instant::now() + self.inner.config.timeout;
        let r = self.submit_inner(record, deferred, deadline).await;
        if matches!(r, Err(Error::Unavailable(_))) {
            self.inner.shared.failures.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn submit_inner(
        &self,
        record: Record,
        deferred: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Submitted, Error> {
        let shared = &self.inner.shared;
        if shared.poisoned.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(Unavailable::Poisoned));
        }
        if shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(Unavailable::Closed));
        }
        if self.stalled() {
            return Err(Error::Unavailable(Unavailable::Stalled));
        }
        let (ack, done) = oneshot::channel();
        let send = self
            .inner
            .tx
            .send(Msg::Append(Box::new(record), ack, deferred));
        match tokio::time::timeout_at(deadline, send).await {
            Ok(Ok(())) => Ok(Submitted {
                log: self.clone(),
                done,
                deadline,
            }),
            Ok(Err(_)) => Err(Error::Unavailable(Unavailable::Closed)),
            Err(_) => Err(Error::Unavailable(Unavailable::Timeout)),
        }
    }

    fn stalled(&self) -> bool {
        let since = self.inner.shared.busy_since.load(Ordering::SeqCst);
        let limit = u64::try_from(self.inner.config.timeout.as_millis()).unwrap_or(u64::MAX);
        since != 0 && now_ms().saturating_sub(since) > limit
    }

    /// Whether appends can currently succeed (not poisoned, not stalled, not shut down): the
    /// readiness signal.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        let s = &self.inner.shared;
        !s.poisoned.load(Ordering::SeqCst) && !s.closed.load(Ordering::SeqCst) && !self.stalled()
    }

    /// Counters since open.
    #[must_use]
    pub fn counters(&self) -> Counters {
        let s = &self.inner.shared;
        Counters {
            appended: s.appended.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
        }
    }

    /// Records durably in the log (including those recovered on open).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.inner.shared.size.load(Ordering::SeqCst)
    }

    /// The HMAC key for secrets in records.
    #[must_use]
    pub fn audit_key(&self) -> &AuditKey {
        &self.inner.key
    }

    /// The checkpoint verifier key (publish it; verifiers need it).
    #[must_use]
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.inner.verifier
    }

    /// What recovery did on open.
    #[must_use]
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// The audit directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.inner.layout.root()
    }

    /// Commits everything queued, signs a final checkpoint if the tree grew, and stops the writer.
    /// Later appends fail with [`Unavailable::Closed`]. Idempotent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.inner.shared.closed.store(true, Ordering::SeqCst);
        let handle = self.inner.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // The writer has stopped: another process may open the log now.
        drop(self.inner.lock.lock().ok().and_then(|mut g| g.take()));
    }

    /// [`AuditLog::shutdown`], waiting at most `limit`: a writer stuck in a write or `fdatasync`
    /// (a hung disk) must not keep a stopping server alive forever. Returns whether the writer
    /// stopped; if not, appends are refused from now on and the final checkpoint may be missing
    /// (the next open recovers and signs one).
    pub async fn shutdown_within(&self, limit: Duration) -> bool {
        let stopped = tokio::time::timeout(limit, self.shutdown()).await.is_ok();
        self.inner.shared.closed.store(true, Ordering::SeqCst);
        stopped
    }
}

/// Locks the audit directory for this process (an exclusive `flock` on `lock`, released when the
/// file is closed, so a killed process never leaves it locked).
fn take_lock(layout: &Layout) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = layout.lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse(layout.root().to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// A record handed to the writer by [`AuditLog::defer`], not yet known to be durable.
#[derive(Debug)]
#[must_use = "a submitted record is durable only once `durable()` says so"]
pub struct Submitted {
    log: AuditLog,
    done: oneshot::Receiver<Result<u64, Error>>,
    deadline: tokio::time::Instant,
}

impl Submitted {
    /// Waits until the record is durable (written and `fdatasync`ed) and returns its index; fails
    /// closed as [`AuditLog::append`] does, by the deadline set when the record was submitted.
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub async fn durable(self) -> Result<u64, Error> {
        let r = match tokio::time::timeout_at(self.deadline, self.done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Unavailable(Unavailable::Closed)),
            Err(_) => Err(Error::Unavailable(Unavailable::Timeout)),
        };
        if matches!(r, Err(Error::Unavailable(_))) {
            self.log
                .inner
                .shared
                .failures
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

struct RecoveredState {
    frontier: Frontier,
    /// The link to the last signed checkpoint, which the next one chains to.
    prev: Option<PrevCheckpoint>,
    segment: u32,
    segment_bytes: u64,
    last_time: u64,
    recovery: Recovery,
}

/// Crash recovery: truncate a torn tail, check sequence numbers, rebuild missing stored hashes,
/// and require consistency with the last signed checkpoint.
fn recover(layout: &Layout, verifier: &VerifierKey) -> Result<RecoveredState, Error> {
    let mut recovery = Recovery::default();
    let segs = layout.segment_numbers()?;
    let last_seg = segs.last().copied().unwrap_or(0);
    // Truncate a torn final line of the last segment.
    let last_path = layout.segment(last_seg);
    let mut segment_bytes = 0;
    if let Ok((len, keep)) = layout::complete_lines_len(&last_path) {
        if keep < len {
            let f = OpenOptions::new()
                .write(true)
                .open(&last_path)
                .map_err(|e| Error::io(&last_path, e))?;
            f.set_len(keep)
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(&last_path, e))?;
            recovery.truncated_bytes = len - keep;
        }
        segment_bytes = keep;
    }
    let mut frontier = Frontier::new();
    let mut stored: Vec<Hash> = Vec::new();
    let mut bad: Option<String> = None;
    let mut last_time = 0u64;
    layout::for_each_line(layout, |line, terminated| {
        let i = frontier.size();
        if !terminated {
            bad = Some(format!("record {i} in an earlier segment has no newline"));
            return false;
        }
        if line.len() > crate::record::MAX_LINE_LEN {
            bad = Some(format!(
                "record {i} is longer than {} bytes",
                crate::record::MAX_LINE_LEN
            ));
            return false;
        }
        if layout::scan_seq(line) != Some(i) {
            bad = Some(format!("record {i} does not carry sequence number {i}"));
            return false;
        }
        if let Some(t) = layout::scan_time(line)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(crate::record::parse_time_ms)
        {
            last_time = last_time.max(t);
        }
        frontier.append_to(crate::merkle::leaf_hash(line), &mut stored);
        true
    })?;
    if let Some(b) = bad {
        return Err(Error::Corrupt(b));
    }
    let n = frontier.size();
    recovery.records = n;
    // The last signed checkpoint must be a prefix of what we have. The history is written before
    // `latest`, so after a crash between the two the history's last entry is the newer one.
    let mut latest = layout::read_latest(layout, verifier)
        .map_err(|e| Error::Corrupt(format!("checkpoints/latest: {e}")))?;
    // The next checkpoint chains to the last one signed: the history's last entry (which `latest`
    // normally equals, and which is newer after a crash between the two writes), else `latest`.
    let mut prev = latest.as_ref().and_then(|l| {
        fs::read(layout.latest())
            .ok()
            .map(|bytes| PrevCheckpoint::of_note(l.size, &bytes))
    });
    if let Some(last) = read_history_dropping_torn_tail(layout)?.pop()
        && let Ok(cp) = Checkpoint::open(last.as_bytes(), std::slice::from_ref(verifier))
        && latest.as_ref().is_none_or(|l| l.size <= cp.size)
    {
        if latest.as_ref().is_none_or(|l| l.size < cp.size) {
            let tmp = layout.checkpoints().join("latest.tmp");
            fs::write(&tmp, last.as_bytes())
                .and_then(|()| File::open(&tmp)?.sync_all())
                .and_then(|()| fs::rename(&tmp, layout.latest()))
                .map_err(|e| Error::io(layout.latest(), e))?;
            latest = Some(cp.clone());
        }
        prev = Some(PrevCheckpoint::of_note(cp.size, last.as_bytes()));
    }
    if let Some(cp) = latest {
        if cp.size > n {
            return Err(Error::Corrupt(format!(
                "the last signed checkpoint covers {} records but only {n} are present: signed records are missing",
                cp.size
            )));
        }
        if tree_hash(cp.size, &stored)? != cp.root {
            return Err(Error::Corrupt(format!(
                "the records are inconsistent with the last signed checkpoint (size {})",
                cp.size
            )));
        }
        recovery.checkpoint_size = cp.size;
        recovery.had_checkpoint = true;
    } else if n > 0 {
        // A log signs a checkpoint at its first open, before it accepts any record, so records
        // without any signed checkpoint mean the checkpoints were removed. Signing the records
        // now could sign a tree inconsistent with the lost checkpoints.
        return Err(Error::Corrupt(format!(
            "{n} records but no signed checkpoint at all (checkpoints/latest and history.log are \
             missing or unreadable): the signed checkpoints were removed"
        )));
    }
    // Stored hashes: keep the file when it is a prefix of the recomputed ones, else rebuild.
    let on_disk = layout::read_hashes(layout)?;
    let hp = layout.hashes();
    let prefix_ok = on_disk.len() <= stored.len() && stored[..on_disk.len()] == on_disk[..];
    let disk_bytes = fs::metadata(&hp).map_or(0, |m| m.len());
    if !prefix_ok || !disk_bytes.is_multiple_of(32) || on_disk.len() < stored.len() {
        let from = if prefix_ok { on_disk.len() } else { 0 };
        recovery.rebuilt_hashes = !prefix_ok;
        let leaves_done = (0..=n)
            .take_while(|&k| crate::merkle::stored_hash_count(k) <= from as u64)
            .last()
            .unwrap_or(0);
        recovery.rehashed = n - leaves_done;
        let mut bytes = Vec::with_capacity((stored.len() - from) * 32);
        for h in &stored[from..] {
            bytes.extend_from_slice(h);
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&hp)
            .map_err(|e| Error::io(&hp, e))?;
        f.set_len((from * 32) as u64)
            .map_err(|e| Error::io(&hp, e))?;
        let mut f = f;
        use std::io::{Seek as _, SeekFrom};
        f.seek(SeekFrom::End(0))
            .and_then(|_| f.write_all(&bytes))
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&hp, e))?;
    }
    Ok(RecoveredState {
        frontier,
        prev,
        segment: last_seg,
        segment_bytes,
        last_time,
        recovery,
    })
}

/// The notes of `history.log`, after truncating a note whose append was cut short by a crash (the
/// writer never acknowledged it, and the next append would otherwise merge with it).
fn read_history_dropping_torn_tail(layout: &Layout) -> Result<Vec<String>, Error> {
    let path = layout.history();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let keep = layout::complete_history_len(&bytes);
    if keep < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.set_len(keep as u64)?;
                f.sync_all()
            })
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(layout::split_history(&String::from_utf8_lossy(
        &bytes[..keep],
    )))
}

struct Writer {
    storage: Box<dyn Storage>,
    signer: NoteSigner,
    frontier: Frontier,
    segment: u32,
    segment_bytes: u64,
    last_time: u64,
    checkpoint_size: u64,
    /// The link to the last checkpoint written (`None` before a log's first).
    prev: Option<PrevCheckpoint>,
    last_checkpoint: Instant,
    /// Deferred records written to the segment but not yet flushed (no index in the tree yet).
    unflushed: Vec<Pending>,
    shared: Arc<Shared>,
    config: AuditConfig,
}

struct Pending {
    line: String,
    ack: Ack,
    deferred: bool,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut stop: Option<oneshot::Sender<()>> = None;
        while let Some(first) = rx.blocking_recv() {
            let mut batch: Vec<Pending> = Vec::new();
            let mut bytes = 0usize;
            let mut tick = false;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    Msg::Append(rec, ack, deferred) => {
                        self.stage(*rec, ack, deferred, &mut batch, &mut bytes);
                    }
                    Msg::Tick => tick = true,
                    Msg::Shutdown(done) => {
                        stop = Some(done);
                        break;
                    }
                }
                if batch.len() >= MAX_BATCH_RECORDS || bytes >= MAX_BATCH_BYTES {
                    break;
                }
                msg = rx.try_recv().ok();
            }
            // The first records of a log are signed at once (a log never holds records without
            // any checkpoint for longer than one batch); after that, at most once per interval.
            let checkpoint_due = tick
                || self.checkpoint_size == 0
                || self.last_checkpoint.elapsed() >= self.config.checkpoint_interval;
            // A batch of deferred records only is written, not flushed: the next ordinary record,
            // a due checkpoint (so a checkpoint follows every record written), shutdown, or too
            // many waiting records flush it.
            let flush = checkpoint_due
                || stop.is_some()
                || batch.iter().any(|p| !p.deferred)
                || self.unflushed.len() + batch.len() >= MAX_BATCH_RECORDS
                || bytes + self.unflushed.iter().map(|p| p.line.len()).sum::<usize>()
                    >= MAX_BATCH_BYTES;
            if !batch.is_empty() || (flush && !self.unflushed.is_empty()) {
                self.commit(batch, flush);
            }
            if checkpoint_due {
                self.checkpoint();
            }
            if stop.is_some() {
                break;
            }
        }
        // Shutdown (or every handle dropped): refuse what is still queued, sign a final checkpoint.
        self.shared.closed.store(true, Ordering::SeqCst);
        rx.close();
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Append(_, ack, _) => {
                    let _ = ack.send(Err(Error::Unavailable(Unavailable::Closed)));
                }
                Msg::Shutdown(done) => {
                    let _ = done.send(());
                }
                Msg::Tick => {}
            }
        }
        if !self.unflushed.is_empty() {
            self.commit(Vec::new(), true);
        }
        self.checkpoint();
        if let Some(done) = stop {
            let _ = done.send(());
        }
    }

    /// Serialises a record into the batch, assigning its index and time.
    fn stage(
        &mut self,
        mut rec: Record,
        ack: Ack,
        deferred: bool,
        batch: &mut Vec<Pending>,
        bytes: &mut usize,
    ) {
        if self.shared.poisoned.load(Ordering::SeqCst) {
            let _ = ack.send(Err(Error::Unavailable(Unavailable::Poisoned)));
            return;
        }
        if ack.is_closed() && !deferred {
            // The caller already gave up (timeout): do not log a request that was refused. A
            // deferred record is written all the same: the work it announces may have started.
            return;
        }
        let t = now_ms().max(self.last_time);
        rec.seq = self.frontier.size() + (self.unflushed.len() + batch.len()) as u64;
        rec.time = format_time_ms(t);
        match rec.to_line() {
            Ok(mut line) => {
                self.last_time = t;
                line.push('\n');
                *bytes += line.len();
                batch.push(Pending {
                    line,
                    ack,
                    deferred,
                });
            }
            Err(e) => {
                let _ = ack.send(Err(e));
            }
        }
    }

    fn poison(&self) {
        self.shared.poisoned.store(true, Ordering::SeqCst);
    }

    /// Writes `batch` after the records already waiting for a flush; with `flush`, `fdatasync`s
    /// and acknowledges them all. Any error poisons the log and fails every waiting record.
    fn commit(&mut self, batch: Vec<Pending>, flush: bool) {
        if self.shared.poisoned.load(Ordering::SeqCst) {
            self.fail_waiting(batch);
            return;
        }
        let mut buf = Vec::with_capacity(batch.iter().map(|p| p.line.len()).sum());
        for p in &batch {
            buf.extend_from_slice(p.line.as_bytes());
        }
        self.shared
            .busy_since
            .store(now_ms().max(1), Ordering::SeqCst);
        let mut result = Ok(());
        if !buf.is_empty()
            && self.segment_bytes > 0
            && self.segment_bytes + buf.len() as u64 > self.config.segment_max_bytes
        {
            // Records still waiting for a flush are in the old segment: flush them first.
            if !self.unflushed.is_empty() {
                result = self.storage.sync_segment();
                if result.is_ok() {
                    let done = std::mem::take(&mut self.unflushed);
                    self.acknowledge(done);
                    if self.shared.poisoned.load(Ordering::SeqCst) {
                        // The hash file failed: nothing more is written until reopened.
                        self.shared.busy_since.store(0, Ordering::SeqCst);
                        self.fail_waiting(batch);
                        return;
                    }
                }
            }
            result = result.and_then(|()| self.storage.rotate(self.segment + 1));
            if result.is_ok() {
                self.segment += 1;
                self.segment_bytes = 0;
            }
        }
        if result.is_ok() && !buf.is_empty() {
            result = self.storage.append_segment(&buf);
        }
        if result.is_ok() && flush {
            result = self.storage.sync_segment();
        }
        self.shared.busy_since.store(0, Ordering::SeqCst);
        if result.is_err() {
            // Never retry: the kernel may have dropped the dirty pages (fsyncgate).
            self.poison();
            self.fail_waiting(batch);
            return;
        }
        self.segment_bytes += buf.len() as u64;
        self.unflushed.extend(batch);
        if flush {
            let done = std::mem::take(&mut self.unflushed);
            self.acknowledge(done);
        }
    }

    /// Fails every record waiting for a flush and `batch` (the log is poisoned).
    fn fail_waiting(&mut self, batch: Vec<Pending>) {
        for p in std::mem::take(&mut self.unflushed).into_iter().chain(batch) {
            let _ = p
                .ack
                .send(Err(Error::Unavailable(Unavailable::WriteFailed)));
        }
    }

    /// Enters flushed records in the tree and the hash file, and acknowledges them.
    fn acknowledge(&mut self, done: Vec<Pending>) {
        if done.is_empty() {
            return;
        }
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        let first = self.frontier.size();
        let mut stored = Vec::with_capacity(done.len() * 2);
        for p in &done {
            let line = p.line.as_bytes();
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            self.frontier
                .append_to(crate::merkle::leaf_hash(line), &mut stored);
        }
        self.shared
            .size
            .store(self.frontier.size(), Ordering::SeqCst);
        self.shared
            .appended
            .fetch_add(done.len() as u64, Ordering::Relaxed);
        // The records are durable: acknowledge them first; the (rebuildable) hash file after.
        for (i, p) in done.into_iter().enumerate() {
            let _ = p.ack.send(Ok(first + i as u64));
        }
        let mut hb = Vec::with_capacity(stored.len() * 32);
        for h in &stored {
            hb.extend_from_slice(h);
        }
        if self.storage.append_hashes(&hb).is_err() {
            self.poison();
        }
    }

    /// The checkpoint of the current tree, chained to the last one written (a log's first
    /// checkpoint has no link).
    fn current(&self) -> Checkpoint {
        Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.frontier.size(),
            root: self.frontier.root(),
            extensions: self.prev.iter().map(PrevCheckpoint::to_line).collect(),
        }
    }

    /// Signs and stores a checkpoint of the current tree, whatever its size (at open).
    fn sign_current(&mut self) -> io::Result<()> {
        let cp = self.current();
        let note = cp.sign(&self.signer).map_err(io::Error::other)?;
        self.storage.write_checkpoint(note.as_bytes())?;
        self.prev = Some(PrevCheckpoint::of_note(cp.size, note.as_bytes()));
        self.checkpoint_size = cp.size;
        self.last_checkpoint = Instant::now();
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Signs a checkpoint if the tree grew since the last one.
    fn checkpoint(&mut self) {
        if self.shared.poisoned.load(Ordering::SeqCst) {
            return;
        }
        let size = self.frontier.size();
        if size == 0 || size <= self.checkpoint_size {
            return;
        }
        let cp = self.current();
        let Ok(note) = cp.sign(&self.signer) else {
            return;
        };
        self.shared
            .busy_since
            .store(now_ms().max(1), Ordering::SeqCst);
        let r = self.storage.write_checkpoint(note.as_bytes());
        self.shared.busy_since.store(0, Ordering::SeqCst);
        if r.is_err() {
            // Poisoned: no later checkpoint is signed by this writer, so the chain stays whole
            // (reopening chains to whatever reached the history).
            self.poison();
            return;
        }
        self.prev = Some(PrevCheckpoint::of_note(size, note.as_bytes()));
        self.checkpoint_size = size;
        self.last_checkpoint = Instant::now();
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `audit` directory inside a Rampart data directory.
#[must_use]
pub fn audit_dir(data: &Path) -> PathBuf {
    data.join("audit")
}
