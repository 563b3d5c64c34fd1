//! Keras model configurations: the `config.json` member of a Keras 3 `.keras` zip, and the
//! `model_config` attribute of a legacy HDF5 `.h5` file.
//!
//! There is no HDF5 implementation here. [`h5_configs`] finds the configuration the way a
//! bounded byte scan can:
//!
//! 1. it scans the first `max_h5_scan_bytes` of the file, in chunks, for the attribute name
//!    `model_config` (Keras writes the value as a fixed-length string, which HDF5 stores in the
//!    attribute message right after the name, datatype and dataspace);
//! 2. for each name it parses the first JSON object that starts (`{"`) within 1 KiB after it;
//! 3. as a fallback (variable-length strings live in a global heap elsewhere), every
//!    `{"class_name"` or `{"module"` in the scanned bytes is tried as the start of a
//!    configuration.
//!
//! At most `max_candidates` starts are parsed, each bounded by `max_config_len` and the JSON
//! limits. A file where nothing parses has no usable configuration (the rules say `error`).

use serde::Deserialize;

use crate::Error;
use crate::json::{self, JsonLimits, Value};
use crate::source::Source;

/// Bounds for Keras configurations. Deserialisable from a limits file (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest configuration JSON, in bytes. Default 64 MiB.
    pub max_config_len: u64,
    /// Deepest JSON nesting. Default 256 (nested models nest about 4 levels per model).
    pub max_json_depth: usize,
    /// Most JSON values in one configuration. Default 10 000 000.
    pub max_json_values: u64,
    /// How much of an HDF5 file is scanned for the configuration. Default 256 MiB.
    pub max_h5_scan_bytes: u64,
    /// Most candidate configuration starts parsed in an HDF5 file. Default 16.
    pub max_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_config_len: 64 << 20,
            max_json_depth: 256,
            max_json_values: 10_000_000,
            max_h5_scan_bytes: 256 << 20,
            max_candidates: 16,
        }
    }
}

impl Limits {
    fn json(&self) -> JsonLimits {
        JsonLimits {
            max_depth: self.max_json_depth,
            max_values: self.max_json_values,
        }
    }
}

/// The HDF5 signature.
pub const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Parses a `config.json` document (exactly one JSON value).
pub fn parse_config(bytes: &[u8], limits: &Limits) -> Result<Value, Error> {
    if bytes.len() as u64 > limits.max_config_len {
        return Err(Error::LimitExceeded {
            offset: 0,
            limit: "max_config_len",
            max: limits.max_config_len,
        });
    }
    json::parse(bytes, &limits.json())
}

/// What the HDF5 scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct H5Configs {
    /// Offsets of the `model_config` attribute names seen.
    pub names: Vec<u64>,
    /// Configurations parsed, with the offset where each starts.
    pub configs: Vec<(u64, Value)>,
    /// Why candidate starts failed to parse (or reading failed).
    pub errors: Vec<Error>,
    /// True when the scan stopped at `max_h5_scan_bytes` before the end of the file.
    pub truncated: bool,
}

fn find_all(hay: &[u8], needle: &[u8], base: u64, out: &mut Vec<u64>) {
    for (i, w) in hay.windows(needle.len()).enumerate() {
        if w == needle {
            out.push(base + i as u64);
        }
    }
}

const CHUNK: u64 = 4 << 20;
const NAME: &[u8] = b"model_config";

/// Scans an HDF5 file for Keras model configurations (see the module docs).
#[must_use]
pub fn h5_configs(src: &dyn Source, limits: &Limits) -> H5Configs {
    let mut out = H5Configs::default();
    let scan_len = src.len().min(limits.max_h5_scan_bytes);
    out.truncated = scan_len < src.len();
    let mut primary = Vec::new();
    let mut fallback = Vec::new();
    let mut pos = 0u64;
    while pos < scan_len {
        // Overlap chunks so a needle straddling a boundary is still seen.
        let len = (CHUNK + 64).min(scan_len - pos);
        let chunk = match src.read_vec(pos, len, CHUNK + 64) {
            Ok(c) => c,
            Err(_) => {
                out.errors.push(Error::Truncated {
                    offset: pos,
                    what: "HDF5 file",
                });
                break;
            }
        };
        let within = |p: &u64| *p < pos + CHUNK || pos + len >= scan_len;
        let mut names = Vec::new();
        find_all(&chunk, NAME, pos, &mut names);
        names.retain(|p| within(p) && !out.names.contains(p));
        for &n in &names {
            let from = usize::try_from(n - pos).unwrap_or(usize::MAX);
            let window = chunk.get(from..).unwrap_or_default();
            let window = window
                .get(..window.len().min(1024 + NAME.len()))
                .unwrap_or_default();
            if let Some(i) = window.windows(2).position(|w| w == b"{\"") {
                primary.push(n + i as u64);
            }
        }
        out.names.extend(names);
        let mut fb = Vec::new();
        find_all(&chunk, b"{\"class_name\"", pos, &mut fb);
        find_all(&chunk, b"{\"module\"", pos, &mut fb);
        fb.retain(within);
        fallback.extend(fb);
        pos += CHUNK;
    }
    fallback.sort_unstable();
    fallback.dedup();
    let mut tried = Vec::new();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for start in primary.into_iter().chain(fallback) {
        if tried.len() >= limits.max_candidates {
            break;
        }
        // A start inside an already parsed configuration adds nothing.
        if tried.contains(&start) || spans.iter().any(|&(b, e)| b <= start && start < e) {
            continue;
        }
        tried.push(start);
        // Try a 1 MiB window first; only a configuration cut off by it is re-read in full.
        let full = limits.max_config_len.min(src.len() - start);
        let first = full.min(1 << 20);
        let mut attempt = src
            .read_vec(start, first, limits.max_config_len)
            .map(|bytes| json::parse_prefix(&bytes, &limits.json()));
        if first < full && matches!(&attempt, Ok(Err(e)) if e.is_truncation()) {
            attempt = src
                .read_vec(start, full, limits.max_config_len)
                .map(|bytes| json::parse_prefix(&bytes, &limits.json()));
        }
        match attempt {
            Ok(parsed) => match parsed {
                Ok((v, used)) => {
                    spans.push((start, start.saturating_add(used as u64)));
                    out.configs.push((start, v));
                }
                Err(e) => out.errors.push(shift(e, start)),
            },
            Err(_) => out.errors.push(Error::Truncated {
                offset: start,
                what: "HDF5 attribute",
            }),
        }
    }
    out
}

fn shift(e: Error, base: u64) -> Error {
    match e {
        Error::Truncated { offset, what } => Error::Truncated {
            offset: offset + base,
            what,
        },
        Error::Malformed {
            offset,
            what,
            reason,
        } => Error::Malformed {
            offset: offset + base,
            what,
            reason,
        },
        Error::LimitExceeded { offset, limit, max } => Error::LimitExceeded {
            offset: offset + base,
            limit,
            max,
        },
        other => other,
    }
}
