//! Sigstore bundle v0.3 JSON (`model.sig`) with a DSSE envelope, as `model_signing` reads and
//! writes it.
//!
//! Parsing is strict in the same places as the reference (pydantic `extra="forbid"`): unknown
//! fields anywhere are rejected, the media type must be the v0.3 one, exactly one kind of
//! verification material and exactly one of `dsseEnvelope` / `messageSignature`. Bundles over
//! [`MAX_BUNDLE_SIZE`] are refused before parsing.

use std::io::Read;
use std::path::Path;

use base64ct::{Base64, Encoding as _};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sigstore::TlogEntryJson;
use crate::statement::PAYLOAD_TYPE;

/// The only media type accepted and written.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Largest bundle accepted, in bytes (64 MiB: room for a manifest of several hundred thousand files).
pub const MAX_BUNDLE_SIZE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: VerificationMaterialJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<EnvelopeJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerificationMaterialJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKeyJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<CertChainJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<CertJson>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntryJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublicKeyJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    // Older writers; the reference strips these.
    #[serde(rename = "rawBytes", default, skip_serializing)]
    _raw_bytes: Option<serde::de::IgnoredAny>,
    #[serde(rename = "keyDetails", default, skip_serializing)]
    _key_details: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertChainJson {
    certificates: Vec<CertJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertJson {
    raw_bytes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EnvelopeJson {
    payload: String,
    payload_type: String,
    signatures: Vec<SignatureJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    sig: String,
    /// Written as `""`; older `model_signing` releases wrote `null`.
    #[serde(default)]
    keyid: Option<String>,
}

/// What the bundle offers to check the signature with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Material {
    /// Key method: an optional (unsigned) hint, hex SHA-256 of the signer's PEM public key.
    PublicKey {
        /// The hint, if present.
        hint: Option<String>,
    },
    /// Certificate method: DER certificates, leaf first.
    Certificates(Vec<Vec<u8>>),
}

/// A parsed bundle: the DSSE envelope (decoded) plus the verification material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Verification material.
    pub material: Material,
    /// DSSE payload type as written in the envelope.
    pub payload_type: String,
    /// The exact signed payload bytes (base64-decoded).
    pub payload: Vec<u8>,
    /// `signatures[0].sig`, base64-decoded (DER ECDSA). Only the first signature is used.
    pub signature: Vec<u8>,
    /// Number of signatures in the DSSE envelope (only the first is verified; a keyless log
    /// entry must record exactly the same list).
    pub signature_count: usize,
    /// Transparency-log entries (Rekor), present in keyless (Sigstore) bundles.
    pub tlog_entries: Vec<TlogEntry>,
}

/// A transparency-log (Rekor) entry from `verificationMaterial.tlogEntries`, checked only by
/// keyless verification ([`crate::Trust::Sigstore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry(pub(crate) TlogEntryJson);

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    Base64::decode_vec(s)
        .map_err(|e| Error::MalformedBundle(format!("{field} is not valid base64: {e}")))
}

impl Bundle {
    /// Parses bundle JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let size = bytes.len() as u64;
        if size > MAX_BUNDLE_SIZE {
            return Err(Error::BundleTooLarge {
                size,
                limit: MAX_BUNDLE_SIZE,
            });
        }
        let raw: BundleJson =
            serde_json::from_slice(bytes).map_err(|e| Error::MalformedBundle(e.to_string()))?;
        if raw.media_type != MEDIA_TYPE {
            return Err(Error::MediaType(raw.media_type));
        }
        let vm = raw.verification_material;
        let material = match (vm.public_key, vm.x509_certificate_chain, vm.certificate) {
            (Some(pk), None, None) => Material::PublicKey { hint: pk.hint },
            (None, Some(chain), None) => {
                if chain.certificates.is_empty() {
                    return Err(Error::MalformedBundle(
                        "x509CertificateChain has no certificates".to_owned(),
                    ));
                }
                Material::Certificates(
                    chain
                        .certificates
                        .iter()
                        .map(|c| b64("certificate rawBytes", &c.raw_bytes))
                        .collect::<Result<_>>()?,
                )
            }
            (None, None, Some(cert)) => {
                Material::Certificates(vec![b64("certificate rawBytes", &cert.raw_bytes)?])
            }
            _ => {
                return Err(Error::MalformedBundle(
                    "verificationMaterial needs exactly one of publicKey, x509CertificateChain, certificate"
                        .to_owned(),
                ));
            }
        };
        let env = match (raw.dsse_envelope, raw.message_signature) {
            (Some(env), None) => env,
            (None, Some(_)) => {
                return Err(Error::Unsupported(
                    "bundle has a messageSignature; OMS signatures use a DSSE envelope".to_owned(),
                ));
            }
            _ => {
                return Err(Error::MalformedBundle(
                    "bundle needs exactly one of dsseEnvelope, messageSignature".to_owned(),
                ));
            }
        };
        let first = env
            .signatures
            .first()
            .ok_or_else(|| Error::MalformedBundle("dsseEnvelope has no signatures".to_owned()))?;
        Ok(Self {
            material,
            payload_type: env.payload_type.clone(),
            payload: b64("dsseEnvelope.payload", &env.payload)?,
            signature: b64("dsseEnvelope.signatures[0].sig", &first.sig)?,
            signature_count: env.signatures.len(),
            tlog_entries: vm.tlog_entries.into_iter().map(TlogEntry).collect(),
        })
    }

    /// Reads and parses a bundle file, refusing files over [`MAX_BUNDLE_SIZE`] without reading them
    /// whole.
    pub fn read(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        f.take(MAX_BUNDLE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Self::from_json(&bytes)
    }

    /// Serializes as compact JSON in the reference's key order, without a trailing newline.
    pub fn to_json(&self) -> String {
        let (public_key, chain) = match &self.material {
            Material::PublicKey { hint } => (
                Some(PublicKeyJson {
                    hint: hint.clone(),
                    _raw_bytes: None,
                    _key_details: None,
                }),
                None,
            ),
            Material::Certificates(certs) => (
                None,
                Some(CertChainJson {
                    certificates: certs
                        .iter()
                        .map(|c| CertJson {
                            raw_bytes: Base64::encode_string(c),
                        })
                        .collect(),
                }),
            ),
        };
        let raw = BundleJson {
            media_type: MEDIA_TYPE.to_owned(),
            verification_material: VerificationMaterialJson {
                public_key,
                x509_certificate_chain: chain,
                certificate: None,
                tlog_entries: self.tlog_entries.iter().map(|e| e.0.clone()).collect(),
                timestamp_verification_data: None,
            },
            dsse_envelope: Some(EnvelopeJson {
                payload: Base64::encode_string(&self.payload),
                payload_type: self.payload_type.clone(),
                signatures: vec![SignatureJson {
                    sig: Base64::encode_string(&self.signature),
                    keyid: Some(String::new()),
                }],
            }),
            message_signature: None,
        };
        // Serializing plain strings, vectors and `Value`s cannot fail.
        serde_json::to_string(&raw).unwrap_or_default()
    }
}

/// DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// The PAE the reference verifies against: always built with the in-toto payload type.
pub(crate) fn pae_in_toto(payload: &[u8]) -> Vec<u8> {
    pae(PAYLOAD_TYPE, payload)
}

/// The PAE `model_signing` v0.2.0 signed by mistake, which the reference still accepts as a
/// fallback: `"DSSEV1 28 application/vnd.in-toto+json {len} {repr(payload)}"`, where `repr` is
/// Python's `bytes` representation (`b'...'` with escapes), not the payload bytes themselves.
pub(crate) fn pae_compat(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEV1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    )
    .into_bytes();
    let quote = if payload.contains(&b'\'') && !payload.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    out.push(b'b');
    out.push(quote);
    for &c in payload {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ if c == quote => {
                out.push(b'\\');
                out.push(c);
            }
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_spec_example() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn compat_pae_is_python_bytes_repr() {
        assert_eq!(
            pae_compat(b"{\n  \"a\": 'x\\\x01\xff\"}"),
            br#"DSSEV1 28 application/vnd.in-toto+json 16 b'{\n  "a": \'x\\\x01\xff"}'"#.to_vec()
        );
        assert_eq!(
            pae_compat(b"it's"),
            br#"DSSEV1 28 application/vnd.in-toto+json 4 b"it's""#.to_vec()
        );
    }

    #[test]
    fn rejects_unknown_fields_and_media_type() {
        let ok = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"ab"},"tlogEntries":[]},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA==","keyid":""}]}}"#;
        assert!(Bundle::from_json(ok.as_bytes()).is_ok());
        let extra = ok.replace(r#""tlogEntries":[]"#, r#""tlogEntries":[],"x":1"#);
        assert!(matches!(
            Bundle::from_json(extra.as_bytes()),
            Err(Error::MalformedBundle(m)) if m.contains("unknown field")
        ));
        let mt = ok.replace("v0.3+json", "v0.2+json");
        assert!(matches!(
            Bundle::from_json(mt.as_bytes()),
            Err(Error::MediaType(_))
        ));
    }
}
