//! Offline verification of an audit directory: re-hash every record, check sequence numbers and
//! times, recompute the tree, check every signed checkpoint and its consistency with the records,
//! and report the first damage found.
//!
//! Records are scanned, not parsed: `seq` and `time` are found by a byte scan of the canonical line
//! (fast enough for a million records in well under two seconds); the leaf hash covers every byte.

use std::fmt;
use std::path::Path;

use crate::Error;
use crate::layout::{self, Layout};
use crate::merkle::{Frontier, Hash, leaf_hash, stored_hash_count, stored_hash_index, tree_hash};
use crate::note::{Checkpoint, Note, PrevCheckpoint, VerifierKey};

/// The kind of damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Damage {
    /// A record's bytes changed.
    Modified,
    /// A record is missing (later records moved up).
    Missing,
    /// Records are out of order.
    Reordered,
    /// The log ends early (records covered by a checkpoint or the stored hashes are gone, or the
    /// last line is torn).
    Truncated,
    /// A checkpoint's signature does not verify (forged or edited checkpoint).
    BadSignature,
    /// A validly signed checkpoint disagrees with the records or with another checkpoint.
    InconsistentCheckpoint,
    /// A signed checkpoint was removed (`latest` and the history disagree, or a checkpoint's
    /// `rampart-prev` link names one the history no longer holds).
    MissingCheckpoint,
}

impl Damage {
    /// The kebab-case name printed by the CLI.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modified => "modified",
            Self::Missing => "missing",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
            Self::BadSignature => "bad-signature",
            Self::InconsistentCheckpoint => "inconsistent-checkpoint",
            Self::MissingCheckpoint => "missing-checkpoint",
        }
    }

    /// Record-level kinds win ties against checkpoint-level ones.
    fn rank(self) -> u8 {
        match self {
            Self::Truncated => 0,
            Self::Reordered => 1,
            Self::Missing => 2,
            Self::Modified => 3,
            Self::InconsistentCheckpoint => 4,
            Self::BadSignature => 5,
            Self::MissingCheckpoint => 6,
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first damage found. For record damage `index` is the record index; for checkpoint damage it
/// is the tree size the checkpoint claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What.
    pub kind: Damage,
    /// Where.
    pub index: u64,
    /// Human-readable detail.
    pub detail: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Records scanned.
    pub records: u64,
    /// Root of all records.
    pub root: Hash,
    /// Signed checkpoints checked (history, latest and trusted).
    pub checkpoints: usize,
    /// The latest signed checkpoint, when it verified.
    pub latest: Option<Checkpoint>,
    /// The first damage, `None` when the log is intact.
    pub failure: Option<Failure>,
    /// Things that are not damage but deserve a note (a torn unsigned tail, key taken from the
    /// directory, records beyond the last checkpoint).
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether the log verified.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

struct Candidates(Option<Failure>);

impl Candidates {
    fn add(&mut self, kind: Damage, index: u64, detail: impl Into<String>) {
        self.add_inner(kind, index, detail, false);
    }

    /// Adds a finding that only wins when strictly earlier (a weaker signal than what is there).
    fn add_if_earlier(&mut self, kind: Damage, index: u64, detail: impl Into<String>) {
        self.add_inner(kind, index, detail, true);
    }

    fn add_inner(&mut self, kind: Damage, index: u64, detail: impl Into<String>, strict: bool) {
        let better = match &self.0 {
            None => true,
            Some(f) if strict => index < f.index,
            Some(f) => (index, kind.rank()) < (f.index, f.kind.rank()),
        };
        if better {
            self.0 = Some(Failure {
                kind,
                index,
                detail: detail.into(),
            });
        }
    }
}

/// Classifies the first position where the observed sequence differs from the expected one.
/// `observed(i)` is what is at position i (a leaf hash or a seq number), `expected(i)` what should be.
fn classify<T: PartialEq>(
    j: u64,
    observed: impl Fn(u64) -> Option<T>,
    expected: impl Fn(u64) -> Option<T>,
) -> Damage {
    let (o0, o1, e0, e1) = (observed(j), observed(j + 1), expected(j), expected(j + 1));
    if o0.is_some() && o0 == e1 && o1.is_some() && o1 == e0 {
        Damage::Reordered
    } else if o0.is_some() && o0 == e1 {
        Damage::Missing
    } else if o0.is_none() && e0.is_some() {
        Damage::Truncated
    } else {
        Damage::Modified
    }
}

/// Checks the chain link of the validly signed history entry `i` (`cp`) against the entry before
/// it (`before`: its link, `None` for the first entry or when that entry did not verify).
///
/// The writer signs a log's first checkpoint without a `rampart-prev` line and every later one with
/// a line naming the previous checkpoint's size and note hash, so in an intact history entry 0 has
/// no link and every other entry links to the entry before it. A link naming a larger size than the
/// entry before it means the checkpoint of that size was removed; a smaller one, or the same size
/// with another hash, means the entry before it does not belong there (inserted, reordered or
/// replaced).
fn check_link(found: &mut Candidates, i: usize, cp: &Checkpoint, before: Option<&PrevCheckpoint>) {
    let size = cp.size;
    let link = match cp.prev() {
        Ok(l) => l,
        Err(e) => {
            // `Checkpoint::open` already rejects this; kept for checkpoints built otherwise.
            found.add(
                Damage::InconsistentCheckpoint,
                size,
                format!("checkpoint in history.log (size {size}): {e}"),
            );
            return;
        }
    };
    if let Some(l) = &link
        && l.size >= size
    {
        found.add(
            Damage::InconsistentCheckpoint,
            size,
            format!(
                "checkpoint in history.log (size {size}) chains to a checkpoint of size {}, not an \
                 earlier one",
                l.size
            ),
        );
        return;
    }
    match (i, link, before) {
        (0, None, _) => {}
        (0, Some(l), _) => found.add(
            Damage::MissingCheckpoint,
            l.size,
            format!(
                "the first checkpoint in history.log (size {size}) chains to a checkpoint of size \
                 {} that is not in the history: the checkpoints before it were removed",
                l.size
            ),
        ),
        (_, None, _) => found.add(
            Damage::InconsistentCheckpoint,
            size,
            format!(
                "checkpoint in history.log (size {size}) has no rampart-prev line but is not the \
                 first: it does not chain to the checkpoint before it (rewritten or inserted)"
            ),
        ),
        // The entry before did not verify: already reported as a bad signature.
        (_, Some(_), None) => {}
        (_, Some(l), Some(b)) if l == *b => {}
        (_, Some(l), Some(b)) if l.size > b.size => found.add(
            Damage::MissingCheckpoint,
            l.size,
            format!(
                "checkpoint in history.log (size {size}) chains to a checkpoint of size {} that is \
                 not in the history (the entry before it has size {}): it was removed",
                l.size, b.size
            ),
        ),
        (_, Some(l), Some(b)) if l.size < b.size => found.add(
            Damage::InconsistentCheckpoint,
            b.size,
            format!(
                "checkpoint in history.log of size {} does not belong before the one of size \
                 {size}, which chains to size {} (inserted or out of order)",
                b.size, l.size
            ),
        ),
        (_, Some(_), Some(b)) => found.add(
            Damage::InconsistentCheckpoint,
            b.size,
            format!(
                "checkpoint in history.log of size {} is validly signed but is not the one the \
                 next checkpoint (size {size}) chains to: it was replaced",
                b.size
            ),
        ),
    }
}

/// Verifies the audit directory `dir`. Checkpoints are checked against `key` (or, without it, the
/// `verifier-key` file in the directory, which an attacker with write access could replace: a
/// warning says so). A `trusted` checkpoint (signed note text kept outside the log) must be
/// consistent with the records.
///
/// # Errors
/// Only I/O errors and unusable keys; damage is reported in [`Report::failure`].
pub fn verify(
    dir: &Path,
    trusted: Option<&[u8]>,
    key: Option<&VerifierKey>,
) -> Result<Report, Error> {
    let layout = Layout::new(dir);
    let mut report = Report::default();
    let key = match key {
        Some(k) => k.clone(),
        None => {
            report.warnings.push(
                "checkpoints checked against the verifier-key file in the log directory; pass --key \
                 to detect an attacker who can rewrite the directory"
                    .into(),
            );
            layout::load_verifier_key(&layout)?
        }
    };
    let keys = std::slice::from_ref(&key);
    let mut found = Candidates(None);

    // 1. Records: leaf hashes, sequence numbers, times, torn tail.
    let mut leaves: Vec<Hash> = Vec::new();
    let mut seqs: Vec<Option<u64>> = Vec::new();
    let mut first_seq_bad: Option<u64> = None;
    let mut first_time_bad: Option<u64> = None;
    let mut torn: Option<u64> = None;
    let mut unterminated: Option<u64> = None;
    let mut prev_time: Option<[u8; 24]> = None;
    // A segment missing from the middle is damage (its records are gone), not an error: scan the
    // segments present on both sides of the gap and report it with the index where it falls.
    let segs = layout.present_segments()?;
    let gap = layout::first_gap(&segs);
    let split = gap.map_or(segs.len(), |g| usize::try_from(g).unwrap_or(segs.len()));
    let mut scan = |line: &[u8], terminated: bool| {
        let i = leaves.len() as u64;
        // An unterminated line followed by more lines (end of an earlier segment) is not a torn
        // tail but damage: the leaf hash excludes the newline, so only this flags it (and the log
        // refuses to open such a directory).
        if let Some(t) = torn.take() {
            unterminated.get_or_insert(t);
        }
        if !terminated {
            torn = Some(i);
        }
        leaves.push(leaf_hash(line));
        if !terminated {
            // A torn final line is judged below (crash artefact or truncation), not parsed.
            return true;
        }
        let seq = layout::scan_seq(line);
        if first_seq_bad.is_none() && seq != Some(i) {
            first_seq_bad = Some(i);
        }
        // Keep the seq numbers only near the first bad one (classification needs two).
        if first_seq_bad.is_none_or(|b| i <= b + 1) {
            seqs.push(seq);
        }
        let t = layout::scan_time(line);
        if first_time_bad.is_none() {
            match (t, &prev_time) {
                (None, _) => first_time_bad = Some(i),
                (Some(t), Some(p)) if t < p.as_slice() => first_time_bad = Some(i),
                _ => {}
            }
            if let Some(t) = t.and_then(|t| <[u8; 24]>::try_from(t).ok()) {
                prev_time = Some(t);
            }
        }
        true
    };
    let mut gap_at = 0u64;
    layout::for_each_line_of(&layout, &segs[..split], |line, terminated| {
        gap_at += 1;
        scan(line, terminated)
    })?;
    layout::for_each_line_of(&layout, &segs[split..], &mut scan)?;
    if let Some(g) = gap {
        found.add(
            Damage::Missing,
            gap_at,
            format!("segment {g:08}.jsonl is missing: the records from index {gap_at} on are not all there"),
        );
    }
    let n = leaves.len() as u64;
    report.records = n;

    // 2. Stored hashes on disk (a cross-check that locates damage exactly).
    let on_disk = layout::read_hashes(&layout)?;
    let disk_leaves = (0..=n + 1)
        .rev()
        .find(|&k| stored_hash_count(k) <= on_disk.len() as u64)
        .unwrap_or(0);
    let disk_leaf = |i: u64| -> Option<Hash> {
        (i < disk_leaves)
            .then(|| {
                on_disk
                    .get(usize::try_from(stored_hash_index(0, i)).ok()?)
                    .copied()
            })
            .flatten()
    };
    let first_leaf_bad = (0..n.max(disk_leaves)).find(|&i| {
        let l = leaves
            .get(usize::try_from(i).unwrap_or(usize::MAX))
            .copied();
        match disk_leaf(i) {
            Some(d) => l != Some(d),
            None => false,
        }
    });

    // 3. Checkpoints: history (signatures, order, chain links), latest, trusted.
    let history = layout.read_history()?;
    let mut cps: Vec<(Checkpoint, String)> = Vec::new();
    let mut prev_size: Option<u64> = None;
    // The link to the previous history entry, `None` when that entry did not verify (it is
    // reported as a bad signature; its own claims are not trusted).
    let mut prev_link: Option<PrevCheckpoint> = None;
    for (i, note) in history.iter().enumerate() {
        report.checkpoints += 1;
        let claimed = layout::peek_checkpoint(note);
        let at = claimed.as_ref().map_or(prev_size.unwrap_or(0), |c| c.size);
        match Checkpoint::open(note.as_bytes(), keys) {
            Ok(cp) => {
                if prev_size.is_some_and(|p| cp.size < p) {
                    found.add(
                        Damage::InconsistentCheckpoint,
                        cp.size,
                        format!(
                            "checkpoint history goes back to size {} (entries out of order)",
                            cp.size
                        ),
                    );
                }
                check_link(&mut found, i, &cp, prev_link.as_ref());
                prev_size = Some(cp.size);
                prev_link = Some(PrevCheckpoint::of_note(cp.size, note.as_bytes()));
                cps.push((cp, note.clone()));
            }
            Err(e) => {
                prev_link = None;
                found.add(
                    Damage::BadSignature,
                    at,
                    format!("checkpoint in history (size {at}): {e}"),
                );
            }
        }
    }
    let latest_text = std::fs::read(layout.latest()).ok();
    match &latest_text {
        Some(t) => {
            report.checkpoints += 1;
            match Checkpoint::open(t, keys) {
                Ok(cp) => {
                    let is_last = history.last().map(String::as_bytes) == Some(t.as_slice());
                    let in_history = history.iter().any(|h| h.as_bytes() == t.as_slice());
                    if in_history && !is_last {
                        // The writer appends to the history before replacing `latest`: a crash in
                        // between leaves `latest` one behind (reopening repairs it). Every history
                        // checkpoint is checked against the records regardless.
                        report.warnings.push(
                            "checkpoints/latest is older than the last checkpoint in history.log"
                                .into(),
                        );
                    } else if !in_history {
                        let last = cps.last().map_or(0, |(c, _)| c.size);
                        let at = cp.size.max(last);
                        found.add(
                            Damage::MissingCheckpoint,
                            at,
                            format!(
                                "checkpoints/latest (size {}) is not the last checkpoint in history.log",
                                cp.size
                            ),
                        );
                    }
                    if !cps.iter().any(|(c, _)| *c == cp) {
                        cps.push((cp.clone(), String::from_utf8_lossy(t).into_owned()));
                    }
                    report.latest = Some(cp);
                }
                Err(e) => {
                    let at = Note::parse(t)
                        .ok()
                        .and_then(|n| Checkpoint::parse_body(&n.text).ok())
                        .map_or(0, |c| c.size);
                    found.add(Damage::BadSignature, at, format!("checkpoints/latest: {e}"));
                }
            }
        }
        None => {
            if let Some((c, _)) = cps.last() {
                found.add(
                    Damage::MissingCheckpoint,
                    c.size,
                    "checkpoints/latest is missing",
                );
            } else if n > 0 && history.is_empty() {
                // The writer signs within a second of the first record (and on shutdown); a log
                // with records and no checkpoint at all has lost its checkpoints (or crashed in
                // that first second: reopening it signs one).
                found.add(
                    Damage::MissingCheckpoint,
                    0,
                    "records but no signed checkpoint at all",
                );
            }
        }
    }
    if let Some(t) = trusted {
        report.checkpoints += 1;
        match Checkpoint::open(t, keys) {
            Ok(cp) => {
                if report.latest.as_ref().is_none_or(|l| l.size < cp.size) && cp.size <= n {
                    found.add(
                        Damage::MissingCheckpoint,
                        cp.size,
                        "the log's latest checkpoint is older than the trusted one",
                    );
                }
                cps.push((cp, String::from_utf8_lossy(t).into_owned()));
            }
            Err(e) => found.add(Damage::BadSignature, 0, format!("trusted checkpoint: {e}")),
        }
    }
    cps.sort_by_key(|(c, _)| c.size);

    // 4. Recompute roots at every checkpoint size.
    let mut frontier = Frontier::new();
    let mut roots: Vec<(u64, Hash)> = Vec::new();
    let mut sizes = cps.iter().map(|(c, _)| c.size).peekable();
    while sizes.peek() == Some(&0) {
        roots.push((0, frontier.root()));
        sizes.next();
    }
    for (i, l) in leaves.iter().enumerate() {
        frontier.push(*l);
        let size = i as u64 + 1;
        while sizes.peek() == Some(&size) {
            roots.push((size, frontier.root()));
            sizes.next();
        }
    }
    report.root = frontier.root();
    let root_at = |size: u64| roots.iter().find(|(s, _)| *s == size).map(|(_, r)| *r);
    let mut disk_trusted = false;
    let mut records_bad_below: Option<u64> = None;
    let mut last_good = 0u64;
    for (cp, _) in &cps {
        if cp.size > n {
            found.add(
                Damage::Truncated,
                n,
                format!(
                    "a signed checkpoint covers {} records, only {n} present",
                    cp.size
                ),
            );
            continue;
        }
        if root_at(cp.size) == Some(cp.root) {
            last_good = last_good.max(cp.size);
            continue;
        }
        // The records disagree with a signed checkpoint. Do the stored hashes agree with it?
        let disk_root = if cp.size <= disk_leaves {
            tree_hash(cp.size, &on_disk).ok()
        } else {
            None
        };
        if disk_root == Some(cp.root) {
            disk_trusted = true;
        }
        match first_leaf_bad {
            Some(j) if j < cp.size => {
                records_bad_below = Some(records_bad_below.map_or(j, |b| b.min(j)))
            }
            _ if disk_root == Some(cp.root) => {
                records_bad_below = Some(last_good);
            }
            _ => found.add(
                Damage::InconsistentCheckpoint,
                cp.size,
                format!(
                    "checkpoint of size {} is validly signed but its root differs from the records",
                    cp.size
                ),
            ),
        }
    }
    if let Some(l) = &report.latest {
        if l.size <= disk_leaves && tree_hash(l.size, &on_disk).ok() == Some(l.root) {
            disk_trusted = true;
        }
        if l.size < n {
            report.warnings.push(format!(
                "{} records after the latest checkpoint (size {}) are not yet signed",
                n - l.size,
                l.size
            ));
        }
    }

    // 5. Record-level findings.
    if let Some(j) = first_leaf_bad
        && (disk_trusted || records_bad_below.is_some())
    {
        let kind = classify(
            j,
            |i| leaves.get(usize::try_from(i).ok()?).copied(),
            disk_leaf,
        );
        found.add(
            kind,
            j,
            format!("record {j} does not match its stored hash"),
        );
    } else if let Some(b) = records_bad_below {
        found.add(
            Damage::Modified,
            b,
            format!("records from index {b} on do not match the signed checkpoints"),
        );
    } else if let Some(j) = first_leaf_bad {
        report.warnings.push(format!(
            "hashes.bin disagrees with record {j} but the records match the signed checkpoints; \
             reopening the log rebuilds it"
        ));
    }
    if let Some(j) = first_seq_bad {
        let seq = |i: u64| seqs.get(usize::try_from(i).ok()?).copied().flatten();
        let (s0, s1) = (seq(j), seq(j + 1));
        let kind = if s0 == Some(j + 1) && s1 == Some(j) {
            Damage::Reordered
        } else if s0.is_some_and(|s| s > j) && (s1.is_none() || s1 == s0.map(|s| s + 1)) {
            Damage::Missing
        } else {
            Damage::Modified
        };
        found.add_if_earlier(
            kind,
            j,
            format!("record {j} does not carry sequence number {j}"),
        );
    }
    if let Some(j) = first_time_bad {
        found.add_if_earlier(
            Damage::Reordered,
            j,
            format!(
                "record {j} has an earlier time than record {}",
                j.saturating_sub(1)
            ),
        );
    }
    if let Some(t) = torn {
        let signed = report.latest.as_ref().map_or(0, |l| l.size);
        if t < signed || t < disk_leaves {
            found.add(
                Damage::Truncated,
                t,
                format!("record {t} is cut short (no newline)"),
            );
        } else {
            report.warnings.push(format!(
                "record {t} is a torn, unacknowledged tail (crash); reopening the log removes it"
            ));
        }
    }
    if let Some(t) = unterminated {
        found.add(
            Damage::Truncated,
            t,
            format!("record {t} at the end of an earlier segment has no newline"),
        );
    }
    if n < disk_leaves {
        found.add(
            Damage::Truncated,
            n,
            format!("stored hashes cover {disk_leaves} records, only {n} present"),
        );
    }
    report.failure = found.0;
    Ok(report)
}
