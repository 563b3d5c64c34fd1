//! The crate's one error type.

use std::path::PathBuf;

/// Why an append could not be made durable. Every variant means "fail closed" (HTTP 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// The record was not acknowledged within the configured timeout.
    Timeout,
    /// An earlier write or fsync failed; the log refuses appends until it is reopened.
    Poisoned,
    /// A write has been pending longer than the timeout; appends fail fast until it completes.
    Stalled,
    /// The log was shut down (or its writer is gone).
    Closed,
    /// This batch's write or fsync failed (the log is now poisoned).
    WriteFailed,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out waiting for the audit record to become durable",
            Self::Poisoned => "the audit log is poisoned by an earlier write failure",
            Self::Stalled => "the audit log writer is stalled",
            Self::Closed => "the audit log is shut down",
            Self::WriteFailed => "writing the audit record failed",
        })
    }
}

/// Errors of `rampart-audit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record could not be made durable: fail closed.
    #[error("audit log unavailable: {0}")]
    Unavailable(Unavailable),
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file is readable by group or others, or malformed.
    #[error("key file {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A signed note, checkpoint, verifier key or proof text is malformed; `offset` is the byte
    /// where parsing stopped.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Parse {
        /// The structure being read.
        what: &'static str,
        /// Byte offset.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A record is not valid (not canonical JSON, unknown fields, floats, too long, ...).
    #[error("invalid audit record: {0}")]
    Record(String),
    /// A signature did not verify, or no trusted key signed the note.
    #[error("signature verification failed: {0}")]
    Signature(&'static str),
    /// A proof could not be built or did not verify.
    #[error("proof: {0}")]
    Proof(&'static str),
    /// The log on disk cannot be opened safely (a signed record is missing, or the records are
    /// inconsistent with the last signed checkpoint): tampering or corruption.
    #[error("audit log refused: {0}")]
    Corrupt(String),
    /// An invalid argument (index out of range, bad time filter, ...).
    #[error("{0}")]
    Invalid(String),
    /// Another process (or another handle in this one) has the log open for writing: two writers
    /// would interleave indices and sign diverging checkpoints.
    #[error(
        "the audit log in {} is already open in another process (another `rampart serve` on the \
         same data directory?)",
        .0.display()
    )]
    InUse(PathBuf),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(what: &'static str, offset: usize, reason: &'static str) -> Self {
        Self::Parse {
            what,
            offset,
            reason,
        }
    }

    /// Whether this is a fail-closed availability error (HTTP 503).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
