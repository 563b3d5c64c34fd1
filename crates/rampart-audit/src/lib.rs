//! Rampart's tamper-evident audit log.
//!
//! Every request is one [`Record`], written as an RFC 8785 canonical JSON line; the line's bytes are
//! a leaf of an RFC 6962 Merkle tree; the log periodically signs a C2SP `tlog-checkpoint`
//! (`signed-note`, Ed25519) over the tree. Anyone holding the verifier key can check the whole log
//! offline ([`verify()`]), a single record ([`tools::prove`] → C2SP `tlog-proof`), or serve it as C2SP
//! tiles ([`tools::export_tiles`]).
//!
//! # Using the log from the server
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_audit::Error> {
//! use rampart_audit::{AuditConfig, AuditLog, Principal, Record, Stage};
//! let log = AuditLog::open("rampart-data/audit", AuditConfig::default())?; // once, at start
//! let key = log.audit_key().clone();
//! let mut rec = Record::new("req-0001", "pull");
//! rec.stage = Stage::Completed;
//! rec.principal = Some(Principal {
//!     id: "alice".into(),
//!     kind: "token".into(),
//!     token_hash: Some(key.hash_secret(b"the bearer token")),
//!     key_id: Some(key.id().to_owned()),
//! });
//! rec.status = Some(200);
//! match log.append(rec).await {
//!     Ok(index) => { /* durable: finish the response; `index` is its leaf index */ let _ = index; }
//!     Err(e) if e.is_unavailable() => { /* fail closed: 503, do not serve */ }
//!     Err(e) => { /* a record that cannot be serialised: a bug, also fail closed */ let _ = e; }
//! }
//! assert!(log.is_healthy()); // readiness: false when poisoned, stalled or shut down
//! log.shutdown().await; // final checkpoint
//! # Ok(()) }
//! ```
//!
//! Contract:
//! - [`AuditLog`] is cheap to clone (an `Arc`); share one per process. [`AuditLog::open`] is
//!   synchronous (recovery reads the whole log) and starts a writer thread; `append` must run inside
//!   a Tokio runtime with the time driver enabled.
//! - `append` returns only after the record is written and `fdatasync`ed (group commit: concurrent
//!   appends share one fsync). It fails with [`Error::Unavailable`] when the log does not
//!   acknowledge within [`AuditConfig::timeout`] (default 2 s), when a write has been stalled longer
//!   than that, after any write or fsync error (the log is then *poisoned* until reopened: fsync is
//!   never retried), or after shutdown. Every such failure must become a 503.
//! - [`AuditLog::defer`] queues a record (the writer gives it its index and time in arrival order)
//!   that is flushed with the next ordinary record, a checkpoint tick or shutdown, never on its
//!   own; [`Submitted::durable`] waits for that. For work nobody can observe yet: it saves one
//!   `fdatasync`. A deferred record is written even if its caller is gone.
//! - The log assigns `seq` (the leaf index) and `time`; an `append` whose caller already gave up
//!   is not written.
//! - [`AuditLog::counters`] gives appended / failures / checkpoints / batches for metrics.
//! - Secrets never go in a record in clear: use [`AuditKey::hash_secret`] (HMAC-SHA256 under the
//!   separate audit key, whose id goes in `principal.key_id`).
//!
//! Files are described in [`layout`]; crash recovery in [`AuditLog::open`].

mod error;
pub mod fuzzing;
pub mod jcs;
pub mod layout;
pub mod load;
mod log;
pub mod merkle;
pub mod note;
pub mod record;
pub mod tools;
pub mod verify;

pub use error::{Error, Unavailable};
pub use log::{
    AuditConfig, AuditLog, Counters, FileStorage, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, Recovery,
    Storage, Submitted, audit_dir,
};
pub use note::{Checkpoint, NoteSigner, PrevCheckpoint, TlogProof, VerifierKey};
pub use record::{AuditKey, Principal, Record, Stage};
pub use verify::{Damage, Failure, Report, verify};
