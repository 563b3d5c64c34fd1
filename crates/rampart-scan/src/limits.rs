//! Resource limits for a whole scan, loadable from a TOML/JSON `--limits` file.
//!
//! [`ScanLimits`] groups the limits of each parser: the pickle VM's [`PickleLimits`] and the
//! container walker's [`ContainerLimits`]. Unknown keys are rejected (`deny_unknown_fields`); a
//! missing key keeps its default. Hitting any limit gives an `error` verdict with a finding naming
//! the limit, never `safe`.

use serde::{Deserialize, Deserializer};

pub use rampart_formats::pickle::Limits as PickleLimits;

/// All limits for one scan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanLimits {
    /// Limits for the symbolic pickle VM.
    #[serde(deserialize_with = "de_pickle")]
    pub pickle: PickleLimits,
    /// Limits for containers (zip, tar, compressed streams, `.npy`).
    pub container: ContainerLimits,
    /// Limits for safetensors headers.
    pub safetensors: rampart_formats::safetensors::Limits,
    /// Limits for GGUF headers, metadata and tensor infos.
    pub gguf: rampart_formats::gguf::Limits,
    /// Limits for ONNX protobufs.
    pub onnx: rampart_formats::onnx::Limits,
    /// Limits for Keras configurations (`.keras` `config.json`, legacy `.h5`).
    pub keras: rampart_formats::keras::Limits,
    /// Limits for TensorFlow SavedModel protobufs.
    pub savedmodel: rampart_formats::savedmodel::Limits,
}

/// Limits for containers and compressed streams.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerLimits {
    /// Most entries in one zip or tar archive. Default 100 000.
    pub max_entries: u64,
    /// Deepest nesting of containers (a zip in a zip in a gzip ...). The file itself is depth 0.
    /// Default 8.
    pub max_depth: usize,
    /// Most bytes one member or decompressed stream may produce. Default 1 GiB.
    pub max_member_bytes: u64,
    /// Most member and decompressed bytes held over a whole scan. Default 4 GiB.
    pub max_total_bytes: u64,
    /// Largest decompressed/compressed ratio, checked above `ratio_floor`. Default 1000.
    pub max_ratio: u64,
    /// Output size below which the ratio is not checked (a breach above it is reported as a
    /// decompression bomb, `malicious`: deflate cannot exceed about 1032:1, so only long runs of
    /// repeated bytes get there). Default 16 MiB.
    pub ratio_floor: u64,
    /// Longest zip member name. Default 4096.
    pub max_name_len: usize,
    /// Largest zip central directory. Default 64 MiB.
    pub max_cd_bytes: u64,
    /// Largest `.npy` header, pax header or GNU long name. Default 64 KiB.
    pub max_header_bytes: u64,
}

impl Default for ContainerLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_depth: 8,
            max_member_bytes: 1 << 30,
            max_total_bytes: 4 << 30,
            max_ratio: 1000,
            ratio_floor: 16 << 20,
            max_name_len: 4096,
            max_cd_bytes: 64 << 20,
            max_header_bytes: 64 << 10,
        }
    }
}

/// The serialisable mirror of [`PickleLimits`] (which lives in a crate without serde).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PickleLimitsDef {
    max_input_bytes: u64,
    max_opcodes: u64,
    max_stack_depth: usize,
    max_memo_entries: usize,
    max_string_len: u64,
    max_retained_string: usize,
    max_value_depth: usize,
    max_pickles: usize,
    max_records: usize,
    max_retained_bytes: u64,
    max_expanded_size: u64,
}

impl Default for PickleLimitsDef {
    fn default() -> Self {
        let d = PickleLimits::default();
        Self {
            max_input_bytes: d.max_input_bytes,
            max_opcodes: d.max_opcodes,
            max_stack_depth: d.max_stack_depth,
            max_memo_entries: d.max_memo_entries,
            max_string_len: d.max_string_len,
            max_retained_string: d.max_retained_string,
            max_value_depth: d.max_value_depth,
            max_pickles: d.max_pickles,
            max_records: d.max_records,
            max_retained_bytes: d.max_retained_bytes,
            max_expanded_size: d.max_expanded_size,
        }
    }
}

fn de_pickle<'de, D: Deserializer<'de>>(d: D) -> Result<PickleLimits, D::Error> {
    let v = PickleLimitsDef::deserialize(d)?;
    Ok(PickleLimits {
        max_input_bytes: v.max_input_bytes,
        max_opcodes: v.max_opcodes,
        max_stack_depth: v.max_stack_depth,
        max_memo_entries: v.max_memo_entries,
        max_string_len: v.max_string_len,
        max_retained_string: v.max_retained_string,
        max_value_depth: v.max_value_depth,
        max_pickles: v.max_pickles,
        max_records: v.max_records,
        max_retained_bytes: v.max_retained_bytes,
        max_expanded_size: v.max_expanded_size,
    })
}

impl ContainerLimits {
    /// The zip reader's limits.
    #[must_use]
    pub fn zip(&self) -> rampart_formats::zip::Limits {
        rampart_formats::zip::Limits {
            max_entries: self.max_entries,
            max_name_len: self.max_name_len,
            max_cd_bytes: self.max_cd_bytes,
            max_member_bytes: self.max_member_bytes,
            max_ratio: self.max_ratio,
            ratio_floor: self.ratio_floor,
        }
    }

    /// The tar reader's limits.
    #[must_use]
    pub fn tar(&self) -> rampart_formats::tar::Limits {
        rampart_formats::tar::Limits {
            max_entries: self.max_entries,
            max_header_bytes: self.max_header_bytes,
        }
    }

    /// The `.npy` header limits.
    #[must_use]
    pub fn npy(&self) -> rampart_formats::npy::Limits {
        rampart_formats::npy::Limits {
            max_header_len: self.max_header_bytes,
            ..rampart_formats::npy::Limits::default()
        }
    }

    /// Decompression limits producing at most `max_output` bytes.
    #[must_use]
    pub fn compress(&self, max_output: u64) -> rampart_formats::compress::Limits {
        rampart_formats::compress::Limits {
            max_output: max_output.min(self.max_member_bytes),
            max_ratio: self.max_ratio,
            ratio_floor: self.ratio_floor,
        }
    }
}
