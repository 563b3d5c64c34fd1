//! A bounded tar reader over a [`Source`]: ustar, GNU (`L`/`K` long names, base-256 sizes) and
//! pax (`x`/`g`) headers. Used for the legacy PyTorch tar format (`sys_info`, `pickle`, `tensors`,
//! `storages`).
//!
//! [`open`] walks the 512-byte headers only (member data is skipped by seeking), verifying each
//! header checksum; [`read_member`] reads one member's bytes under a size limit.

use crate::Error;
use crate::cursor::Cursor;
use crate::source::Source;

const BLOCK: u64 = 512;

/// Limits for [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (headers of any type). Default 100 000.
    pub max_entries: u64,
    /// Largest pax extended header or GNU long name, in bytes. Default 1 MiB.
    pub max_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_header_bytes: 1 << 20,
        }
    }
}

/// What a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic or hard link (data not followed).
    Link,
    /// Anything else (devices, FIFOs, unknown type flags).
    Other(u8),
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full name (pax `path` or GNU long name when present), lossily decoded.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Offset of its header block.
    pub header_offset: u64,
    /// Offset of its data.
    pub data_offset: u64,
    /// Data size in bytes.
    pub size: u64,
}

/// A walked archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Members in order (pax/GNU meta headers are folded into the member they describe).
    pub entries: Vec<Entry>,
    /// Whether the archive ended with the end-of-archive zero block (rather than at end of input).
    pub terminated: bool,
}

/// True when `head` holds a tar header: the `ustar` magic at offset 257 and a valid checksum.
#[must_use]
pub fn sniff(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    block.get(257..262) == Some(b"ustar") && checksum_ok(block)
}

fn checksum_ok(block: &[u8]) -> bool {
    let Some(field) = block.get(148..156) else {
        return false;
    };
    let Ok(declared) = parse_octal(field) else {
        return false;
    };
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == declared
}

fn parse_octal(field: &[u8]) -> Result<u64, ()> {
    // GNU base-256: high bit of the first byte set.
    if let Some((&first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        let mut v: u64 = u64::from(first & 0x7f);
        for &b in rest {
            v = v
                .checked_mul(256)
                .ok_or(())?
                .checked_add(u64::from(b))
                .ok_or(())?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut any = false;
    for &b in field {
        match b {
            b'0'..=b'7' => {
                v = v
                    .checked_mul(8)
                    .ok_or(())?
                    .checked_add(u64::from(b - b'0'))
                    .ok_or(())?;
                any = true;
            }
            b' ' | 0 if !any => {}
            b' ' | 0 => break,
            _ => return Err(()),
        }
    }
    Ok(v)
}

fn field_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
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

/// Walks the headers of a tar archive.
pub fn open(src: &dyn Source, limits: &Limits) -> Result<Archive, Error> {
    let mut entries = Vec::new();
    let mut pos: u64 = 0;
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    let mut headers: u64 = 0;
    loop {
        if pos == src.len() {
            return Ok(Archive {
                entries,
                terminated: false,
            });
        }
        headers += 1;
        if headers > limits.max_entries {
            return Err(Error::LimitExceeded {
                offset: pos,
                limit: "max_entries",
                max: limits.max_entries,
            });
        }
        let block = read_at(src, pos, BLOCK, "tar header")?;
        if block.iter().all(|&b| b == 0) {
            return Ok(Archive {
                entries,
                terminated: true,
            });
        }
        if !checksum_ok(&block) {
            return Err(Error::Malformed {
                offset: pos,
                what: "tar header",
                reason: "bad header checksum",
            });
        }
        let mut c = Cursor::with_base(&block, pos);
        let name = c.take(100, "tar name")?;
        c.take(24, "tar mode/uid/gid")?;
        let size_field = c.take(12, "tar size")?;
        c.take(20, "tar mtime/checksum")?;
        let typeflag = c.read_u8("tar type")?;
        c.take(100, "tar link name")?;
        let magic = c.take(8, "tar magic")?;
        c.take(32 + 32 + 16, "tar owner")?;
        let prefix = c.take(155, "tar prefix")?;
        let header_size = parse_octal(size_field).map_err(|()| Error::Malformed {
            offset: pos + 124,
            what: "tar size",
            reason: "not an octal number",
        })?;
        let size = match typeflag {
            b'x' | b'g' | b'L' | b'K' => header_size,
            _ => pax_size.take().unwrap_or(header_size),
        };
        let data_offset = pos + BLOCK;
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s / BLOCK * BLOCK)
            .ok_or(Error::Malformed {
                offset: pos + 124,
                what: "tar size",
                reason: "size overflows",
            })?;
        let next = data_offset.checked_add(padded).ok_or(Error::Malformed {
            offset: pos + 124,
            what: "tar size",
            reason: "size overflows",
        })?;
        if data_offset.saturating_add(size) > src.len() {
            return Err(Error::Truncated {
                offset: src.len(),
                what: "tar member data",
            });
        }
        match typeflag {
            b'x' | b'g' | b'L' | b'K' => {
                if size > limits.max_header_bytes {
                    return Err(Error::LimitExceeded {
                        offset: pos,
                        limit: "max_header_bytes",
                        max: limits.max_header_bytes,
                    });
                }
                let data = read_at(src, data_offset, size, "tar extended header")?;
                match typeflag {
                    b'L' => long_name = Some(field_str(&data)),
                    b'x' => {
                        for (k, v) in pax_records(&data, data_offset)? {
                            match k.as_str() {
                                "path" => pax_path = Some(v),
                                "size" => {
                                    pax_size = Some(v.parse().map_err(|_| Error::Malformed {
                                        offset: data_offset,
                                        what: "pax size",
                                        reason: "not a decimal number",
                                    })?);
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {
                let mut full = field_str(name);
                if magic.starts_with(b"ustar\0") {
                    let p = field_str(prefix);
                    if !p.is_empty() {
                        full = format!("{p}/{full}");
                    }
                }
                if let Some(n) = long_name.take() {
                    full = n;
                }
                if let Some(n) = pax_path.take() {
                    full = n;
                }
                let kind = match typeflag {
                    b'0' | 0 | b'7' => Kind::File,
                    b'5' => Kind::Directory,
                    b'1' | b'2' => Kind::Link,
                    t => Kind::Other(t),
                };
                entries.push(Entry {
                    name: full,
                    kind,
                    header_offset: pos,
                    data_offset,
                    size,
                });
            }
        }
        pos = next.min(src.len());
    }
}

fn pax_records(data: &[u8], base: u64) -> Result<Vec<(String, String)>, Error> {
    let bad = |reason| Error::Malformed {
        offset: base,
        what: "pax record",
        reason,
    };
    let mut out = Vec::new();
    let mut c = Cursor::with_base(data, base);
    while !c.is_empty() {
        if c.peek_u8() == Some(0) {
            break;
        }
        let rest_len = c.remaining();
        // "LEN key=value\n": LEN counts the whole record.
        let mut len_digits = 0usize;
        let mut len: usize = 0;
        let mut p = c.clone();
        loop {
            match p.read_u8("pax length")? {
                d @ b'0'..=b'9' => {
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(d - b'0')))
                        .ok_or_else(|| bad("length overflows"))?;
                    len_digits += 1;
                }
                b' ' if len_digits > 0 => break,
                _ => return Err(bad("bad length")),
            }
        }
        if len > rest_len || len <= len_digits + 1 {
            return Err(bad("length out of range"));
        }
        let record = c.take(len, "pax record")?;
        let body = record.get(len_digits + 1..len - 1).unwrap_or_default();
        let text = String::from_utf8_lossy(body);
        if let Some((k, v)) = text.split_once('=') {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    Ok(out)
}

/// Reads one member's data, refusing more than `max_bytes`.
pub fn read_member(src: &dyn Source, entry: &Entry, max_bytes: u64) -> Result<Vec<u8>, Error> {
    if entry.size > max_bytes {
        return Err(Error::LimitExceeded {
            offset: entry.header_offset,
            limit: "max_member_bytes",
            max: max_bytes,
        });
    }
    read_at(src, entry.data_offset, entry.size, "tar member data")
}

/// Fuzz entry point: walks `data` as a tar archive and reads small members.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(a) = open(&data, &limits) {
        assert!(a.entries.len() as u64 <= limits.max_entries);
        for e in &a.entries {
            if let Ok(d) = read_member(&data, e, 1 << 20) {
                assert_eq!(d.len() as u64, e.size);
            }
        }
    }
}
