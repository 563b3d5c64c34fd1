//! The one error type of this crate.

/// Why a string was rejected by one of the parsing constructors.
///
/// Every variant names the kind of value that was being parsed; `reason` says what rule it broke in
/// words a user can act on. The rejected input itself is not echoed back, because parsers here also see
/// values from the network and logs must stay bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a `sha256:` digest of 64 lowercase hexadecimal characters.
    #[error("invalid digest: {reason}")]
    Digest {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not a repository name under the OCI distribution grammar.
    #[error("invalid repository name: {reason}")]
    RepoName {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not a tag under the OCI distribution grammar.
    #[error("invalid tag: {reason}")]
    Tag {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not a reference of the form `[registry[:port]/]repo[:tag][@digest]`.
    #[error("invalid reference: {reason}")]
    Reference {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not a namespace pattern such as `acme/*` or `acme/**`.
    #[error("invalid namespace pattern: {reason}")]
    Pattern {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not an IP network such as `10.0.0.0/8`, `fd00::/8` or a bare address.
    #[error("invalid network: {reason}")]
    Network {
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Not one of the known roles.
    #[error("invalid role: expected one of reader, publisher, admin, auditor")]
    Role,
}
