//! The crate's single error type.

/// Why a parser stopped. Every variant carries the byte offset (from the start of the input
/// handed to the parser) where the problem was detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended while `what` was being read: the stream is truncated.
    #[error("input truncated at offset {offset} while reading {what}")]
    Truncated {
        /// Offset of the first byte that was missing.
        offset: u64,
        /// The structure being read.
        what: &'static str,
    },
    /// A byte that is not a pickle opcode was found where an opcode was expected.
    #[error("unknown pickle opcode 0x{opcode:02x} at offset {offset}")]
    UnknownOpcode {
        /// Offset of the opcode byte.
        offset: u64,
        /// The byte itself.
        opcode: u8,
    },
    /// A `PROTO` opcode asked for a protocol this parser (and CPython) does not know.
    #[error("unsupported pickle protocol {protocol} at offset {offset}")]
    UnsupportedProtocol {
        /// Offset of the `PROTO` opcode.
        offset: u64,
        /// The requested protocol.
        protocol: u8,
    },
    /// A configured limit would have been exceeded; parsing stopped before allocating.
    #[error("limit {limit} ({max}) exceeded at offset {offset}")]
    LimitExceeded {
        /// Offset where the limit was hit.
        offset: u64,
        /// The name of the `Limits` field.
        limit: &'static str,
        /// The configured maximum.
        max: u64,
    },
    /// An operand or structure is malformed (bad decimal line, bad quoting, invalid UTF-8, ...).
    #[error("malformed {what} at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the opcode or structure.
        offset: u64,
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An opcode needed more stack items than were available above the current mark.
    #[error("stack underflow at offset {offset} in {opcode}")]
    StackUnderflow {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode name (pickletools spelling).
        opcode: &'static str,
    },
    /// An opcode needed a `MARK` and none was on the mark stack.
    #[error("no MARK on the stack at offset {offset} for {opcode}")]
    MissingMark {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode name (pickletools spelling).
        opcode: &'static str,
    },
    /// A memo read (`GET`, `BINGET`, `LONG_BINGET`) named a key that was never stored.
    #[error("memo key {key} not found at offset {offset}")]
    MemoMissing {
        /// Offset of the opcode.
        offset: u64,
        /// The missing key.
        key: u64,
    },
    /// The byte source could not be read (I/O error, or a range outside the source).
    #[error("cannot read {what} at offset {offset}: {reason}")]
    Io {
        /// Offset of the read that failed.
        offset: u64,
        /// The structure being read.
        what: &'static str,
        /// The underlying error, as text.
        reason: String,
    },
    /// A compressed stream could not be decoded.
    #[error("corrupt {codec} stream at offset {offset}: {reason}")]
    Decompress {
        /// Offset of the compressed stream (from the start of the input handed to the parser).
        offset: u64,
        /// The codec (`gzip`, `zlib`, `bzip2`, `xz`, `lzma`, `deflate`).
        codec: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// A structure uses a feature this parser deliberately does not implement (for example a zip
    /// compression method other than stored or deflate).
    #[error("unsupported {what} at offset {offset}: {detail}")]
    Unsupported {
        /// Offset of the structure.
        offset: u64,
        /// The structure being read.
        what: &'static str,
        /// What is unsupported.
        detail: String,
    },
}

impl Error {
    /// The byte offset where the problem was detected.
    #[must_use]
    pub fn offset(&self) -> u64 {
        match self {
            Self::Truncated { offset, .. }
            | Self::UnknownOpcode { offset, .. }
            | Self::UnsupportedProtocol { offset, .. }
            | Self::LimitExceeded { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::StackUnderflow { offset, .. }
            | Self::MissingMark { offset, .. }
            | Self::MemoMissing { offset, .. }
            | Self::Io { offset, .. }
            | Self::Decompress { offset, .. }
            | Self::Unsupported { offset, .. } => *offset,
        }
    }

    /// True when the input simply ended too early (as opposed to being malformed).
    #[must_use]
    pub fn is_truncation(&self) -> bool {
        matches!(self, Self::Truncated { .. })
    }

    /// True when a configured limit stopped the parser.
    #[must_use]
    pub fn is_limit(&self) -> bool {
        matches!(self, Self::LimitExceeded { .. })
    }

    /// Wraps an I/O error from a [`crate::source::Source`] read.
    #[must_use]
    pub fn io(offset: u64, what: &'static str, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            return Self::Truncated { offset, what };
        }
        Self::Io {
            offset,
            what,
            reason: err.to_string(),
        }
    }
}
