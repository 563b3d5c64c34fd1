//! API tokens: generation, keyed hashing, verification, and the authorisation decision.
//!
//! A token is `rampart_` followed by 64 hex characters (256 random bits). It is shown once; the
//! database keeps only HMAC-SHA256(key, token), where the key lives in `DATA/token-key` (mode 0600), so
//! a stolen database alone does not let anyone check guesses offline. Lookup is by keyed hash and the
//! final comparison is constant-time.
//!
//! A request may also carry `Authorization: Bearer <jwt>`, a registry token from the Docker token
//! flow ([`crate::token`]). Such a principal is the Rampart token the JWT was issued against,
//! re-read from the database on every request (so revocation and expiry take effect at once),
//! further restricted to the repositories and actions listed in the JWT.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64ct::Encoding as _;
use hmac::{KeyInit as _, Mac as _};
use rampart_core::{Action, NamespacePattern, RepoName, Role};
use rampart_store::{MetadataStore, TokenRecord, now_unix};
use subtle::ConstantTimeEq as _;

use crate::Error;
use rampart_jwt::{Access, SigningKey};

/// The `service` (JWT audience) of this registry's token flow.
pub const SERVICE: &str = "rampart";
/// The `sub` of a JWT issued without credentials (token ids are hex, so it names no token).
pub(crate) const ANONYMOUS_SUBJECT: &str = "anonymous";

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

/// Reads a small private file (at most `max` bytes) and its mode, through one descriptor: refuses a
/// symbolic link (`ELOOP`, reported as `InvalidData`) and anything but a regular file, so the key
/// read is the file in the data directory, not whatever a link points at.
pub fn read_private(path: &Path, max: u64) -> std::io::Result<(Vec<u8>, u32)> {
    use std::io::Read as _;
    let invalid = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} {what}", path.display()),
        )
    };
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(invalid("is a symbolic link; it must be a regular file"));
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(invalid("is not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    Ok((bytes, meta.permissions().mode()))
}

/// Writes `bytes` to a new file readable only by its owner; fails if the file exists. Atomic: the
/// bytes are written and synced under a temporary name, then hard-linked into place, so a crash never
/// leaves an empty or partial key behind (which would stop the next start).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover from a crash may have any mode: start from a fresh file only we can read.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl TokenKey {
    /// Loads the key from `path`, creating it (mode 0600) if missing. Refuses a key file that group or
    /// others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        match read_private(path, 32) {
            Ok((bytes, mode)) => {
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

    /// A key for another purpose, derived from this one under a distinct label (so the JWT key
    /// needs no file of its own and changes when the token key is rotated).
    pub(crate) fn derive(&self, label: &str) -> [u8; 32] {
        self.hash(&format!("rampart key derivation\0{label}"))
    }

    /// The HS256 key registry JWTs are signed with.
    pub(crate) fn jwt_key(&self) -> SigningKey {
        SigningKey::from_bytes(self.derive("registry-jwt-hs256-v1"))
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
    /// With a registry JWT: the access it lists (a further restriction). `None` with Basic.
    scope: Option<Arc<Vec<Access>>>,
}

/// The JWT action name of a registry action (`None`: never granted through a JWT).
pub(crate) fn action_name(action: Action) -> Option<&'static str> {
    match action {
        Action::Pull => Some("pull"),
        Action::Push => Some("push"),
        Action::Delete => Some("delete"),
        _ => None,
    }
}

impl Principal {
    /// A principal holding exactly what a token record holds.
    pub(crate) fn of(record: TokenRecord) -> Self {
        Self {
            token_id: record.id,
            role: record.role,
            namespace: record.namespace,
            scope: None,
        }
    }

    /// Whether the token itself (ignoring any JWT restriction) may do `action` on `repo`.
    pub(crate) fn holds(&self, action: Action, repo: &RepoName) -> bool {
        self.namespace.matches(repo) && self.role.allows(action)
    }

    fn scope_has(&self, kind: &str, name: &str, action: &str) -> bool {
        self.scope.as_ref().is_none_or(|scope| {
            scope.iter().any(|a| {
                a.kind == kind
                    && a.name == name
                    && a.actions.iter().any(|x| x == action || x == "*")
            })
        })
    }

    /// Whether this principal may do `action` on `repo`.
    pub fn can(&self, action: Action, repo: &RepoName) -> bool {
        self.holds(action, repo)
            && (self.scope.is_none()
                || action_name(action)
                    .is_some_and(|name| self.scope_has("repository", repo.as_str(), name)))
    }

    /// Whether `repo` appears in this principal's `_catalog`: with Basic, the repositories it may
    /// pull; with a JWT, those too if the JWT grants `registry:catalog:*`, else only the
    /// repositories the JWT itself grants pull on.
    pub fn can_list(&self, repo: &RepoName) -> bool {
        if self.scope.is_some() && self.scope_has("registry", "catalog", "*") {
            return self.holds(Action::Pull, repo);
        }
        self.can(Action::Pull, repo)
    }

    /// Whether this principal may use the admin API: an admin token on every namespace (`**`), and
    /// with a JWT only if it grants `registry:admin:*`.
    pub fn is_global_admin(&self) -> bool {
        self.role.allows(Action::Admin)
            && self.namespace.as_str() == "**"
            && self.scope_has("registry", "admin", "*")
    }

    /// Whether this principal may read the audit log (admin or auditor on `**`).
    pub fn can_read_audit(&self) -> bool {
        self.role.allows(Action::AuditRead)
            && self.namespace.as_str() == "**"
            && self.scope_has("registry", "audit", "read")
    }
}

/// The token from an `Authorization: Basic` header (the password; the user name is ignored).
pub(crate) fn basic_password(headers: &HeaderMap) -> Option<String> {
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

/// The JWT from an `Authorization: Bearer` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// Whether a token record is usable now.
fn live(record: &TokenRecord) -> bool {
    record.revoked_at.is_none() && record.expires_at.is_none_or(|t| t > now_unix())
}

/// Authenticates a request. `Ok(None)` means no credentials were presented; presented credentials that
/// are unknown, expired or revoked are an error. Accepts Basic (token as password) and Bearer (a
/// registry JWT from `/token`).
pub async fn authenticate(
    meta: &dyn MetadataStore,
    key: &TokenKey,
    headers: &HeaderMap,
) -> Result<Option<Principal>, Error> {
    if headers.get(header::AUTHORIZATION).is_none() {
        return Ok(None);
    }
    if let Some(jwt) = bearer_token(headers) {
        let claims = key
            .jwt_key()
            .verify(jwt, SERVICE, now_unix())
            .map_err(|_| Error::Unauthorized)?;
        if claims.sub == ANONYMOUS_SUBJECT {
            // An anonymous JWT is exactly no credentials: the anonymous-pull configuration decides.
            return Ok(None);
        }
        // Re-check the token behind the JWT: revocation and expiry apply at once, and a role or
        // namespace that shrank since issue is what counts.
        let Some(record) = meta.token_by_id(&claims.sub).await? else {
            return Err(Error::Unauthorized);
        };
        if !live(&record) {
            return Err(Error::Unauthorized);
        }
        let mut p = Principal::of(record);
        p.scope = Some(Arc::new(claims.access));
        return Ok(Some(p));
    }
    Ok(Some(basic_principal(meta, key, headers).await?))
}

/// The outcome of authenticating a request, computed once by [`identify_layer`] (the outermost
/// middleware) and kept in the request's extensions, so the rate limiter, the audit record and the
/// handler all see the same caller for one database lookup.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// No credentials were presented (or an anonymous JWT).
    Anonymous,
    /// Valid credentials.
    Valid(Principal),
    /// Credentials were presented and refused (unknown, expired, revoked, malformed).
    Invalid,
}

/// Authenticates the request once and records the outcome in its extensions. A storage error is
/// not cached: the handler then authenticates again and reports it.
pub(crate) async fn identify_layer(
    axum::extract::State(st): axum::extract::State<crate::AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if path != "/healthz" && path != "/readyz" {
        match authenticate(st.meta(), st.key(), req.headers()).await {
            Ok(None) => {
                req.extensions_mut().insert(Identity::Anonymous);
            }
            Ok(Some(p)) => {
                req.extensions_mut().insert(Identity::Valid(p));
            }
            Err(Error::Unauthorized) => {
                req.extensions_mut().insert(Identity::Invalid);
            }
            Err(_) => {}
        }
    }
    next.run(req).await
}

/// The caller of a request: the cached [`Identity`] if the middleware ran, else a fresh
/// [`authenticate`].
pub(crate) async fn identify(
    st: &crate::AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<Option<Principal>, Error> {
    match extensions.get::<Identity>() {
        Some(Identity::Anonymous) => Ok(None),
        Some(Identity::Valid(p)) => Ok(Some(p.clone())),
        Some(Identity::Invalid) => Err(Error::Unauthorized),
        None => authenticate(st.meta(), st.key(), headers).await,
    }
}

/// The caller as an extractor (see [`identify`]).
#[derive(Debug)]
pub(crate) struct Caller(pub(crate) Result<Option<Principal>, Error>);

impl axum::extract::FromRequestParts<crate::AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(identify(st, &parts.headers, &parts.extensions).await))
    }
}

/// The live token whose secret is the Basic password. Any failure is `Unauthorized`.
pub(crate) async fn basic_principal(
    meta: &dyn MetadataStore,
    key: &TokenKey,
    headers: &HeaderMap,
) -> Result<Principal, Error> {
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
    if !live(&record) {
        return Err(Error::Unauthorized);
    }
    Ok(Principal::of(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_created_atomically_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-key");
        std::fs::write(dir.path().join(".token-key.tmp"), b"partial").unwrap();
        write_private(&path, b"key").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
        assert!(!dir.path().join(".token-key.tmp").exists());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_private(&path, b"other").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
    }

    #[test]
    fn a_token_key_must_be_a_private_regular_file_not_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere");
        write_private(&real, &[7; 32]).unwrap();
        let link = dir.path().join("token-key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = TokenKey::load_or_create(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // A directory (or FIFO, device) in its place is refused too, without blocking.
        let d = dir.path().join("dir-key");
        std::fs::create_dir(&d).unwrap();
        assert!(TokenKey::load_or_create(&d).is_err());
        // The regular file itself loads; a longer one is refused without reading it whole.
        assert!(TokenKey::load_or_create(&real).is_ok());
        let big = dir.path().join("big-key");
        write_private(&big, &[1; 4096]).unwrap();
        let e = TokenKey::load_or_create(&big).unwrap_err().to_string();
        assert!(e.contains("not 32 bytes"), "{e}");
    }

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

    fn principal(role: Role, ns: &str, scope: Option<Vec<Access>>) -> Principal {
        let mut p = Principal::of(TokenRecord {
            id: "t".into(),
            name: "t".into(),
            role,
            namespace: ns.parse().unwrap(),
            keyed_hash: [0; 32],
            created_at: 0,
            expires_at: None,
            revoked_at: None,
        });
        p.scope = scope.map(Arc::new);
        p
    }

    #[test]
    fn admin_api_and_audit_rights() {
        // (role, namespace) -> (admin API, audit log)
        for (role, ns, admin, audit) in [
            (Role::Admin, "**", true, true),
            (Role::Admin, "acme/**", false, false),
            (Role::Auditor, "**", false, true),
            (Role::Auditor, "acme/**", false, false),
            (Role::Publisher, "**", false, false),
            (Role::Reader, "**", false, false),
        ] {
            let p = principal(role, ns, None);
            assert_eq!(p.is_global_admin(), admin, "{role} {ns}");
            assert_eq!(p.can_read_audit(), audit, "{role} {ns}");
        }
        // Through a JWT, only with the matching registry grant.
        let grant = |name: &str, action: &str| Access {
            kind: "registry".into(),
            name: name.into(),
            actions: vec![action.into()],
        };
        let p = principal(Role::Admin, "**", Some(vec![]));
        assert!(!p.is_global_admin() && !p.can_read_audit());
        let p = principal(Role::Admin, "**", Some(vec![grant("admin", "*")]));
        assert!(p.is_global_admin() && !p.can_read_audit());
        let p = principal(Role::Auditor, "**", Some(vec![grant("audit", "read")]));
        assert!(!p.is_global_admin() && p.can_read_audit());
        let repo: RepoName = "acme/m".parse().unwrap();
        assert!(!p.can(Action::Pull, &repo) && !p.can_list(&repo));
    }

    #[test]
    fn keyed_hash_depends_on_key() {
        let a = TokenKey::from_bytes([1; 32]);
        let b = TokenKey::from_bytes([2; 32]);
        assert_ne!(a.hash("rampart_t"), b.hash("rampart_t"));
        assert_eq!(a.hash("rampart_t"), a.hash("rampart_t"));
    }
}
