//! GGUF (versions 1–3): magic `GGUF`, `u32` version, tensor count, metadata key/value count, the
//! key/values, the tensor infos, padding to `general.alignment`, then tensor data.
//!
//! The header is read sequentially through a small window over the [`Source`]; tensor data is
//! never read. Every count and length is compared with the bytes actually left in the file (and
//! the configured limits) *before* anything is allocated or skipped — the class of bug behind
//! Ollama's CVE-2026-7482 (2^62 counts, 2^60 string lengths, overflowing dimensions). The parser
//! never fails: what it notices, including why it stopped, is a [`Problem`].

use serde::Deserialize;

use crate::Error;
use crate::source::Source;

/// Bounds for one GGUF file. Deserialisable from a limits file (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most metadata key/value pairs. Default 1 000 000.
    pub max_kv_count: u64,
    /// Most tensors. Default 1 000 000.
    pub max_tensor_count: u64,
    /// Longest string (key or value), in bytes. Default 64 MiB.
    pub max_string_len: u64,
    /// Longest array, in elements. Default 16 000 000.
    pub max_array_len: u64,
    /// Deepest array-of-array nesting. Default 3.
    pub max_array_depth: u32,
    /// Largest header (metadata plus tensor infos), in bytes. Default 512 MiB.
    pub max_header_bytes: u64,
    /// String values longer than this are tracked by length only, except chat templates (which
    /// are kept up to `max_string_len`). Default 4096.
    pub max_kept_string: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_kv_count: 1_000_000,
            max_tensor_count: 1_000_000,
            max_string_len: 64 << 20,
            max_array_len: 16_000_000,
            max_array_depth: 3,
            max_header_bytes: 512 << 20,
            max_kept_string: 4096,
        }
    }
}

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Not `GGUF` at offset 0.
    BadMagic,
    /// Version other than 1, 2 or 3 (a byte-swapped version means a big-endian file).
    UnsupportedVersion,
    /// A count (tensors, key/values, array elements) that cannot fit in the bytes present.
    CountPastEnd,
    /// A string length larger than the bytes present.
    LengthPastEnd,
    /// A count or length above a configured limit (but not impossible).
    LimitExceeded,
    /// A fixed-size field was cut off by the end of the file.
    Truncated,
    /// An unknown metadata value type.
    BadValueType,
    /// Arrays nested deeper than `max_array_depth`.
    ArrayTooDeep,
    /// A key appears twice.
    DuplicateKey,
    /// A tensor name appears twice.
    DuplicateTensor,
    /// `general.alignment` is not a power of two between 1 and 2^30, or not an integer.
    BadAlignment,
    /// More than 4 dimensions.
    TooManyDims,
    /// The element count (product of dimensions) or byte size overflows.
    DimsOverflow,
    /// A tensor type ggml does not define.
    UnknownTensorType,
    /// The first dimension is not a multiple of the type's block size.
    BadBlockMultiple,
    /// A tensor offset is not a multiple of the alignment.
    Misaligned,
    /// A tensor's data runs past the end of the file.
    TensorOutOfBounds,
    /// Two tensors' data overlap.
    TensorOverlap,
    /// The source could not be read.
    Io,
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What was found.
    pub kind: Kind,
    /// Byte offset in the file, when meaningful.
    pub offset: Option<u64>,
    /// Human-readable detail.
    pub detail: String,
}

/// A metadata value, summarised.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// `bool`.
    Bool(bool),
    /// A string short enough to keep (lossy UTF-8).
    String(String),
    /// A string tracked by length only.
    LongString(u64),
    /// An array: element type and length (contents not kept).
    Array(u32, u64),
}

/// One metadata key/value pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// Offset of the key in the file.
    pub offset: u64,
    /// The value.
    pub value: Value,
}

/// One tensor info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Data offset, relative to the start of the data section.
    pub offset: u64,
    /// Byte size, when the type is known and nothing overflows.
    pub size: Option<u64>,
}

/// The result of reading a GGUF header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Format version, when read.
    pub version: Option<u32>,
    /// Metadata in file order.
    pub kvs: Vec<Kv>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Effective alignment.
    pub alignment: u64,
    /// Everything noticed, in order.
    pub problems: Vec<Problem>,
}

/// `(elements per block, bytes per block)` for a ggml type id.
#[must_use]
pub fn type_block(t: u32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// Sequential reader over a [`Source`] with a small read-ahead window.
struct Stream<'s> {
    src: &'s dyn Source,
    pos: u64,
    len: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

const WINDOW: u64 = 64 * 1024;

impl Stream<'_> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn fill(&mut self, n: u64, what: &'static str) -> Result<(), Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated {
            offset: self.pos,
            what,
        })?;
        if end > self.len {
            return Err(Error::Truncated {
                offset: self.pos,
                what,
            });
        }
        let have_end = self.buf_start.saturating_add(self.buf.len() as u64);
        if self.pos >= self.buf_start && end <= have_end {
            return Ok(());
        }
        let want = n.max(WINDOW).min(self.len - self.pos);
        self.buf = self
            .src
            .read_vec(self.pos, want, want)
            .map_err(|_| Error::Malformed {
                offset: self.pos,
                what,
                reason: "read error",
            })?;
        self.buf_start = self.pos;
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &'static str) -> Result<&[u8], Error> {
        self.fill(n, what)?;
        let start = usize::try_from(self.pos - self.buf_start).unwrap_or(usize::MAX);
        let count = usize::try_from(n).unwrap_or(usize::MAX);
        let out = start
            .checked_add(count)
            .and_then(|end| self.buf.get(start..end))
            .ok_or(Error::Truncated {
                offset: self.pos,
                what,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let b = self.bytes(N as u64, what)?;
        <[u8; N]>::try_from(b).map_err(|_| Error::Truncated {
            offset: self.pos,
            what,
        })
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn skip(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n).min(self.len);
    }
}

/// Why parsing stopped early.
struct Stop(Kind, u64, String);

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop(Kind::Truncated, e.offset(), e.to_string())
    }
}

struct Parser<'s, 'l> {
    s: Stream<'s>,
    limits: &'l Limits,
    v1: bool,
    out: Parsed,
}

impl Parser<'_, '_> {
    fn count(&mut self, what: &'static str) -> Result<u64, Stop> {
        if self.v1 {
            Ok(u64::from(self.s.u32(what)?))
        } else {
            Ok(self.s.u64(what)?)
        }
    }

    /// Checks `count` items of at least `min_size` bytes each fit, then against `limit`.
    fn check_count(
        &self,
        count: u64,
        min_size: u64,
        limit: u64,
        at: u64,
        what: &str,
    ) -> Result<(), Stop> {
        if count
            .checked_mul(min_size)
            .is_none_or(|n| n > self.s.remaining())
        {
            return Err(Stop(
                Kind::CountPastEnd,
                at,
                format!(
                    "{what} {count} cannot fit in the {} bytes left",
                    self.s.remaining()
                ),
            ));
        }
        if count > limit {
            return Err(Stop(
                Kind::LimitExceeded,
                at,
                format!("{what} {count} exceeds the limit of {limit}"),
            ));
        }
        Ok(())
    }

    /// Reads a string; keeps it when `keep` bytes or shorter.
    fn string(&mut self, keep: u64) -> Result<Result<String, u64>, Stop> {
        let at = self.s.pos;
        let len = self.count("string length")?;
        if len > self.s.remaining() {
            return Err(Stop(
                Kind::LengthPastEnd,
                at,
                format!(
                    "string length {len} exceeds the {} bytes left",
                    self.s.remaining()
                ),
            ));
        }
        if len > self.limits.max_string_len {
            return Err(Stop(
                Kind::LimitExceeded,
                at,
                format!(
                    "string length {len} exceeds the limit of {}",
                    self.limits.max_string_len
                ),
            ));
        }
        if len > keep {
            self.s.skip(len);
            return Ok(Err(len));
        }
        let b = self.s.bytes(len, "string")?;
        Ok(Ok(String::from_utf8_lossy(b).into_owned()))
    }

    fn min_size(&self, t: u32) -> u64 {
        match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 if self.v1 => 4,
            8 => 8,
            9 if self.v1 => 8,
            _ => 12,
        }
    }

    fn value(&mut self, t: u32, depth: u32, keep: u64) -> Result<Value, Stop> {
        let at = self.s.pos;
        Ok(match t {
            0 => Value::Uint(u64::from(u8::from_le_bytes(self.s.array("u8")?))),
            1 => Value::Int(i64::from(i8::from_le_bytes(self.s.array("i8")?))),
            2 => Value::Uint(u64::from(u16::from_le_bytes(self.s.array("u16")?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.s.array("i16")?))),
            4 => Value::Uint(u64::from(self.s.u32("u32")?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.s.array("i32")?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.s.array("f32")?))),
            7 => Value::Bool(self.s.array::<1>("bool")? != [0]),
            8 => match self.string(keep)? {
                Ok(s) => Value::String(s),
                Err(n) => Value::LongString(n),
            },
            9 => {
                if depth >= self.limits.max_array_depth {
                    return Err(Stop(
                        Kind::ArrayTooDeep,
                        at,
                        format!("arrays nested deeper than {}", self.limits.max_array_depth),
                    ));
                }
                let et = self.s.u32("array type")?;
                let n_at = self.s.pos;
                let n = self.count("array length")?;
                if et > 12 {
                    return Err(Stop(
                        Kind::BadValueType,
                        at,
                        format!("unknown array element type {et}"),
                    ));
                }
                let min = self.min_size(et);
                self.check_count(n, min, self.limits.max_array_len, n_at, "array length")?;
                for _ in 0..n {
                    self.value(et, depth + 1, 0)?;
                }
                Value::Array(et, n)
            }
            10 => Value::Uint(self.s.u64("u64")?),
            11 => Value::Int(i64::from_le_bytes(self.s.array("i64")?)),
            12 => Value::Float(f64::from_le_bytes(self.s.array("f64")?)),
            _ => {
                return Err(Stop(
                    Kind::BadValueType,
                    at,
                    format!("unknown value type {t}"),
                ));
            }
        })
    }

    fn header(&mut self) -> Result<(), Stop> {
        let magic = self.s.array::<4>("magic")?;
        if &magic != b"GGUF" {
            return Err(Stop(Kind::BadMagic, 0, "not a GGUF file".into()));
        }
        let version = self.s.u32("version")?;
        if !(1..=3).contains(&version) {
            let swapped = version.swap_bytes();
            let note = if (1..=3).contains(&swapped) {
                " (big-endian files are not supported)"
            } else {
                ""
            };
            return Err(Stop(
                Kind::UnsupportedVersion,
                4,
                format!("version {version}{note}"),
            ));
        }
        self.out.version = Some(version);
        self.v1 = version == 1;
        let tc_at = self.s.pos;
        let tensor_count = self.count("tensor count")?;
        let kv_at = self.s.pos;
        let kv_count = self.count("key/value count")?;
        let (kv_min, ti_min) = if self.v1 { (9, 20) } else { (13, 24) };
        self.check_count(
            kv_count,
            kv_min,
            self.limits.max_kv_count,
            kv_at,
            "key/value count",
        )?;
        self.check_count(
            tensor_count,
            ti_min,
            self.limits.max_tensor_count,
            tc_at,
            "tensor count",
        )?;
        let mut keys = std::collections::HashSet::new();
        for _ in 0..kv_count {
            self.header_limit()?;
            let at = self.s.pos;
            let key = match self.string(self.limits.max_kept_string)? {
                Ok(k) => k,
                Err(n) => format!("<{n}-byte key>"),
            };
            let t = self.s.u32("value type")?;
            let keep = if key.contains("chat_template") {
                self.limits.max_string_len
            } else {
                self.limits.max_kept_string
            };
            let value = self.value(t, 0, keep)?;
            if !keys.insert(key.clone()) {
                self.problem(Kind::DuplicateKey, at, format!("key {key:?} appears twice"));
            }
            self.out.kvs.push(Kv {
                key,
                offset: at,
                value,
            });
        }
        self.alignment();
        let mut names = std::collections::HashSet::new();
        for _ in 0..tensor_count {
            self.header_limit()?;
            let at = self.s.pos;
            let name = match self.string(self.limits.max_kept_string)? {
                Ok(k) => k,
                Err(n) => format!("<{n}-byte name>"),
            };
            let n_dims = self.s.u32("n_dims")?;
            if n_dims > 4 {
                return Err(Stop(
                    Kind::TooManyDims,
                    at,
                    format!("tensor {name:?} has {n_dims} dimensions (ggml allows 4)"),
                ));
            }
            let mut dims = Vec::new();
            for _ in 0..n_dims {
                dims.push(self.count("dimension")?);
            }
            let ggml_type = self.s.u32("tensor type")?;
            let offset = self.s.u64("tensor offset")?;
            if !names.insert(name.clone()) {
                self.problem(
                    Kind::DuplicateTensor,
                    at,
                    format!("tensor {name:?} appears twice"),
                );
            }
            let size = self.tensor_size(at, &name, &dims, ggml_type);
            if offset % self.out.alignment != 0 {
                self.problem(
                    Kind::Misaligned,
                    at,
                    format!(
                        "tensor {name:?} offset {offset} is not a multiple of {}",
                        self.out.alignment
                    ),
                );
            }
            self.out.tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                size,
            });
        }
        self.data_section();
        Ok(())
    }

    fn header_limit(&self) -> Result<(), Stop> {
        if self.s.pos > self.limits.max_header_bytes {
            return Err(Stop(
                Kind::LimitExceeded,
                self.s.pos,
                format!("header longer than {} bytes", self.limits.max_header_bytes),
            ));
        }
        Ok(())
    }

    fn problem(&mut self, kind: Kind, at: u64, detail: String) {
        self.out.problems.push(Problem {
            kind,
            offset: Some(at),
            detail,
        });
    }

    fn alignment(&mut self) {
        self.out.alignment = 32;
        let found = self
            .out
            .kvs
            .iter()
            .find(|kv| kv.key == "general.alignment")
            .map(|kv| (kv.offset, kv.value.clone()));
        if let Some((at, v)) = found {
            match v {
                Value::Uint(a) if a.is_power_of_two() && a <= 1 << 30 => self.out.alignment = a,
                other => self.problem(
                    Kind::BadAlignment,
                    at,
                    format!("general.alignment {other:?} is not a power of two up to 2^30"),
                ),
            }
        }
    }

    fn tensor_size(&mut self, at: u64, name: &str, dims: &[u64], t: u32) -> Option<u64> {
        let Some((block, bytes)) = type_block(t) else {
            self.problem(
                Kind::UnknownTensorType,
                at,
                format!("tensor {name:?} has unknown ggml type {t}"),
            );
            return None;
        };
        let mut n: u64 = 1;
        for &d in dims {
            match n.checked_mul(d) {
                Some(v) if v <= i64::MAX as u64 => n = v,
                _ => {
                    self.problem(
                        Kind::DimsOverflow,
                        at,
                        format!("tensor {name:?} dimensions {dims:?} overflow"),
                    );
                    return None;
                }
            }
        }
        let first = dims.first().copied().unwrap_or(1);
        if first % block != 0 {
            self.problem(
                Kind::BadBlockMultiple,
                at,
                format!("tensor {name:?} first dimension {first} is not a multiple of {block}"),
            );
            return None;
        }
        let size = (n / block).checked_mul(bytes);
        if size.is_none() {
            self.problem(
                Kind::DimsOverflow,
                at,
                format!("tensor {name:?} byte size overflows"),
            );
        }
        size
    }

    fn data_section(&mut self) {
        let a = self.out.alignment;
        let data_start = self.s.pos.div_ceil(a).saturating_mul(a);
        let data_len = self.s.len.saturating_sub(data_start);
        let mut spans = Vec::new();
        let mut found = Vec::new();
        for t in &self.out.tensors {
            let Some(size) = t.size else { continue };
            match t.offset.checked_add(size) {
                Some(end) if end <= data_len => spans.push((t.offset, end, t.name.clone())),
                _ => found.push((
                    Kind::TensorOutOfBounds,
                    format!(
                        "tensor {:?} [{}, +{size}) runs past the {data_len}-byte data section",
                        t.name, t.offset
                    ),
                )),
            }
        }
        spans.sort();
        let mut end_so_far = 0u64;
        let mut prev = String::new();
        for (b, e, name) in spans {
            if b < end_so_far && b < e {
                found.push((
                    Kind::TensorOverlap,
                    format!("tensor {name:?} at {b} overlaps {prev:?} (ends at {end_so_far})"),
                ));
            }
            if e > end_so_far {
                end_so_far = e;
                prev = name;
            }
        }
        for (k, d) in found {
            self.problem(k, data_start, d);
        }
    }
}

/// Reads and validates the GGUF header of `src`. Never reads tensor data.
#[must_use]
pub fn parse(src: &dyn Source, limits: &Limits) -> Parsed {
    let mut p = Parser {
        s: Stream {
            src,
            pos: 0,
            len: src.len(),
            buf: Vec::new(),
            buf_start: 0,
        },
        limits,
        v1: false,
        out: Parsed {
            alignment: 32,
            ..Parsed::default()
        },
    };
    if let Err(Stop(kind, at, detail)) = p.header() {
        p.problem(kind, at, detail);
    }
    p.out
}
