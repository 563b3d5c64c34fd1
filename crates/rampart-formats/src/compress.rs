//! Bounded decompression of gzip, zlib, bzip2, xz and lzma ("alone") streams, and raw deflate
//! for zip members.
//!
//! joblib and pandas decompress pickles transparently, so a compressed pickle is still a pickle
//! (scanner.md §3.1). Every decoder here is pure Rust and runs under [`Limits`]: the output is
//! read through `take(max_output + 1)` in chunks, so a decompression bomb stops at the output limit
//! or at the ratio limit with [`Error::LimitExceeded`], never with unbounded memory or time. The
//! lzma/xz dictionary is bounded too (`lzma-rust2`'s memory limit), so a stream declaring a 4 GiB
//! dictionary is refused before anything is allocated.

use std::io::{self, Read};

use crate::Error;

/// A compression format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// zlib (RFC 1950), as written by joblib's default compressor.
    Zlib,
    /// bzip2, possibly several streams.
    Bzip2,
    /// xz container (LZMA2).
    Xz,
    /// Legacy `.lzma` ("LZMA alone") stream, as written by joblib and Python's `lzma.FORMAT_ALONE`.
    Lzma,
    /// Raw deflate (RFC 1951), as stored in zip members. Never sniffed.
    Deflate,
}

impl Codec {
    /// Lowercase name used in findings.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Lzma => "lzma",
            Self::Deflate => "deflate",
        }
    }
}

/// Limits for [`decompress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most decompressed bytes produced. Default 1 GiB.
    pub max_output: u64,
    /// Largest ratio of decompressed to compressed bytes, checked once the output passes
    /// `ratio_floor` bytes. Default 1000.
    pub max_ratio: u64,
    /// Output size below which the ratio is not checked (small outputs of tiny inputs are
    /// legitimately "high ratio", and so are moderately sized all-zero tensors). Default 16 MiB.
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output: 1 << 30,
            max_ratio: 1000,
            ratio_floor: 16 << 20,
        }
    }
}

/// Recognises a compressed stream by its first bytes. Raw deflate has no magic and is never
/// returned.
#[must_use]
pub fn sniff(head: &[u8]) -> Option<Codec> {
    match head {
        [0x1f, 0x8b, 0x08, ..] => Some(Codec::Gzip),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some(Codec::Bzip2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Codec::Xz),
        // joblib's lzma prefix; `]` followed by NUL is not a valid pickle start.
        [0x5d, 0x00, 0x00, ..] => Some(Codec::Lzma),
        [cmf, flg, ..]
            if cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0
                && flg & 0x20 == 0 =>
        {
            Some(Codec::Zlib)
        }
        _ => None,
    }
}

/// Decompresses `data` (a whole compressed stream) under `limits`.
///
/// Fails with [`Error::LimitExceeded`] (`max_output` or `max_ratio`) as soon as a limit is
/// crossed, and with [`Error::Decompress`] when the stream is corrupt or truncated.
pub fn decompress(codec: Codec, data: &[u8], limits: &Limits) -> Result<Vec<u8>, Error> {
    decompress_with_hint(codec, data, limits, None)
}

/// Like [`decompress`], with a declared output size (zip members) used to stop at
/// `declared + 1` bytes: producing more than declared is reported as [`Error::Malformed`].
pub fn decompress_with_hint(
    codec: Codec,
    data: &[u8],
    limits: &Limits,
    declared: Option<u64>,
) -> Result<Vec<u8>, Error> {
    let (out, result) = decompress_partial(codec, data, limits, declared);
    result.map(|()| out)
}

/// Like [`decompress_with_hint`], but also returns the bytes produced before an error or a limit
/// stopped the decoder (at most the output limit), so that a payload found before the damage still
/// counts.
pub fn decompress_partial(
    codec: Codec,
    data: &[u8],
    limits: &Limits,
    declared: Option<u64>,
) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let result = run(codec, data, limits, declared, &mut out);
    (out, result)
}

fn run(
    codec: Codec,
    data: &[u8],
    limits: &Limits,
    declared: Option<u64>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let input: &[u8] = data;
    let dict_kb = u32::try_from(limits.max_output.div_ceil(1024).saturating_add(1024))
        .unwrap_or(u32::MAX - 1);
    let corrupt = |reason: String| Error::Decompress {
        offset: 0,
        codec: codec.name(),
        reason,
    };
    let mut reader: Box<dyn Read + '_> = match codec {
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Codec::Zlib => Box::new(flate2::bufread::ZlibDecoder::new(input)),
        Codec::Deflate => Box::new(flate2::bufread::DeflateDecoder::new(input)),
        Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Codec::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(input, true, dict_kb)),
        Codec::Lzma => Box::new(
            lzma_rust2::LzmaReader::new_mem_limit(input, dict_kb, None)
                .map_err(|e| corrupt(e.to_string()))?,
        ),
    };
    let cap = match declared {
        Some(d) => d.min(limits.max_output),
        None => limits.max_output,
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let room = cap.saturating_add(1).saturating_sub(out.len() as u64);
        if room == 0 {
            break;
        }
        let want = usize::try_from(room.min(chunk.len() as u64)).unwrap_or(chunk.len());
        let buf = chunk.get_mut(..want).unwrap_or_default();
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e.to_string())),
        };
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        let produced = out.len() as u64;
        // The compressed size is bounded by the input length; using it (not the bytes the
        // decoder has consumed so far) keeps the check conservative for buffered decoders.
        let compressed = (data.len() as u64).max(1);
        if produced > limits.ratio_floor && produced / compressed > limits.max_ratio {
            return Err(Error::LimitExceeded {
                offset: 0,
                limit: "max_ratio",
                max: limits.max_ratio,
            });
        }
    }
    let produced = out.len() as u64;
    if produced > cap {
        out.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
        return Err(match declared {
            Some(d) if d < limits.max_output => Error::Malformed {
                offset: 0,
                what: "compressed member",
                reason: "decompresses to more bytes than declared",
            },
            _ => Error::LimitExceeded {
                offset: 0,
                limit: "max_output",
                max: limits.max_output,
            },
        });
    }
    Ok(())
}

/// Fuzz entry point: sniffs and decompresses `data` with small limits, checking that the output
/// never exceeds them.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let limits = Limits {
        max_output: 1 << 20,
        max_ratio: 1000,
        ratio_floor: 1 << 16,
    };
    for codec in [
        sniff(data),
        Some(Codec::Deflate),
        Some(Codec::Xz),
        Some(Codec::Lzma),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(out) = decompress(codec, data, &limits) {
            assert!(
                out.len() as u64 <= limits.max_output,
                "output over the limit"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic() {
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Some(Codec::Gzip));
        assert_eq!(sniff(b"BZh9"), Some(Codec::Bzip2));
        assert_eq!(sniff(b"\xfd7zXZ\x00"), Some(Codec::Xz));
        assert_eq!(sniff(b"\x78\x9c"), Some(Codec::Zlib));
        assert_eq!(sniff(b"\x78\x01"), Some(Codec::Zlib));
        assert_eq!(sniff(b"\x5d\x00\x00\x80"), Some(Codec::Lzma));
        assert_eq!(sniff(b"\x80\x04"), None);
        assert_eq!(sniff(b"cos\n"), None);
    }

    #[test]
    fn zlib_bomb_stops_at_limit() {
        use std::io::Write as _;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 4 << 20]).unwrap();
        let z = enc.finish().unwrap();
        let small = Limits {
            max_output: 1 << 20,
            max_ratio: u64::MAX,
            ratio_floor: 0,
        };
        let e = decompress(Codec::Zlib, &z, &small).unwrap_err();
        assert!(e.is_limit(), "{e}");
        let ratio = Limits {
            max_output: 1 << 30,
            max_ratio: 100,
            ratio_floor: 1 << 16,
        };
        let e = decompress(Codec::Zlib, &z, &ratio).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LimitExceeded {
                    limit: "max_ratio",
                    ..
                }
            ),
            "{e}"
        );
        let lenient = Limits {
            max_ratio: 100_000,
            ..Limits::default()
        };
        assert_eq!(
            decompress(Codec::Zlib, &z, &lenient).unwrap().len(),
            4 << 20
        );
    }
}
