//! Certificate method: validate the bundle's leaf/intermediate chain against supplied roots.
//!
//! Checks: every link's signature (ecdsa-with-SHA256/384/512 by P-256/P-384/P-521 issuers, or
//! sha256/384/512WithRSAEncryption by RSA issuers; the signing key itself must be ECDSA),
//! issuer/subject names, validity at the chosen time, basic constraints (`cA`, path length) and
//! key usage (`keyCertSign`) on issuers, no unknown critical extensions, and on the leaf
//! `digitalSignature` key usage or the `codeSigning` extended key usage. Trust anchors are only
//! the certificates the caller supplies; certificates in the bundle are untrusted intermediates.
//! No revocation, name constraints or identity (SAN) checks.

use std::time::SystemTime;

use sha2::{Digest as _, Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::error::{Error, Result};
use crate::keys::PublicKey;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const KNOWN_CRITICAL: [&str; 6] = [
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
];

/// Longest chain followed (leaf and root included).
const MAX_DEPTH: usize = 10;

/// When the chain must be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChainTime {
    /// The current system time (Rampart's default).
    #[default]
    Now,
    /// The leaf's notBefore, as `model_signing` does: expired certificates still verify.
    LeafNotBefore,
    /// A fixed instant.
    At(SystemTime),
}

/// Trusted root certificates (trust anchors) for the certificate method.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    roots: Vec<Certificate>,
}

impl TrustRoots {
    /// Reads one or more PEM `CERTIFICATE` blocks. Every certificate given is a trust anchor
    /// (as with `--certificate_chain` in the reference). At least one is required.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let roots = Certificate::load_pem_chain(pem)
            .map_err(|e| Error::Certificate(format!("cannot read trusted certificates: {e}")))?;
        if roots.is_empty() {
            return Err(Error::Certificate(
                "no trusted certificates given".to_owned(),
            ));
        }
        Ok(Self { roots })
    }

    /// Adds the PEM `CERTIFICATE` blocks of another file (the reference accepts
    /// `--certificate_chain` several times; every certificate is a trust anchor).
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<()> {
        self.roots.extend(Self::from_pem(pem)?.roots);
        Ok(())
    }

    /// Trust anchors from DER certificates (at least one).
    pub(crate) fn from_der_list(ders: &[Vec<u8>]) -> Result<Self> {
        let roots = ders
            .iter()
            .map(|d| {
                Certificate::from_der(d).map_err(|e| {
                    Error::Certificate(format!("cannot read trusted certificate: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if roots.is_empty() {
            return Err(Error::Certificate(
                "no trusted certificates given".to_owned(),
            ));
        }
        Ok(Self { roots })
    }

    /// Number of trust anchors.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Always false: construction requires at least one root.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

fn subject_of(c: &Certificate) -> String {
    c.tbs_certificate().subject().to_string()
}

fn tbs_der(c: &Certificate) -> Result<Vec<u8>> {
    c.tbs_certificate()
        .to_der()
        .map_err(|e| Error::Certificate(format!("cannot encode certificate: {e}")))
}

/// Whether `issuer`'s RSA key produced `child`'s PKCS#1 v1.5 signature (legacy CA chains such
/// as the ones `model_signing`'s own compatibility tests use; signing keys stay ECDSA).
fn rsa_signed_by(child: &Certificate, issuer: &Certificate, oid: ObjectIdentifier) -> Result<bool> {
    use crate::rsa_pkcs1::Hash;
    let tbs = tbs_der(child)?;
    let (hash, digest) = if oid == RSA_SHA256 {
        (Hash::Sha256, Sha256::digest(&tbs).to_vec())
    } else if oid == RSA_SHA384 {
        (Hash::Sha384, Sha384::digest(&tbs).to_vec())
    } else {
        (Hash::Sha512, Sha512::digest(&tbs).to_vec())
    };
    let Some(sig) = child.signature().as_bytes() else {
        return Ok(false);
    };
    Ok(crate::rsa_pkcs1::verify(
        issuer.tbs_certificate().subject_public_key_info(),
        hash,
        &digest,
        sig,
    ))
}

/// Whether `issuer`'s key produced `child`'s signature.
fn signed_by(child: &Certificate, issuer: &Certificate) -> Result<bool> {
    let oid = child.signature_algorithm().oid;
    if oid == RSA_SHA256 || oid == RSA_SHA384 || oid == RSA_SHA512 {
        return rsa_signed_by(child, issuer, oid);
    }
    let tbs = tbs_der(child)?;
    let pre = if oid == ECDSA_SHA256 {
        Sha256::digest(&tbs).to_vec()
    } else if oid == ECDSA_SHA384 {
        Sha384::digest(&tbs).to_vec()
    } else if oid == ECDSA_SHA512 {
        Sha512::digest(&tbs).to_vec()
    } else {
        return Err(Error::Certificate(format!(
            "'{}' uses unsupported signature algorithm {oid}",
            subject_of(child)
        )));
    };
    let spki = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| Error::Certificate(format!("cannot encode issuer key: {e}")))?;
    let Ok(key) = PublicKey::from_spki_der(&spki) else {
        return Ok(false);
    };
    let Some(sig) = child.signature().as_bytes() else {
        return Ok(false);
    };
    Ok(key.verify_prehash(&pre, sig).is_ok())
}

fn check_time(c: &Certificate, at: SystemTime) -> Result<()> {
    let v = c.tbs_certificate().validity();
    if at < v.not_before.to_system_time() {
        return Err(Error::UntrustedChain(format!(
            "certificate '{}' is not yet valid",
            subject_of(c)
        )));
    }
    if at > v.not_after.to_system_time() {
        return Err(Error::UntrustedChain(format!(
            "certificate '{}' has expired",
            subject_of(c)
        )));
    }
    Ok(())
}

fn check_critical(c: &Certificate) -> Result<()> {
    for ext in c.tbs_certificate().extensions().into_iter().flatten() {
        if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id.to_string().as_str()) {
            return Err(Error::UntrustedChain(format!(
                "certificate '{}' has unsupported critical extension {}",
                subject_of(c),
                ext.extn_id
            )));
        }
    }
    Ok(())
}

fn bad_ext(c: &Certificate, e: impl std::fmt::Display) -> Error {
    Error::Certificate(format!(
        "'{}' has a malformed extension: {e}",
        subject_of(c)
    ))
}

/// `below` = number of intermediate CA certificates between this issuer and the leaf.
fn check_issuer(c: &Certificate, below: usize) -> Result<()> {
    let tbs = c.tbs_certificate();
    let bc = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| bad_ext(c, e))?;
    match bc {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && below > usize::from(max)
            {
                return Err(Error::UntrustedChain(format!(
                    "path length constraint of '{}' exceeded",
                    subject_of(c)
                )));
            }
        }
        _ => {
            return Err(Error::UntrustedChain(format!(
                "issuer '{}' is not a CA certificate",
                subject_of(c)
            )));
        }
    }
    if let Some((_, ku)) = tbs.get_extension::<KeyUsage>().map_err(|e| bad_ext(c, e))?
        && !ku.key_cert_sign()
    {
        return Err(Error::UntrustedChain(format!(
            "issuer '{}' lacks the keyCertSign key usage",
            subject_of(c)
        )));
    }
    check_critical(c)
}

fn check_leaf(c: &Certificate) -> Result<()> {
    let tbs = c.tbs_certificate();
    let ku = tbs.get_extension::<KeyUsage>().map_err(|e| bad_ext(c, e))?;
    let eku = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| bad_ext(c, e))?;
    let digital_signature = ku.is_some_and(|(_, ku)| ku.digital_signature());
    let code_signing = eku.is_some_and(|(_, eku)| eku.0.contains(&KP_CODE_SIGNING));
    if !(digital_signature || code_signing) {
        return Err(Error::Certificate(format!(
            "signing certificate '{}' has neither the digitalSignature key usage nor the codeSigning extended key usage",
            subject_of(c)
        )));
    }
    check_critical(c)
}

/// Validates `chain` (DER, leaf first, the rest untrusted intermediates) against `roots` and
/// returns the leaf's public key.
pub(crate) fn verify_chain(
    chain: &[Vec<u8>],
    roots: &TrustRoots,
    time: ChainTime,
) -> Result<PublicKey> {
    let certs: Vec<Certificate> = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der)
                .map_err(|e| Error::Certificate(format!("certificate #{i} in the bundle: {e}")))
        })
        .collect::<Result<_>>()?;
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Err(Error::Certificate(
            "the bundle has no certificate".to_owned(),
        ));
    };
    let at = match time {
        ChainTime::Now => SystemTime::now(),
        ChainTime::LeafNotBefore => leaf
            .tbs_certificate()
            .validity()
            .not_before
            .to_system_time(),
        ChainTime::At(t) => t,
    };
    check_leaf(leaf)?;
    check_time(leaf, at)?;

    let mut current = leaf;
    let mut used = vec![false; intermediates.len()];
    for depth in 0..MAX_DEPTH {
        // A supplied root may be the leaf or an intermediate itself.
        if roots.roots.iter().any(|r| r == current) {
            if depth > 0 {
                check_issuer(current, depth.saturating_sub(1))?;
            }
            return finish(leaf);
        }
        let issuer_name = current.tbs_certificate().issuer();
        for root in &roots.roots {
            if root.tbs_certificate().subject() == issuer_name && signed_by(current, root)? {
                check_issuer(root, depth)?;
                check_time(root, at)?;
                return finish(leaf);
            }
        }
        let mut next = None;
        for (i, cand) in intermediates.iter().enumerate() {
            if used.get(i).copied().unwrap_or(true) {
                continue;
            }
            if cand.tbs_certificate().subject() == issuer_name && signed_by(current, cand)? {
                next = Some((i, cand));
                break;
            }
        }
        match next {
            Some((i, cand)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                check_issuer(cand, depth)?;
                check_time(cand, at)?;
                current = cand;
            }
            None => {
                let tbs = current.tbs_certificate();
                return Err(Error::UntrustedChain(if tbs.subject() == tbs.issuer() {
                    format!(
                        "self-signed certificate in certificate chain: '{}' is not a trusted root",
                        subject_of(current)
                    )
                } else {
                    format!(
                        "unable to get issuer certificate '{}' of '{}'",
                        tbs.issuer(),
                        subject_of(current)
                    )
                }));
            }
        }
    }
    Err(Error::UntrustedChain(format!(
        "certificate chain longer than {MAX_DEPTH}"
    )))
}

/// The public key of a DER certificate.
pub(crate) fn leaf_public_key(der: &[u8]) -> Result<PublicKey> {
    let c = Certificate::from_der(der)
        .map_err(|e| Error::Certificate(format!("signing certificate: {e}")))?;
    finish(&c)
}

fn finish(leaf: &Certificate) -> Result<PublicKey> {
    let spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| Error::Certificate(format!("cannot encode leaf key: {e}")))?;
    PublicKey::from_spki_der(&spki)
        .map_err(|e| Error::Certificate(format!("signing certificate key: {e}")))
}

/// Reads PEM `CERTIFICATE` blocks in order and returns each one's DER, for
/// [`crate::sign_model_with_certificates`] (leaf first, then intermediates).
pub fn certificate_chain_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let certs = Certificate::load_pem_chain(pem)
        .map_err(|e| Error::Certificate(format!("cannot read certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Certificate(
            "no certificates found in PEM".to_owned(),
        ));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map_err(|e| Error::Certificate(format!("cannot encode certificate: {e}")))
        })
        .collect()
}
