//! A deliberately minimal, strict HS256 JSON Web Token, for Rampart's Docker token flow only.
//!
//! Rampart is both the token server and the only verifier, so a symmetric MAC is enough and avoids a
//! general JOSE library (algorithm confusion, `none`, `kid`/`jku` lookups, key parsing). The rules:
//!
//! - the header is one fixed byte string (`{"alg":"HS256","typ":"JWT"}`); any other header,
//!   including the same JSON with other spacing or key order, is rejected, so the algorithm can never
//!   be chosen by the token;
//! - the token is at most [`MAX_TOKEN_LEN`] bytes and has exactly three base64url (unpadded,
//!   canonical) segments;
//! - the MAC (HMAC-SHA256 over `header.payload`) is checked in constant time *before* the payload
//!   is parsed;
//! - `iss`, `aud`, `exp`, `nbf` and `iat` are all required and checked, and the lifetime is bounded.
//!
//! Its own crate so that the fuzz target ([`fuzz_verify`], `fuzz/fuzz_targets/jwt_verify.rs`) links
//! nothing but this parser.

#![forbid(unsafe_code)]

use base64ct::{Base64UrlUnpadded, Encoding as _};
use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The only header Rampart issues or accepts, base64url-encoded.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
/// The issuer of every token.
pub const ISSUER: &str = "rampart";
/// Longest token accepted, in bytes (checked before any decoding).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest lifetime accepted (`exp - iat`), whatever the token says.
pub const MAX_LIFETIME: i64 = 3600;
/// Clock skew tolerated on `nbf` and `iat`.
const LEEWAY: i64 = 30;

/// One entry of the `access` claim, as in the Docker token specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog` / `admin` for `registry`.
    pub name: String,
    /// `pull`, `push`, `delete`, or `*`.
    pub actions: Vec<String>,
}

/// The claims of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Issuer: always [`ISSUER`].
    pub iss: String,
    /// The id of the Rampart token the JWT was issued against (re-checked on every request).
    pub sub: String,
    /// Audience: the registry's `service`.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// A random id.
    pub jti: String,
    /// What the token grants.
    pub access: Vec<Access>,
}

/// Why a token was refused. Deliberately coarse: callers answer 401 whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Too long, wrong number of segments, bad base64 or JSON, or not our header.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match.
    #[error("bad signature")]
    Signature,
    /// Wrong issuer or audience.
    #[error("wrong issuer or audience")]
    Audience,
    /// Expired, not yet valid, or with an implausible lifetime.
    #[error("token outside its validity period")]
    Time,
}

/// The HS256 signing key (derived from the token key; never logged).
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self, signing_input: &[u8]) -> Result<HmacSha256, Error> {
        // HMAC accepts keys of any length, so this cannot fail on 32 bytes.
        let mut mac = HmacSha256::new_from_slice(&self.0).map_err(|_| Error::Signature)?;
        mac.update(signing_input);
        Ok(mac)
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let payload = serde_json::to_vec(claims).map_err(|_| Error::Malformed)?;
        let mut token = format!(
            "{HEADER_B64}.{}",
            Base64UrlUnpadded::encode_string(&payload)
        );
        let tag = self.mac(token.as_bytes())?.finalize().into_bytes();
        token.push('.');
        token.push_str(&Base64UrlUnpadded::encode_string(&tag));
        Ok(token)
    }

    /// Verifies a compact JWT: structure, header, MAC, then claims against `audience` at `now`.
    pub fn verify(&self, token: &str, audience: &str, now: i64) -> Result<Claims, Error> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed);
        };
        if header != HEADER_B64 {
            return Err(Error::Malformed);
        }
        let sig = Base64UrlUnpadded::decode_vec(sig).map_err(|_| Error::Malformed)?;
        // Signing input is `header.payload`: the token up to the last dot.
        let input_len = header.len() + 1 + payload.len();
        let input = token.get(..input_len).ok_or(Error::Malformed)?;
        self.mac(input.as_bytes())?
            .verify_slice(&sig)
            .map_err(|_| Error::Signature)?;
        let payload = Base64UrlUnpadded::decode_vec(payload).map_err(|_| Error::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| Error::Malformed)?;
        if claims.iss != ISSUER || claims.aud != audience {
            return Err(Error::Audience);
        }
        if claims.exp <= now
            || claims.nbf > now.saturating_add(LEEWAY)
            || claims.iat > now.saturating_add(LEEWAY)
            || claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME
        {
            return Err(Error::Time);
        }
        Ok(claims)
    }
}

/// Fuzzing entry point: arbitrary input never panics, and is never accepted under a key no
/// token was signed with.
pub fn fuzz_verify(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let key = SigningKey::from_bytes([7; 32]);
        assert!(
            key.verify(s, "rampart", 1_000_000).is_err(),
            "an unsigned input verified"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "abcd".into(),
            aud: "rampart".into(),
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "j".into(),
            access: vec![Access {
                kind: "repository".into(),
                name: "acme/m".into(),
                actions: vec!["pull".into()],
            }],
        }
    }

    #[test]
    fn header_constant_is_the_fixed_header() {
        assert_eq!(
            Base64UrlUnpadded::decode_vec(HEADER_B64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let now = 1_700_000_000;
        let key = SigningKey::from_bytes([1; 32]);
        let t = key.sign(&claims(now)).unwrap();
        assert_eq!(key.verify(&t, "rampart", now).unwrap(), claims(now));
        // Wrong key, audience, time.
        let other = SigningKey::from_bytes([2; 32]);
        assert_eq!(other.verify(&t, "rampart", now), Err(Error::Signature));
        assert_eq!(key.verify(&t, "other", now), Err(Error::Audience));
        assert_eq!(key.verify(&t, "rampart", now + 300), Err(Error::Time));
        assert_eq!(key.verify(&t, "rampart", now - 100), Err(Error::Time));
        // Tampered payload.
        let mut c = claims(now);
        c.access[0].actions.push("push".into());
        let forged = key.sign(&c).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let fparts: Vec<&str> = forged.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], fparts[1], parts[2]);
        assert_eq!(key.verify(&spliced, "rampart", now), Err(Error::Signature));
        // alg=none and other headers, extra segments, oversize.
        let none = Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"JWT"}"#);
        let swapped = format!("{none}.{}.{}", parts[1], parts[2]);
        assert_eq!(key.verify(&swapped, "rampart", now), Err(Error::Malformed));
        let unsigned = format!("{none}.{}.", parts[1]);
        assert_eq!(key.verify(&unsigned, "rampart", now), Err(Error::Malformed));
        assert_eq!(
            key.verify(&format!("{t}.x"), "rampart", now),
            Err(Error::Malformed)
        );
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(key.verify(&long, "rampart", now), Err(Error::Malformed));
        // A lifetime beyond the bound is refused even when correctly signed.
        let mut c = claims(now);
        c.exp = now + MAX_LIFETIME + 10;
        let t = key.sign(&c).unwrap();
        assert_eq!(key.verify(&t, "rampart", now), Err(Error::Time));
    }

    #[test]
    fn arbitrary_input_never_panics_nor_verifies() {
        use proptest::prelude::*;
        proptest!(|(s in ".{0,300}")| {
            let key = SigningKey::from_bytes([7; 32]);
            prop_assert!(key.verify(&s, "rampart", 1_000_000).is_err());
        });
        proptest!(|(b in proptest::collection::vec(any::<u8>(), 0..300))| {
            fuzz_verify(&b);
        });
    }
}
