//! Rampart's storage layer: content-addressed blobs ([`BlobStore`]) and registry metadata
//! ([`MetadataStore`]), each a trait with one embedded backend today ([`FsBlobStore`],
//! [`SqliteMetadata`]) so PostgreSQL and S3 backends can be added without touching the server.
//!
//! Invariants: a blob is visible only after its digest was verified over every byte and it was
//! durably written and atomically renamed into place; a digest mismatch leaves nothing behind; every
//! path is built from parsed [`rampart_core::Digest`] values and random upload ids, never from a
//! caller's string.

#![forbid(unsafe_code)]

mod blob;
mod error;
pub mod gc;
mod meta;
mod sqlite;

pub use blob::{BlobRead, BlobStore, ByteStream, FsBlobStore, UploadId};
pub use error::Error;
pub use meta::{ManifestRecord, MetadataStore, TokenRecord, UploadRecord, now_unix, rfc3339};
pub use sqlite::SqliteMetadata;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
