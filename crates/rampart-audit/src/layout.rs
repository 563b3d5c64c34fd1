//! The on-disk layout of an audit directory, key files, and the segment scanner shared by recovery,
//! verification, queries and export.
//!
//! ```text
//! audit/segments/00000000.jsonl   records, one canonical JSON object per line
//! audit/hashes.bin                stored hashes (Go tlog layout), 32 bytes each
//! audit/checkpoints/latest        the latest signed checkpoint
//! audit/checkpoints/history.log   every signed checkpoint, each followed by a blank line
//! audit/signing-key               Ed25519 checkpoint key (Go note skey form), mode 0600
//! audit/hmac-key                  32-byte HMAC key (hex), mode 0600
//! audit/verifier-key              the public verifier key (vkey form)
//! audit/lock                      empty; locked (flock) by the process writing the log
//! ```
//!
//! The checkpoints in `history.log` form a hash chain: every one after the log's first carries a
//! `rampart-prev <size> <base64(SHA-256(previous signed note))>` extension line inside its signed
//! body ([`crate::note::PrevCheckpoint`]), so [`crate::verify()`] detects a checkpoint removed from,
//! inserted into or moved within the history, not only a stale `latest`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::merkle::Hash;
use crate::note::{Checkpoint, Note, NoteSigner, VerifierKey};
use crate::record::{AuditKey, MAX_LINE_LEN};

/// Paths inside an audit directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir` (the `audit` directory itself).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { root: dir.into() }
    }

    /// The audit directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `lock`: held (an exclusive `flock`) by the one process writing the log.
    #[must_use]
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// `segments/`.
    #[must_use]
    pub fn segments(&self) -> PathBuf {
        self.root.join("segments")
    }

    /// `segments/NNNNNNNN.jsonl`.
    #[must_use]
    pub fn segment(&self, n: u32) -> PathBuf {
        self.segments().join(format!("{n:08}.jsonl"))
    }

    /// `hashes.bin`.
    #[must_use]
    pub fn hashes(&self) -> PathBuf {
        self.root.join("hashes.bin")
    }

    /// `checkpoints/`.
    #[must_use]
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `checkpoints/latest`.
    #[must_use]
    pub fn latest(&self) -> PathBuf {
        self.checkpoints().join("latest")
    }

    /// `checkpoints/history.log`.
    #[must_use]
    pub fn history(&self) -> PathBuf {
        self.checkpoints().join("history.log")
    }

    /// `signing-key`.
    #[must_use]
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("signing-key")
    }

    /// `hmac-key`.
    #[must_use]
    pub fn hmac_key(&self) -> PathBuf {
        self.root.join("hmac-key")
    }

    /// `verifier-key`.
    #[must_use]
    pub fn verifier_key(&self) -> PathBuf {
        self.root.join("verifier-key")
    }

    /// Segment numbers present, ascending. They must be contiguous from 0.
    ///
    /// # Errors
    /// I/O, or a gap or stray file in `segments/`.
    pub fn segment_numbers(&self) -> Result<Vec<u32>, Error> {
        let nums = self.present_segments()?;
        if let Some(gap) = first_gap(&nums) {
            return Err(Error::Corrupt(format!("segment {gap:08}.jsonl is missing")));
        }
        Ok(nums)
    }

    /// Segment numbers present, ascending, gaps allowed.
    ///
    /// # Errors
    /// I/O, or a stray file in `segments/`.
    pub(crate) fn present_segments(&self) -> Result<Vec<u32>, Error> {
        let dir = self.segments();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut nums = Vec::new();
        for e in entries {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            let n = name
                .strip_suffix(".jsonl")
                .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u32>().ok());
            match n {
                Some(n) => nums.push(n),
                None if name.ends_with(".tmp") => {}
                None => {
                    return Err(Error::Corrupt(format!(
                        "unexpected file {name:?} in {}",
                        dir.display()
                    )));
                }
            }
        }
        nums.sort_unstable();
        Ok(nums)
    }

    /// Reads the signed checkpoints in `history.log`, in order, as raw note texts.
    ///
    /// # Errors
    /// I/O errors other than a missing file.
    pub fn read_history(&self) -> Result<Vec<String>, Error> {
        let path = self.history();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(split_history(&String::from_utf8_lossy(&text)))
    }
}

/// The first segment number missing from the ascending list `nums` (below its largest).
pub(crate) fn first_gap(nums: &[u32]) -> Option<u32> {
    nums.iter()
        .enumerate()
        .find(|&(i, n)| u32::try_from(i).ok() != Some(*n))
        .and_then(|(i, _)| u32::try_from(i).ok())
}

/// Splits `history.log` into notes: each note is body lines, a blank line, signature lines, and a
/// terminating blank line.
#[must_use]
pub fn split_history(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_sigs = false;
    for line in text.split_inclusive('\n') {
        if line == "\n" {
            if in_sigs {
                out.push(std::mem::take(&mut cur));
                in_sigs = false;
                continue;
            }
            in_sigs = true;
        }
        cur.push_str(line);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The length of the longest prefix of `history.log` bytes that holds whole notes (each with its
/// terminating blank line): what a reader may hand on while the writer is appending a note.
#[must_use]
pub fn complete_history_len(bytes: &[u8]) -> usize {
    let (mut off, mut end, mut in_sigs) = (0, 0, false);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        off += line.len();
        if line == b"\n" {
            if in_sigs {
                end = off;
            }
            in_sigs = !in_sigs;
        }
    }
    end
}

/// Creates the directory tree (mode 0700).
pub(crate) fn create_dirs(layout: &Layout) -> Result<(), Error> {
    for d in [
        layout.root().to_path_buf(),
        layout.segments(),
        layout.checkpoints(),
    ] {
        fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(&d, e))?;
    }
    Ok(())
}

/// Reads a secret key file, refusing one readable by group or others, a symbolic link (the key
/// must be the file in the audit directory, not whatever a link points at) and anything but a
/// regular file.
fn read_secret(path: &Path) -> Result<Option<String>, Error> {
    let key_error = |reason: &str| Error::Key {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(key_error(
                "is a symbolic link; the key must be a regular file",
            ));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(key_error("is not a regular file"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Key {
            path: path.to_path_buf(),
            reason: format!(
                "mode {:04o} lets group or others access it; chmod 600",
                meta.permissions().mode() & 0o777
            ),
        });
    }
    if meta.len() > 4096 {
        return Err(Error::Key {
            path: path.to_path_buf(),
            reason: "too large".into(),
        });
    }
    let mut s = String::new();
    f.read_to_string(&mut s).map_err(|e| Error::io(path, e))?;
    Ok(Some(s))
}

/// Creates a secret key file atomically: written and synced under a temporary name, then hard-linked
/// into place (which fails if the file appeared meanwhile), so a crash never leaves a half-written or
/// empty key that would stop the log from opening.
fn write_secret(path: &Path, text: &str) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover from a crash may have any mode: start from a fresh file that only we can read.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&tmp, e)),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    let linked = fs::hard_link(&tmp, path).map_err(|e| Error::io(path, e));
    let _ = fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Loads the checkpoint signing key, generating it (named `origin`) on first use.
pub(crate) fn load_or_create_signer(layout: &Layout, origin: &str) -> Result<NoteSigner, Error> {
    let path = layout.signing_key();
    let signer = if let Some(text) = read_secret(&path)? {
        NoteSigner::from_skey(&text).map_err(|e| Error::Key {
            path: path.clone(),
            reason: e.to_string(),
        })?
    } else {
        let s = NoteSigner::generate(origin)?;
        write_secret(&path, &format!("{}\n", s.to_skey()))?;
        s
    };
    let vk_path = layout.verifier_key();
    let vk = format!("{}\n", signer.verifier());
    if fs::read_to_string(&vk_path).ok().as_deref() != Some(vk.as_str()) {
        fs::write(&vk_path, vk).map_err(|e| Error::io(&vk_path, e))?;
    }
    Ok(signer)
}

/// Loads the audit HMAC key of an existing audit directory.
///
/// # Errors
/// Missing, malformed or group/other-readable key file.
pub fn load_audit_key(layout: &Layout) -> Result<AuditKey, Error> {
    let path = layout.hmac_key();
    let text = read_secret(&path)?.ok_or_else(|| Error::Key {
        path: path.clone(),
        reason: "missing (the audit log creates it on first start)".into(),
    })?;
    parse_hmac_key(&path, &text)
}

fn parse_hmac_key(path: &Path, text: &str) -> Result<AuditKey, Error> {
    let t = text.trim_end();
    let bad = || Error::Key {
        path: path.to_path_buf(),
        reason: "expected 64 hex digits".into(),
    };
    if t.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(t.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(AuditKey::from_bytes(key))
}

/// Loads the HMAC key, generating it on first use.
pub(crate) fn load_or_create_audit_key(layout: &Layout) -> Result<AuditKey, Error> {
    let path = layout.hmac_key();
    if let Some(text) = read_secret(&path)? {
        return parse_hmac_key(&path, &text);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
    let k = AuditKey::from_bytes(key);
    write_secret(&path, &format!("{}\n", crate::record::hex(k.bytes())))?;
    Ok(k)
}

/// Loads the verifier key stored in the directory.
///
/// # Errors
/// Missing or malformed.
pub fn load_verifier_key(layout: &Layout) -> Result<VerifierKey, Error> {
    let path = layout.verifier_key();
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    text.trim().parse()
}

/// Reads and verifies `checkpoints/latest` (`None` when absent).
pub(crate) fn read_latest(layout: &Layout, key: &VerifierKey) -> Result<Option<Checkpoint>, Error> {
    let path = layout.latest();
    match fs::read(&path) {
        Ok(t) => Checkpoint::open(&t, std::slice::from_ref(key)).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Parses a note's checkpoint body without verifying it.
pub(crate) fn peek_checkpoint(note: &str) -> Option<Checkpoint> {
    Note::parse(note.as_bytes())
        .ok()
        .and_then(|n| Checkpoint::parse_body(&n.text).ok())
}

/// Reads `hashes.bin` (whole hashes only).
pub(crate) fn read_hashes(layout: &Layout) -> Result<Vec<Hash>, Error> {
    let path = layout.hashes();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Calls `f(line, terminated)` for every line of every segment in order; `terminated` is false only
/// for a final line without `\n`. Stops early when `f` returns `false`.
///
/// Segments are streamed, so memory stays bounded whatever their size: a line longer than
/// [`MAX_LINE_LEN`] (which no record is) is passed cut to `MAX_LINE_LEN + 1` bytes, so its length
/// still tells it apart and its leaf hash matches no record.
///
/// # Errors
/// I/O errors.
pub fn for_each_line(layout: &Layout, f: impl FnMut(&[u8], bool) -> bool) -> Result<(), Error> {
    for_each_line_of(layout, &layout.segment_numbers()?, f).map(|_| ())
}

/// As [`for_each_line`], over the segments `segs`; `false` when `f` stopped the scan.
pub(crate) fn for_each_line_of(
    layout: &Layout,
    segs: &[u32],
    mut f: impl FnMut(&[u8], bool) -> bool,
) -> Result<bool, Error> {
    let cap = MAX_LINE_LEN + 1;
    let mut line = Vec::with_capacity(cap);
    for &n in segs {
        let path = layout.segment(n);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut r = BufReader::with_capacity(1 << 16, file);
        loop {
            line.clear();
            match read_line_capped(&mut r, &mut line, cap).map_err(|e| Error::io(&path, e))? {
                None => break,
                Some(terminated) => {
                    if !f(&line, terminated) {
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// Reads one line into `line` (without its newline), keeping at most `cap` bytes of it and
/// skipping the rest. `None` at end of input, else whether the line ended with a newline.
pub(crate) fn read_line_capped(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    let mut any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then_some(false));
        }
        any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = newline.map_or(buf.len(), |p| p + 1);
        r.consume(used);
        if newline.is_some() {
            return Ok(Some(true));
        }
    }
}

/// The length of `path` and of its longest prefix ending in a newline (everything after it is a
/// torn, unterminated final line), found by reading backwards in bounded chunks.
pub(crate) fn complete_lines_len(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt as _;
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; 1 << 16];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let want = usize::try_from(end - start).map_err(std::io::Error::other)?;
        let chunk = &mut buf[..want];
        f.read_exact_at(chunk, start)?;
        if let Some(p) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok((len, start + p as u64 + 1));
        }
        end = start;
    }
    Ok((len, 0))
}

/// Finds the value of top-level integer key `"seq"` in a canonical record line by scanning from the
/// end (keys are sorted, `seq` is near the end). Inside JSON strings a quote is always escaped, so
/// the byte pattern `"seq":` only occurs as a key.
#[must_use]
pub fn scan_seq(line: &[u8]) -> Option<u64> {
    let at = rfind(line, b"\"seq\":")? + 6;
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && line[at] == b'0') {
        return None;
    }
    let mut v = 0u64;
    for &b in &line[at..at + digits] {
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

/// Finds the `"time"` string value (fixed-width, so it compares lexicographically).
#[must_use]
pub fn scan_time(line: &[u8]) -> Option<&[u8]> {
    let at = rfind(line, b"\"time\":\"")? + 8;
    let v = line.get(at..at + 24)?;
    (line.get(at + 24) == Some(&b'"')).then_some(v)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_history_prefix_stops_before_a_note_being_written() {
        let a = "origin\n1\nAAAA\n\n\u{2014} origin sig1\n\n";
        let b = "origin\n2\nBBBB\n\n\u{2014} origin sig2\n\n";
        let both = format!("{a}{b}");
        assert_eq!(complete_history_len(both.as_bytes()), both.len());
        for cut in a.len()..both.len() {
            assert_eq!(
                complete_history_len(&both.as_bytes()[..cut]),
                a.len(),
                "{cut}"
            );
        }
        for cut in 0..a.len() {
            assert_eq!(complete_history_len(&both.as_bytes()[..cut]), 0, "{cut}");
        }
        assert_eq!(
            split_history(&both[..a.len()]),
            vec![a[..a.len() - 1].to_owned()]
        );
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_leftover_temporary_key_is_replaced_and_a_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hmac-key");
        // A crash after writing the temporary file but before linking it leaves only the temporary.
        std::fs::write(dir.path().join(".hmac-key.tmp"), "partial").unwrap();
        write_secret(&path, "first\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n");
        assert!(!dir.path().join(".hmac-key.tmp").exists());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // An existing key is never replaced.
        assert!(write_secret(&path, "second\n").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\n");
    }

    #[test]
    fn a_key_that_is_a_link_or_not_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere");
        write_secret(&real, "secret\n").unwrap();
        let link = dir.path().join("hmac-key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read_secret(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let d = dir.path().join("signing-key");
        std::fs::create_dir(&d).unwrap();
        let e = read_secret(&d).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert_eq!(read_secret(&real).unwrap().as_deref(), Some("secret\n"));
        assert_eq!(read_secret(&dir.path().join("absent")).unwrap(), None);
    }
}
