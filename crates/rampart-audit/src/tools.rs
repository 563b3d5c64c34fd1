//! Read-side tools over an audit directory: queries, inclusion proofs (`tlog-proof`), and export to
//! C2SP `tlog-tiles` and JSONL.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::layout::{self, Layout};
use crate::merkle::{Hash, HashReader, inclusion_proof, stored_hash_count, stored_hash_index};
use crate::note::{Checkpoint, Note, TlogProof, VerifierKey};
use crate::record::{Record, parse_time_ms};

/// A filter for [`query`]; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Principal id.
    pub principal: Option<String>,
    /// Action.
    pub action: Option<String>,
    /// Repository.
    pub repository: Option<String>,
    /// Inclusive lower bound, milliseconds since the epoch.
    pub since_ms: Option<u64>,
    /// Exclusive upper bound, milliseconds since the epoch.
    pub until_ms: Option<u64>,
}

impl Filter {
    /// Parses an RFC 3339 time (or a bare date) for `since`/`until`.
    ///
    /// # Errors
    /// Not a valid time.
    pub fn parse_time(s: &str) -> Result<u64, Error> {
        parse_time_ms(s)
            .ok_or_else(|| Error::Invalid(format!("invalid time {s:?} (want RFC 3339)")))
    }

    /// Whether `r` matches.
    #[must_use]
    pub fn matches(&self, r: &Record) -> bool {
        let t = r.time_ms().unwrap_or(0);
        self.principal
            .as_ref()
            .is_none_or(|p| r.principal.as_ref().is_some_and(|x| &x.id == p))
            && self.action.as_ref().is_none_or(|a| &r.action == a)
            && self
                .repository
                .as_ref()
                .is_none_or(|x| r.repository.as_ref() == Some(x))
            && self.since_ms.is_none_or(|s| t >= s)
            && self.until_ms.is_none_or(|u| t < u)
    }
}

/// Calls `f` with every record matching `filter`, in log order. A line that does not parse is an
/// error naming its index (run `verify` to classify the damage).
///
/// # Errors
/// I/O or a malformed record.
pub fn query(dir: &Path, filter: &Filter, mut f: impl FnMut(&Record)) -> Result<u64, Error> {
    let layout = Layout::new(dir);
    let mut i = 0u64;
    let mut err = None;
    let mut matched = 0;
    layout::for_each_line(&layout, |line, terminated| {
        if !terminated {
            return false;
        }
        match Record::parse_line(line) {
            Ok(r) => {
                if filter.matches(&r) {
                    matched += 1;
                    f(&r);
                }
            }
            Err(e) => {
                err = Some(Error::Corrupt(format!("record {i}: {e}")));
                return false;
            }
        }
        i += 1;
        true
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(matched),
    }
}

/// Reads record line `index` (without the newline).
///
/// # Errors
/// I/O, or no such record.
pub fn read_record_line(dir: &Path, index: u64) -> Result<Vec<u8>, Error> {
    let layout = Layout::new(dir);
    let mut i = 0u64;
    let mut out = None;
    layout::for_each_line(&layout, |line, terminated| {
        if i == index && terminated {
            out = Some(line.to_vec());
            return false;
        }
        i += 1;
        true
    })?;
    out.ok_or_else(|| Error::Invalid(format!("no record {index}")))
}

/// Line counts of sealed segments (every segment but the last, which the writer still appends to),
/// so that [`read_entries`] skips whole segments without reading them. Share one per log.
#[derive(Debug, Default)]
pub struct EntryIndex {
    /// `(segment length in bytes, complete lines)` of segment `n` at position `n`.
    sealed: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl EntryIndex {
    /// An empty index (filled as segments are read).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, n: u32, len: u64) -> Option<u64> {
        let sealed = self.sealed.lock().ok()?;
        sealed
            .get(usize::try_from(n).ok()?)
            .filter(|(l, _)| *l == len)
            .map(|(_, c)| *c)
    }

    fn put(&self, n: u32, len: u64, lines: u64) {
        let Ok(mut sealed) = self.sealed.lock() else {
            return;
        };
        match usize::try_from(n) {
            Ok(i) if i < sealed.len() => sealed[i] = (len, lines),
            Ok(i) if i == sealed.len() => sealed.push((len, lines)),
            _ => {}
        }
    }
}

/// Counts the complete lines of `r`, reading it in chunks.
fn count_lines(r: &mut impl BufRead, path: &Path) -> Result<u64, Error> {
    let mut n = 0u64;
    loop {
        let buf = r.fill_buf().map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        r.consume(len);
    }
}

/// Calls `f` with the stored bytes (without the newline) of records `start .. start + limit`, in
/// order, and returns how many it was called with (fewer at the end of the log, or when `f`
/// returned `false` to stop after that record). Only complete lines are
/// returned: a final line the writer has not finished is not a record yet. Segments before the one
/// holding `start` are skipped by their line count (from `index` when known), and reading stops
/// after the last record asked for.
///
/// # Errors
/// I/O, a segment layout that is not contiguous, or an error from `f`.
pub fn read_entries(
    dir: &Path,
    index: &EntryIndex,
    start: u64,
    limit: u64,
    mut f: impl FnMut(&[u8]) -> Result<bool, Error>,
) -> Result<u64, Error> {
    let layout = Layout::new(dir);
    let segs = layout.segment_numbers()?;
    let last = segs.last().copied();
    let mut first = 0u64; // index of the first record of the current segment
    let mut sent = 0u64;
    for n in segs {
        if sent >= limit {
            break;
        }
        let path = layout.segment(n);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let sealed = Some(n) != last;
        let mut r = BufReader::with_capacity(1 << 16, file);
        if sealed {
            let lines = match index.get(n, len) {
                Some(c) => c,
                None => {
                    let c = count_lines(&mut r, &path)?;
                    index.put(n, len, c);
                    r.seek(SeekFrom::Start(0))
                        .map_err(|e| Error::io(&path, e))?;
                    c
                }
            };
            if first + lines <= start {
                first += lines;
                continue;
            }
        }
        let mut line = Vec::new();
        loop {
            line.clear();
            // At most MAX_LINE_LEN + 1 bytes of a line are kept (no record is longer), so a
            // crafted huge line cannot exhaust memory.
            let cap = crate::record::MAX_LINE_LEN + 1;
            match layout::read_line_capped(&mut r, &mut line, cap)
                .map_err(|e| Error::io(&path, e))?
            {
                Some(true) => {}
                // End of segment, or an unfinished final line.
                None | Some(false) => break,
            }
            if first >= start {
                sent += 1;
                if !f(&line)? {
                    return Ok(sent);
                }
                if sent >= limit {
                    break;
                }
            }
            first += 1;
        }
    }
    Ok(sent)
}

/// Builds a copy of a log in an audit directory layout from its records and checkpoints fetched
/// elsewhere (a server's admin API), so that [`crate::verify()`] and the exporters run on it
/// unchanged. Records go to segments of at most [`Mirror::SEGMENT_BYTES`]; `hashes.bin` is
/// computed from them (so it cannot disagree with them: damage is located by the signed
/// checkpoints only).
#[derive(Debug)]
pub struct Mirror {
    layout: Layout,
    segment: u32,
    segment_bytes: u64,
    out: std::io::BufWriter<File>,
    hashes: std::io::BufWriter<File>,
    frontier: crate::merkle::Frontier,
    stored: Vec<Hash>,
}

impl Mirror {
    /// Largest segment written (the verifier reads one segment at a time).
    pub const SEGMENT_BYTES: u64 = 64 << 20;

    /// Starts a copy in `dir`, which must be empty or absent.
    ///
    /// # Errors
    /// I/O.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        let layout = Layout::new(dir);
        layout::create_dirs(&layout)?;
        let seg = layout.segment(0);
        let out = File::create(&seg).map_err(|e| Error::io(&seg, e))?;
        let hp = layout.hashes();
        let hashes = File::create(&hp).map_err(|e| Error::io(&hp, e))?;
        Ok(Self {
            layout,
            segment: 0,
            segment_bytes: 0,
            out: std::io::BufWriter::new(out),
            hashes: std::io::BufWriter::new(hashes),
            frontier: crate::merkle::Frontier::new(),
            stored: Vec::new(),
        })
    }

    /// Records written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.frontier.size()
    }

    /// Whether no record was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one record line (its stored bytes, without the newline).
    ///
    /// # Errors
    /// I/O, or a line holding a newline.
    pub fn push(&mut self, line: &[u8]) -> Result<(), Error> {
        if line.contains(&b'\n') {
            return Err(Error::Corrupt(format!(
                "record {} holds a newline",
                self.len()
            )));
        }
        let add = line.len() as u64 + 1;
        if self.segment_bytes > 0 && self.segment_bytes + add > Self::SEGMENT_BYTES {
            self.out
                .flush()
                .map_err(|e| Error::io(self.layout.segments(), e))?;
            self.segment += 1;
            self.segment_bytes = 0;
            let seg = self.layout.segment(self.segment);
            let f = File::create(&seg).map_err(|e| Error::io(&seg, e))?;
            self.out = std::io::BufWriter::new(f);
        }
        let seg = self.layout.segment(self.segment);
        self.out
            .write_all(line)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| Error::io(&seg, e))?;
        self.segment_bytes += add;
        self.stored.clear();
        self.frontier
            .append_to(crate::merkle::leaf_hash(line), &mut self.stored);
        for h in &self.stored {
            self.hashes
                .write_all(h)
                .map_err(|e| Error::io(self.layout.hashes(), e))?;
        }
        Ok(())
    }

    /// The layout of the copy: write `checkpoints/history.log` there (as stored), or nothing for
    /// none.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Writes `checkpoints/latest` (none when empty) and flushes everything; returns the number
    /// of records. `checkpoints/history.log` is written by the caller, at [`Mirror::layout`].
    ///
    /// # Errors
    /// I/O.
    pub fn finish(mut self, latest: &[u8]) -> Result<u64, Error> {
        self.out
            .flush()
            .map_err(|e| Error::io(self.layout.segments(), e))?;
        self.hashes
            .flush()
            .map_err(|e| Error::io(self.layout.hashes(), e))?;
        if !latest.is_empty() {
            let path = self.layout.latest();
            fs::write(&path, latest).map_err(|e| Error::io(&path, e))?;
        }
        Ok(self.len())
    }
}

/// Stored hashes read from `hashes.bin` on demand.
#[derive(Debug)]
pub struct FileHashReader {
    file: File,
    path: PathBuf,
}

impl FileHashReader {
    /// Opens `hashes.bin` of `dir`.
    ///
    /// # Errors
    /// I/O.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = Layout::new(dir).hashes();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self { file, path })
    }
}

impl HashReader for FileHashReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|&i| {
                let mut h = [0u8; 32];
                let off = i
                    .checked_mul(32)
                    .ok_or(Error::Proof("stored hash index out of range"))?;
                self.file
                    .read_exact_at(&mut h, off)
                    .map_err(|e| Error::io(&self.path, e))?;
                Ok(h)
            })
            .collect()
    }
}

/// Builds a `tlog-proof` for record `index` against the latest signed checkpoint.
///
/// # Errors
/// No checkpoint, index not covered by it, or I/O.
pub fn prove(dir: &Path, index: u64) -> Result<TlogProof, Error> {
    let layout = Layout::new(dir);
    let latest = layout.latest();
    let note = fs::read_to_string(&latest).map_err(|e| Error::io(&latest, e))?;
    let cp = Checkpoint::parse_body(&Note::parse(note.as_bytes())?.text)?;
    if index >= cp.size {
        return Err(Error::Invalid(format!(
            "record {index} is not covered by the latest checkpoint (size {}); wait for the next checkpoint",
            cp.size
        )));
    }
    let reader = FileHashReader::open(dir)?;
    // A log of n records stores at least n hashes: refuse a (crafted) size the file cannot cover
    // before computing stored-hash indexes from it.
    let stored = reader
        .file
        .metadata()
        .map_err(|e| Error::io(&reader.path, e))?
        .len()
        / 32;
    if cp.size > stored {
        return Err(Error::Corrupt(format!(
            "the latest checkpoint covers {} records but hashes.bin holds only {stored} hashes; \
             run `rampart audit verify`",
            cp.size
        )));
    }
    let hashes = inclusion_proof(index, cp.size, &reader)?;
    Ok(TlogProof {
        extra: None,
        index,
        hashes,
        checkpoint: note,
    })
}

/// Checks a `tlog-proof` text for `entry` (the record line) against `keys`; returns the checkpoint.
///
/// # Errors
/// Malformed proof, bad signature, or an inclusion proof that does not verify.
pub fn check_proof(proof: &[u8], entry: &[u8], keys: &[VerifierKey]) -> Result<Checkpoint, Error> {
    TlogProof::parse(proof)?.check(entry, keys)
}

/// The C2SP tile index path component: `N` in 3-digit groups, `x` before all but the last.
#[must_use]
pub fn tile_index_path(n: u64) -> String {
    let s = format!("{n:03}");
    let digits = s.len();
    let pad = (3 - digits % 3) % 3;
    let s = format!("{}{s}", "0".repeat(pad));
    let groups: Vec<&str> = (0..s.len() / 3).map(|i| &s[3 * i..3 * i + 3]).collect();
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            out.push('x');
            out.push_str(g);
            out.push('/');
        } else {
            out.push_str(g);
        }
    }
    out
}

/// The path of a tile: `tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` for `level = None`.
#[must_use]
pub fn tile_path(level: Option<u32>, n: u64, width: u64) -> String {
    let l = level.map_or_else(|| "entries".to_owned(), |l| l.to_string());
    let mut p = format!("tile/{l}/{}", tile_index_path(n));
    if width < 256 {
        p.push_str(&format!(".p/{width}"));
    }
    p
}

fn write_file(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), Error> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    fs::write(&path, bytes).map_err(|e| Error::io(&path, e))
}

/// Exports the log up to the latest checkpoint as C2SP `tlog-tiles`: `checkpoint`, hash tiles
/// `tile/<L>/<N>[.p/<W>]` and entry bundles `tile/entries/<N>[.p/<W>]`. Returns the tree size.
///
/// # Errors
/// No checkpoint, I/O, or a record that does not fit a uint16 length.
pub fn export_tiles(dir: &Path, out: &Path) -> Result<u64, Error> {
    let layout = Layout::new(dir);
    let latest = layout.latest();
    let note = fs::read(&latest).map_err(|e| Error::io(&latest, e))?;
    let cp = Checkpoint::parse_body(&Note::parse(&note)?.text)?;
    let size = cp.size;
    let hashes = layout::read_hashes(&layout)?;
    // `size > hashes.len()` first: a (crafted) huge size must not reach the index arithmetic.
    if size > hashes.len() as u64 || (hashes.len() as u64) < stored_hash_count(size) {
        return Err(Error::Corrupt(
            "hashes.bin does not cover the latest checkpoint; reopen the log to rebuild it".into(),
        ));
    }
    // Hash tiles: level L holds the tree-level-8L hashes, 256 per tile.
    let mut level = 0u32;
    loop {
        let count = size >> (8 * level); // hashes at tree level 8L
        if count == 0 {
            break;
        }
        let mut n = 0u64;
        while n * 256 < count {
            let width = (count - n * 256).min(256);
            let mut bytes = Vec::with_capacity(usize::try_from(width).unwrap_or(0) * 32);
            for j in 0..width {
                let idx = stored_hash_index(8 * level, n * 256 + j);
                let h = hashes
                    .get(usize::try_from(idx).unwrap_or(usize::MAX))
                    .ok_or(Error::Proof("stored hash missing"))?;
                bytes.extend_from_slice(h);
            }
            write_file(out, &tile_path(Some(level), n, width), &bytes)?;
            n += 1;
        }
        level += 1;
    }
    // Entry bundles.
    let mut bundle = Vec::new();
    let mut in_bundle = 0u64;
    let mut n = 0u64;
    let mut i = 0u64;
    let mut err = None;
    layout::for_each_line(&layout, |line, terminated| {
        if i >= size || !terminated {
            return false;
        }
        let Ok(len) = u16::try_from(line.len()) else {
            err = Some(Error::Record(format!(
                "record {i} is longer than 65535 bytes"
            )));
            return false;
        };
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(line);
        in_bundle += 1;
        i += 1;
        if in_bundle == 256 {
            if let Err(e) = write_file(out, &tile_path(None, n, 256), &bundle) {
                err = Some(e);
                return false;
            }
            bundle.clear();
            in_bundle = 0;
            n += 1;
        }
        true
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    if i < size {
        return Err(Error::Corrupt(format!(
            "the checkpoint covers {size} records, only {i} present"
        )));
    }
    if in_bundle > 0 {
        write_file(out, &tile_path(None, n, in_bundle), &bundle)?;
    }
    write_file(out, "checkpoint", &note)?;
    Ok(size)
}

/// Exports every record as JSONL (one canonical record per line). Returns the number of records.
///
/// # Errors
/// I/O.
pub fn export_jsonl(dir: &Path, out: &Path) -> Result<u64, Error> {
    let layout = Layout::new(dir);
    let mut f = File::create(out).map_err(|e| Error::io(out, e))?;
    let mut n = 0u64;
    let mut err = None;
    layout::for_each_line(&layout, |line, terminated| {
        if !terminated {
            return false;
        }
        if let Err(e) = f.write_all(line).and_then(|()| f.write_all(b"\n")) {
            err = Some(e);
            return false;
        }
        n += 1;
        true
    })?;
    if let Some(e) = err {
        return Err(Error::io(out, e));
    }
    f.sync_all().map_err(|e| Error::io(out, e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_index_path(0), "000");
        assert_eq!(tile_index_path(67), "067");
        assert_eq!(tile_index_path(1234067), "x001/x234/067");
        assert_eq!(tile_index_path(1000), "x001/000");
        assert_eq!(tile_path(Some(0), 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(Some(1), 3, 64), "tile/1/003.p/64");
        assert_eq!(tile_path(None, 5, 10), "tile/entries/005.p/10");
    }
}
