//! RSASSA-PKCS1-v1_5 signature **verification** (RFC 8017 §8.2.2), for certificate authorities
//! that sign with RSA (the CA chain of `model_signing`'s own compatibility vectors).
//!
//! Only the public operation is implemented: `s^e mod n`, then the full expected encoding
//! `00 01 FF… 00 DigestInfo(hash)` is rebuilt and compared byte for byte (encode-and-compare,
//! never parsing the decrypted block). Nothing secret is processed, so timing is irrelevant.
//! Keys from 2048 to 8192 bits with an odd exponent of at most 32 bits are accepted. The
//! arithmetic is `crypto-bigint`'s (through `elliptic-curve`), on fixed 8192-bit integers.

use p256::elliptic_curve::bigint::modular::{FixedMontyForm, FixedMontyParams};
use p256::elliptic_curve::bigint::{Odd, U8192};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::Uint;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 8192;
/// Byte width of the fixed-size integers used.
const WIDTH: usize = MAX_BITS / 8;

/// The digest a signature was made over.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// DER `DigestInfo` up to the digest bytes (RFC 8017 §9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// Whether `sig` is a valid RSASSA-PKCS1-v1_5 signature of `digest` (already hashed with
/// `hash`) under the RSA key in `spki`. Any malformed input is simply "not valid".
pub(crate) fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    hash: Hash,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    if spki.algorithm.oid != RSA_ENCRYPTION || digest.len() != hash.len() {
        return false;
    }
    let Some(key) = spki.subject_public_key.as_bytes() else {
        return false;
    };
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let Ok(ints) = Vec::<Uint>::from_der(key) else {
        return false;
    };
    let [n, e] = ints.as_slice() else {
        return false;
    };
    let (n, e) = (n.as_bytes(), e.as_bytes());
    let k = n.len();
    let n_bits = k * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    let e_odd = e.last().is_some_and(|b| b & 1 == 1);
    if !(MIN_BITS..=MAX_BITS).contains(&n_bits) || e.len() > 4 || !e_odd || e == [1] {
        return false;
    }
    // The signature is exactly k bytes and, as an integer, below the modulus.
    if sig.len() != k || sig >= n {
        return false;
    }
    let Some(m) = public_op(n, e, sig) else {
        return false;
    };
    m == encoding(k, hash, digest)
}

/// Left-pads `bytes` (at most [`WIDTH`] long) into a fixed-size integer.
fn uint(bytes: &[u8]) -> Option<U8192> {
    let mut buf = [0u8; WIDTH];
    let start = WIDTH.checked_sub(bytes.len())?;
    buf.get_mut(start..)?.copy_from_slice(bytes);
    Some(U8192::from_be_slice(&buf))
}

/// `sig^e mod n` as exactly `n.len()` big-endian bytes.
fn public_op(n: &[u8], e: &[u8], sig: &[u8]) -> Option<Vec<u8>> {
    let k = n.len();
    let modulus: Odd<U8192> = Odd::new(uint(n)?).into_option()?;
    let params = FixedMontyParams::new_vartime(modulus);
    let out = FixedMontyForm::new(&uint(sig)?, &params)
        .pow_vartime(&uint(e)?)
        .retrieve()
        .to_be_bytes();
    let (zeros, value) = out.split_at_checked(WIDTH.checked_sub(k)?)?;
    zeros.iter().all(|b| *b == 0).then(|| value.to_vec())
}

/// EMSA-PKCS1-v1_5: `00 01 FF…FF 00 DigestInfo`, `k` bytes long.
fn encoding(k: usize, hash: Hash, digest: &[u8]) -> Vec<u8> {
    let prefix = hash.digest_info_prefix();
    let pad = k.saturating_sub(3 + prefix.len() + digest.len());
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + pad, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    em
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_layout() {
        let em = encoding(256, Hash::Sha256, &[7; 32]);
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..3], &[0, 1, 0xff]);
        assert_eq!(em[256 - 32 - 19 - 1], 0);
        assert!(em[2..256 - 32 - 19 - 1].iter().all(|b| *b == 0xff));
    }
}

/// Project Wycheproof's RSASSA-PKCS1-v1_5 verification vectors: every `valid` signature verifies,
/// every `invalid` one is refused; `acceptable` ones may go either way.
#[cfg(test)]
mod wycheproof_vectors {
    use super::*;
    use sha2::Digest as _;
    use wycheproof::TestResult;
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

    fn run(name: TestName, hash: Hash) -> usize {
        let set = TestSet::load(name).unwrap();
        let mut checked = 0;
        for group in &set.test_groups {
            let spki = SubjectPublicKeyInfoOwned::from_der(&group.der).unwrap();
            for t in &group.tests {
                let digest = match hash {
                    Hash::Sha256 => sha2::Sha256::digest(&t.msg[..]).to_vec(),
                    Hash::Sha384 => sha2::Sha384::digest(&t.msg[..]).to_vec(),
                    Hash::Sha512 => sha2::Sha512::digest(&t.msg[..]).to_vec(),
                };
                let ok = verify(&spki, hash, &digest, &t.sig);
                match t.result {
                    TestResult::Valid => assert!(ok, "tc {} ({}) refused", t.tc_id, t.comment),
                    TestResult::Invalid => {
                        assert!(!ok, "tc {} ({}) accepted", t.tc_id, t.comment);
                    }
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn all_sizes_and_hashes() {
        let mut n = 0;
        for (name, hash) in [
            (TestName::Rsa2048Sha256, Hash::Sha256),
            (TestName::Rsa2048Sha384, Hash::Sha384),
            (TestName::Rsa2048Sha512, Hash::Sha512),
            (TestName::Rsa3072Sha256, Hash::Sha256),
            (TestName::Rsa3072Sha384, Hash::Sha384),
            (TestName::Rsa3072Sha512, Hash::Sha512),
            (TestName::Rsa4096Sha256, Hash::Sha256),
            (TestName::Rsa4096Sha384, Hash::Sha384),
            (TestName::Rsa4096Sha512, Hash::Sha512),
            (TestName::Rsa8192Sha256, Hash::Sha256),
        ] {
            n += run(name, hash);
        }
        assert!(n > 1000, "only {n} vectors checked");
    }
}
