//! ECDSA keys on P-256, P-384 and P-521, as OMS uses them.
//!
//! The message hash follows the curve, as in the reference: SHA-256 for P-256, SHA-384 for P-384,
//! SHA-512 for P-521. Signatures are ASN.1 DER. High-S signatures are accepted (as OpenSSL and
//! Python `cryptography` do); signing is deterministic (RFC 6979).

use std::fmt;

use p256::ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::error::{Error, Result};

/// A supported elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256 (secp256r1), hashed with SHA-256.
    P256,
    /// NIST P-384 (secp384r1), hashed with SHA-384.
    P384,
    /// NIST P-521 (secp521r1), hashed with SHA-512.
    P521,
}

impl Curve {
    /// The hash of `msg` with the curve's hash function.
    fn prehash(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Curve::P256 => Sha256::digest(msg).to_vec(),
            Curve::P384 => Sha384::digest(msg).to_vec(),
            Curve::P521 => Sha512::digest(msg).to_vec(),
        }
    }
}

/// An ECDSA public key (verifying key).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// P-256 key.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384 key.
    P384(p384::ecdsa::VerifyingKey),
    /// P-521 key.
    P521(p521::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("curve", &self.curve())
            .field("hint", &self.hint().unwrap_or_default())
            .finish()
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) with a P-256, P-384 or P-521 EC key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(Error::PublicKey(
                "expected a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo) block".to_owned(),
            ));
        }
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P384(k));
        }
        if let Ok(k) = p521::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::P521(k));
        }
        Err(Error::PublicKey(
            "not an EC P-256, P-384 or P-521 public key (other key types are not supported by OMS)"
                .to_owned(),
        ))
    }

    /// Reads a DER SubjectPublicKeyInfo (as found in certificates).
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(Self::P384(k));
        }
        if let Ok(k) = p521::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(Self::P521(k));
        }
        Err(Error::PublicKey(
            "not an EC P-256, P-384 or P-521 public key".to_owned(),
        ))
    }

    /// The key's curve.
    pub fn curve(&self) -> Curve {
        match self {
            Self::P256(_) => Curve::P256,
            Self::P384(_) => Curve::P384,
            Self::P521(_) => Curve::P521,
        }
    }

    /// PEM SPKI text with LF line endings, byte-identical to OpenSSL / `cryptography` output.
    pub fn to_pem(&self) -> Result<String> {
        let r = match self {
            Self::P256(k) => k.to_public_key_pem(LineEnding::LF),
            Self::P384(k) => k.to_public_key_pem(LineEnding::LF),
            Self::P521(k) => k.to_public_key_pem(LineEnding::LF),
        };
        r.map_err(|e| Error::PublicKey(format!("cannot encode public key: {e}")))
    }

    /// The bundle hint: lowercase hex SHA-256 of [`PublicKey::to_pem`].
    pub fn hint(&self) -> Result<String> {
        Ok(crate::statement_hex(&Sha256::digest(
            self.to_pem()?.as_bytes(),
        )))
    }

    /// Verifies a DER ECDSA signature over `msg`, hashing with the curve's hash.
    pub fn verify(&self, msg: &[u8], der_sig: &[u8]) -> Result<()> {
        self.verify_prehash(&self.curve().prehash(msg), der_sig)
    }

    /// Verifies a DER ECDSA signature over an already computed hash (any of SHA-256/384/512).
    pub(crate) fn verify_prehash(&self, prehash: &[u8], der_sig: &[u8]) -> Result<()> {
        let ok = match self {
            Self::P256(k) => p256::ecdsa::DerSignature::from_bytes(der_sig)
                .ok()
                .map(|s| k.verify_prehash(prehash, &s).is_ok()),
            Self::P384(k) => p384::ecdsa::DerSignature::from_bytes(der_sig)
                .ok()
                .map(|s| k.verify_prehash(prehash, &s).is_ok()),
            Self::P521(k) => p521::ecdsa::DerSignature::from_bytes(der_sig)
                .ok()
                .map(|s| k.verify_prehash(prehash, &s).is_ok()),
        };
        if ok == Some(true) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }
}

/// An ECDSA private key used to sign OMS bundles.
#[derive(Clone)]
#[non_exhaustive]
pub enum SigningKey {
    /// P-256 key.
    P256(p256::ecdsa::SigningKey),
    /// P-384 key.
    P384(p384::ecdsa::SigningKey),
    /// P-521 key.
    P521(p521::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("curve", &self.public_key().curve())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an unencrypted PEM private key: SEC1 (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || pem.contains("Proc-Type: 4,ENCRYPTED")
        {
            return Err(Error::PrivateKey(
                "encrypted private keys are not supported; decrypt the key first".to_owned(),
            ));
        }
        if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
                return Ok(Self::P256(k.into()));
            }
            if let Ok(k) = p384::SecretKey::from_sec1_pem(pem) {
                return Ok(Self::P384(k.into()));
            }
            if let Ok(k) = p521::SecretKey::from_sec1_pem(pem) {
                return Ok(Self::P521(k.into()));
            }
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
                return Ok(Self::P256(k));
            }
            if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
                return Ok(Self::P384(k));
            }
            if let Ok(k) = p521::ecdsa::SigningKey::from_pkcs8_pem(pem) {
                return Ok(Self::P521(k));
            }
        } else {
            return Err(Error::PrivateKey(
                "expected a PEM 'EC PRIVATE KEY' (SEC1) or 'PRIVATE KEY' (PKCS#8) block".to_owned(),
            ));
        }
        Err(Error::PrivateKey(
            "not an EC P-256, P-384 or P-521 private key (other key types are not supported by OMS)"
                .to_owned(),
        ))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::P256(k) => PublicKey::P256(*k.verifying_key()),
            Self::P384(k) => PublicKey::P384(*k.verifying_key()),
            Self::P521(k) => PublicKey::P521(*k.verifying_key()),
        }
    }

    /// Signs `msg` (hashed with the curve's hash) and returns the DER signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let pre = self.public_key().curve().prehash(msg);
        let fail = |e: p256::ecdsa::Error| Error::PrivateKey(format!("signing failed: {e}"));
        Ok(match self {
            Self::P256(k) => {
                let s: p256::ecdsa::DerSignature = k.sign_prehash(&pre).map_err(fail)?;
                s.as_bytes().to_vec()
            }
            Self::P384(k) => {
                let s: p384::ecdsa::DerSignature = k.sign_prehash(&pre).map_err(fail)?;
                s.as_bytes().to_vec()
            }
            Self::P521(k) => {
                let s: p521::ecdsa::DerSignature = k.sign_prehash(&pre).map_err(fail)?;
                s.as_bytes().to_vec()
            }
        })
    }
}

/// Project Wycheproof's ECDSA verification vectors (DER signatures) for the three OMS curves, each
/// with the hash OMS pairs it with: every `valid` signature verifies (high-S included, as OpenSSL and
/// the reference accept it), every `invalid` one (malformed or BER-encoded DER, out-of-range r/s,
/// modified integers, wrong-curve points) is refused, and nothing panics.
#[cfg(test)]
mod wycheproof_vectors {
    use super::*;
    use wycheproof::TestResult;
    use wycheproof::ecdsa::{TestName, TestSet};

    #[test]
    fn p256_p384_p521() {
        let mut checked = 0;
        for name in [
            TestName::EcdsaSecp256r1Sha256,
            TestName::EcdsaSecp384r1Sha384,
            TestName::EcdsaSecp521r1Sha512,
        ] {
            let set = TestSet::load(name).unwrap();
            for group in &set.test_groups {
                let key = PublicKey::from_spki_der(&group.der).unwrap();
                for t in &group.tests {
                    let ok = key.verify(&t.msg, &t.sig).is_ok();
                    match t.result {
                        TestResult::Valid => {
                            assert!(ok, "{name:?} tc {} ({}) refused", t.tc_id, t.comment);
                        }
                        TestResult::Invalid => {
                            assert!(!ok, "{name:?} tc {} ({}) accepted", t.tc_id, t.comment);
                        }
                        TestResult::Acceptable => {}
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "only {checked} vectors checked");
    }

    #[test]
    fn keys_on_other_curves_are_refused() {
        // secp256k1 has the same size as P-256 but is not an OMS curve.
        let set = TestSet::load(TestName::EcdsaSecp256k1Sha256).unwrap();
        for group in set.test_groups.iter().take(3) {
            assert!(PublicKey::from_spki_der(&group.der).is_err());
        }
    }
}
