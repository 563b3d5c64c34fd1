//! Keyless (Sigstore) verification, offline, against a pinned trust configuration.
//!
//! A keyless bundle carries a short-lived Fulcio certificate and one Rekor entry. Checked here,
//! without network access:
//!
//! 1. the Rekor entry is signed by a transparency log of the trusted root (by log id), valid at
//!    the entry's integrated time: the signed entry timestamp (SET) and/or the RFC 6962 inclusion
//!    proof together with its signed checkpoint (at least one is required; each present one must
//!    verify);
//! 2. the entry body (`dsse` 0.0.1) records this bundle: the payload hash, the signature and the
//!    signing certificate;
//! 3. the certificate chains to a certificate authority of the trusted root, every certificate
//!    valid **at the integrated time** (the leaf lives for minutes);
//! 4. the certificate's subject alternative name equals the expected identity and its Fulcio
//!    OIDC-issuer extension (OID 1.3.6.1.4.1.57264.1.8, else .1.1) the expected issuer.
//!
//! 5. the certificate embeds a signed certificate timestamp (RFC 6962 SCT) that verifies with a
//!    CT-log key of the trusted root.
//!
//! The DSSE signature itself is then checked with the leaf key by [`crate::verify_bundle`].
//! Not checked: RFC 3161 timestamps (the integrated time is the only time source).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, DecodePem as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use crate::bundle::{Bundle, Material};
use crate::cert::{self, ChainTime, TrustRoots};
use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// Fulcio OIDC issuer, raw string value (deprecated form).
const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio OIDC issuer, DER UTF8String value.
const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Embedded SCT list (RFC 6962 §3.3).
const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// Extended key usage `id-kp-codeSigning`, which Fulcio certificates carry.
const KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Largest trust configuration read, in bytes.
const MAX_TRUST_CONFIG_SIZE: u64 = 4 * 1024 * 1024;
/// Longest inclusion proof accepted (a tree of 2^64 leaves needs 64 hashes).
const MAX_PROOF_HASHES: usize = 64;

// ---------------------------------------------------------------------------------------------
// Bundle side: the Rekor entry as protobuf JSON.
// ---------------------------------------------------------------------------------------------

/// A protobuf JSON int64: written as a string, tolerated as a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Int64 {
    Str(String),
    Num(i64),
}

impl Int64 {
    fn get(&self, field: &str) -> Result<i64> {
        match self {
            Self::Num(n) => Ok(*n),
            Self::Str(s) => s
                .parse()
                .map_err(|_| Error::TransparencyLog(format!("{field} '{s}' is not an integer"))),
        }
    }

    fn get_u64(&self, field: &str) -> Result<u64> {
        u64::try_from(self.get(field)?)
            .map_err(|_| Error::TransparencyLog(format!("{field} is negative")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct TlogEntryJson {
    log_index: Int64,
    log_id: LogIdJson,
    kind_version: KindVersionJson,
    integrated_time: Int64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inclusion_promise: Option<PromiseJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inclusion_proof: Option<ProofJson>,
    canonicalized_body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindVersionJson {
    kind: String,
    version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PromiseJson {
    signed_entry_timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProofJson {
    log_index: Int64,
    root_hash: String,
    tree_size: Int64,
    hashes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<CheckpointJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointJson {
    envelope: String,
}

// ---------------------------------------------------------------------------------------------
// Trust configuration (ClientTrustConfig or a bare TrustedRoot), read leniently: unknown
// fields such as `signingConfig` are ignored.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustFileJson {
    media_type: String,
    #[serde(default)]
    trusted_root: Option<TrustedRootJson>,
    #[serde(default)]
    tlogs: Vec<LogInstanceJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogInstanceJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogInstanceJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogInstanceJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogInstanceJson {
    public_key: LogKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogKeyJson {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: Option<String>,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    cert_chain: ChainJson,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForJson {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

/// A validity window; open ends are unbounded.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start: Option<SystemTime>,
    end: Option<SystemTime>,
}

impl Window {
    fn parse(v: Option<&ValidForJson>) -> Result<Self> {
        let Some(v) = v else {
            return Ok(Self::default());
        };
        Ok(Self {
            start: v.start.as_deref().map(parse_rfc3339).transpose()?,
            end: v.end.as_deref().map(parse_rfc3339).transpose()?,
        })
    }

    fn contains(&self, t: SystemTime) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log's key (Rekor or CT).
#[derive(Debug, Clone)]
struct LogKey {
    key_id: Vec<u8>,
    /// `None` for key types this verifier cannot use (e.g. Ed25519 logs); entries from such a
    /// log are rejected.
    key: Option<PublicKey>,
    valid: Window,
}

/// A Fulcio certificate authority: its chain (DER, intermediates then root) and validity.
#[derive(Debug, Clone)]
struct Authority {
    certs: Vec<Vec<u8>>,
    valid: Window,
}

/// A pinned Sigstore trust configuration: the trusted root's certificate authorities,
/// transparency-log keys and CT-log keys.
///
/// Reads a `ClientTrustConfig` (`application/vnd.dev.sigstore.clienttrustconfig…`, as
/// `sigstore-python` and `model_signing --trust_config` use) or a bare `TrustedRoot`
/// (`application/vnd.dev.sigstore.trustedroot…`).
#[derive(Debug, Clone)]
pub struct TrustConfig {
    tlogs: Vec<LogKey>,
    authorities: Vec<Authority>,
    ctlogs: Vec<LogKey>,
}

fn config_err(msg: impl Into<String>) -> Error {
    Error::TrustConfig(msg.into())
}

fn parse_logs(logs: &[LogInstanceJson], what: &str) -> Result<Vec<LogKey>> {
    logs.iter()
        .map(|l| {
            let key_id = Base64::decode_vec(&l.log_id.key_id)
                .map_err(|e| config_err(format!("{what} logId is not base64: {e}")))?;
            let key =
                match (&l.public_key.raw_bytes, l.public_key.key_details.as_deref()) {
                    (Some(raw), Some(details)) if details.starts_with("PKIX_ECDSA_") => {
                        let der = Base64::decode_vec(raw)
                            .map_err(|e| config_err(format!("{what} key is not base64: {e}")))?;
                        Some(PublicKey::from_spki_der(&der).map_err(|e| {
                            config_err(format!("{what} key {}: {e}", l.log_id.key_id))
                        })?)
                    }
                    _ => None,
                };
            Ok(LogKey {
                key_id,
                key,
                valid: Window::parse(l.public_key.valid_for.as_ref())?,
            })
        })
        .collect()
}

impl TrustConfig {
    /// Parses trust configuration JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: TrustFileJson =
            serde_json::from_slice(bytes).map_err(|e| config_err(e.to_string()))?;
        let (tlogs, cas, ctlogs) = if raw
            .media_type
            .starts_with("application/vnd.dev.sigstore.clienttrustconfig")
        {
            let root = raw
                .trusted_root
                .ok_or_else(|| config_err("the client trust configuration has no trustedRoot"))?;
            if !root
                .media_type
                .starts_with("application/vnd.dev.sigstore.trustedroot")
            {
                return Err(config_err(format!(
                    "unexpected trusted root media type '{}'",
                    root.media_type
                )));
            }
            (root.tlogs, root.certificate_authorities, root.ctlogs)
        } else if raw
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            (raw.tlogs, raw.certificate_authorities, raw.ctlogs)
        } else {
            return Err(config_err(format!(
                "unexpected media type '{}'",
                raw.media_type
            )));
        };
        let authorities = cas
            .iter()
            .map(|ca| {
                let certs = ca
                    .cert_chain
                    .certificates
                    .iter()
                    .map(|c| {
                        Base64::decode_vec(&c.raw_bytes).map_err(|e| {
                            config_err(format!("certificate authority is not base64: {e}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Authority {
                    certs,
                    valid: Window::parse(ca.valid_for.as_ref())?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let config = Self {
            tlogs: parse_logs(&tlogs, "transparency log")?,
            authorities,
            ctlogs: parse_logs(&ctlogs, "CT log")?,
        };
        if config.tlogs.is_empty() || config.authorities.is_empty() {
            return Err(config_err(
                "the trusted root needs at least one transparency log and one certificate authority",
            ));
        }
        Ok(config)
    }

    /// Reads and parses a trust configuration file.
    pub fn read(path: &Path) -> Result<Self> {
        use std::io::Read as _;
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        f.take(MAX_TRUST_CONFIG_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_TRUST_CONFIG_SIZE {
            return Err(config_err("the file is too large"));
        }
        Self::from_json(&bytes)
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` → time (fractions are dropped).
fn parse_rfc3339(s: &str) -> Result<SystemTime> {
    let bad = || config_err(format!("invalid timestamp '{s}'"));
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Result<u16> {
        s.get(from..to)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)
    };
    let sep_ok = b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b'T' | b't'))
        && b.get(13) == Some(&b':')
        && b.get(16) == Some(&b':');
    let rest = s.get(19..).ok_or_else(bad)?;
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    if !sep_ok || !matches!(rest, "Z" | "z") {
        return Err(bad());
    }
    let to_u8 = |v: u16| u8::try_from(v).map_err(|_| bad());
    let dt = x509_cert::der::DateTime::new(
        num(0, 4)?,
        to_u8(num(5, 7)?)?,
        to_u8(num(8, 10)?)?,
        to_u8(num(11, 13)?)?,
        to_u8(num(14, 16)?)?,
        to_u8(num(17, 19)?)?,
    )
    .map_err(|_| bad())?;
    Ok(dt.to_system_time())
}

// ---------------------------------------------------------------------------------------------
// Verification.
// ---------------------------------------------------------------------------------------------

fn tlog_err(msg: impl Into<String>) -> Error {
    Error::TransparencyLog(msg.into())
}

fn b64_field(field: &str, s: &str) -> Result<Vec<u8>> {
    Base64::decode_vec(s).map_err(|e| tlog_err(format!("{field} is not valid base64: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    crate::statement_hex(bytes)
}

/// Verifies everything keyless except the DSSE signature; returns the leaf's public key.
pub(crate) fn verify(
    bundle: &Bundle,
    config: &TrustConfig,
    identity: &str,
    issuer: &str,
) -> Result<PublicKey> {
    let Material::Certificates(chain) = &bundle.material else {
        return Err(Error::VerificationMaterial(
            "the signature was made with a bare key; keyless verification needs a Fulcio certificate"
                .to_owned(),
        ));
    };
    let leaf_der = chain
        .first()
        .ok_or_else(|| Error::Certificate("the bundle has no certificate".to_owned()))?;
    let leaf = Certificate::from_der(leaf_der)
        .map_err(|e| Error::Certificate(format!("signing certificate: {e}")))?;
    let [entry] = bundle.tlog_entries.as_slice() else {
        return Err(tlog_err(format!(
            "a keyless bundle needs exactly one transparency log entry, found {}",
            bundle.tlog_entries.len()
        )));
    };
    let entry = &entry.0;
    let integrated = entry.integrated_time.get("integratedTime")?;
    let integrated_time = u64::try_from(integrated)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .ok_or_else(|| tlog_err("integratedTime is out of range"))?;

    // 1. The log and its signatures.
    let key_id = b64_field("logId.keyId", &entry.log_id.key_id)?;
    let log = config
        .tlogs
        .iter()
        .find(|l| l.key_id == key_id)
        .ok_or_else(|| {
            tlog_err(format!(
                "entry from transparency log {} which the trust configuration does not list",
                entry.log_id.key_id
            ))
        })?;
    let log_key = log.key.as_ref().ok_or_else(|| {
        Error::Unsupported(format!(
            "transparency log {} uses a key type this verifier does not support",
            entry.log_id.key_id
        ))
    })?;
    if !log.valid.contains(integrated_time) {
        return Err(tlog_err(
            "the transparency log key was not valid at the entry's integrated time",
        ));
    }
    let body = b64_field("canonicalizedBody", &entry.canonicalized_body)?;
    if entry.inclusion_promise.is_none() && entry.inclusion_proof.is_none() {
        return Err(tlog_err(
            "the entry has neither a signed entry timestamp nor an inclusion proof",
        ));
    }
    if let Some(promise) = &entry.inclusion_promise {
        let set = b64_field("signedEntryTimestamp", &promise.signed_entry_timestamp)?;
        let log_index = entry.log_index.get("logIndex")?;
        // RFC 8785 canonical JSON of the entry's signed fields: sorted keys, no spaces. The body
        // is inserted verbatim: it decoded as base64 above, so it needs no JSON escaping.
        let signed = format!(
            "{{\"body\":\"{}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
            entry.canonicalized_body,
            hex(&key_id)
        );
        log_key
            .verify(signed.as_bytes(), &set)
            .map_err(|_| tlog_err("the signed entry timestamp does not verify with the log key"))?;
    }
    if let Some(proof) = &entry.inclusion_proof {
        verify_inclusion(proof, &body, log_key, &key_id)?;
    }

    // 2. The entry records this bundle.
    check_body(entry, &body, bundle, &leaf)?;

    // 3. The certificate chain, at the integrated time.
    let anchors: Vec<Vec<u8>> = config
        .authorities
        .iter()
        .filter(|a| a.valid.contains(integrated_time))
        .flat_map(|a| a.certs.iter().cloned())
        .collect();
    if anchors.is_empty() {
        return Err(Error::UntrustedChain(
            "no certificate authority of the trust configuration was valid at the entry's integrated time"
                .to_owned(),
        ));
    }
    let roots = TrustRoots::from_der_list(&anchors)?;
    let key = cert::verify_chain(chain, &roots, ChainTime::At(integrated_time))?;

    let code_signing = leaf
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| Error::Certificate(format!("malformed extended key usage: {e}")))?
        .is_some_and(|(_, eku)| eku.0.contains(&KP_CODE_SIGNING));
    if !code_signing {
        return Err(Error::Certificate(
            "the keyless signing certificate lacks the codeSigning extended key usage".to_owned(),
        ));
    }

    // The certificate was logged: an embedded SCT from a CT log of the trust configuration.
    verify_scts(&leaf, &anchors, chain, &config.ctlogs)?;

    // 4. Identity and issuer.
    check_identity(&leaf, identity, issuer)?;
    Ok(key)
}

/// `dsse` 0.0.1 body: payload hash, signatures and verifier (the signing certificate, PEM).
fn check_body(
    entry: &TlogEntryJson,
    body: &[u8],
    bundle: &Bundle,
    leaf: &Certificate,
) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| tlog_err(format!("the entry body is not JSON: {e}")))?;
    let kind = v.get("kind").and_then(|k| k.as_str());
    let version = v.get("apiVersion").and_then(|k| k.as_str());
    if kind != Some(entry.kind_version.kind.as_str())
        || version != Some(entry.kind_version.version.as_str())
    {
        return Err(tlog_err("the entry body's kind does not match kindVersion"));
    }
    if entry.kind_version.kind != "dsse" || entry.kind_version.version != "0.0.1" {
        return Err(Error::Unsupported(format!(
            "transparency log entry kind {} {} (only dsse 0.0.1 is supported)",
            entry.kind_version.kind, entry.kind_version.version
        )));
    }
    let spec = v
        .get("spec")
        .ok_or_else(|| tlog_err("the entry body has no spec"))?;
    let payload_hash = spec.get("payloadHash");
    let alg = payload_hash
        .and_then(|h| h.get("algorithm"))
        .and_then(|a| a.as_str());
    let value = payload_hash
        .and_then(|h| h.get("value"))
        .and_then(|a| a.as_str());
    if alg != Some("sha256")
        || value.map(str::to_ascii_lowercase) != Some(hex(&Sha256::digest(&bundle.payload)))
    {
        return Err(tlog_err(
            "the entry's payload hash does not match the bundle's payload",
        ));
    }
    let sigs = spec
        .get("signatures")
        .and_then(|s| s.as_array())
        .ok_or_else(|| tlog_err("the entry body has no signatures"))?;
    let [sig] = sigs.as_slice() else {
        return Err(tlog_err(format!(
            "the entry records {} signatures, the bundle 1",
            sigs.len()
        )));
    };
    if bundle.signature_count != 1 {
        return Err(tlog_err(format!(
            "the bundle carries {} signatures; keyless bundles have one",
            bundle.signature_count
        )));
    }
    let recorded_sig = sig
        .get("signature")
        .and_then(|s| s.as_str())
        .map(|s| b64_field("entry signature", s))
        .transpose()?;
    if recorded_sig.as_deref() != Some(bundle.signature.as_slice()) {
        return Err(tlog_err(
            "the entry's signature does not match the bundle's signature",
        ));
    }
    let verifier = sig
        .get("verifier")
        .and_then(|s| s.as_str())
        .map(|s| b64_field("entry verifier", s))
        .transpose()?
        .ok_or_else(|| tlog_err("the entry records no verifier"))?;
    let recorded = Certificate::from_pem(&verifier).map_err(|e| {
        tlog_err(format!(
            "the entry's verifier is not a PEM certificate: {e}"
        ))
    })?;
    if &recorded != leaf {
        return Err(tlog_err(
            "the entry's certificate does not match the bundle's signing certificate",
        ));
    }
    Ok(())
}

fn hash_children(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root implied by an inclusion proof.
fn root_from_proof(index: u64, size: u64, leaf: [u8; 32], proof: &[[u8; 32]]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let last = size - 1;
    let inner = usize::try_from(u64::BITS - (index ^ last).leading_zeros()).ok()?;
    let border = usize::try_from((index >> inner).count_ones()).ok()?;
    if proof.len() != inner.checked_add(border)? {
        return None;
    }
    let (inner_hashes, border_hashes) = proof.split_at(inner);
    let mut res = leaf;
    for (i, h) in inner_hashes.iter().enumerate() {
        res = if (index >> i) & 1 == 0 {
            hash_children(&res, h)
        } else {
            hash_children(h, &res)
        };
    }
    for h in border_hashes {
        res = hash_children(h, &res);
    }
    Some(res)
}

fn hash32(field: &str, s: &str) -> Result<[u8; 32]> {
    b64_field(field, s)?
        .try_into()
        .map_err(|_| tlog_err(format!("{field} is not a SHA-256 hash")))
}

fn verify_inclusion(proof: &ProofJson, body: &[u8], key: &PublicKey, key_id: &[u8]) -> Result<()> {
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(tlog_err("the inclusion proof is too long"));
    }
    let index = proof.log_index.get_u64("inclusionProof.logIndex")?;
    let size = proof.tree_size.get_u64("inclusionProof.treeSize")?;
    let root = hash32("inclusionProof.rootHash", &proof.root_hash)?;
    let hashes = proof
        .hashes
        .iter()
        .map(|h| hash32("inclusionProof.hashes", h))
        .collect::<Result<Vec<_>>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    let computed = root_from_proof(index, size, leaf.finalize().into(), &hashes)
        .ok_or_else(|| tlog_err("the inclusion proof has the wrong shape for its tree size"))?;
    if computed != root {
        return Err(tlog_err(
            "the inclusion proof does not lead to the recorded root hash",
        ));
    }
    let checkpoint = proof
        .checkpoint
        .as_ref()
        .ok_or_else(|| tlog_err("the inclusion proof has no signed checkpoint"))?;
    verify_checkpoint(&checkpoint.envelope, size, &root, key, key_id)
}

/// A signed note: `origin\nsize\nroot(base64)\n[extensions]\n\n— name base64(keyhint[4] || sig)\n…`.
fn verify_checkpoint(
    envelope: &str,
    size: u64,
    root: &[u8; 32],
    key: &PublicKey,
    key_id: &[u8],
) -> Result<()> {
    let split = envelope
        .find("\n\n")
        .ok_or_else(|| tlog_err("the checkpoint is not a signed note"))?;
    let (note, sigs) = envelope.split_at(split + 1);
    let mut lines = note.lines();
    let _origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| tlog_err("the checkpoint has no origin"))?;
    let cp_size: Option<u64> = lines.next().and_then(|l| l.parse().ok());
    let cp_root = lines
        .next()
        .map(|l| b64_field("checkpoint root hash", l))
        .transpose()?;
    if cp_size != Some(size) || cp_root.as_deref() != Some(root.as_slice()) {
        return Err(tlog_err(
            "the checkpoint does not match the inclusion proof's tree size and root hash",
        ));
    }
    let hint = key_id.get(..4).unwrap_or(key_id);
    for line in sigs.lines().skip(1) {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((_name, sig_b64)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(raw) = Base64::decode_vec(sig_b64) else {
            continue;
        };
        if let Some((h, sig)) = raw.split_at_checked(4)
            && h == hint
            && key.verify(note.as_bytes(), sig).is_ok()
        {
            return Ok(());
        }
    }
    Err(tlog_err(
        "the checkpoint is not signed by the transparency log",
    ))
}

/// The identities a Fulcio certificate names (SAN e-mail, URI, DNS or Fulcio's username
/// `otherName`).
fn identities(leaf: &Certificate) -> Result<Vec<String>> {
    let san = leaf
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| Error::Certificate(format!("malformed subject alternative name: {e}")))?;
    let mut out = Vec::new();
    for name in san.map(|(_, s)| s.0).unwrap_or_default() {
        match name {
            GeneralName::Rfc822Name(s)
            | GeneralName::UniformResourceIdentifier(s)
            | GeneralName::DnsName(s) => out.push(s.to_string()),
            GeneralName::OtherName(o) => {
                if let Ok(s) = o.value.decode_as::<Utf8StringRef<'_>>() {
                    out.push(s.as_str().to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The OIDC issuer from the Fulcio extensions: `.1.8` (DER UTF8String) when present, else `.1.1`
/// (raw UTF-8).
fn oidc_issuer(leaf: &Certificate) -> Option<String> {
    let exts = leaf.tbs_certificate().extensions()?;
    let find = |oid: ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);
    if let Some(e) = find(OID_ISSUER_V2)
        && let Ok(s) = Utf8StringRef::from_der(e.extn_value.as_bytes())
    {
        return Some(s.as_str().to_owned());
    }
    find(OID_ISSUER_V1).and_then(|e| String::from_utf8(e.extn_value.as_bytes().to_vec()).ok())
}

fn check_identity(leaf: &Certificate, identity: &str, issuer: &str) -> Result<()> {
    let found = identities(leaf)?;
    if !found.iter().any(|f| f == identity) {
        return Err(Error::IdentityMismatch {
            expected: identity.to_owned(),
            found,
        });
    }
    let found_issuer = oidc_issuer(leaf);
    if found_issuer.as_deref() != Some(issuer) {
        return Err(Error::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found_issuer,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signed certificate timestamps (RFC 6962).
// ---------------------------------------------------------------------------------------------

/// A bounds-checked reader over TLS-encoded bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or_else(|| {
            Error::Certificate("truncated signed certificate timestamp".to_owned())
        })?;
        self.rest = tail;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A `u16`-length-prefixed vector.
    fn vec16(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.uint(2)?)
            .map_err(|_| Error::Certificate("SCT length out of range".to_owned()))?;
        self.take(n)
    }
}

/// One parsed SCT: (log id, timestamp in ms, extensions, DER signature).
type Sct<'a> = (&'a [u8], u64, &'a [u8], &'a [u8]);

fn parse_sct(bytes: &[u8]) -> Result<Sct<'_>> {
    let mut c = Cursor { rest: bytes };
    let version = c.uint(1)?;
    let log_id = c.take(32)?;
    let timestamp = c.uint(8)?;
    let extensions = c.vec16()?;
    let hash = c.uint(1)?;
    let sig_alg = c.uint(1)?;
    let sig = c.vec16()?;
    if version != 0 || !c.rest.is_empty() {
        return Err(Error::Certificate(
            "unsupported signed certificate timestamp".to_owned(),
        ));
    }
    // sha256 + ecdsa: the only combination Sigstore's CT logs use.
    if (hash, sig_alg) != (4, 3) {
        return Err(Error::Unsupported(format!(
            "SCT signature algorithm {hash}/{sig_alg}"
        )));
    }
    Ok((log_id, timestamp, extensions, sig))
}

/// The leaf's TBS with the SCT list extension removed: what the CT log signed (the
/// precertificate's TBS, Fulcio issuing precertificates with the final CA key).
fn precert_tbs(leaf: &Certificate) -> Result<Vec<u8>> {
    use x509_cert::der::{Any, Encode as _, Tagged as _};
    let bad = |e: x509_cert::der::Error| {
        Error::Certificate(format!("cannot rebuild the precertificate: {e}"))
    };
    let tbs = leaf.tbs_certificate().to_der().map_err(bad)?;
    let fields: Vec<Any> = Vec::<Any>::from_der(&tbs).map_err(bad)?;
    let fields = fields
        .into_iter()
        .map(|f| {
            let tag = f.tag();
            if tag.is_context_specific() && tag.number().value() == 3 {
                let exts = x509_cert::ext::Extensions::from_der(f.value()).map_err(bad)?;
                let kept: x509_cert::ext::Extensions = exts
                    .into_iter()
                    .filter(|e| e.extn_id != OID_SCT_LIST)
                    .collect();
                Any::new(tag, kept.to_der().map_err(bad)?).map_err(bad)
            } else {
                Ok(f)
            }
        })
        .collect::<Result<Vec<Any>>>()?;
    fields.to_der().map_err(bad)
}

fn verify_scts(
    leaf: &Certificate,
    anchors: &[Vec<u8>],
    chain: &[Vec<u8>],
    ctlogs: &[LogKey],
) -> Result<()> {
    use x509_cert::der::Encode as _;
    use x509_cert::der::asn1::OctetString;
    let ext = leaf
        .tbs_certificate()
        .extensions()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == OID_SCT_LIST))
        .ok_or_else(|| {
            Error::Certificate("the keyless signing certificate embeds no SCT".to_owned())
        })?;
    let list = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| Error::Certificate(format!("malformed SCT list: {e}")))?;
    let mut outer = Cursor {
        rest: list.as_bytes(),
    };
    let mut items = Cursor {
        rest: outer.vec16()?,
    };
    if !outer.rest.is_empty() {
        return Err(Error::Certificate(
            "trailing bytes after the SCT list".to_owned(),
        ));
    }
    let tbs = precert_tbs(leaf)?;
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|n| *n < 1 << 24)
        .ok_or_else(|| Error::Certificate("certificate too large for an SCT".to_owned()))?;
    // Hashes of every possible issuer key (trusted or in the bundle) named as the leaf's issuer.
    let issuer_name = leaf.tbs_certificate().issuer();
    let issuer_key_hashes: Vec<[u8; 32]> = anchors
        .iter()
        .chain(chain.iter().skip(1))
        .filter_map(|d| Certificate::from_der(d).ok())
        .filter(|c| c.tbs_certificate().subject() == issuer_name)
        .filter_map(|c| c.tbs_certificate().subject_public_key_info().to_der().ok())
        .map(|spki| Sha256::digest(&spki).into())
        .collect();
    while !items.rest.is_empty() {
        let (log_id, timestamp, extensions, sig) = parse_sct(items.vec16()?)?;
        let Some(log) = ctlogs.iter().find(|l| l.key_id == log_id) else {
            continue;
        };
        let Some(key) = &log.key else {
            continue;
        };
        let when = UNIX_EPOCH.checked_add(Duration::from_millis(timestamp));
        if !when.is_some_and(|t| log.valid.contains(t)) {
            continue;
        }
        let ext_len = u16::try_from(extensions.len())
            .map_err(|_| Error::Certificate("SCT extensions too long".to_owned()))?;
        for ikh in &issuer_key_hashes {
            let mut msg = Vec::with_capacity(tbs.len() + 64);
            msg.extend_from_slice(&[0, 0]); // v1, certificate_timestamp
            msg.extend_from_slice(&timestamp.to_be_bytes());
            msg.extend_from_slice(&[0, 1]); // precert_entry
            msg.extend_from_slice(ikh);
            msg.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
            msg.extend_from_slice(&tbs);
            msg.extend_from_slice(&ext_len.to_be_bytes());
            msg.extend_from_slice(extensions);
            if key.verify(&msg, sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Error::Certificate(
        "no signed certificate timestamp of the keyless certificate verifies with a CT log of the trust configuration"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339("2022-12-31T23:59:59.999Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_672_531_199
        );
        assert!(parse_rfc3339("2022-12-31 23:59:59Z").is_err());
        assert!(parse_rfc3339("2022-12-31T23:59:59+01:00").is_err());
    }

    #[test]
    fn inclusion_proof_shapes() {
        let leaf = [7u8; 32];
        // A one-leaf tree: the root is the leaf hash and the proof is empty.
        assert_eq!(root_from_proof(0, 1, leaf, &[]), Some(leaf));
        assert_eq!(root_from_proof(1, 1, leaf, &[]), None);
        let sib = [9u8; 32];
        assert_eq!(
            root_from_proof(1, 2, leaf, &[sib]),
            Some(hash_children(&sib, &leaf))
        );
        assert_eq!(root_from_proof(1, 2, leaf, &[]), None);
    }
}
