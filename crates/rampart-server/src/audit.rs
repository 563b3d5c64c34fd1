//! Every request is recorded in the tamper-evident audit log before its response leaves.
//!
//! The [`record`] middleware sits inside authentication and rate limiting, so it sees the caller
//! ([`Identity`]) and records refusals too. For a request that may change state (any method but
//! `GET`/`HEAD`/`OPTIONS`) by an authenticated caller it appends a `received` record *before* the
//! handler runs: if that fails, the handler never runs. One exception, for throughput: a step of a
//! blob upload session that nobody else can observe (opening a session, sending a chunk) queues
//! its `received` record before the handler runs, so the record precedes the step's `completed`
//! one in the log (and is written even if the client disconnects), but flushes it together with the `completed` record ([`rampart_audit::AuditLog::defer`]): one
//! `fdatasync` per step instead of two; the response still waits for both records. A crash or log
//! failure in between can leave only session state private to that client, which nobody else can
//! read and which expiry purges unless the client resumes it (with recorded requests).
//! After the handler it appends a `completed` record with the status,
//! decision and rule, and only then releases the response: a response body (a blob, a manifest) is
//! not polled before its record is durable, so no byte of a model is served unrecorded. Any append
//! that fails or times out turns the response into `503 UNAVAILABLE` (fail closed, like Vault);
//! the log then reports unhealthy and `/readyz` fails.
//!
//! Not recorded: `/healthz`, `/readyz` and `/metrics`, which only read counters and must keep
//! answering while the log is down (that is how monitoring learns it is down).
//!
//! Secrets never reach the log: the presented credential (Basic password or JWT) appears only as
//! HMAC-SHA256 under the separate audit key, with that key's id.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_audit::{AuditKey, Record, Stage};
use rampart_core::{NamespacePattern, RepoName};

use crate::auth::Identity;
use crate::oci::{Route, parse_route};
use crate::{AppState, error};

/// The response header carrying the request's audit id.
pub const AUDIT_ID_HEADER: &str = "rampart-audit-id";

/// What a request is about, from its method and path alone.
#[derive(Debug, Default)]
struct Subject {
    action: String,
    repository: Option<String>,
    reference: Option<String>,
    digest: Option<String>,
    /// A step of a blob upload session that changes nothing anyone else can observe: `POST
    /// …/blobs/uploads/` that only opens a session (no `digest`, no `mount`) and `PATCH` of a
    /// chunk. Its `received` record is flushed with its `completed` one (see [`record`]).
    private_step: bool,
}

/// Whether the request only opens or feeds an upload session: its effects stay in a session that
/// only this client can name, nothing links or publishes a blob, and an unfinished session is
/// purged. A `POST` with `digest` (monolithic upload) or `mount` (cross-repository mount) publishes
/// a blob, so it is not private.
fn is_private_upload_step(method: &Method, route: &Route, query: Option<&str>) -> bool {
    match (route, method) {
        (Route::Upload(..), &Method::PATCH) => true,
        // Decoded exactly as the handler decodes them (`?dig%65st=` is `digest`), and matched
        // more loosely than it matches them (any case), so nothing that publishes is deferred.
        (Route::UploadStart(_), &Method::POST) => {
            !crate::oci::query_pairs(query).iter().any(|(key, _)| {
                key.eq_ignore_ascii_case("digest") || key.eq_ignore_ascii_case("mount")
            })
        }
        _ => false,
    }
}

fn classify(method: &Method, path: &str, query: Option<&str>) -> Subject {
    let m = method.as_str().to_ascii_lowercase();
    if path == "/v2" || path == "/v2/" {
        return Subject {
            action: "registry.ping".into(),
            ..Subject::default()
        };
    }
    if path == "/v2/_catalog" {
        return Subject {
            action: "registry.catalog".into(),
            ..Subject::default()
        };
    }
    if path == "/token" {
        return Subject {
            action: "token.issue".into(),
            ..Subject::default()
        };
    }
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        // The path is bounded by the header limits; keep at most the resource kind.
        let kind = rest.split('/').next().unwrap_or("").chars().take(32);
        let kind: String = kind
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        return Subject {
            action: format!("admin.{kind}.{m}"),
            ..Subject::default()
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Subject {
            action: format!("other.{m}"),
            ..Subject::default()
        };
    };
    let reference_or_digest = |s: String| {
        if s.starts_with("sha256:") || s.starts_with("sha512:") {
            (None, Some(s))
        } else {
            (Some(s), None)
        }
    };
    match parse_route(rest) {
        Some(Ok(route)) => {
            let private_step = is_private_upload_step(method, &route, query);
            let (action, repo, last) = match route {
                Route::Blob(r, d) => (
                    match *method {
                        Method::DELETE => "blob.delete",
                        _ => "blob.pull",
                    },
                    r,
                    Some(d),
                ),
                Route::UploadStart(r) => ("blob.push", r, None),
                Route::Upload(r, _) => ("blob.push", r, None),
                Route::Manifest(r, reference) => (
                    match *method {
                        Method::PUT => "manifest.push",
                        Method::DELETE => "manifest.delete",
                        _ => "manifest.pull",
                    },
                    r,
                    Some(reference),
                ),
                Route::Tags(r) => ("tags.list", r, None),
                Route::Referrers(r, d) => ("referrers.list", r, Some(d)),
            };
            let (reference, digest) = last.map_or((None, None), reference_or_digest);
            Subject {
                action: action.into(),
                repository: Some(repo.as_str().to_owned()),
                reference,
                digest,
                private_step,
            }
        }
        // A hostile or malformed name is recorded as such, never echoed.
        Some(Err(_)) => Subject {
            action: "registry.invalid-name".into(),
            ..Subject::default()
        },
        None => Subject {
            action: "registry.unknown-route".into(),
            ..Subject::default()
        },
    }
}

/// The credential the request presented, to be hashed (never recorded in clear).
fn presented_credential(headers: &HeaderMap) -> Option<Vec<u8>> {
    if let Some(password) = crate::auth::basic_password(headers) {
        return Some(password.into_bytes());
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (_scheme, rest) = value.split_once(' ')?;
    Some(rest.trim().as_bytes().to_vec())
}

/// Longest path-derived text (reference, digest) copied into a record: a hostile client controls it,
/// and a valid tag is at most 128 characters, a digest 71.
const MAX_SUBJECT_TEXT: usize = 256;

fn bounded(text: Option<String>) -> Option<String> {
    text.map(|mut t| {
        if t.len() > MAX_SUBJECT_TEXT {
            let mut cut = MAX_SUBJECT_TEXT;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
            t.push('…');
        }
        t
    })
}

fn principal(
    key: &AuditKey,
    identity: Option<&Identity>,
    headers: &HeaderMap,
) -> Option<rampart_audit::Principal> {
    let token_hash = presented_credential(headers).map(|c| key.hash_secret(&c));
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7))
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
    let (id, kind) = match identity {
        Some(Identity::Valid(p)) => (
            p.token_id.clone(),
            if bearer { "jwt" } else { "token" }.to_owned(),
        ),
        Some(Identity::Invalid) => ("-".to_owned(), "invalid".to_owned()),
        Some(Identity::Anonymous) | None if token_hash.is_none() => {
            ("-".to_owned(), "anonymous".to_owned())
        }
        Some(Identity::Anonymous) => ("-".to_owned(), "anonymous-jwt".to_owned()),
        None => ("-".to_owned(), "unverified".to_owned()),
    };
    Some(rampart_audit::Principal {
        id,
        kind,
        key_id: token_hash.as_ref().map(|_| key.id().to_owned()),
        token_hash,
    })
}

/// The access decision as the response shows it, and the rule behind it. `anonymous` is the
/// anonymous-pull pattern that opens the request's repository to a read without credentials.
fn decision(
    status: StatusCode,
    identity: Option<&Identity>,
    action: &str,
    anonymous: Option<&NamespacePattern>,
) -> (String, String) {
    let grant = match (identity, anonymous) {
        (Some(Identity::Valid(p)), _) => format!("role {} on {}", p.role, p.namespace.as_str()),
        (Some(Identity::Invalid), _) => "credentials refused (unknown, expired or revoked)".into(),
        (_, Some(pattern)) => format!("no credentials; anonymous pull on {}", pattern.as_str()),
        (_, None) => "no credentials".into(),
    };
    let (d, rule) = match status {
        StatusCode::UNAUTHORIZED => ("deny", format!("authentication: {grant}")),
        StatusCode::FORBIDDEN => (
            "deny",
            format!("authorization: {grant} does not allow {action}"),
        ),
        StatusCode::TOO_MANY_REQUESTS => ("deny", "rate limit".into()),
        s if s.is_server_error() => ("error", format!("server error; caller: {grant}")),
        _ => ("allow", grant),
    };
    (d.to_owned(), rule)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn new_audit_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Ids only need to be unique in practice; the sequence number disambiguates anyway.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    rampart_audit::record::hex(&b)
}

fn unavailable(audit_id: &str, e: &rampart_audit::Error) -> Response {
    tracing::error!(audit_id, error = %e, "audit log unavailable: refusing the request");
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(error::body(
            "UNAVAILABLE",
            "the audit log cannot record this request; try again later",
            serde_json::Value::Null,
        )),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// The middleware (see the module docs).
pub(crate) async fn record(State(st): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let Some(log) = st.audit() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    // Probes and metrics only read counters; they must keep answering while the log is down.
    if path == "/healthz" || path == "/readyz" || path == "/metrics" {
        return next.run(req).await;
    }
    let start = Instant::now();
    let audit_id = new_audit_id();
    let method = req.method().clone();
    let subject = classify(&method, path, req.uri().query());
    let identity = req.extensions().get::<Identity>().cloned();
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let proxy_ip = req
        .extensions()
        .get::<rampart_core::ClientAddr>()
        .and_then(|c| c.proxy)
        .map(|ip| ip.to_string());
    let mut base = Record::new(audit_id.clone(), subject.action.clone());
    base.principal = principal(log.audit_key(), identity.as_ref(), req.headers());
    base.source_ip = source_ip;
    base.proxy_ip = proxy_ip;
    base.repository = subject.repository;
    base.reference = bounded(subject.reference);
    base.digest = bounded(subject.digest);
    let request_bytes = content_length(req.headers());
    let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    // The rule that lets a caller without credentials read (see `oci::anonymous`).
    let anonymous = match identity {
        Some(Identity::Anonymous) if matches!(method, Method::GET | Method::HEAD) => base
            .repository
            .as_deref()
            .and_then(|r| r.parse::<RepoName>().ok())
            .and_then(|r| st.anonymous_for(&r))
            .map(|p| p.namespace),
        _ => None,
    };
    // Only an authenticated caller can change anything (anonymous access is pull-only), so a
    // refused caller gets the completed record alone: a flood of bad credentials costs one append
    // per request, not two.
    let may_change =
        changes_state && !matches!(identity, Some(Identity::Anonymous | Identity::Invalid));
    // The `received` record is durable before the handler runs, so no change happens unrecorded,
    // except for a private upload-session step (see `is_private_upload_step`): its record is
    // queued before the step runs (so it precedes the step's `completed` record) but flushed with
    // the `completed` record, saving an `fdatasync`; the response still waits for both.
    let mut deferred_received = None;
    if may_change {
        let mut received = base.clone();
        received.stage = Stage::Received;
        received.bytes = request_bytes;
        let r = if subject.private_step {
            log.defer(received)
                .await
                .map(|s| deferred_received = Some(s))
        } else {
            log.append(received).await.map(drop)
        };
        if let Err(e) = r {
            return unavailable(&audit_id, &e);
        }
    }
    let mut resp = next.run(req).await;
    let status = resp.status();
    let (d, rule) = decision(
        status,
        identity.as_ref(),
        &subject.action,
        anonymous.as_ref(),
    );
    let mut completed = base;
    completed.stage = Stage::Completed;
    completed.status = Some(status.as_u16());
    completed.decision = Some(d);
    completed.rule = Some(rule);
    completed.bytes = if changes_state {
        request_bytes
    } else if method == Method::HEAD {
        Some(0)
    } else {
        content_length(resp.headers())
    };
    completed.duration_ms = Some(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    if let Err(e) = log.append(completed).await {
        // The body was never polled: nothing of it has been sent.
        return unavailable(&audit_id, &e);
    }
    if let Some(received) = deferred_received
        && let Err(e) = received.durable().await
    {
        // Flushed with the `completed` record, so this is not expected; if it happens, the step's
        // effect stays in session state private to this client (see the module docs).
        return unavailable(&audit_id, &e);
    }
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert(AUDIT_ID_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::Encoding as _;

    fn classify_t(method: &Method, path: &str) -> Subject {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        classify(method, path, query)
    }

    #[test]
    fn only_session_steps_are_private() {
        let private = |m: &Method, p: &str| classify_t(m, p).private_step;
        assert!(private(&Method::POST, "/v2/a/m/blobs/uploads/"));
        assert!(private(&Method::POST, "/v2/a/m/blobs/uploads/?foo=1"));
        assert!(private(&Method::PATCH, "/v2/a/m/blobs/uploads/abc"));
        assert!(!private(
            &Method::POST,
            "/v2/a/m/blobs/uploads/?digest=sha256:00"
        ));
        assert!(!private(
            &Method::POST,
            "/v2/a/m/blobs/uploads/?x=1&Mount=sha256:00"
        ));
        // Percent-encoded keys are what the handler decodes them to.
        for q in [
            "?dig%65st=sha256:00",
            "?%6dount=sha256:00&from=b",
            "?digest",
            "?DIGEST=x",
        ] {
            assert!(
                !private(&Method::POST, &format!("/v2/a/m/blobs/uploads/{q}")),
                "{q}"
            );
        }
        assert!(!private(
            &Method::PUT,
            "/v2/a/m/blobs/uploads/abc?digest=sha256:00"
        ));
        assert!(!private(&Method::DELETE, "/v2/a/m/blobs/uploads/abc"));
        assert!(!private(&Method::PUT, "/v2/a/m/manifests/v1"));
        assert!(!private(&Method::DELETE, "/v2/a/m/blobs/sha256:00"));
        assert!(!private(&Method::POST, "/api/v1/tokens"));
    }

    #[test]
    fn classifies_registry_routes() {
        let s = classify_t(&Method::GET, "/v2/acme/m/blobs/sha256:abc");
        assert_eq!(s.action, "blob.pull");
        assert_eq!(s.repository.as_deref(), Some("acme/m"));
        assert_eq!(s.digest.as_deref(), Some("sha256:abc"));
        let s = classify_t(&Method::PUT, "/v2/acme/m/manifests/v1");
        assert_eq!(s.action, "manifest.push");
        assert_eq!(s.reference.as_deref(), Some("v1"));
        assert_eq!(
            classify_t(&Method::PATCH, "/v2/a/blobs/uploads/xyz").action,
            "blob.push"
        );
        assert_eq!(
            classify_t(&Method::GET, "/v2/..%2f/blobs/x").action,
            "registry.invalid-name"
        );
        assert_eq!(classify_t(&Method::GET, "/token").action, "token.issue");
        assert_eq!(
            classify_t(&Method::POST, "/api/v1/tokens").action,
            "admin.tokens.post"
        );
    }

    #[test]
    fn path_text_is_bounded() {
        let long = format!("v{}", "é".repeat(300));
        let cut = bounded(Some(long)).unwrap();
        assert!(cut.len() <= MAX_SUBJECT_TEXT + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded(Some("v1".into())).as_deref(), Some("v1"));
        let s = classify_t(
            &Method::GET,
            &format!("/v2/a/manifests/{}", "x".repeat(5000)),
        );
        assert_eq!(s.reference.as_ref().map(String::len), Some(5000));
    }

    #[test]
    fn secrets_are_hashed_never_copied() {
        let key = AuditKey::from_bytes([7; 32]);
        let mut h = HeaderMap::new();
        let secret = "rampart_0123456789abcdef";
        let v = format!(
            "Basic {}",
            base64ct::Base64::encode_string(format!("u:{secret}").as_bytes())
        );
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        let p = principal(&key, Some(&Identity::Invalid), &h).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains(secret));
        assert_eq!(p.token_hash, Some(key.hash_secret(secret.as_bytes())));
        assert_eq!(p.key_id.as_deref(), Some(key.id()));
        assert_eq!(p.kind, "invalid");
    }

    #[test]
    fn decisions_follow_the_status() {
        assert_eq!(decision(StatusCode::OK, None, "x", None).0, "allow");
        assert_eq!(
            decision(StatusCode::UNAUTHORIZED, None, "x", None).0,
            "deny"
        );
        assert_eq!(decision(StatusCode::FORBIDDEN, None, "x", None).0, "deny");
        assert_eq!(
            decision(StatusCode::SERVICE_UNAVAILABLE, None, "x", None).0,
            "error"
        );
    }

    #[test]
    fn an_anonymous_read_records_the_pattern_that_allowed_it() {
        let pattern: NamespacePattern = "pub/**".parse().unwrap();
        let (d, rule) = decision(
            StatusCode::OK,
            Some(&Identity::Anonymous),
            "blob.pull",
            Some(&pattern),
        );
        assert_eq!(d, "allow");
        assert_eq!(rule, "no credentials; anonymous pull on pub/**");
    }
}
