//! The Docker token flow: `GET /token` issues short-lived registry JWTs, and 401 answers under `/v2/`
//! carry a `Bearer` challenge pointing at it.
//!
//! - **Credentials.** `/token` takes HTTP Basic with a Rampart token as the password (any user name;
//!   `account` is accepted and ignored). Without credentials it issues an *anonymous* JWT listing
//!   pull on the requested repositories that the anonymous-pull configuration opens; such a JWT
//!   counts as no credentials at all (the configuration, re-read per request, decides), so it only
//!   exists to let clients that always follow the Bearer challenge (skopeo) pull anonymously.
//!   Credentials that are presented but wrong are refused (401).
//! - **Grants.** For each requested `repository:NAME:…` scope the JWT lists *every* action the
//!   caller's token holds on NAME (`pull`, `push`, `delete`), whatever actions were asked for, and
//!   nothing it does not hold. oras-py reuses its first token for later pushes, so a pull-only grant
//!   would break it. `registry:catalog:*` is granted to tokens that may pull somewhere, and
//!   `registry:admin:*` to global admins.
//! - **Revocation.** The JWT names the Rampart token it was issued against; every request re-reads
//!   that token, so revocation and expiry of the token take effect at once, and the JWT grants only
//!   what its claims list *and* the token still holds. JWTs live [`DEFAULT_TTL`] (300 s).
//! - **Challenges.** A 401 under `/v2/` carries only `Bearer realm="…/token",service="rampart",
//!   scope="…"`: oras-py's token backend reads one challenge with a regex, so a second (Basic)
//!   challenge in the same response would overwrite its `realm`. Basic credentials are still
//!   accepted on every request (oras-py's basic backend sends them whatever the challenge says).
//! - **Realm.** From the configured public URL when there is one. Otherwise from the request's
//!   `Host` header, only when it is a plain `host[:port]` (letters, digits, `.`, `-`, or a bracketed
//!   IPv6 literal), with the scheme the server listens with. A client sends its password to the
//!   realm, but this realm is always the host the client itself addressed, so reflecting a
//!   well-formed `Host` sends the credentials nowhere new; anything else gets a Basic challenge.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_core::{Action, RepoName};
use rampart_store::now_unix;
use serde_json::json;

use crate::auth::{self, ANONYMOUS_SUBJECT, SERVICE, action_name};
use crate::{AppState, Error};
use rampart_jwt::{Access, Claims, ISSUER};

/// Lifetime of an issued JWT.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Most scopes honoured in one request (the rest are ignored).
const MAX_SCOPES: usize = 32;

/// Settings of the token flow.
#[derive(Debug, Clone)]
pub struct TokenService {
    /// The registry's external base URL (`https://registry.example.com`), used for the realm.
    /// `None`: derive it from a well-formed `Host` header.
    pub public_url: Option<String>,
    /// Whether the server listens with TLS (the scheme of a realm derived from `Host`).
    pub tls: bool,
    /// Lifetime of an issued JWT (at most one hour).
    pub ttl: Duration,
}

/// The settings used until [`crate::AppState::set_token_service`] is called.
pub(crate) static DEFAULT_SERVICE: TokenService = TokenService {
    public_url: None,
    tls: false,
    ttl: DEFAULT_TTL,
};

impl Default for TokenService {
    fn default() -> Self {
        DEFAULT_SERVICE.clone()
    }
}

/// Whether `host` is a plain `host[:port]` safe to put into a realm URL (for validating a
/// configured public URL).
pub fn is_plain_host(host: &str) -> bool {
    plain_host(host)
}

/// Whether `host` is a plain `host[:port]` safe to put into a realm URL.
pub(crate) fn plain_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        match after {
            "" => ("v6", None),
            p => match p.strip_prefix(':') {
                Some(p) => ("v6", Some(p)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    name_ok && port_ok
}

/// The realm URL for a request, or `None` when none can be given safely.
fn realm(cfg: &TokenService, headers: &HeaderMap) -> Option<String> {
    if let Some(base) = &cfg.public_url {
        return Some(format!("{}/token", base.trim_end_matches('/')));
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    plain_host(host).then(|| {
        let scheme = if cfg.tls { "https" } else { "http" };
        format!("{scheme}://{host}/token")
    })
}

/// Middleware: turns the Basic challenge of a 401 under `/v2/` into a Bearer challenge with the
/// scope the request needed.
pub(crate) async fn challenge(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !(path == "/v2" || path.starts_with("/v2/")) {
        return next.run(req).await;
    }
    // Cheap clones only; the challenge is worked out for 401s alone.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut host = HeaderMap::new();
    if let Some(h) = req.headers().get(header::HOST) {
        host.insert(header::HOST, h.clone());
    }
    let mut resp = next.run(req).await;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return resp;
    }
    let Some(realm) = realm(st.token_service(), &host) else {
        return resp;
    };
    let query = axum::http::Request::builder()
        .uri(uri)
        .body(axum::body::Body::empty())
        .map(|r| crate::oci::query(&r))
        .unwrap_or_default();
    let mut value = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
    if let Some(scope) = crate::oci::scope_for(&method, &path, &query) {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// One parsed `scope` entry for an anonymous caller: pull where anonymous pull is configured.
fn anonymous_grant(st: &AppState, scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, _requested) = rest.rsplit_once(':')?;
    let repo: RepoName = name.parse().ok()?;
    (kind == "repository" && st.anonymous_for(&repo).is_some()).then(|| Access {
        kind: "repository".into(),
        name: repo.as_str().to_owned(),
        actions: vec!["pull".into()],
    })
}

/// One parsed `scope` entry.
fn grant(p: &auth::Principal, scope: &str) -> Option<Access> {
    // `type:name:actions`; names never contain `:`. The requested actions are ignored: the grant
    // is what the caller holds.
    let (kind, rest) = scope.split_once(':')?;
    let (name, _requested) = rest.rsplit_once(':')?;
    match kind {
        "repository" => {
            let repo: RepoName = name.parse().ok()?;
            let actions: Vec<String> = [Action::Pull, Action::Push, Action::Delete]
                .into_iter()
                .filter(|a| p.holds(*a, &repo))
                .filter_map(action_name)
                .map(str::to_owned)
                .collect();
            (!actions.is_empty()).then(|| Access {
                kind: "repository".into(),
                name: repo.as_str().to_owned(),
                actions,
            })
        }
        "registry" => {
            let allowed = match name {
                "catalog" => p.role.allows(Action::Pull),
                "admin" => p.is_global_admin(),
                "audit" => p.can_read_audit(),
                _ => false,
            };
            let action = if name == "audit" { "read" } else { "*" };
            allowed.then(|| Access {
                kind: "registry".into(),
                name: name.to_owned(),
                actions: vec![action.to_owned()],
            })
        }
        _ => None,
    }
}

/// `GET /token`: issues a registry JWT for the Basic-authenticated caller.
pub(crate) async fn issue(State(st): State<AppState>, req: Request) -> Response {
    let q = crate::oci::query(&req);
    let headers = req.headers().clone();
    drop(req);
    let result = async {
        let principal = if headers.contains_key(header::AUTHORIZATION) {
            let p = auth::basic_principal(st.meta(), st.key(), &headers).await?;
            tracing::Span::current().record("principal", p.token_id.as_str());
            Some(p)
        } else {
            None
        };
        if let Some((_, s)) = q.iter().find(|(k, _)| k == "service")
            && s != SERVICE
        {
            return Err(Error::Denied);
        }
        let mut access: Vec<Access> = Vec::new();
        let scopes = q
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter(|s| !s.is_empty())
            .take(MAX_SCOPES);
        for scope in scopes {
            let a = match &principal {
                Some(p) => grant(p, scope),
                None => anonymous_grant(&st, scope),
            };
            if let Some(a) = a
                && !access.contains(&a)
            {
                access.push(a);
            }
        }
        let cfg = st.token_service();
        let ttl = i64::try_from(cfg.ttl.as_secs())
            .unwrap_or(rampart_jwt::MAX_LIFETIME)
            .clamp(1, rampart_jwt::MAX_LIFETIME);
        let now = now_unix();
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: principal
                .as_ref()
                .map_or(ANONYMOUS_SUBJECT, |p| p.token_id.as_str())
                .to_owned(),
            aud: SERVICE.to_owned(),
            exp: now.saturating_add(ttl),
            nbf: now,
            iat: now,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
        };
        let token = st
            .key()
            .jwt_key()
            .sign(&claims)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))?;
        tracing::info!(
            grants = claims.access.len(),
            expires_in = ttl,
            "registry token issued"
        );
        let mut resp = axum::Json(json!({
            "token": token,
            "access_token": token,
            "expires_in": ttl,
            "issued_at": rampart_store::rfc3339(now),
        }))
        .into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok::<_, Error>(resp)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "127.0.0.1:5050",
            "registry.example.com",
            "[::1]:5050",
            "[::1]",
        ] {
            assert!(plain_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com/x",
            "a@b",
            "x:y",
            "h:123456",
            "h\"",
            "h ,realm=x",
            "[::1]x",
            ".x",
            "h:",
        ] {
            assert!(!plain_host(bad), "{bad}");
        }
    }

    #[test]
    fn realm_prefers_configured_url() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9"));
        let cfg = TokenService::default();
        assert_eq!(realm(&cfg, &h).unwrap(), "http://127.0.0.1:9/token");
        let cfg = TokenService {
            public_url: Some("https://r.example/".into()),
            ..TokenService::default()
        };
        assert_eq!(realm(&cfg, &h).unwrap(), "https://r.example/token");
        h.insert(header::HOST, HeaderValue::from_static("evil/x"));
        assert_eq!(realm(&TokenService::default(), &h), None);
    }
}
