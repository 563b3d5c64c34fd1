//! The crate's single error type.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while hashing, signing or verifying a model.
///
/// Display messages name what failed the way a user needs it ("hash mismatch for 'x.bin'",
/// "key mismatch", "signature verification failed"); match on the variant to tell failure kinds apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file, a directory or a key failed.
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The model contains a symbolic link (refused anywhere in the tree, as the reference does).
    #[error("cannot use '{}' because it is a symlink", .0.display())]
    Symlink(PathBuf),

    /// The model contains a socket, FIFO, device or other non-regular file.
    #[error("cannot use '{}' because it is not a regular file or directory", .0.display())]
    SpecialFile(PathBuf),

    /// A file name in the model is not valid UTF-8 and cannot be recorded in a manifest.
    #[error("file name is not valid UTF-8: '{}'", .0.display())]
    NonUtf8Path(PathBuf),

    /// The signature bundle is larger than the accepted limit.
    #[error("signature bundle is too large: {size} bytes (limit {limit} bytes)")]
    BundleTooLarge {
        /// Size of the bundle seen so far, in bytes.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },

    /// The signature bundle is not valid Sigstore bundle v0.3 JSON (syntax, unknown or missing
    /// fields, bad base64, unsupported combination of fields).
    #[error("malformed signature bundle: {0}")]
    MalformedBundle(String),

    /// The bundle's `mediaType` is not `application/vnd.dev.sigstore.bundle.v0.3+json`.
    #[error(
        "unsupported bundle media type '{0}' (expected 'application/vnd.dev.sigstore.bundle.v0.3+json')"
    )]
    MediaType(String),

    /// The DSSE `payloadType` is not `application/vnd.in-toto+json`.
    #[error("unsupported DSSE payload type '{0}' (expected 'application/vnd.in-toto+json')")]
    PayloadType(String),

    /// The signed payload is not an OMS in-toto statement this crate understands.
    #[error("malformed in-toto statement: {0}")]
    MalformedStatement(String),

    /// The statement's root digest does not match its resources ("Manifest is inconsistent").
    #[error("manifest is inconsistent: the subject digest does not match the listed resources")]
    RootDigestMismatch,

    /// A public key could not be read (not PEM SPKI, or not an EC P-256/P-384/P-521 key).
    #[error("invalid public key: {0}")]
    PublicKey(String),

    /// A private key could not be read (not SEC1 or PKCS#8 PEM, encrypted, or an unsupported curve).
    #[error("invalid private key: {0}")]
    PrivateKey(String),

    /// The bundle's public-key hint names a different key than the one supplied.
    #[error(
        "key mismatch: the public key hint in the signature does not match the provided public key"
    )]
    KeyMismatch,

    /// The bundle carries a certificate chain but a public key was supplied, or the reverse.
    #[error("wrong verification material: {0}")]
    VerificationMaterial(String),

    /// The ECDSA signature is malformed (not DER) or does not verify with the key.
    #[error("signature verification failed")]
    BadSignature,

    /// The model on disk (or the digest map) differs from the signed manifest.
    #[error("{0}")]
    ModelMismatch(Mismatch),

    /// A certificate could not be parsed or is not usable (e.g. lacks the required key usage).
    #[error("invalid certificate: {0}")]
    Certificate(String),

    /// The certificate chain does not lead to a supplied trusted root, or a certificate in it is
    /// invalid at the validation time.
    #[error("untrusted certificate chain: {0}")]
    UntrustedChain(String),

    /// The Sigstore trust configuration (trusted root) could not be read or is unusable.
    #[error("invalid Sigstore trust configuration: {0}")]
    TrustConfig(String),

    /// A keyless bundle's transparency-log (Rekor) entry is missing, malformed, signed by an
    /// unknown log, or does not match the bundle (signed entry timestamp, inclusion proof,
    /// checkpoint or entry body).
    #[error("transparency log entry rejected: {0}")]
    TransparencyLog(String),

    /// The keyless signing certificate was issued to another identity (subject alternative name).
    #[error(
        "certificate identity mismatch: expected '{expected}', the certificate names {}",
        found_list(found)
    )]
    IdentityMismatch {
        /// The identity the caller required.
        expected: String,
        /// The identities (SAN entries) the certificate carries.
        found: Vec<String>,
    },

    /// The keyless signing certificate's OIDC issuer (Fulcio extension) is not the expected one.
    #[error(
        "certificate OIDC issuer mismatch: expected '{expected}', the certificate names {}",
        found.as_deref().map_or_else(|| "no issuer".to_owned(), |f| format!("'{f}'"))
    )]
    IssuerMismatch {
        /// The issuer the caller required.
        expected: String,
        /// The issuer recorded in the certificate, if any.
        found: Option<String>,
    },

    /// A feature of the signature is valid OMS but not supported here (e.g. message signatures,
    /// non-SHA-256 hashing).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// The differences between a signed manifest and the model that was checked.
///
/// Every list is sorted and holds resource names as they appear in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// Files present on both sides whose digest (or algorithm) differs.
    pub changed: Vec<String>,
    /// Files in the model that the signature does not cover.
    pub extra: Vec<String>,
    /// Files the signature covers that are absent from the model.
    pub missing: Vec<String>,
}

impl Mismatch {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.extra.is_empty() && self.missing.is_empty()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.changed.is_empty() {
            let names: Vec<String> = self.changed.iter().map(|n| format!("'{n}'")).collect();
            write!(f, "hash mismatch for {}", names.join(", "))?;
            sep = "; ";
        }
        if !self.extra.is_empty() {
            write!(f, "{sep}extra files in model: {}", self.extra.join(", "))?;
            sep = "; ";
        }
        if !self.missing.is_empty() {
            write!(
                f,
                "{sep}missing files in model: {}",
                self.missing.join(", ")
            )?;
        }
        Ok(())
    }
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "no identity".to_owned()
    } else {
        let quoted: Vec<String> = found.iter().map(|f| format!("'{f}'")).collect();
        quoted.join(", ")
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_messages_name_the_files() {
        let m = Mismatch {
            changed: vec!["a.bin".into()],
            extra: vec![],
            missing: vec![],
        };
        assert_eq!(
            Error::ModelMismatch(m).to_string(),
            "hash mismatch for 'a.bin'"
        );
        let m = Mismatch {
            changed: vec![],
            extra: vec!["x".into(), "y".into()],
            missing: vec!["z/w".into()],
        };
        assert_eq!(
            m.to_string(),
            "extra files in model: x, y; missing files in model: z/w"
        );
    }
}
