//! Rampart's domain types. Each is constructed only by parsing, so holding one proves it is valid:
//! a [`RepoName`] is safe to use as a relative path, a [`Digest`] has exactly one spelling, and so on.
//!
//! This crate has no I/O, no async runtime and no knowledge of storage or HTTP.

#![forbid(unsafe_code)]

mod access;
mod digest;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod name;
pub mod net;
mod reference;

pub use access::{Action, NamespacePattern, Role};
pub use digest::{Digest, Hasher};
pub use error::Error;
pub use name::{MAX_NAME_LEN, MAX_TAG_LEN, RepoName, Tag};
pub use net::{Cidr, ClientAddr, TrustedProxies};
pub use reference::{Reference, Registry};
