//! The one error type of this crate.

use rampart_core::Digest;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded schema migrations failed.
    #[error("metadata migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The uploaded bytes do not hash to the digest the client promised. Nothing was kept.
    #[error("digest mismatch: expected {expected}, content is {actual}")]
    DigestMismatch {
        /// What the client said.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// No upload session with this id (never started, finished, cancelled or expired).
    #[error("upload unknown")]
    UploadUnknown,
    /// A chunk did not start where the upload currently ends.
    #[error("chunk starts at {got}, but the upload has {expected} bytes")]
    OutOfOrder {
        /// The current size of the upload.
        expected: u64,
        /// Where the chunk claimed to start.
        got: u64,
    },
    /// The upload grew past the configured maximum blob size.
    #[error("blob larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body stream from the client failed.
    #[error("request body: {0}")]
    Body(std::io::Error),
    /// A stored value does not parse (the database was edited by hand or is corrupt).
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}
