//! A bounded zip reader over a [`Source`]: end-of-central-directory (including ZIP64), the
//! central directory, every local header, and members read by index.
//!
//! Only the structures needed to judge an archive are read: the tail of the file, the central
//! directory (bounded by [`Limits::max_cd_bytes`]) and each local header; member data is read only
//! when [`read_member`] is called, so a PyTorch archive's tensor bytes are never touched. Anything
//! odd that a loader would still accept is recorded as an [`Anomaly`] rather than an error, so the
//! scanner can both report it and keep looking: duplicate names, the encrypted flag, unusual
//! compression methods, local/central mismatches, data descriptors, unsafe paths, prefix data.
//! A member is decompressed (stored or deflate only) through `take(declared + 1)` with per-member
//! and ratio limits; a CRC mismatch is reported on the [`Member`], not fatal.

use std::collections::HashMap;

use crate::Error;
use crate::compress::{self, Codec};
use crate::cursor::Cursor;
use crate::source::Source;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LOC_SIG: u32 = 0x0706_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: u64 = 22;
const MAX_COMMENT: u64 = 0xffff;

/// Limits for [`open`] and [`read_member`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most central-directory entries. Default 100 000.
    pub max_entries: u64,
    /// Longest member name, in bytes. Default 4096.
    pub max_name_len: usize,
    /// Largest central directory, in bytes. Default 64 MiB.
    pub max_cd_bytes: u64,
    /// Most decompressed bytes for one member. Default 1 GiB.
    pub max_member_bytes: u64,
    /// Largest decompressed/compressed ratio for a member (above `ratio_floor`). Default 1000.
    pub max_ratio: u64,
    /// Member size below which the ratio is not checked. Default 16 MiB.
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_name_len: 4096,
            max_cd_bytes: 64 << 20,
            max_member_bytes: 1 << 30,
            max_ratio: 1000,
            ratio_floor: 16 << 20,
        }
    }
}

/// One central-directory entry, checked against its local header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the central directory.
    pub index: usize,
    /// The name, decoded as UTF-8 (lossily; invalid bytes become U+FFFD).
    pub name: String,
    /// General-purpose flags.
    pub flags: u16,
    /// Compression method (0 stored, 8 deflate, anything else unsupported).
    pub method: u16,
    /// Declared CRC-32.
    pub crc32: u32,
    /// Declared compressed size.
    pub compressed_size: u64,
    /// Declared uncompressed size.
    pub uncompressed_size: u64,
    /// Offset of the local header (after correcting for prefix data).
    pub local_header_offset: u64,
    /// Offset of the member data, when the local header could be read.
    pub data_offset: Option<u64>,
}

impl Entry {
    /// Whether the "encrypted" flag (bit 0) is set.
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Whether sizes and CRC follow the data in a data descriptor (flag bit 3).
    #[must_use]
    pub fn has_data_descriptor(&self) -> bool {
        self.flags & 8 != 0
    }

    /// Whether [`read_member`] can decode this entry's method: stored (0), deflate (8), and the
    /// bzip2 (12) and LZMA (14) methods that Python's `zipfile` also reads.
    #[must_use]
    pub fn method_supported(&self) -> bool {
        matches!(self.method, 0 | 8 | 12 | 14)
    }
}

/// What is odd about an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// Two or more entries share a name (loaders disagree on which one wins).
    DuplicateName,
    /// The encrypted flag is set (some loaders ignore it; scanners that honour it skip the data).
    EncryptedFlag,
    /// A compression method other than stored or deflate.
    UnusualMethod,
    /// The local header disagrees with the central directory (name, method, flags, sizes, CRC).
    LocalMismatch,
    /// The local header could not be read.
    BadLocalHeader,
    /// Sizes and CRC are in a data descriptor after the data (flag bit 3).
    DataDescriptor,
    /// A name that is absolute, contains `..`, a backslash or a NUL.
    UnsafePath,
    /// Bytes before the first local header (the archive is appended to other data).
    PrefixData,
    /// The central directory does not hold the number of entries the end record declares.
    CountMismatch,
    /// Bytes between the central directory and the end record, or a multi-disk archive.
    Layout,
    /// Two entries' data overlap (the "overlapping files" zip bomb, or a parser confusion).
    Overlap,
    /// A local header that no central-directory entry points to (invisible to loaders that read
    /// the central directory, visible to those that stream local headers).
    HiddenEntry,
}

/// An anomaly with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// What is odd.
    pub kind: AnomalyKind,
    /// The entry concerned, if any.
    pub entry: Option<usize>,
    /// Byte offset of the evidence.
    pub offset: u64,
    /// Short human-readable detail.
    pub detail: String,
}

/// A parsed archive index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Central-directory entries, in order.
    pub entries: Vec<Entry>,
    /// Anomalies found while reading the index.
    pub anomalies: Vec<Anomaly>,
    /// Offset of the end-of-central-directory record.
    pub eocd_offset: u64,
    /// Whether ZIP64 records were used.
    pub zip64: bool,
}

/// A member's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The decompressed data.
    pub data: Vec<u8>,
    /// Whether the CRC-32 of `data` matches the declared one.
    pub crc_ok: bool,
}

/// True when `head` starts like a zip archive (local header, or an empty archive's end record).
#[must_use]
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

fn read_at(src: &dyn Source, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>, Error> {
    if offset.checked_add(len).is_none_or(|end| end > src.len()) {
        return Err(Error::Truncated {
            offset: src.len(),
            what,
        });
    }
    src.read_vec(offset, len, len)
        .map_err(|e| Error::io(offset, what, &e))
}

/// Reads the archive index: end record (ZIP64 too), central directory and local headers.
pub fn open(src: &dyn Source, limits: &Limits) -> Result<Archive, Error> {
    let len = src.len();
    if len < EOCD_LEN {
        return Err(Error::Truncated {
            offset: len,
            what: "zip end of central directory",
        });
    }
    // Most archives have no comment: try the last 22 bytes before reading the longest tail.
    let last = read_at(
        src,
        len - EOCD_LEN,
        EOCD_LEN,
        "zip end of central directory",
    )?;
    let no_comment = last.starts_with(&EOCD_SIG.to_le_bytes()) && last.ends_with(&[0, 0]);
    let tail_len = if no_comment {
        EOCD_LEN
    } else {
        len.min(EOCD_LEN + MAX_COMMENT)
    };
    let tail_start = len - tail_len;
    let tail = if no_comment {
        last
    } else {
        read_at(src, tail_start, tail_len, "zip tail")?
    };
    // Search backwards for an end record whose comment runs exactly to the end of the file
    // (or, failing that, any end record).
    let mut found = None;
    let mut fallback = None;
    let mut pos = tail.len().saturating_sub(EOCD_LEN as usize);
    loop {
        let mut c = Cursor::with_base(tail.get(pos..).unwrap_or_default(), tail_start + pos as u64);
        if c.read_u32_le("eocd signature")? == EOCD_SIG {
            let mut c2 = c.clone();
            c2.take(16, "eocd")?;
            let comment = u64::from(c2.read_u16_le("eocd comment length")?);
            let at = tail_start + pos as u64;
            if at + EOCD_LEN + comment == len {
                found = Some(pos);
                break;
            }
            fallback.get_or_insert(pos);
        }
        if pos == 0 {
            break;
        }
        pos -= 1;
    }
    let Some(pos) = found.or(fallback) else {
        return Err(Error::Malformed {
            offset: len,
            what: "zip end of central directory",
            reason: "no end-of-central-directory record",
        });
    };
    let eocd_offset = tail_start + pos as u64;
    let mut anomalies = Vec::new();
    let mut c = Cursor::with_base(tail.get(pos..).unwrap_or_default(), eocd_offset);
    c.read_u32_le("eocd signature")?;
    let disk = c.read_u16_le("eocd disk")?;
    let cd_disk = c.read_u16_le("eocd cd disk")?;
    let _disk_entries = c.read_u16_le("eocd disk entries")?;
    let mut total = u64::from(c.read_u16_le("eocd entries")?);
    let mut cd_size = u64::from(c.read_u32_le("eocd cd size")?);
    let mut cd_offset = u64::from(c.read_u32_le("eocd cd offset")?);
    if disk != 0 || cd_disk != 0 {
        anomalies.push(Anomaly {
            kind: AnomalyKind::Layout,
            entry: None,
            offset: eocd_offset,
            detail: format!("multi-disk archive (disk {disk}, cd disk {cd_disk})"),
        });
    }
    // ZIP64 locator, immediately before the end record.
    let mut zip64 = false;
    let mut cd_end = eocd_offset;
    if eocd_offset >= 20 {
        let loc = read_at(src, eocd_offset - 20, 20, "zip64 locator")?;
        let mut lc = Cursor::with_base(&loc, eocd_offset - 20);
        if lc.read_u32_le("zip64 locator signature")? == EOCD64_LOC_SIG {
            lc.read_u32_le("zip64 locator disk")?;
            let rec = lc.read_u64_le("zip64 eocd offset")?;
            let recbytes = read_at(src, rec, 56, "zip64 end of central directory")?;
            let mut rc = Cursor::with_base(&recbytes, rec);
            if rc.read_u32_le("zip64 eocd signature")? != EOCD64_SIG {
                return Err(Error::Malformed {
                    offset: rec,
                    what: "zip64 end of central directory",
                    reason: "bad signature",
                });
            }
            rc.take(20, "zip64 eocd")?;
            rc.read_u64_le("zip64 disk entries")?;
            total = rc.read_u64_le("zip64 entries")?;
            cd_size = rc.read_u64_le("zip64 cd size")?;
            cd_offset = rc.read_u64_le("zip64 cd offset")?;
            zip64 = true;
            cd_end = rec;
        }
    }
    if total > limits.max_entries {
        return Err(Error::LimitExceeded {
            offset: eocd_offset,
            limit: "max_entries",
            max: limits.max_entries,
        });
    }
    if cd_size > limits.max_cd_bytes {
        return Err(Error::LimitExceeded {
            offset: eocd_offset,
            limit: "max_cd_bytes",
            max: limits.max_cd_bytes,
        });
    }
    // Where the directory really is: archives appended to other data have every offset shifted.
    let real_cd = cd_end.checked_sub(cd_size).ok_or(Error::Malformed {
        offset: eocd_offset,
        what: "zip central directory",
        reason: "size larger than the file",
    })?;
    let shift = real_cd.saturating_sub(cd_offset);
    if real_cd < cd_offset {
        anomalies.push(Anomaly {
            kind: AnomalyKind::Layout,
            entry: None,
            offset: eocd_offset,
            detail: format!(
                "central directory declared at {cd_offset} overlaps the end record area (found at {real_cd})"
            ),
        });
    }
    let cd_start = if real_cd < cd_offset {
        cd_offset
    } else {
        real_cd
    };
    if shift > 0 {
        anomalies.push(Anomaly {
            kind: AnomalyKind::PrefixData,
            entry: None,
            offset: 0,
            detail: format!("{shift} bytes of data before the archive"),
        });
    }
    let cd = read_at(src, cd_start, cd_size, "zip central directory")?;
    let mut c = Cursor::with_base(&cd, cd_start);
    let mut entries: Vec<Entry> = Vec::new();
    while !c.is_empty() {
        let at = c.offset();
        if entries.len() as u64 >= limits.max_entries {
            return Err(Error::LimitExceeded {
                offset: at,
                limit: "max_entries",
                max: limits.max_entries,
            });
        }
        if c.read_u32_le("central header signature")? != CDH_SIG {
            return Err(Error::Malformed {
                offset: at,
                what: "zip central directory",
                reason: "bad central header signature",
            });
        }
        c.take(4, "central header versions")?;
        let flags = c.read_u16_le("central header flags")?;
        let method = c.read_u16_le("central header method")?;
        c.take(4, "central header time")?;
        let crc32 = c.read_u32_le("central header crc")?;
        let mut csize = u64::from(c.read_u32_le("central header compressed size")?);
        let mut usize_ = u64::from(c.read_u32_le("central header size")?);
        let name_len = c.read_u16_le("central header name length")?;
        let extra_len = c.read_u16_le("central header extra length")?;
        let comment_len = c.read_u16_le("central header comment length")?;
        c.take(8, "central header attributes")?;
        let mut lho = u64::from(c.read_u32_le("central header local offset")?);
        if usize::from(name_len) > limits.max_name_len {
            return Err(Error::LimitExceeded {
                offset: at,
                limit: "max_name_len",
                max: limits.max_name_len as u64,
            });
        }
        let raw_name = c.take(usize::from(name_len), "central header name")?;
        let mut extra = c.sub(usize::from(extra_len), "central header extra")?;
        c.take(usize::from(comment_len), "central header comment")?;
        // ZIP64 extended information: only the fields that overflowed are present, in order.
        while extra.remaining() >= 4 {
            let id = extra.read_u16_le("extra id")?;
            let size = extra.read_u16_le("extra size")?;
            let mut field = extra.sub(usize::from(size), "extra field")?;
            if id == 1 {
                if usize_ == 0xffff_ffff {
                    usize_ = field.read_u64_le("zip64 size")?;
                }
                if csize == 0xffff_ffff {
                    csize = field.read_u64_le("zip64 compressed size")?;
                }
                if lho == 0xffff_ffff {
                    lho = field.read_u64_le("zip64 local offset")?;
                }
            }
        }
        let name = String::from_utf8_lossy(raw_name).into_owned();
        let index = entries.len();
        entries.push(Entry {
            index,
            name,
            flags,
            method,
            crc32,
            compressed_size: csize,
            uncompressed_size: usize_,
            local_header_offset: lho.saturating_add(shift),
            data_offset: None,
        });
    }
    if entries.len() as u64 != total {
        anomalies.push(Anomaly {
            kind: AnomalyKind::CountMismatch,
            entry: None,
            offset: eocd_offset,
            detail: format!(
                "end record declares {total} entries, central directory holds {}",
                entries.len()
            ),
        });
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &mut entries {
        check_entry(src, e, limits, &mut anomalies, &mut seen);
    }
    check_coverage(src, &entries, shift, cd_start, &mut anomalies);
    Ok(Archive {
        entries,
        anomalies,
        eocd_offset,
        zip64,
    })
}

fn check_entry(
    src: &dyn Source,
    e: &mut Entry,
    limits: &Limits,
    anomalies: &mut Vec<Anomaly>,
    seen: &mut HashMap<String, usize>,
) {
    let mut note = |kind, offset, detail: String| {
        anomalies.push(Anomaly {
            kind,
            entry: Some(e.index),
            offset,
            detail,
        });
    };
    let at = e.local_header_offset;
    if let Some(first) = seen.get(&e.name) {
        note(
            AnomalyKind::DuplicateName,
            at,
            format!("`{}` also at entry {first}", e.name),
        );
    } else {
        seen.insert(e.name.clone(), e.index);
    }
    if e.is_encrypted() {
        note(
            AnomalyKind::EncryptedFlag,
            at,
            "encrypted flag set".to_owned(),
        );
    }
    if !e.method_supported() {
        note(
            AnomalyKind::UnusualMethod,
            at,
            format!("compression method {}", e.method),
        );
    }
    if e.has_data_descriptor() {
        note(
            AnomalyKind::DataDescriptor,
            at,
            "sizes and CRC in a data descriptor".to_owned(),
        );
    }
    let n = &e.name;
    if n.starts_with('/')
        || n.contains('\\')
        || n.contains('\0')
        || n.split('/').any(|p| p == "..")
        || n.get(1..2) == Some(":")
    {
        note(AnomalyKind::UnsafePath, at, format!("unsafe path `{n}`"));
    }
    // Local header.
    let head = match read_at(src, at, 30, "zip local header") {
        Ok(h) => h,
        Err(err) => {
            note(AnomalyKind::BadLocalHeader, at, err.to_string());
            return;
        }
    };
    let parsed = parse_local(&head, at);
    let LocalHeader {
        flags,
        method,
        crc,
        cs,
        us,
        nl,
        xl,
    } = match parsed {
        Ok(v) => v,
        Err(err) => {
            note(AnomalyKind::BadLocalHeader, at, err.to_string());
            return;
        }
    };
    if usize::from(nl) > limits.max_name_len {
        note(
            AnomalyKind::BadLocalHeader,
            at,
            format!("local name of {nl} bytes exceeds the limit"),
        );
        return;
    }
    match read_at(src, at + 30, u64::from(nl), "zip local name") {
        Ok(local_name) => {
            let local_name = String::from_utf8_lossy(&local_name);
            if local_name != e.name.as_str() {
                note(
                    AnomalyKind::LocalMismatch,
                    at,
                    format!(
                        "local header names `{local_name}`, central directory `{}`",
                        e.name
                    ),
                );
            }
        }
        Err(err) => {
            note(AnomalyKind::BadLocalHeader, at, err.to_string());
            return;
        }
    }
    if method != e.method {
        note(
            AnomalyKind::LocalMismatch,
            at,
            format!("local method {method}, central method {}", e.method),
        );
    }
    if (flags ^ e.flags) & 0x9 != 0 {
        note(
            AnomalyKind::LocalMismatch,
            at,
            format!("local flags {flags:#06x}, central flags {:#06x}", e.flags),
        );
    }
    if flags & 8 == 0 {
        let sizes_differ = (cs != 0xffff_ffff && u64::from(cs) != e.compressed_size)
            || (us != 0xffff_ffff && u64::from(us) != e.uncompressed_size);
        if crc != e.crc32 || sizes_differ {
            note(
                AnomalyKind::LocalMismatch,
                at,
                "local header CRC or sizes differ from the central directory".to_owned(),
            );
        }
    }
    e.data_offset = Some(at + 30 + u64::from(nl) + u64::from(xl));
}

/// Checks how the entries cover the bytes before the central directory: overlapping entries, and
/// gaps that start with a local header no central entry points to.
fn check_coverage(
    src: &dyn Source,
    entries: &[Entry],
    archive_start: u64,
    cd_start: u64,
    anomalies: &mut Vec<Anomaly>,
) {
    let mut spans: Vec<(u64, u64, usize)> = entries
        .iter()
        .filter_map(|e| {
            let data = e.data_offset?;
            // A data descriptor (up to 24 bytes) may follow the data.
            let desc = if e.has_data_descriptor() { 24 } else { 0 };
            let end = data.saturating_add(e.compressed_size).saturating_add(desc);
            Some((e.local_header_offset, end, e.index))
        })
        .collect();
    spans.sort_unstable();
    let mut covered_to: u64 = archive_start;
    let mut last_index: Option<usize> = None;
    let mut reported_overlap = false;
    for &(start, end, index) in &spans {
        if start < covered_to && !reported_overlap {
            if let Some(prev) = last_index {
                anomalies.push(Anomaly {
                    kind: AnomalyKind::Overlap,
                    entry: Some(index),
                    offset: start,
                    detail: format!("entry {index} overlaps the data of entry {prev}"),
                });
                reported_overlap = true;
            }
        } else if start > covered_to {
            note_gap(src, covered_to, start, anomalies);
        }
        if end > covered_to {
            covered_to = end;
            last_index = Some(index);
        }
    }
    if cd_start > covered_to {
        note_gap(src, covered_to, cd_start, anomalies);
    }
}

fn note_gap(src: &dyn Source, from: u64, to: u64, anomalies: &mut Vec<Anomaly>) {
    let mut sig = [0u8; 4];
    let hidden = to.saturating_sub(from) >= 30
        && src.read_exact_at(from, &mut sig).is_ok()
        && u32::from_le_bytes(sig) == LFH_SIG;
    anomalies.push(Anomaly {
        kind: if hidden {
            AnomalyKind::HiddenEntry
        } else {
            AnomalyKind::Layout
        },
        entry: None,
        offset: from,
        detail: if hidden {
            format!("local header at {from} is not in the central directory")
        } else {
            format!("{} unaccounted bytes at {from}", to.saturating_sub(from))
        },
    });
}

/// The fixed part of a local file header.
struct LocalHeader {
    flags: u16,
    method: u16,
    crc: u32,
    cs: u32,
    us: u32,
    nl: u16,
    xl: u16,
}

fn parse_local(head: &[u8], at: u64) -> Result<LocalHeader, Error> {
    let mut c = Cursor::with_base(head, at);
    if c.read_u32_le("local header signature")? != LFH_SIG {
        return Err(Error::Malformed {
            offset: at,
            what: "zip local header",
            reason: "bad local header signature",
        });
    }
    c.take(2, "local header version")?;
    let flags = c.read_u16_le("local header flags")?;
    let method = c.read_u16_le("local header method")?;
    c.take(4, "local header time")?;
    let crc = c.read_u32_le("local header crc")?;
    let cs = c.read_u32_le("local header compressed size")?;
    let us = c.read_u32_le("local header size")?;
    let nl = c.read_u16_le("local header name length")?;
    let xl = c.read_u16_le("local header extra length")?;
    Ok(LocalHeader {
        flags,
        method,
        crc,
        cs,
        us,
        nl,
        xl,
    })
}

/// Reads and decompresses entry `index`, producing at most `max_bytes` (and at most
/// [`Limits::max_member_bytes`]) bytes.
pub fn read_member(
    src: &dyn Source,
    archive: &Archive,
    index: usize,
    limits: &Limits,
    max_bytes: u64,
) -> Result<Member, Error> {
    let e = archive.entries.get(index).ok_or(Error::Malformed {
        offset: archive.eocd_offset,
        what: "zip entry",
        reason: "no such entry",
    })?;
    let at = e.local_header_offset;
    let data_offset = e.data_offset.ok_or(Error::Malformed {
        offset: at,
        what: "zip local header",
        reason: "unreadable local header",
    })?;
    let max = max_bytes.min(limits.max_member_bytes);
    if e.uncompressed_size > max {
        return Err(Error::LimitExceeded {
            offset: at,
            limit: "max_member_bytes",
            max,
        });
    }
    if e.uncompressed_size > limits.ratio_floor
        && e.uncompressed_size / e.compressed_size.max(1) > limits.max_ratio
    {
        return Err(Error::LimitExceeded {
            offset: at,
            limit: "max_ratio",
            max: limits.max_ratio,
        });
    }
    let data = match e.method {
        0 => {
            if e.compressed_size != e.uncompressed_size {
                return Err(Error::Malformed {
                    offset: at,
                    what: "zip stored member",
                    reason: "compressed and uncompressed sizes differ",
                });
            }
            read_at(src, data_offset, e.compressed_size, "zip member data")?
        }
        8 | 12 | 14 => {
            // Deflate never expands by more than a few bytes per 16 KiB block (nor do the others).
            let allowed = max.saturating_add(max / 1000).saturating_add(1024);
            if e.compressed_size > allowed {
                return Err(Error::LimitExceeded {
                    offset: at,
                    limit: "max_member_bytes",
                    max,
                });
            }
            let raw = read_at(src, data_offset, e.compressed_size, "zip member data")?;
            let climits = compress::Limits {
                max_output: max,
                max_ratio: limits.max_ratio,
                ratio_floor: limits.ratio_floor,
            };
            let (codec, input) = match e.method {
                8 => (Codec::Deflate, raw),
                12 => (Codec::Bzip2, raw),
                _ => (
                    Codec::Lzma,
                    zip_lzma_to_alone(&raw, e.uncompressed_size, data_offset)?,
                ),
            };
            compress::decompress_with_hint(codec, &input, &climits, Some(e.uncompressed_size))
                .map_err(|err| relocate(err, data_offset))?
        }
        m => {
            return Err(Error::Unsupported {
                offset: at,
                what: "zip compression method",
                detail: format!("method {m} in `{}`", e.name),
            });
        }
    };
    if data.len() as u64 != e.uncompressed_size {
        return Err(Error::Malformed {
            offset: data_offset,
            what: "zip member",
            reason: "decompressed size differs from the declared size",
        });
    }
    let mut crc = flate2::Crc::new();
    crc.update(&data);
    Ok(Member {
        crc_ok: crc.sum() == e.crc32,
        data,
    })
}

/// Zip's LZMA method stores a 4-byte version/size header and the 5 property bytes before the raw
/// stream; rebuild the 13-byte "LZMA alone" header (properties, dictionary size, size).
fn zip_lzma_to_alone(raw: &[u8], size: u64, offset: u64) -> Result<Vec<u8>, Error> {
    let mut c = Cursor::with_base(raw, offset);
    c.take(2, "zip lzma version")?;
    let props_len = c.read_u16_le("zip lzma properties size")?;
    if props_len != 5 {
        return Err(Error::Malformed {
            offset,
            what: "zip lzma header",
            reason: "properties are not 5 bytes",
        });
    }
    let props = c.take(5, "zip lzma properties")?;
    let mut out = Vec::with_capacity(raw.len().saturating_add(4));
    out.extend_from_slice(props);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(c.rest());
    Ok(out)
}

fn relocate(err: Error, base: u64) -> Error {
    match err {
        Error::Decompress {
            offset,
            codec,
            reason,
        } => Error::Decompress {
            offset: offset.saturating_add(base),
            codec,
            reason,
        },
        Error::LimitExceeded { offset, limit, max } => Error::LimitExceeded {
            offset: offset.saturating_add(base),
            limit,
            max,
        },
        other => other,
    }
}

/// Fuzz entry point: opens `data` as a zip and reads every member under small limits.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let limits = Limits {
        max_member_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(archive) = open(&data, &limits) {
        assert!(archive.entries.len() as u64 <= limits.max_entries);
        for i in 0..archive.entries.len() {
            if let Ok(m) = read_member(&data, &archive, i, &limits, 1 << 20) {
                assert!(m.data.len() as u64 <= limits.max_member_bytes);
            }
        }
    }
}
