//! OpenSSF Model Signing (OMS): sign and verify models interoperably with `model_signing` 1.1.
//!
//! The pipeline: hash the model ([`hash_model`], per-file SHA-256 in parallel) into a
//! [`Manifest`], write it as an in-toto statement, sign PAE(statement) with ECDSA
//! ([`SigningKey`]) and store it in a Sigstore bundle v0.3 ([`Bundle`], the `model.sig` file).
//! Verification reverses it: [`verify_model`] checks the bundle against a public key or trusted
//! roots ([`Trust`]) and compares the signed manifest with the model on disk;
//! [`verify_digests`] does the same against a map *path → SHA-256* without reading any file.
//!
//! Older bundles verify as the reference 1.1.1 verifier reads them: the v0.2 predicate
//! (`https://model_signing/Digests/v0.1`, files as subjects), v0.2's mis-encoded PAE (fallback
//! for the key and certificate methods), `publicKey.rawBytes` material without a hint and RSA
//! certificate authorities. Keyless (Sigstore) bundles verify offline with [`Trust::Sigstore`]
//! against a pinned [`TrustConfig`].

#![forbid(unsafe_code)]

mod bundle;
mod cert;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hashing;
mod keys;
mod rsa_pkcs1;
mod sigstore;
mod statement;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

pub use bundle::{Bundle, MAX_BUNDLE_SIZE, MEDIA_TYPE, Material, TlogEntry, pae};
pub use cert::{ChainTime, TrustRoots, certificate_chain_from_pem};
pub use error::{Error, Mismatch, Result};
pub use hashing::{
    DEFAULT_GIT_IGNORES, HashOptions, Manifest, Method, Resource, SINGLE_FILE_NAME, hash_model,
    relative_to_model,
};
pub use keys::{Curve, PublicKey, SigningKey};
pub use sigstore::TrustConfig;
pub use statement::{
    PAYLOAD_TYPE, PREDICATE_TYPE, PREDICATE_TYPE_V0_2, STATEMENT_TYPE, Statement, statement_json,
};

/// The reference's default signature file name.
pub const DEFAULT_SIGNATURE_NAME: &str = "model.sig";

pub(crate) fn statement_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a signature is checked against.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Trust {
    /// Key method: the signer's public key. The bundle's hint must match it when present.
    PublicKey(PublicKey),
    /// Certificate method: the bundle's chain must lead to one of these roots at `time`.
    Certificates {
        /// Trust anchors.
        roots: TrustRoots,
        /// Validation time.
        time: ChainTime,
    },
    /// Keyless (Sigstore): a Fulcio certificate and a Rekor entry checked offline against a
    /// pinned trust configuration; the certificate must name `identity` (subject alternative
    /// name) and `issuer` (Fulcio OIDC-issuer extension).
    Sigstore {
        /// The trusted root: certificate authorities and transparency-log keys.
        config: TrustConfig,
        /// Expected signer identity, e.g. an e-mail address or a workflow URI.
        identity: String,
        /// Expected OIDC issuer URL, e.g. `https://github.com/login/oauth`.
        issuer: String,
    },
}

/// A statement whose signature has been verified; proof that the payload came from the signer.
#[derive(Debug, Clone)]
pub struct Verified {
    statement: Statement,
    payload: Vec<u8>,
    public_key: PublicKey,
}

impl Verified {
    /// The verified statement.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.statement.manifest
    }

    /// The exact signed payload bytes (hash these for a stable identity of the signature).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The key that verified the signature (from the caller or the leaf certificate).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// Whether, and how, a signature over v0.2's mis-encoded PAE is accepted after the v1 PAE fails.
#[derive(Clone, Copy)]
enum LegacyPae {
    /// Keyless: the reference verifies these with `sigstore`, which has no such fallback.
    Refused,
    /// Key method: hashed with the curve's hash, as the reference retries.
    CurveHash,
    /// Certificate method: the reference always retries with SHA-256.
    Sha256,
}

/// Checks the bundle's signature and statement only (no model comparison).
///
/// Order follows the reference: hint check (key method), ECDSA over PAE(payload), then payload
/// type, statement type, predicate type, single subject and root digest. For the key and
/// certificate methods a signature over v0.2's mis-encoded PAE is accepted as a fallback, as the
/// reference does (hashed with the curve's hash for keys, SHA-256 for certificates).
pub fn verify_bundle(bundle: &Bundle, trust: &Trust) -> Result<Verified> {
    let mut fallback = LegacyPae::CurveHash;
    let key = match (trust, &bundle.material) {
        (
            Trust::Sigstore {
                config,
                identity,
                issuer,
            },
            _,
        ) => {
            fallback = LegacyPae::Refused;
            sigstore::verify(bundle, config, identity, issuer)?
        }
        (Trust::PublicKey(key), Material::PublicKey { hint }) => {
            if let Some(h) = hint
                && !h.eq_ignore_ascii_case(&key.hint()?)
            {
                return Err(Error::KeyMismatch);
            }
            key.clone()
        }
        (Trust::Certificates { roots, time }, Material::Certificates(chain)) => {
            fallback = LegacyPae::Sha256;
            cert::verify_chain(chain, roots, *time)?
        }
        (Trust::PublicKey(_), Material::Certificates(_)) => {
            return Err(Error::VerificationMaterial(
                "the signature was made with a certificate; verify it with trusted certificates, not a public key"
                    .to_owned(),
            ));
        }
        (Trust::Certificates { .. }, Material::PublicKey { .. }) => {
            return Err(Error::VerificationMaterial(
                "the signature was made with a bare key; verify it with the public key, not certificates"
                    .to_owned(),
            ));
        }
    };
    let primary = key.verify(&bundle::pae_in_toto(&bundle.payload), &bundle.signature);
    if let Err(e) = primary {
        let compat = bundle::pae_compat(&bundle.payload);
        let retry = match fallback {
            LegacyPae::Refused => return Err(e),
            LegacyPae::CurveHash => key.verify(&compat, &bundle.signature),
            LegacyPae::Sha256 => {
                key.verify_prehash(&sha2::Sha256::digest(&compat), &bundle.signature)
            }
        };
        if retry.is_err() {
            return Err(e);
        }
    }
    if bundle.payload_type != PAYLOAD_TYPE {
        return Err(Error::PayloadType(bundle.payload_type.clone()));
    }
    let statement = Statement::parse(&bundle.payload)?;
    Ok(Verified {
        statement,
        payload: bundle.payload.clone(),
        public_key: key,
    })
}

/// Options for [`verify_model`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Extra paths to ignore (relative to the model root, or absolute inside it).
    pub ignore_paths: Vec<PathBuf>,
    /// Ignore [`DEFAULT_GIT_IGNORES`] at the model root (default true).
    pub ignore_git_paths: bool,
    /// Only check the files the signature names: unsigned extra files pass (default false).
    pub ignore_unsigned_files: bool,
    /// Where the signature file lives; ignored when it is inside the model.
    pub signature_path: Option<PathBuf>,
    /// Hashing threads; `None` uses the available parallelism.
    pub threads: Option<NonZeroUsize>,
    /// How the local model is hashed (default: per-file SHA-256, like the reference CLI).
    pub hashing: VerifyHashing,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            ignore_unsigned_files: false,
            signature_path: None,
            threads: None,
            hashing: VerifyHashing::default(),
        }
    }
}

/// How [`verify_model`] hashes the local model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VerifyHashing {
    /// Always per-file SHA-256, as `model_signing verify` does: a shard-serialized signature then
    /// fails with extra and missing files.
    #[default]
    Files,
    /// Follow the signed serialization (files or shards), as the reference Python API does with
    /// an explicit shard configuration.
    AsSigned,
}

/// Verifies `bundle` with `trust`, then re-hashes `model` and compares it with the signed manifest.
///
/// Ignored: the git paths (unless disabled), the signed `ignore_paths`, `opts.ignore_paths` and
/// the signature file when it lies inside the model. By default the model is hashed per file with
/// SHA-256 like the reference CLI; [`VerifyHashing::AsSigned`] also accepts shard-serialized
/// signatures. With `ignore_unsigned_files` only the signed names are opened (never a name with
/// `..`, an absolute path or a symlink on the way).
pub fn verify_model(
    model: &Path,
    bundle: &Bundle,
    trust: &Trust,
    opts: &VerifyOptions,
) -> Result<Verified> {
    let verified = verify_bundle(bundle, trust)?;
    let signed = &verified.statement.manifest;
    let method = match opts.hashing {
        VerifyHashing::Files => Method::Files,
        VerifyHashing::AsSigned => signed.method.clone(),
    };
    let mut extra_ignores = opts.ignore_paths.clone();
    if let Some(sig) = &opts.signature_path {
        if sig.is_absolute() {
            extra_ignores.push(sig.clone());
        } else if let Ok(cwd) = std::env::current_dir() {
            extra_ignores.push(cwd.join(sig));
        }
    }
    let ignore = hashing::ignore_list(
        model,
        &extra_ignores,
        opts.ignore_git_paths,
        &signed.ignore_paths,
    );
    let files = if opts.ignore_unsigned_files {
        let wanted: BTreeSet<String> = match method {
            Method::Files => signed.resources.iter().map(|r| r.name.clone()).collect(),
            Method::Shards { .. } => signed
                .resources
                .iter()
                .filter_map(|r| shard_file(&r.name).map(str::to_owned))
                .collect(),
        };
        hashing::select_files(model, &wanted, &ignore)?
    } else {
        hashing::list_files(model, &ignore)?
    };
    let actual = hashing::hash_files(model, &files, &method, opts.threads)?;
    let actual: BTreeMap<&str, (&str, &[u8])> = actual
        .iter()
        .map(|r| (r.name.as_str(), (r.algorithm.as_str(), r.digest.as_slice())))
        .collect();
    compare(signed, &actual, opts.ignore_unsigned_files)?;
    Ok(verified)
}

/// `"path:start:end"` → `"path"`.
fn shard_file(name: &str) -> Option<&str> {
    let (rest, _end) = name.rsplit_once(':')?;
    let (path, _start) = rest.rsplit_once(':')?;
    Some(path)
}

fn compare(
    signed: &Manifest,
    actual: &BTreeMap<&str, (&str, &[u8])>,
    ignore_unsigned_files: bool,
) -> Result<()> {
    let mut m = Mismatch::default();
    let mut signed_names = BTreeSet::new();
    for r in &signed.resources {
        signed_names.insert(r.name.as_str());
        match actual.get(r.name.as_str()) {
            None => m.missing.push(r.name.clone()),
            Some((alg, d)) => {
                if *alg != r.algorithm || *d != r.digest.as_slice() {
                    m.changed.push(r.name.clone());
                }
            }
        }
    }
    if !ignore_unsigned_files {
        m.extra = actual
            .keys()
            .filter(|n| !signed_names.contains(*n))
            .map(|n| (*n).to_owned())
            .collect();
    }
    m.changed.sort();
    m.missing.sort();
    if m.is_empty() {
        Ok(())
    } else {
        Err(Error::ModelMismatch(m))
    }
}

/// Verifies `bundle` with `trust` and compares the signed manifest with `digests`, a map from
/// resource name (path relative to the model root, `/`-separated) to raw SHA-256, without
/// reading any file. Only files-mode SHA-256 manifests can be checked this way.
pub fn verify_digests(
    bundle: &Bundle,
    trust: &Trust,
    digests: &BTreeMap<String, [u8; 32]>,
    ignore_unsigned_files: bool,
) -> Result<Verified> {
    let verified = verify_bundle(bundle, trust)?;
    let signed = &verified.statement.manifest;
    if signed.method != Method::Files {
        return Err(Error::Unsupported(
            "digest-map verification needs a files-mode manifest, not shards".to_owned(),
        ));
    }
    let actual: BTreeMap<&str, (&str, &[u8])> = digests
        .iter()
        .map(|(k, v)| (k.as_str(), ("sha256", v.as_slice())))
        .collect();
    compare(signed, &actual, ignore_unsigned_files)?;
    Ok(verified)
}

/// Options for [`sign_model`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignOptions {
    /// Extra paths to ignore (relative to the model root, or absolute inside it).
    pub ignore_paths: Vec<PathBuf>,
    /// Ignore [`DEFAULT_GIT_IGNORES`] at the model root (default true).
    pub ignore_git_paths: bool,
    /// Where the signature will be written; ignored (and recorded) when inside the model.
    pub signature_path: Option<PathBuf>,
    /// Hashing threads; `None` uses the available parallelism.
    pub threads: Option<NonZeroUsize>,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            signature_path: None,
            threads: None,
        }
    }
}

/// Hashes `model` and signs it with `key` (key method). Write the result with [`Bundle::to_json`].
pub fn sign_model(model: &Path, key: &SigningKey, opts: &SignOptions) -> Result<Bundle> {
    sign_manifest(&manifest_for_signing(model, opts)?, key)
}

/// Hashes `model` and signs it with `key` (certificate method). `chain` is the DER signing
/// certificate, whose public key must be `key`'s, followed by the chain certificates in order.
pub fn sign_model_with_certificates(
    model: &Path,
    key: &SigningKey,
    chain: Vec<Vec<u8>>,
    opts: &SignOptions,
) -> Result<Bundle> {
    sign_manifest_with_certificates(&manifest_for_signing(model, opts)?, key, chain)
}

/// Hashes `model` as [`sign_model`] does (git paths, signature file and extra ignores applied).
pub fn manifest_for_signing(model: &Path, opts: &SignOptions) -> Result<Manifest> {
    let mut ignore_paths = opts.ignore_paths.clone();
    if let Some(sig) = &opts.signature_path {
        if sig.is_absolute() {
            ignore_paths.push(sig.clone());
        } else if let Ok(cwd) = std::env::current_dir() {
            ignore_paths.push(cwd.join(sig));
        }
    }
    hash_model(
        model,
        &HashOptions {
            ignore_paths,
            ignore_git_paths: opts.ignore_git_paths,
            threads: opts.threads,
        },
    )
}

/// Signs an already computed files-mode manifest (key method: the bundle carries the key hint).
pub fn sign_manifest(manifest: &Manifest, key: &SigningKey) -> Result<Bundle> {
    let payload = statement_json(manifest)?.into_bytes();
    let signature = key.sign(&bundle::pae_in_toto(&payload))?;
    Ok(Bundle {
        material: Material::PublicKey {
            hint: Some(key.public_key().hint()?),
        },
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload,
        signature,
        signature_count: 1,
        tlog_entries: Vec::new(),
    })
}

/// Signs a files-mode manifest with the certificate method: `chain` is the DER signing
/// certificate (whose key must be `key`) followed by any chain certificates, in order.
pub fn sign_manifest_with_certificates(
    manifest: &Manifest,
    key: &SigningKey,
    chain: Vec<Vec<u8>>,
) -> Result<Bundle> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::Certificate("the signing certificate is required".to_owned()))?;
    if cert::leaf_public_key(leaf)? != key.public_key() {
        return Err(Error::Certificate(
            "the signing certificate does not match the private key".to_owned(),
        ));
    }
    let payload = statement_json(manifest)?.into_bytes();
    let signature = key.sign(&bundle::pae_in_toto(&payload))?;
    Ok(Bundle {
        material: Material::Certificates(chain),
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload,
        signature,
        signature_count: 1,
        tlog_entries: Vec::new(),
    })
}
