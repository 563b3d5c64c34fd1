//! The scan engine: recognise a file's format by its content, dispatch to the right rules, and
//! recurse into containers in memory under [`ScanLimits`].
//!
//! Formats are recognised by magic bytes and structure, never by file name ([`detect`]). Containers
//! (zip, including PyTorch archives, Keras archives and `.npz`; tar, including the legacy PyTorch
//! tar; gzip/zlib/bzip2/xz/lzma streams, as joblib and pandas write them; `.npy` object arrays; the
//! legacy PyTorch magic-number stream) are opened and every member that could be unpickled is
//! scanned, with the member path recorded on each finding (`archive/data.pkl`,
//! `outer.zip/inner.zip/data.pkl`, `model.pkl.gz/[gzip]`).
//!
//! Failure policy: a truncated or corrupt container, a breached limit or an unreadable member is at
//! least `error`, with a finding naming the cause; whatever was found before the damage still
//! counts (`malicious` wins over `error`), including the bytes a decompressor produced before it
//! stopped. Two structures only bombs produce are `malicious` (rule `limits/decompression-bomb`
//! for a breached compression ratio, `zip/overlap` for entries sharing bytes).
//!
//! Reads stay O(headers): stored zip/tar members over 1 MiB are scanned in place through a
//! [`SubSource`] (never copied), PyTorch tensor storages are only peeked at (256 bytes, in case a
//! pickle was planted there), and the legacy stream's raw storages are skipped with 8-byte reads.
//!
//! Wiring the other format scanners: every magic lives in [`detect`]; each hooked format has one
//! match arm in the dispatch (and the Keras one in the zip walker) that today returns `error` with
//! `format/not-analysed`.
//!
//! Content that is not recognised is judged as follows (scanner.md §4.3, "never clean by
//! accident"):
//! - bytes that the pickle VM reads as a pickle with calls, `EXT` uses or a malicious import, or
//!   that hold at least one complete pickle, are judged as a pickle (protocol 0/1 pickles have no
//!   magic, so detection is generous);
//! - otherwise UTF-8 text (JSON, tokenizer files, configs) is `safe` with format `text`;
//! - binary content that the VM reads as importing a global is judged as a pickle;
//! - other binary data is first searched (bounded: whole files up to 1 MiB, else only when the head
//!   mentions `"class_name"`; first 16 MiB, 256 candidates) for an embedded
//!   Keras model configuration (`{"class_name"` JSON, as in `keras_metadata.pb`); any found is
//!   judged with the Keras rules (format `keras-config`);
//! - anything else is `safe` with format `unknown` and an `info` finding
//!   (`format/unrecognised-data`): it holds no pickle a loader would read from its first byte and
//!   no model configuration, so raw ONNX external-data blobs, sentencepiece models and the like
//!   are not false alarms;
//! - recognised containers this engine cannot open (lz4 and zstd frames, 7z) are `error`.

mod joblib;
mod legacy;

use std::cell::Cell;

use rampart_formats::compress::{self, Codec};
use rampart_formats::pickle::{self as fmt_pickle, Analysis, Status};
use rampart_formats::source::{Source, SubSource};
use rampart_formats::{npy, tar, zip};

use crate::limits::ScanLimits;
use crate::pickle::{self, Options};
use crate::{Finding, Report, Severity, Verdict};

/// How much of an unrecognised binary file is searched for an embedded Keras configuration
/// (`{"class_name"` JSON objects, as in a `keras_metadata.pb`).
const EMBEDDED_CONFIG_SCAN: u64 = 16 << 20;

/// Unrecognised files up to this size are always searched for an embedded Keras configuration;
/// larger ones only when their head mentions `"class_name"`.
const EMBEDDED_CONFIG_SMALL: u64 = 1 << 20;

/// Most `{"class_name"` candidates parsed in an unrecognised file (one per layer object in a
/// `keras_metadata.pb`, whose top-level object starts with `"name"`).
const EMBEDDED_CONFIG_CANDIDATES: usize = 256;

/// How many leading bytes are read to recognise a format.
pub const HEAD_LEN: usize = 64 * 1024;

/// The legacy PyTorch magic number `0x1950a86a20f9469cfc6c`, as the 10 little-endian bytes of a
/// `LONG1` operand.
const TORCH_LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Bytes peeked at the start of a PyTorch storage member (to catch a pickle planted there) instead
/// of reading the tensor data.
const STORAGE_PEEK: u64 = 256;

/// Stored zip members larger than this are scanned in place instead of being read into memory.
const LAZY_MEMBER: u64 = 1 << 20;

/// How much of a legacy tar's `storages`/`tensors` member is read for its leading pickles.
const LEGACY_RECORDS_HEAD: u64 = 16 << 20;

/// A format recognised by [`detect`] from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Zero bytes.
    Empty,
    /// A zip archive (PyTorch, Keras 3, `.npz`, or any other zip).
    Zip,
    /// A tar archive (ustar magic).
    Tar,
    /// A compressed stream.
    Compressed(Codec),
    /// A NumPy `.npy` array.
    Npy,
    /// The legacy (pre-1.6) PyTorch stream: several pickles after a magic number.
    TorchLegacy,
    /// A pickle with a `PROTO` opcode (protocol 2+).
    Pickle,
    /// safetensors (8-byte header length, JSON header).
    Safetensors,
    /// GGUF (`GGUF` magic).
    Gguf,
    /// ONNX (a protobuf `ModelProto` starting with `ir_version`).
    Onnx,
    /// HDF5 (legacy Keras `.h5`).
    Hdf5,
    /// TensorFlow SavedModel `saved_model.pb` (protobuf starting with schema version 1).
    SavedModel,
    /// An lz4 frame (joblib can write these; not decoded).
    Lz4,
    /// A 7z archive (not decoded).
    SevenZip,
    /// A zstd frame (pandas reads `.zst` pickles; not decoded).
    Zstd,
    /// Nothing recognised by magic: judged by content (pickle, text or unknown).
    Other,
}

impl Format {
    /// The name used in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Zip => "zip",
            Self::Tar => "tar",
            Self::Compressed(c) => c.name(),
            Self::Npy => "npy",
            Self::TorchLegacy => "pytorch-legacy",
            Self::Pickle => "pickle",
            Self::Safetensors => "safetensors",
            Self::Gguf => "gguf",
            Self::Onnx => "onnx",
            Self::Hdf5 => "hdf5",
            Self::SavedModel => "tensorflow-savedmodel",
            Self::Lz4 => "lz4",
            Self::SevenZip => "7z",
            Self::Zstd => "zstd",
            Self::Other => "unknown",
        }
    }
}

/// Recognises a format from the first bytes of a file (`head`, up to [`HEAD_LEN`]) and its total
/// length. Magic bytes only; never a file name.
///
/// The hooks for the formats analysed by other modules (safetensors, GGUF, ONNX, HDF5/Keras,
/// SavedModel) are all here, so wiring a scanner's own `sniff` is one line each.
#[must_use]
pub fn detect(head: &[u8], len: u64) -> Format {
    if len == 0 || head.is_empty() {
        return Format::Empty;
    }
    if zip::sniff(head) {
        return Format::Zip;
    }
    if npy::sniff(head) {
        return Format::Npy;
    }
    if let [0x80, 0..=5, 0x8a, 0x0a, rest @ ..] = head
        && rest.starts_with(&TORCH_LEGACY_MAGIC)
    {
        return Format::TorchLegacy;
    }
    if let Some(codec) = compress::sniff(head) {
        return Format::Compressed(codec);
    }
    if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        return Format::Lz4;
    }
    if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Format::SevenZip;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Format::Zstd;
    }
    if tar::sniff(head) {
        return Format::Tar;
    }
    if crate::gguf::sniff(head, len) {
        return Format::Gguf;
    }
    if crate::keras::sniff(head, len) {
        return Format::Hdf5;
    }
    if crate::safetensors::sniff(head, len) {
        return Format::Safetensors;
    }
    if let [0x80, 0..=5, ..] = head {
        return Format::Pickle;
    }
    // Protobufs: field 1 varint first. SavedModel's schema version is 1 followed by meta_graphs
    // (field 2, length-delimited); ONNX's ir_version is 3..=20 followed by another known field.
    if crate::savedmodel::sniff(head, len) {
        return Format::SavedModel;
    }
    if crate::onnx::sniff(head, len) {
        return Format::Onnx;
    }
    Format::Other
}

/// The result of scanning one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The outermost format recognised (`pickle`, `pytorch-zip`, `gzip`, `npy`, `text`, ...).
    pub format: &'static str,
    /// Findings and verdict, with member paths inside containers.
    pub report: Report,
}

/// The scan engine.
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    limits: ScanLimits,
}

/// Per-scan state shared by all recursion levels.
struct Ctx {
    /// Member and decompressed bytes held so far.
    used: Cell<u64>,
    /// Size of the file being scanned (for the cumulative compression ratio).
    root_len: u64,
    /// Whether the cumulative-ratio bomb finding was already given.
    bomb_reported: Cell<bool>,
}

fn finding(
    rule: &str,
    severity: Severity,
    message: String,
    offset: Option<u64>,
    evidence: Option<String>,
) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity,
        message,
        member: None,
        offset,
        evidence,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}/{name}")
    }
}

fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Error report for a parser error.
fn error_report(rule: &str, what: &str, err: &rampart_formats::Error) -> Report {
    let mut r = Report::new();
    add_error(&mut r, rule, what, err);
    r
}

/// Adds the finding for a parser error: `error`, except a breached compression-ratio limit,
/// which only a decompression bomb produces (deflate cannot exceed about 1032:1 on real data), and
/// which is `malicious`.
fn add_error(r: &mut Report, rule: &str, what: &str, err: &rampart_formats::Error) {
    let (verdict, rule, severity, evidence) = match err {
        rampart_formats::Error::LimitExceeded {
            limit: "max_ratio", ..
        } => (
            Verdict::Malicious,
            "limits/decompression-bomb",
            Severity::High,
            Some("max_ratio".to_owned()),
        ),
        rampart_formats::Error::LimitExceeded { limit, .. } => (
            Verdict::Error,
            "limits/exceeded",
            Severity::Medium,
            Some((*limit).to_owned()),
        ),
        _ => (Verdict::Error, rule, Severity::Medium, None),
    };
    r.add(
        verdict,
        finding(
            rule,
            severity,
            format!("{what}: {err}"),
            Some(err.offset()),
            evidence,
        ),
    );
}

/// True when `head` looks like text: UTF-8 (a multi-byte character cut at the end is allowed)
/// without NUL or other control bytes besides tab, newline, carriage return and form feed.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    valid
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

impl Scanner {
    /// A scanner with the given limits.
    #[must_use]
    pub fn new(limits: ScanLimits) -> Self {
        Self { limits }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &ScanLimits {
        &self.limits
    }

    /// Scans one file (or any byte source): recognises its format by content, dispatches, and
    /// recurses into containers.
    #[must_use]
    pub fn scan_source(&self, src: &dyn Source) -> Scanned {
        let ctx = Ctx {
            used: Cell::new(0),
            root_len: src.len(),
            bomb_reported: Cell::new(false),
        };
        let (format, report) = self.scan_node(src, "", 0, &ctx, Options::default());
        Scanned { format, report }
    }

    /// Convenience for [`Scanner::scan_source`] over bytes in memory.
    #[must_use]
    pub fn scan_bytes(&self, bytes: &[u8]) -> Scanned {
        self.scan_source(&bytes)
    }

    fn budget(&self, ctx: &Ctx) -> u64 {
        let c = &self.limits.container;
        c.max_total_bytes
            .saturating_sub(ctx.used.get())
            .min(c.max_member_bytes)
    }

    fn charge(ctx: &Ctx, bytes: usize) {
        ctx.used.set(ctx.used.get().saturating_add(bytes as u64));
    }

    /// Nested compression (a gzip of a gzip, a zip of zips) multiplies ratios that each stay under
    /// the per-stream limit: compare everything decompressed so far with the file's own size.
    fn cumulative_bomb(&self, ctx: &Ctx) -> Option<Finding> {
        let c = &self.limits.container;
        let used = ctx.used.get();
        if ctx.bomb_reported.get()
            || used <= c.ratio_floor
            || used / ctx.root_len.max(1) <= c.max_ratio
        {
            return None;
        }
        ctx.bomb_reported.set(true);
        Some(finding(
            "limits/decompression-bomb",
            Severity::High,
            format!(
                "{used} bytes decompressed from a {}-byte file: cumulative ratio over max_ratio ({})",
                ctx.root_len, c.max_ratio
            ),
            None,
            Some("max_ratio".to_owned()),
        ))
    }

    /// Scans `src` found at `path` (empty for the file itself) at nesting `depth`.
    fn scan_node(
        &self,
        src: &dyn Source,
        path: &str,
        depth: usize,
        ctx: &Ctx,
        opts: Options,
    ) -> (&'static str, Report) {
        let (format, report) = self.scan_node_inner(src, path, depth, ctx, opts);
        let report = if path.is_empty() {
            report
        } else {
            report.in_member(path)
        };
        (format, report)
    }

    fn scan_node_inner(
        &self,
        src: &dyn Source,
        path: &str,
        depth: usize,
        ctx: &Ctx,
        opts: Options,
    ) -> (&'static str, Report) {
        let len = src.len();
        let head_len = len.min(HEAD_LEN as u64);
        let head = match src.read_vec(0, head_len, HEAD_LEN as u64) {
            Ok(h) => h,
            Err(e) => {
                let err = rampart_formats::Error::io(0, "file head", &e);
                return (
                    "unknown",
                    error_report("io/unreadable", "cannot read", &err),
                );
            }
        };
        let format = detect(&head, len);
        if depth > self.limits.container.max_depth
            && matches!(
                format,
                Format::Zip | Format::Tar | Format::Compressed(_) | Format::Npy
            )
        {
            let mut r = Report::new();
            r.add(
                Verdict::Error,
                finding(
                    "limits/exceeded",
                    Severity::Medium,
                    format!(
                        "{} nested deeper than max_depth ({}): not opened",
                        format.name(),
                        self.limits.container.max_depth
                    ),
                    None,
                    Some("max_depth".to_owned()),
                ),
            );
            return (format.name(), r);
        }
        match format {
            Format::Empty => {
                let mut r = Report::new();
                r.add(
                    Verdict::Safe,
                    finding(
                        "format/empty",
                        Severity::Info,
                        "empty file".to_owned(),
                        None,
                        None,
                    ),
                );
                ("empty", r)
            }
            Format::Zip => self.scan_zip(src, path, depth, ctx),
            Format::Tar => self.scan_tar(src, path, depth, ctx),
            Format::Compressed(codec) => self.scan_compressed(src, codec, path, depth, ctx),
            Format::Npy => ("npy", self.scan_npy(src, ctx)),
            Format::TorchLegacy => ("pytorch-legacy", self.scan_torch_legacy(src)),
            Format::Pickle | Format::Other => {
                self.scan_by_content(src, &head, format, opts, path, depth, ctx)
            }
            Format::Lz4 | Format::SevenZip | Format::Zstd => {
                let mut r = Report::new();
                r.add(
                    Verdict::Error,
                    finding(
                        "format/unsupported-container",
                        Severity::Medium,
                        format!(
                            "{} container recognised but not decoded: its contents (possibly a pickle) are not analysed",
                            format.name()
                        ),
                        Some(0),
                        None,
                    ),
                );
                (format.name(), r)
            }
            // Formats analysed by their own modules, each also checked for a pickle polyglot.
            Format::Safetensors
            | Format::Gguf
            | Format::Onnx
            | Format::Hdf5
            | Format::SavedModel => {
                let l = &self.limits;
                let mut r = match format {
                    Format::Safetensors => crate::safetensors::scan(src, &l.safetensors),
                    Format::Gguf => crate::gguf::scan(src, &l.gguf),
                    Format::Onnx => crate::onnx::scan(src, &l.onnx),
                    Format::Hdf5 => crate::keras::scan(src, &l.keras),
                    _ => crate::savedmodel::scan(src, &l.savedmodel),
                };
                r.merge(self.polyglot_check(&head, opts));
                (format.name(), r)
            }
        }
    }

    /// A file recognised as another format may still be a pickle to `pickle.load`/`torch.load`:
    /// report its head as a pickle when the VM finds calls or a malicious import there.
    fn polyglot_check(&self, head: &[u8], opts: Options) -> Report {
        let a = fmt_pickle::analyze(head, &self.limits.pickle);
        let judged = pickle::judge_with(&a, &opts);
        if !a.calls.is_empty() || judged.verdict == Verdict::Malicious {
            let mut r = Report::new();
            r.add(
                Verdict::Review,
                finding(
                    "format/pickle-polyglot",
                    Severity::High,
                    "file also parses as a pickle with calls from its first byte".to_owned(),
                    Some(0),
                    None,
                ),
            );
            for f in judged.findings {
                let v = if f.severity >= Severity::High {
                    Verdict::Malicious
                } else {
                    Verdict::Review
                };
                r.add(v, f);
            }
            r.verdict = r.verdict.max(judged.verdict);
            return r;
        }
        Report::new()
    }

    /// Reads a whole (top-level or member) source for pickle analysis, bounded by the pickle
    /// input limit.
    fn read_all(&self, src: &dyn Source, head: &[u8]) -> Result<Vec<u8>, Report> {
        if src.len() == head.len() as u64 {
            return Ok(head.to_vec());
        }
        let max = self.limits.pickle.max_input_bytes;
        if src.len() > max {
            let mut r = Report::new();
            r.add(
                Verdict::Error,
                finding(
                    "limits/exceeded",
                    Severity::Medium,
                    format!(
                        "pickle input of {} bytes exceeds max_input_bytes ({max})",
                        src.len()
                    ),
                    None,
                    Some("max_input_bytes".to_owned()),
                ),
            );
            return Err(r);
        }
        src.read_vec(0, src.len(), max).map_err(|e| {
            error_report(
                "io/unreadable",
                "cannot read",
                &rampart_formats::Error::io(0, "pickle", &e),
            )
        })
    }

    /// Pickle, text or unknown, judged from the content.
    #[allow(clippy::too_many_arguments)]
    fn scan_by_content(
        &self,
        src: &dyn Source,
        head: &[u8],
        format: Format,
        opts: Options,
        path: &str,
        depth: usize,
        ctx: &Ctx,
    ) -> (&'static str, Report) {
        let head_analysis = fmt_pickle::analyze(head, &self.limits.pickle);
        let cut = src.len() > head.len() as u64
            && matches!(&head_analysis.status, Status::Truncated(e) if e.offset() >= head.len() as u64);
        let mut full = None;
        let analysis = if format == Format::Pickle || cut {
            match self.read_all(src, head) {
                Ok(all) => {
                    let a = fmt_pickle::analyze(&all, &self.limits.pickle);
                    full = Some(all);
                    a
                }
                Err(r) => return ("pickle", r),
            }
        } else {
            head_analysis
        };
        let data = full.as_deref().unwrap_or(head);
        if has_joblib_wrapper(&analysis)
            && !matches!(analysis.status, Status::Clean)
            && let Some(spliced) = joblib::splice(data, &self.limits.pickle)
        {
            let a = fmt_pickle::analyze(&spliced.stream, &self.limits.pickle);
            let mut report = pickle::judge_with(&a, &opts);
            report.add(
                Verdict::Safe,
                finding(
                    "joblib/inline-arrays",
                    Severity::Info,
                    format!(
                        "joblib pickle: {} inline arrays ({} bytes) skipped; offsets after the first array refer to the stream without them",
                        spliced.arrays, spliced.bytes
                    ),
                    None,
                    None,
                ),
            );
            joblib_note(&a, &mut report);
            return ("pickle", report);
        }
        let mut report = pickle::judge_with(&analysis, &opts);
        let is_pickle = format == Format::Pickle
            || report.verdict == Verdict::Malicious
            || !analysis.calls.is_empty()
            || !analysis.ext_uses.is_empty()
            || analysis.pickles.iter().any(|p| p.complete);
        if is_pickle {
            joblib_note(&analysis, &mut report);
            // A pickle followed by a zip (a polyglot both `pickle.load` and `zipfile` accept).
            if !matches!(analysis.status, Status::Clean)
                && let Some((_, zr)) = self.trailing_zip(src, path, depth, ctx)
            {
                report.merge(zr);
            }
            return ("pickle", report);
        }
        // A zip after other bytes (self-extracting layout): Python's zipfile reads it.
        if let Some(found) = self.trailing_zip(src, path, depth, ctx) {
            return found;
        }
        let mut r = Report::new();
        if is_text(head) {
            return ("text", r);
        }
        // Binary content whose first bytes import a global (a loader imports the module, and its
        // import may run code) is judged as the pickle it starts as, never as inert data.
        if !analysis.imports.is_empty() {
            joblib_note(&analysis, &mut report);
            return ("pickle", report);
        }
        // An embedded Keras configuration (e.g. `keras_metadata.pb`, a protobuf whose string
        // fields hold the model's config JSON) is judged with the Keras rules.
        // Bounded: small files are searched whole; a large one only when its head already
        // mentions `"class_name"` (so multi-GiB tensor blobs are judged from their head).
        let mut keras_limits = self.limits.keras.clone();
        keras_limits.max_h5_scan_bytes = keras_limits.max_h5_scan_bytes.min(EMBEDDED_CONFIG_SCAN);
        keras_limits.max_candidates = keras_limits.max_candidates.max(EMBEDDED_CONFIG_CANDIDATES);
        let search =
            src.len() <= EMBEDDED_CONFIG_SMALL || head.windows(12).any(|w| w == b"\"class_name\"");
        let found = if search {
            rampart_formats::keras::h5_configs(src, &keras_limits)
        } else {
            rampart_formats::keras::H5Configs::default()
        };
        if !found.configs.is_empty() {
            for (at, config) in &found.configs {
                let mut k = crate::keras::judge(config);
                for f in &mut k.findings {
                    f.offset = f.offset.or(Some(*at));
                }
                r.merge(k);
            }
            r.add(
                Verdict::Safe,
                finding(
                    "format/embedded-keras-config",
                    Severity::Info,
                    format!(
                        "unrecognised binary data holding {} embedded Keras model configuration(s), judged with the Keras rules",
                        found.configs.len()
                    ),
                    found.configs.first().map(|(at, _)| *at),
                    None,
                ),
            );
            return ("keras-config", r);
        }
        r.add(
            Verdict::Safe,
            finding(
                "format/unrecognised-data",
                Severity::Info,
                "unrecognised binary data (not a pickle, archive, compressed stream, known model format or embedded model configuration): nothing that can execute".to_owned(),
                Some(0),
                None,
            ),
        );
        ("unknown", r)
    }

    /// A zip archive found from the end of a file that does not start like one.
    fn trailing_zip(
        &self,
        src: &dyn Source,
        path: &str,
        depth: usize,
        ctx: &Ctx,
    ) -> Option<(&'static str, Report)> {
        if depth > self.limits.container.max_depth || src.len() < 22 {
            return None;
        }
        let mut last = [0u8; 4];
        let tail_has_eocd =
            src.read_exact_at(src.len() - 22, &mut last).is_ok() && last == *b"PK\x05\x06";
        // Cheap pre-check: an end record at the very end (no archive comment).
        if !tail_has_eocd {
            return None;
        }
        let archive = zip::open(src, &self.limits.container.zip()).ok()?;
        if archive.entries.is_empty() {
            return None;
        }
        Some(self.scan_zip(src, path, depth, ctx))
    }

    fn scan_compressed(
        &self,
        src: &dyn Source,
        codec: Codec,
        path: &str,
        depth: usize,
        ctx: &Ctx,
    ) -> (&'static str, Report) {
        let budget = self.budget(ctx);
        let limits = self.limits.container.compress(budget);
        // The compressed input is no larger than the output limit for any sane stream.
        let input = match src.read_vec(0, src.len(), limits.max_output.max(1 << 20)) {
            Ok(v) => v,
            Err(e) => {
                let mut r = Report::new();
                r.add(
                    Verdict::Error,
                    finding(
                        "limits/exceeded",
                        Severity::Medium,
                        format!("compressed stream not read: {e}"),
                        Some(0),
                        None,
                    ),
                );
                return (codec.name(), r);
            }
        };
        let (out, result) = compress::decompress_partial(codec, &input, &limits, None);
        Self::charge(ctx, out.len());
        if matches!(
            &result,
            Err(rampart_formats::Error::LimitExceeded {
                limit: "max_ratio",
                ..
            })
        ) {
            // Reported below as this stream's own bomb finding.
            ctx.bomb_reported.set(true);
        }
        let bomb = self.cumulative_bomb(ctx);
        let inner = join(path, &format!("[{}]", codec.name()));
        let mut r = Report::new();
        if !out.is_empty() {
            // Whatever was decompressed before damage or a limit is scanned: a payload there
            // still counts.
            let (_, sub) = self.scan_node(&out, &inner, depth + 1, ctx, Options::default());
            r.merge(sub);
        }
        if let Some(f) = bomb {
            r.add(Verdict::Malicious, f);
        }
        if let Err(e) = result {
            add_error(
                &mut r,
                "compress/corrupt",
                &format!("{} stream not fully decompressed", codec.name()),
                &e,
            );
        }
        (codec.name(), r)
    }

    fn scan_npy(&self, src: &dyn Source, ctx: &Ctx) -> Report {
        let header = match npy::parse(src, &self.limits.container.npy()) {
            Ok(h) => h,
            Err(e) => return error_report("npy/corrupt", "npy header not parsed", &e),
        };
        let data_len = src.len().saturating_sub(header.data_offset);
        let mut r = Report::new();
        match header.payload {
            npy::Payload::Pickle => {
                r.add(
                    Verdict::Safe,
                    finding(
                        "npy/object-array",
                        Severity::Info,
                        format!(
                            "object dtype {}: the data area is a pickle, scanned below",
                            header.descr
                        ),
                        Some(header.data_offset),
                        Some(header.descr.clone()),
                    ),
                );
                let max = self.limits.pickle.max_input_bytes.min(self.budget(ctx));
                match src.read_vec(header.data_offset, data_len, max) {
                    Ok(data) => {
                        Self::charge(ctx, data.len());
                        let mut sub = pickle::scan(&data, &self.limits.pickle);
                        for f in &mut sub.findings {
                            f.offset = f.offset.map(|o| o.saturating_add(header.data_offset));
                        }
                        if data.is_empty() {
                            sub.add(
                                Verdict::Error,
                                finding(
                                    "npy/truncated",
                                    Severity::Medium,
                                    "object array without pickle data".to_owned(),
                                    Some(header.data_offset),
                                    None,
                                ),
                            );
                        }
                        r.merge(sub);
                    }
                    Err(e) => r.add(
                        Verdict::Error,
                        finding(
                            "limits/exceeded",
                            Severity::Medium,
                            format!("object array pickle not read: {e}"),
                            Some(header.data_offset),
                            None,
                        ),
                    ),
                }
            }
            npy::Payload::Plain { expected_bytes } => match expected_bytes {
                Some(n) if n > data_len => r.add(
                    Verdict::Error,
                    finding(
                        "npy/truncated",
                        Severity::Medium,
                        format!(
                            "shape × itemsize is {n} bytes but only {data_len} follow the header"
                        ),
                        Some(header.data_offset),
                        None,
                    ),
                ),
                Some(n) if n < data_len => r.add(
                    Verdict::Review,
                    finding(
                        "npy/trailing-data",
                        Severity::Low,
                        format!("{} bytes follow the array data", data_len.saturating_sub(n)),
                        Some(header.data_offset.saturating_add(n)),
                        None,
                    ),
                ),
                Some(_) => {}
                None => r.add(
                    Verdict::Review,
                    finding(
                        "npy/unknown-dtype",
                        Severity::Low,
                        format!("dtype {} not understood; size not checked", header.descr),
                        Some(header.data_offset),
                        Some(header.descr.clone()),
                    ),
                ),
            },
        }
        r
    }

    /// The legacy PyTorch stream: magic number, protocol version, sys_info, the model pickle and
    /// the storage keys, followed by raw storage bytes that are not pickles.
    fn scan_torch_legacy(&self, src: &dyn Source) -> Report {
        const PICKLES: usize = 5;
        let mut limits = self.limits.pickle.clone();
        limits.max_pickles = PICKLES;
        let cap = self.limits.pickle.max_input_bytes.min(src.len());
        let mut window: u64 = 1 << 20;
        let analysis: Analysis = loop {
            let n = window.min(cap);
            let data = match src.read_vec(0, n, cap) {
                Ok(d) => d,
                Err(e) => {
                    return error_report(
                        "io/unreadable",
                        "cannot read",
                        &rampart_formats::Error::io(0, "legacy stream", &e),
                    );
                }
            };
            let a = fmt_pickle::analyze(&data, &limits);
            let cut = matches!(&a.status, Status::Truncated(e) if e.offset() >= n) && n < src.len();
            if !cut || n >= cap {
                break a;
            }
            window = window.saturating_mul(4);
        };
        let mut analysis = analysis;
        let complete = analysis.pickles.iter().filter(|p| p.complete).count();
        let storage_follows = match &analysis.status {
            Status::LimitExceeded(rampart_formats::Error::LimitExceeded {
                limit: "max_pickles",
                ..
            }) => true,
            Status::TrailingData { .. } => complete >= PICKLES,
            _ => false,
        };
        if storage_follows {
            analysis.status = Status::Clean;
        }
        let mut r = pickle::judge_with(
            &analysis,
            &Options {
                weights_only_safe: true,
            },
        );
        if storage_follows {
            self.after_storages(src, &analysis, &mut r);
        }
        if complete < PICKLES && matches!(analysis.status, Status::Clean) {
            r.add(
                Verdict::Review,
                finding(
                    "pytorch/legacy-short",
                    Severity::Low,
                    format!("legacy stream holds {complete} pickles instead of {PICKLES}"),
                    None,
                    None,
                ),
            );
        }
        r
    }

    /// Walks the raw storage records of a legacy stream and judges whatever follows them: torch
    /// never reads it, but a pickle hidden there is built to be found by other tools' loaders.
    fn after_storages(&self, src: &dyn Source, analysis: &Analysis, r: &mut Report) {
        let end = match legacy::storages_end(src, analysis) {
            Ok(Some(end)) => end,
            Ok(None) => return,
            Err(why) => {
                r.add(
                    Verdict::Error,
                    finding(
                        "pytorch/legacy-truncated",
                        Severity::Medium,
                        why,
                        None,
                        None,
                    ),
                );
                return;
            }
        };
        if end >= src.len() {
            return;
        }
        let rest_len = src.len() - end;
        let Ok(rest) = SubSource::new(src, end, rest_len) else {
            return;
        };
        let head = match rest.read_vec(0, rest_len.min(HEAD_LEN as u64), HEAD_LEN as u64) {
            Ok(h) => h,
            Err(_) => return,
        };
        let a = fmt_pickle::analyze(&head, &self.limits.pickle);
        let mut sub = pickle::judge(&a);
        for f in &mut sub.findings {
            f.offset = f.offset.map(|o| o.saturating_add(end));
        }
        r.add(
            Verdict::Review,
            finding(
                "pytorch/data-after-storages",
                Severity::Medium,
                format!("{rest_len} bytes follow the storage records (torch never reads them)"),
                Some(end),
                None,
            ),
        );
        if !a.imports.is_empty() || !a.calls.is_empty() || !a.ext_uses.is_empty() {
            r.merge(sub);
        }
    }

    fn scan_zip(
        &self,
        src: &dyn Source,
        path: &str,
        depth: usize,
        ctx: &Ctx,
    ) -> (&'static str, Report) {
        let zl = self.limits.container.zip();
        let archive = match zip::open(src, &zl) {
            Ok(a) => a,
            Err(e) => return ("zip", error_report("zip/corrupt", "zip index not read", &e)),
        };
        let mut r = Report::new();
        for a in &archive.anomalies {
            let member = a
                .entry
                .and_then(|i| archive.entries.get(i))
                .map(|e| join(path, &e.name));
            let (verdict, rule, severity) = match a.kind {
                zip::AnomalyKind::DuplicateName => {
                    (Verdict::Review, "zip/duplicate-name", Severity::Medium)
                }
                zip::AnomalyKind::EncryptedFlag => {
                    (Verdict::Review, "zip/encrypted-flag", Severity::Medium)
                }
                zip::AnomalyKind::UnusualMethod => {
                    (Verdict::Error, "zip/unsupported-method", Severity::Medium)
                }
                zip::AnomalyKind::LocalMismatch => {
                    (Verdict::Review, "zip/local-mismatch", Severity::Medium)
                }
                zip::AnomalyKind::BadLocalHeader => {
                    (Verdict::Error, "zip/bad-local-header", Severity::Medium)
                }
                zip::AnomalyKind::DataDescriptor => {
                    (Verdict::Safe, "zip/data-descriptor", Severity::Info)
                }
                zip::AnomalyKind::UnsafePath => {
                    (Verdict::Review, "zip/unsafe-path", Severity::Medium)
                }
                zip::AnomalyKind::PrefixData => (Verdict::Review, "zip/prefix-data", Severity::Low),
                // Only zip bombs (and parser-confusion tricks) make entries share bytes.
                zip::AnomalyKind::Overlap => (Verdict::Malicious, "zip/overlap", Severity::High),
                zip::AnomalyKind::HiddenEntry => {
                    (Verdict::Review, "zip/hidden-entry", Severity::Medium)
                }
                _ => (Verdict::Review, "zip/layout", Severity::Low),
            };
            let mut f = finding(rule, severity, a.detail.clone(), Some(a.offset), None);
            f.member = member;
            r.add(verdict, f);
        }
        let has = |base: &str| archive.entries.iter().any(|e| basename(&e.name) == base);
        let torch = has("data.pkl") && (has("version") || has("byteorder"));
        let keras = !torch
            && archive.entries.iter().any(|e| e.name == "config.json")
            && archive
                .entries
                .iter()
                .any(|e| e.name == "metadata.json" || e.name == "model.weights.h5");
        let npz =
            !archive.entries.is_empty() && archive.entries.iter().all(|e| e.name.ends_with(".npy"));
        let format = if torch {
            "pytorch-zip"
        } else if keras {
            "keras"
        } else if npz {
            "npz"
        } else {
            "zip"
        };
        let opts = Options {
            weights_only_safe: torch,
        };
        for e in &archive.entries {
            if e.name.ends_with('/') && e.uncompressed_size == 0 {
                continue;
            }
            let mpath = join(path, &e.name);
            if !e.method_supported() {
                // Already reported as zip/unsupported-method (error).
                continue;
            }
            if torch
                && is_torch_storage(&e.name)
                && e.method == 0
                && let Some(data_offset) = e.data_offset
                && !self.storage_head_is_pickle(src, data_offset, e.compressed_size)
            {
                continue;
            }
            // Large stored members are scanned in place, read lazily: a nested stored archive
            // or a big unknown blob is never copied into memory. (Their CRC is not verified.)
            if e.method == 0
                && e.compressed_size == e.uncompressed_size
                && e.compressed_size > LAZY_MEMBER
                && let Some(data_offset) = e.data_offset
                && let Ok(sub) = SubSource::new(src, data_offset, e.compressed_size)
            {
                let (_, rep) = self.scan_node(&sub, &mpath, depth + 1, ctx, opts);
                r.merge(rep);
                continue;
            }
            match zip::read_member(src, &archive, e.index, &zl, self.budget(ctx)) {
                Ok(m) => {
                    Self::charge(ctx, m.data.len());
                    if let Some(f) = self.cumulative_bomb(ctx) {
                        r.add(Verdict::Malicious, f);
                    }
                    let peek = m.data.get(..STORAGE_PEEK as usize).unwrap_or(&m.data);
                    if torch && is_torch_storage(&e.name) && !self.bytes_look_like_pickle(peek) {
                        // Compressed tensor data: not a pickle, nothing to judge.
                        continue;
                    }
                    if !m.crc_ok {
                        let mut f = finding(
                            "zip/crc-mismatch",
                            Severity::Medium,
                            "member CRC-32 does not match the declared value".to_owned(),
                            Some(e.local_header_offset),
                            None,
                        );
                        f.member = Some(mpath.clone());
                        r.add(Verdict::Review, f);
                    }
                    if keras && e.name == "config.json" {
                        // The model configuration Keras deserialises into objects.
                        let sub = crate::keras::scan_config_json(&m.data, &self.limits.keras);
                        r.merge(sub.in_member(&mpath));
                        continue;
                    }
                    if keras && crate::keras::sniff(&m.data, m.data.len() as u64) {
                        let sub = crate::keras::scan_archive_weights(&m.data, &self.limits.keras);
                        r.merge(sub.in_member(&mpath));
                        continue;
                    }
                    let (_, sub) = self.scan_node(&m.data, &mpath, depth + 1, ctx, opts);
                    r.merge(sub);
                }
                Err(err) => {
                    let mut sub = Report::new();
                    add_error(&mut sub, "zip/unreadable-member", "member not read", &err);
                    r.merge(sub.in_member(&mpath));
                }
            }
        }
        (format, r)
    }

    /// Peeks at the start of a PyTorch storage member: true when it reads as a pickle with calls or
    /// imports (a planted pickle), in which case the member is scanned in full.
    fn storage_head_is_pickle(&self, src: &dyn Source, offset: u64, size: u64) -> bool {
        let n = size.min(STORAGE_PEEK);
        match src.read_vec(offset, n, STORAGE_PEEK) {
            Ok(head) => self.bytes_look_like_pickle(&head),
            // Unreadable: let the full read report it.
            Err(_) => true,
        }
    }

    /// True when `bytes` read as a pickle with imports, calls or `EXT` uses.
    fn bytes_look_like_pickle(&self, bytes: &[u8]) -> bool {
        let a = fmt_pickle::analyze(bytes, &self.limits.pickle);
        !a.imports.is_empty() || !a.calls.is_empty() || !a.ext_uses.is_empty()
    }

    fn scan_tar(
        &self,
        src: &dyn Source,
        path: &str,
        depth: usize,
        ctx: &Ctx,
    ) -> (&'static str, Report) {
        let archive = match tar::open(src, &self.limits.container.tar()) {
            Ok(a) => a,
            Err(e) => {
                return (
                    "tar",
                    error_report("tar/corrupt", "tar archive not read", &e),
                );
            }
        };
        let has = |n: &str| archive.entries.iter().any(|e| basename(&e.name) == n);
        let legacy = has("pickle") && has("sys_info");
        let mut r = Report::new();
        if !archive.terminated {
            r.add(
                Verdict::Review,
                finding(
                    "tar/unterminated",
                    Severity::Low,
                    "archive ends without the end-of-archive blocks".to_owned(),
                    Some(src.len()),
                    None,
                ),
            );
        }
        let opts = Options {
            weights_only_safe: legacy,
        };
        for e in &archive.entries {
            if e.kind != tar::Kind::File {
                continue;
            }
            let mpath = join(path, &e.name);
            let raw_records = legacy && matches!(basename(&e.name), "storages" | "tensors");
            if !raw_records
                && e.size > LAZY_MEMBER
                && let Ok(sub) = SubSource::new(src, e.data_offset, e.size)
            {
                let (_, rep) = self.scan_node(&sub, &mpath, depth + 1, ctx, opts);
                r.merge(rep);
                continue;
            }
            // The legacy records hold their pickles before the raw storage bytes: the first
            // LEGACY_RECORDS_HEAD bytes are enough.
            let entry = if raw_records {
                tar::Entry {
                    size: e.size.min(LEGACY_RECORDS_HEAD),
                    ..e.clone()
                }
            } else {
                e.clone()
            };
            let data = match tar::read_member(src, &entry, self.budget(ctx)) {
                Ok(d) => d,
                Err(err) => {
                    let mut sub = Report::new();
                    add_error(&mut sub, "tar/unreadable-member", "member not read", &err);
                    r.merge(sub.in_member(&mpath));
                    continue;
                }
            };
            Self::charge(ctx, data.len());
            if raw_records {
                r.merge(self.scan_leading_pickles(&data, opts).in_member(&mpath));
            } else {
                let (_, sub) = self.scan_node(&data, &mpath, depth + 1, ctx, opts);
                r.merge(sub);
            }
        }
        (if legacy { "pytorch-legacy-tar" } else { "tar" }, r)
    }

    /// The legacy tar's `storages`/`tensors` members: pickled records interleaved with raw bytes.
    /// The pickles before the first raw block are judged; the raw remainder is not a pickle.
    fn scan_leading_pickles(&self, data: &[u8], opts: Options) -> Report {
        let mut analysis = fmt_pickle::analyze(data, &self.limits.pickle);
        if analysis.pickles.iter().any(|p| p.complete)
            && matches!(
                analysis.status,
                Status::TrailingData { .. } | Status::Broken(_) | Status::Truncated(_)
            )
        {
            analysis.status = Status::Clean;
        }
        pickle::judge_with(&analysis, &opts)
    }
}

/// `archive/data/0`, `archive/data/123`: a PyTorch tensor storage member.
fn is_torch_storage(name: &str) -> bool {
    let mut parts = name.rsplit('/');
    let last = parts.next().unwrap_or("");
    let parent = parts.next().unwrap_or("");
    parent == "data" && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())
}

/// joblib writes raw array bytes inline after each `NumpyArrayWrapper`; when they could not be
/// skipped ([`joblib::splice`]), the rest of the stream is not analysed: say so, as an `error`.
fn joblib_note(analysis: &Analysis, report: &mut Report) {
    if has_joblib_wrapper(analysis) && !matches!(analysis.status, Status::Clean) {
        report.add(
            Verdict::Error,
            finding(
                "joblib/inline-arrays",
                Severity::Medium,
                "joblib pickle with inline array data: the stream after the first array is not analysed".to_owned(),
                analysis.status.error().map(rampart_formats::Error::offset),
                None,
            ),
        );
    }
}

fn has_joblib_wrapper(analysis: &Analysis) -> bool {
    analysis
        .imports
        .iter()
        .any(|i| i.name == "NumpyArrayWrapper" || i.name == "NDArrayWrapper")
}

/// Fuzz entry point: scans `data` with default limits and checks the verdict/finding invariant.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let s = Scanner::default().scan_bytes(data);
    // The verdict is exactly the worst any finding implies: no findings means safe.
    if s.report.findings.is_empty() {
        assert_eq!(s.report.verdict, Verdict::Safe, "verdict without a finding");
    }
}
