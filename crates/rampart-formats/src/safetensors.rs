//! safetensors: `u64` little-endian header length `N`, `N` bytes of UTF-8 JSON, then tensor data.
//!
//! Only the 8-byte prefix and the header are ever read; tensor bytes are not touched, so the cost
//! of a scan depends on the header size alone. The parser never fails: everything it notices,
//! including the reason it had to stop, is a [`Problem`] whose [`Kind`] the rules turn into a
//! verdict.

use serde::Deserialize;

use crate::json::{self, JsonLimits, Value};
use crate::source::Source;

/// Bounds for one safetensors file. Deserialisable from a limits file (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest JSON header read, in bytes. Default 100 MB (the reference loader's cap).
    pub max_header_len: u64,
    /// Deepest JSON nesting accepted in the header (a valid header needs 3). Default 32.
    pub max_json_depth: usize,
    /// Most JSON values in the header. Default 10 000 000.
    pub max_json_values: u64,
    /// Most tensors. Default 1 000 000.
    pub max_tensors: usize,
    /// Most `__metadata__` entries. Default 10 000.
    pub max_metadata_entries: usize,
    /// Largest total size of `__metadata__` keys and values, in bytes. Default 10 MiB.
    pub max_metadata_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_len: 100_000_000,
            max_json_depth: 32,
            max_json_values: 10_000_000,
            max_tensors: 1_000_000,
            max_metadata_entries: 10_000,
            max_metadata_bytes: 10 << 20,
        }
    }
}

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The file is shorter than the 8-byte length prefix.
    TooShort,
    /// `8 + N` overflows or runs past the end of the file.
    HeaderLenPastEnd,
    /// `N` exceeds `max_header_len` (but fits in the file).
    HeaderTooLarge,
    /// The header is not valid UTF-8.
    NotUtf8,
    /// The header is not valid JSON, or not a JSON object.
    InvalidJson,
    /// The header nests deeper than `max_json_depth` (a parser stack-exhaustion attempt).
    JsonTooDeep,
    /// The header has more JSON values than `max_json_values`.
    JsonTooLarge,
    /// Two entries share a name (loaders keep the last; a scanner keeping the first is fooled).
    DuplicateName,
    /// A tensor entry lacks `dtype`/`shape`/`data_offsets` or has ill-typed ones.
    BadEntry,
    /// The dtype is not one the format defines.
    UnknownDtype,
    /// The product of the shape (times the element size) overflows 64 bits.
    ShapeOverflow,
    /// `shape × dtype size` differs from `end - begin`.
    SizeMismatch,
    /// `begin > end`.
    ReversedOffsets,
    /// A data range ends past the end of the file.
    OutOfBounds,
    /// Two data ranges overlap.
    Overlap,
    /// Bytes between data ranges are not covered by any tensor (the spec requires contiguity).
    Gap,
    /// Bytes after the last tensor.
    TrailingBytes,
    /// `__metadata__` is not a string-to-string map.
    BadMetadata,
    /// `__metadata__` exceeds `max_metadata_entries` or `max_metadata_bytes`.
    MetadataTooLarge,
    /// More tensors than `max_tensors`.
    TooManyTensors,
    /// The source could not be read.
    Io,
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What was found.
    pub kind: Kind,
    /// The tensor concerned, if any.
    pub tensor: Option<String>,
    /// Byte offset in the file, when meaningful.
    pub offset: Option<u64>,
    /// Human-readable detail.
    pub detail: String,
}

/// One tensor entry of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Tensor name.
    pub name: String,
    /// Declared dtype.
    pub dtype: String,
    /// Declared shape.
    pub shape: Vec<u64>,
    /// Start of the data, relative to the start of the data section.
    pub begin: u64,
    /// End of the data (exclusive), relative to the start of the data section.
    pub end: u64,
}

/// The result of reading a header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The declared header length `N`, when the prefix could be read.
    pub header_len: Option<u64>,
    /// Tensors in header order.
    pub tensors: Vec<Tensor>,
    /// `__metadata__` entries.
    pub metadata: Vec<(String, String)>,
    /// Everything noticed, in order; empty for a well-formed file.
    pub problems: Vec<Problem>,
}

impl Parsed {
    fn problem(&mut self, kind: Kind, tensor: Option<&str>, offset: Option<u64>, detail: String) {
        self.problems.push(Problem {
            kind,
            tensor: tensor.map(str::to_owned),
            offset,
            detail,
        });
    }
}

/// Bits per element for each dtype the format defines.
#[must_use]
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

/// Byte size of a tensor of `shape` and `bits` per element; `None` on overflow or when the bit
/// count is not a whole number of bytes.
#[must_use]
pub fn byte_size(shape: &[u64], bits: u64) -> Option<u64> {
    let mut n: u64 = 1;
    for &d in shape {
        n = n.checked_mul(d)?;
    }
    let total_bits = n.checked_mul(bits)?;
    (total_bits % 8 == 0).then_some(total_bits / 8)
}

/// Reads and validates the header of `src`. Never reads tensor data.
#[must_use]
pub fn parse(src: &dyn Source, limits: &Limits) -> Parsed {
    let mut out = Parsed::default();
    let file_len = src.len();
    let mut prefix = [0u8; 8];
    if file_len < 8 || src.read_exact_at(0, &mut prefix).is_err() {
        out.problem(
            Kind::TooShort,
            None,
            Some(0),
            format!("{file_len} bytes, shorter than the 8-byte header length"),
        );
        return out;
    }
    let n = u64::from_le_bytes(prefix);
    out.header_len = Some(n);
    let data_start = match n.checked_add(8) {
        Some(end) if end <= file_len => end,
        _ => {
            out.problem(
                Kind::HeaderLenPastEnd,
                None,
                Some(0),
                format!("header length {n} runs past the end of the {file_len}-byte file"),
            );
            return out;
        }
    };
    if n > limits.max_header_len {
        out.problem(
            Kind::HeaderTooLarge,
            None,
            Some(0),
            format!(
                "header length {n} exceeds the limit of {}",
                limits.max_header_len
            ),
        );
        return out;
    }
    let header = match src.read_vec(8, n, limits.max_header_len) {
        Ok(h) => h,
        Err(e) => {
            out.problem(Kind::Io, None, Some(8), format!("reading the header: {e}"));
            return out;
        }
    };
    if std::str::from_utf8(&header).is_err() {
        out.problem(
            Kind::NotUtf8,
            None,
            Some(8),
            "header is not valid UTF-8".into(),
        );
        return out;
    }
    let jl = JsonLimits {
        max_depth: limits.max_json_depth,
        max_values: limits.max_json_values,
    };
    let root = match json::parse(&header, &jl) {
        Ok(v) => v,
        Err(e) => {
            let kind = match &e {
                crate::Error::LimitExceeded {
                    limit: "max_json_depth",
                    ..
                } => Kind::JsonTooDeep,
                crate::Error::LimitExceeded { .. } => Kind::JsonTooLarge,
                _ => Kind::InvalidJson,
            };
            out.problem(
                kind,
                None,
                Some(e.offset().saturating_add(8)),
                format!("header: {e}"),
            );
            return out;
        }
    };
    let Value::Object(members) = root else {
        out.problem(
            Kind::InvalidJson,
            None,
            Some(8),
            "header is not a JSON object".into(),
        );
        return out;
    };
    let data_len = file_len - data_start;
    let mut seen = std::collections::HashSet::new();
    for (name, value) in &members {
        if !seen.insert(name.as_str()) {
            out.problem(
                Kind::DuplicateName,
                Some(name),
                None,
                format!("entry {name:?} appears more than once"),
            );
        }
        if name == "__metadata__" {
            metadata(&mut out, value, limits);
            continue;
        }
        if out.tensors.len() >= limits.max_tensors {
            out.problem(
                Kind::TooManyTensors,
                None,
                None,
                format!("more than {} tensors", limits.max_tensors),
            );
            return out;
        }
        tensor(&mut out, name, value, data_len);
    }
    ranges(&mut out, data_start, data_len);
    out
}

fn metadata(out: &mut Parsed, value: &Value, limits: &Limits) {
    let Value::Object(entries) = value else {
        out.problem(
            Kind::BadMetadata,
            None,
            None,
            "__metadata__ is not an object".into(),
        );
        return;
    };
    if entries.len() > limits.max_metadata_entries {
        out.problem(
            Kind::MetadataTooLarge,
            None,
            None,
            format!(
                "__metadata__ has {} entries (limit {})",
                entries.len(),
                limits.max_metadata_entries
            ),
        );
        return;
    }
    let mut bytes: u64 = 0;
    for (k, v) in entries {
        let Some(s) = v.as_str() else {
            out.problem(
                Kind::BadMetadata,
                None,
                None,
                format!("__metadata__ value for {k:?} is not a string"),
            );
            continue;
        };
        bytes = bytes.saturating_add((k.len() + s.len()) as u64);
        out.metadata.push((k.clone(), s.to_owned()));
    }
    if bytes > limits.max_metadata_bytes {
        out.problem(
            Kind::MetadataTooLarge,
            None,
            None,
            format!(
                "__metadata__ holds {bytes} bytes (limit {})",
                limits.max_metadata_bytes
            ),
        );
    }
}

fn tensor(out: &mut Parsed, name: &str, value: &Value, data_len: u64) {
    let dtype = value.get("dtype").and_then(Value::as_str);
    let shape: Option<Vec<u64>> = match value.get("shape") {
        Some(Value::Array(dims)) => dims.iter().map(Value::as_u64).collect(),
        _ => None,
    };
    let offsets: Option<Vec<u64>> = match value.get("data_offsets") {
        Some(Value::Array(o)) => o.iter().map(Value::as_u64).collect(),
        _ => None,
    };
    let (Some(dtype), Some(shape), Some([begin, end])) = (
        dtype,
        shape,
        offsets
            .as_deref()
            .and_then(|o| <[u64; 2]>::try_from(o).ok()),
    ) else {
        out.problem(
            Kind::BadEntry,
            Some(name),
            None,
            format!(
                "tensor {name:?} needs a string dtype, an integer shape and two integer data_offsets"
            ),
        );
        return;
    };
    if begin > end {
        out.problem(
            Kind::ReversedOffsets,
            Some(name),
            None,
            format!("data_offsets [{begin}, {end}] are reversed"),
        );
    } else if end > data_len {
        out.problem(
            Kind::OutOfBounds,
            Some(name),
            None,
            format!("data_offsets [{begin}, {end}] run past the {data_len}-byte data section"),
        );
    }
    match dtype_bits(dtype) {
        None => out.problem(
            Kind::UnknownDtype,
            Some(name),
            None,
            format!("unknown dtype {dtype:?}"),
        ),
        Some(bits) => match byte_size(&shape, bits) {
            None => out.problem(
                Kind::ShapeOverflow,
                Some(name),
                None,
                format!("shape {shape:?} × {bits} bits overflows or is not whole bytes"),
            ),
            Some(size) if begin <= end && size != end - begin => out.problem(
                Kind::SizeMismatch,
                Some(name),
                None,
                format!(
                    "shape {shape:?} of {dtype} needs {size} bytes but data_offsets span {}",
                    end - begin
                ),
            ),
            Some(_) => {}
        },
    }
    out.tensors.push(Tensor {
        name: name.to_owned(),
        dtype: dtype.to_owned(),
        shape,
        begin,
        end,
    });
}

fn ranges(out: &mut Parsed, data_start: u64, data_len: u64) {
    let mut spans: Vec<(u64, u64, String)> = out
        .tensors
        .iter()
        .filter(|t| t.begin <= t.end && t.end <= data_len)
        .map(|t| (t.begin, t.end, t.name.clone()))
        .collect();
    spans.sort();
    let mut covered: u64 = 0;
    let mut last: Option<String> = None;
    let mut found = Vec::new();
    for (b, e, name) in spans {
        if b < covered && b < e {
            found.push((
                Kind::Overlap,
                name.clone(),
                format!(
                    "tensor {name:?} [{b}, {e}) overlaps {:?}, which ends at {covered}",
                    last.as_deref().unwrap_or("")
                ),
            ));
        } else if b > covered {
            found.push((
                Kind::Gap,
                name.clone(),
                format!("{} unused bytes before tensor {name:?} at {b}", b - covered),
            ));
        }
        if e > covered {
            covered = e;
            last = Some(name);
        }
    }
    for (kind, name, detail) in found {
        out.problem(kind, Some(&name), None, detail);
    }
    if covered < data_len {
        out.problem(
            Kind::TrailingBytes,
            None,
            Some(data_start.saturating_add(covered)),
            format!(
                "{} bytes after the last tensor (data section ends at {covered} of {data_len})",
                data_len - covered
            ),
        );
    }
}
