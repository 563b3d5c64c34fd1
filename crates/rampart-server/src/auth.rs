//! API tokens: generation, keyed hashing, verification, and the authorisation decision.
//!
//! A token is `rampart_` followed by 64 hex characters (256 random bits). It is shown once; the
//! database keeps only HMAC-SHA256(key, token), where the key lives in `DATA/token-key` (mode 0600), so
//! a stolen database alone does not let anyone check guesses offline. Lookup is by keyed hash and the
//! final comparison is constant-time.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use axum::http::{HeaderMap, header};
use base64ct::Encoding as _;
use hmac::{KeyInit as _, Mac as _};
use rampart_core::{Action, NamespacePattern, RepoName, Role};
use rampart_store::{MetadataStore, TokenRecord, now_unix};
use subtle::ConstantTimeEq as _;

use crate::Error;

const TOKEN_PREFIX: &str = "rampart_";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The secret key tokens are hashed under.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to a new file readable only by its owner; fails if the file exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl TokenKey {
    /// Loads the key from `path`, creating it (mode 0600) if missing. Refuses a key file that group or
    /// others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(path)
                    .map_err(|e| Error::Internal(format!("token key: {e}")))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(Error::Internal(format!(
                        "{} is accessible to group or others (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    )));
                }
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| Error::Internal(format!("{} is not 32 bytes", path.display())))?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random::<32>()?;
                write_private(path, &key)
                    .map_err(|e| Error::Internal(format!("writing {}: {e}", path.display())))?;
                Ok(Self(key))
            }
            Err(e) => Err(Error::Internal(format!("reading {}: {e}", path.display()))),
        }
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn hash(&self, token: &str) -> [u8; 32] {
        // INVARIANT: HMAC accepts keys of any length, so `new_from_slice` cannot fail on 32 bytes.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.0) else {
            return [0; 32];
        };
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A newly created token: the record stored and the secret, to be shown exactly once.
pub struct NewToken {
    /// What was stored.
    pub record: TokenRecord,
    /// The secret.
    pub secret: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Creates and stores a token.
pub async fn create_token(
    meta: &dyn MetadataStore,
    key: &TokenKey,
    name: &str,
    role: Role,
    namespace: NamespacePattern,
    expires_at: Option<i64>,
) -> Result<NewToken, Error> {
    let secret = format!("{TOKEN_PREFIX}{}", hex(&random::<32>()?));
    let record = TokenRecord {
        id: hex(&random::<8>()?),
        name: name.to_owned(),
        role,
        namespace,
        keyed_hash: key.hash(&secret),
        created_at: now_unix(),
        expires_at,
        revoked_at: None,
    };
    meta.insert_token(&record).await?;
    Ok(NewToken { record, secret })
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's public id.
    pub token_id: String,
    /// Its role.
    pub role: Role,
    /// Its namespace.
    pub namespace: NamespacePattern,
}

impl Principal {
    /// Whether this principal may do `action` on `repo`.
    pub fn can(&self, action: Action, repo: &RepoName) -> bool {
        self.namespace.matches(repo) && self.role.allows(action)
    }
}

/// The token from an `Authorization: Basic` header (the password; the user name is ignored).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64ct::Base64::decode_vec(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_owned())
}

/// Authenticates a request. `Ok(None)` means no credentials were presented; presented credentials that
/// are unknown, expired or revoked are an error.
pub async fn authenticate(
    meta: &dyn MetadataStore,
    key: &TokenKey,
    headers: &HeaderMap,
) -> Result<Option<Principal>, Error> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Ok(None);
    }
    let Some(secret) = basic_password(headers) else {
        return Err(Error::Unauthorized);
    };
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() != TOKEN_PREFIX.len() + 64 {
        return Err(Error::Unauthorized);
    }
    let hash = key.hash(&secret);
    let Some(record) = meta.token_by_hash(&hash).await? else {
        return Err(Error::Unauthorized);
    };
    if !bool::from(record.keyed_hash.ct_eq(&hash)) {
        return Err(Error::Unauthorized);
    }
    let now = now_unix();
    if record.revoked_at.is_some() || record.expires_at.is_some_and(|t| t <= now) {
        return Err(Error::Unauthorized);
    }
    Ok(Some(Principal {
        token_id: record.id,
        role: record.role,
        namespace: record.namespace,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        let v = format!(
            "Basic {}",
            base64ct::Base64::encode_string(b"anyone:rampart_x:y")
        );
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        assert_eq!(basic_password(&h).as_deref(), Some("rampart_x:y"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_password(&h), None);
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_password(&h), None);
    }

    #[test]
    fn keyed_hash_depends_on_key() {
        let a = TokenKey::from_bytes([1; 32]);
        let b = TokenKey::from_bytes([2; 32]);
        assert_ne!(a.hash("rampart_t"), b.hash("rampart_t"));
        assert_eq!(a.hash("rampart_t"), a.hash("rampart_t"));
    }
}
