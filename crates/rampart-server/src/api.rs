//! The admin JSON API under `/api/v1/`: tokens, repositories and the audit log, described by the OpenAPI 3.1
//! document served at `/api/v1/openapi.json` (public: it describes the API, not data).
//!
//! Every other route needs a global admin: a live `admin` token on `**` (Basic, token as password),
//! or a registry JWT granting `registry:admin:*` issued to one — except the `/api/v1/audit/` routes,
//! which need an `auditor` or `admin` token on `**` (JWT scope `registry:audit:read`). Errors have one shape:
//! `{"error":{"code":"<snake_case>","message":"…"}}` with codes `unauthorized` (401), `forbidden`
//! (403), `not_found` (404), `method_not_allowed` (405), `bad_request` (400), `internal` (500).
//!
//! The routes are one table ([`routes`]) from which the router is built; a test checks that the
//! table and the OpenAPI document list exactly the same operations.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use rampart_core::{NamespacePattern, RepoName, Role};
use rampart_store::{TokenRecord, now_unix};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller, Principal};
use crate::{AppState, Error};

/// The OpenAPI document, served as is (a copy is committed as `docs/openapi.json`).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Longest token name accepted.
const MAX_NAME: usize = 64;

/// An admin API failure, rendered as `{"error":{"code","message"}}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized,
    Forbidden,
    /// Valid credentials without the right to read the audit log.
    ForbiddenAudit,
    NotFound(String),
    /// A known path with a method it does not have.
    MethodNotAllowed,
    BadRequest(String),
    Internal(String),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthorized => ApiError::Unauthorized,
            Error::Denied => ApiError::Forbidden,
            Error::NameInvalid(m) => ApiError::BadRequest(format!("invalid repository name: {m}")),
            Error::NameUnknown => ApiError::NotFound("repository not found".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<rampart_store::Error> for ApiError {
    fn from(e: rampart_store::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authentication required".to_owned(),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs an admin token for every namespace (**)".to_owned(),
            ),
            ApiError::ForbiddenAudit => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs an auditor or admin token for every namespace (**)".to_owned(),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this API route does not support that method".to_owned(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error".to_owned(),
                )
            }
        };
        let mut resp = (
            status,
            axum::Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rampart\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

type ApiResult = Result<Response, ApiError>;

/// The authenticated caller, if `allowed` holds for it; else 401 (no valid credentials) or `denied`.
fn caller_that(
    caller: Caller,
    allowed: fn(&Principal) -> bool,
    denied: ApiError,
) -> Result<Principal, ApiError> {
    let p = caller.0?.ok_or(ApiError::Unauthorized)?;
    tracing::Span::current().record("principal", p.token_id.as_str());
    if allowed(&p) { Ok(p) } else { Err(denied) }
}

/// The caller, who must be a global admin.
fn admin(caller: Caller) -> Result<Principal, ApiError> {
    caller_that(caller, Principal::is_global_admin, ApiError::Forbidden)
}

/// The caller, who must be able to read the audit log (an `auditor` or `admin` token on `**`).
fn auditor(caller: Caller) -> Result<Principal, ApiError> {
    caller_that(caller, Principal::can_read_audit, ApiError::ForbiddenAudit)
}

/// The audit log directory, or 404 when this server keeps none.
fn audit_dir(st: &AppState) -> Result<std::path::PathBuf, ApiError> {
    st.audit()
        .map(|log| log.dir().to_owned())
        .ok_or_else(|| ApiError::NotFound("this server keeps no audit log".into()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, rampart_audit::Error> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(rampart_audit::Error::Invalid(m))) => Err(ApiError::BadRequest(m)),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn audit_checkpoint(State(st): State<AppState>, caller: Caller) -> ApiResult {
    auditor(caller)?;
    let dir = audit_dir(&st)?;
    let latest = rampart_audit::layout::Layout::new(&dir).latest();
    match std::fs::read_to_string(&latest) {
        Ok(note) => Ok(text(note)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::NotFound("no checkpoint signed yet".into()))
        }
        Err(e) => Err(ApiError::Internal(format!("{}: {e}", latest.display()))),
    }
}

async fn audit_verifier_key(State(st): State<AppState>, caller: Caller) -> ApiResult {
    auditor(caller)?;
    let log = st
        .audit()
        .ok_or_else(|| ApiError::NotFound("this server keeps no audit log".into()))?;
    Ok(text(format!("{}\n", log.verifier_key())))
}

async fn audit_proof(
    State(st): State<AppState>,
    caller: Caller,
    Path(index): Path<String>,
) -> ApiResult {
    auditor(caller)?;
    let dir = audit_dir(&st)?;
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("index {index:?} is not a number")))?;
    let proof = blocking(move || {
        let proof = rampart_audit::tools::prove(&dir, index)?;
        let line = rampart_audit::tools::read_record_line(&dir, index)?;
        Ok((proof, line))
    })
    .await?;
    let record: Value = serde_json::from_slice(&proof.1)
        .map_err(|e| ApiError::Internal(format!("record {index}: {e}")))?;
    Ok(axum::Json(json!({
        "index": index,
        "record": record,
        "entry": String::from_utf8_lossy(&proof.1),
        "proof": proof.0.to_text(),
    }))
    .into_response())
}

async fn audit_checkpoints(State(st): State<AppState>, caller: Caller) -> ApiResult {
    auditor(caller)?;
    let dir = audit_dir(&st)?;
    let history = rampart_audit::layout::Layout::new(&dir).history();
    let body = match tokio::fs::read(&history).await {
        // Only whole notes: the log may be appending one.
        Ok(mut b) => {
            b.truncate(rampart_audit::layout::complete_history_len(&b));
            b
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ApiError::Internal(format!("{}: {e}", history.display()))),
    };
    Ok(no_store(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
    ))
}

async fn audit_entries(
    State(st): State<AppState>,
    caller: Caller,
    req: axum::extract::Request,
) -> ApiResult {
    auditor(caller)?;
    let dir = audit_dir(&st)?;
    let mut start = 0u64;
    let mut limit = MAX_AUDIT_PAGE;
    for (k, v) in crate::oci::query(&req) {
        let n = v
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("{k}: {v:?} is not a number")))?;
        match k.as_str() {
            "start" => start = n,
            "limit" if (1..=MAX_AUDIT_PAGE).contains(&n) => limit = n,
            "limit" => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be 1 to {MAX_AUDIT_PAGE}"
                )));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )));
            }
        }
    }
    // Read before the segments: every record it counts is in them.
    let size = st.audit().map_or(0, rampart_audit::AuditLog::size);
    let st2 = st.clone();
    let body = blocking(move || {
        let mut out = Vec::new();
        rampart_audit::tools::read_entries(&dir, st2.audit_entries(), start, limit, |line| {
            out.extend_from_slice(line);
            out.push(b'\n');
            Ok(out.len() < MAX_ENTRIES_BYTES)
        })?;
        Ok(out)
    })
    .await?;
    Ok(no_store(
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                ),
                (
                    header::HeaderName::from_static(AUDIT_SIZE_HEADER),
                    HeaderValue::from(size),
                ),
            ],
            body,
        )
            .into_response(),
    ))
}

/// A page of `GET /api/v1/audit/entries` ends after the record that reaches this many bytes.
const MAX_ENTRIES_BYTES: usize = 8 << 20;

/// The header of `GET /api/v1/audit/entries` giving the number of records in the log when the
/// page was read (the page may be shorter than asked for before that: see [`MAX_ENTRIES_BYTES`]).
const AUDIT_SIZE_HEADER: &str = "rampart-audit-size";

/// Most records returned by one `GET /api/v1/audit/records` or `GET /api/v1/audit/entries`.
const MAX_AUDIT_PAGE: u64 = 10_000;

#[derive(Debug, Default)]
struct AuditQuery {
    principal: Option<String>,
    action: Option<String>,
    repository: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<u64>,
    limit: Option<u64>,
}

impl AuditQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        let number = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("{k}: {v:?} is not a number")))
        };
        for (k, v) in pairs {
            match k.as_str() {
                "principal" => q.principal = Some(v),
                "action" => q.action = Some(v),
                "repository" => q.repository = Some(v),
                "since" => q.since = Some(v),
                "until" => q.until = Some(v),
                "after" => q.after = Some(number(&k, &v)?),
                "limit" => q.limit = Some(number(&k, &v)?),
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown query parameter {other:?}"
                    )));
                }
            }
        }
        Ok(q)
    }
}

async fn audit_records(
    State(st): State<AppState>,
    caller: Caller,
    req: axum::extract::Request,
) -> ApiResult {
    auditor(caller)?;
    let dir = audit_dir(&st)?;
    let q = AuditQuery::parse(crate::oci::query(&req))?;
    let time = |s: &Option<String>| -> Result<Option<u64>, ApiError> {
        s.as_deref()
            .map(rampart_audit::tools::Filter::parse_time)
            .transpose()
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    };
    let filter = rampart_audit::tools::Filter {
        principal: q.principal,
        action: q.action,
        repository: q.repository,
        since_ms: time(&q.since)?,
        until_ms: time(&q.until)?,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, MAX_AUDIT_PAGE);
    let after = q.after;
    let (records, more) = blocking(move || {
        let mut out = Vec::new();
        let mut more = false;
        rampart_audit::tools::query(&dir, &filter, |r| {
            if after.is_some_and(|a| r.seq <= a) {
                return;
            }
            if (out.len() as u64) < limit {
                out.push(r.clone());
            } else {
                more = true;
            }
        })?;
        Ok((out, more))
    })
    .await?;
    let next = if more {
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(axum::Json(json!({ "records": records, "next_after": next })).into_response())
}

fn status_of(t: &TokenRecord, now: i64) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn token_json(t: &TokenRecord, now: i64) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "role": t.role.as_str(),
        "namespace": t.namespace.as_str(),
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
        "status": status_of(t, now),
    })
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn list_tokens(State(st): State<AppState>, caller: Caller) -> ApiResult {
    admin(caller)?;
    let now = now_unix();
    let tokens: Vec<Value> = st
        .meta()
        .tokens()
        .await?
        .iter()
        .map(|t| token_json(t, now))
        .collect();
    Ok(no_store(
        axum::Json(json!({ "tokens": tokens })).into_response(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    role: Role,
    namespace: NamespacePattern,
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn create_token(State(st): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    let caller = admin(caller)?;
    let req: CreateToken = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))?;
    if req.name.is_empty() || req.name.len() > MAX_NAME || req.name.chars().any(|c| c.is_control())
    {
        return Err(ApiError::BadRequest(format!(
            "name must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    let expires_at = match req.expires_in {
        None => None,
        Some(0) => return Err(ApiError::BadRequest("expires_in must be positive".into())),
        Some(s) => Some(now_unix().saturating_add(
            i64::try_from(s).map_err(|_| ApiError::BadRequest("expires_in is too large".into()))?,
        )),
    };
    let t = auth::create_token(
        st.meta(),
        st.key(),
        &req.name,
        req.role,
        req.namespace,
        expires_at,
    )
    .await?;
    tracing::info!(
        created = %t.record.id,
        by = %caller.token_id,
        role = %t.record.role,
        "token created through the admin API"
    );
    let body = json!({ "token": token_json(&t.record, now_unix()), "secret": t.secret });
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
    ))
}

async fn revoke_token(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let caller = admin(caller)?;
    if st.meta().revoke_token(&id).await? {
        tracing::info!(revoked = %id, by = %caller.token_id, "token revoked through the admin API");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!(
            "no active token with id {id:?}"
        )))
    }
}

async fn tag_count(st: &AppState, repo: &RepoName) -> Result<usize, ApiError> {
    Ok(st.meta().tags(repo, None, u32::MAX).await?.len())
}

async fn list_repositories(State(st): State<AppState>, caller: Caller) -> ApiResult {
    admin(caller)?;
    let mut out = Vec::new();
    for repo in st.meta().repositories().await? {
        let tags = tag_count(&st, &repo).await?;
        out.push(json!({ "name": repo.as_str(), "tag_count": tags }));
    }
    Ok(axum::Json(json!({ "repositories": out })).into_response())
}

async fn repository(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    admin(caller)?;
    let repo: RepoName = name
        .parse()
        .map_err(|e: rampart_core::Error| ApiError::BadRequest(e.to_string()))?;
    if !st.meta().repository_exists(&repo).await? {
        return Err(ApiError::NotFound(format!("no repository {repo}")));
    }
    let mut tags = Vec::new();
    for tag in st.meta().tags(&repo, None, u32::MAX).await? {
        let Some(digest) = st.meta().resolve_tag(&repo, &tag).await? else {
            continue;
        };
        let m = st.meta().manifest(&repo, &digest).await?;
        tags.push(json!({
            "tag": tag.as_str(),
            "digest": digest.to_string(),
            "media_type": m.as_ref().map(|m| m.media_type.clone()),
            "artifact_type": m.as_ref().and_then(|m| m.artifact_type.clone()),
            "size": m.as_ref().map(|m| m.size),
        }));
    }
    Ok(axum::Json(json!({ "name": repo.as_str(), "tags": tags })).into_response())
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// One operation of the admin API: method, OpenAPI path template, handler.
pub(crate) struct ApiRoute {
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the documentation test")
    )]
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> ApiRoute {
    ApiRoute {
        method,
        path,
        handler,
    }
}

/// Every admin API operation. The router and the documentation check both come from this table.
pub(crate) fn routes() -> Vec<ApiRoute> {
    vec![
        route(
            Method::GET,
            "/api/v1/openapi.json",
            on(MethodFilter::GET, openapi),
        ),
        route(
            Method::GET,
            "/api/v1/tokens",
            on(MethodFilter::GET, list_tokens),
        ),
        route(
            Method::POST,
            "/api/v1/tokens",
            on(MethodFilter::POST, create_token),
        ),
        route(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            on(MethodFilter::DELETE, revoke_token),
        ),
        route(
            Method::GET,
            "/api/v1/repositories",
            on(MethodFilter::GET, list_repositories),
        ),
        route(
            Method::GET,
            "/api/v1/repositories/{name}",
            on(MethodFilter::GET, repository),
        ),
        route(
            Method::GET,
            "/api/v1/audit/checkpoint",
            on(MethodFilter::GET, audit_checkpoint),
        ),
        route(
            Method::GET,
            "/api/v1/audit/verifier-key",
            on(MethodFilter::GET, audit_verifier_key),
        ),
        route(
            Method::GET,
            "/api/v1/audit/records",
            on(MethodFilter::GET, audit_records),
        ),
        route(
            Method::GET,
            "/api/v1/audit/proof/{index}",
            on(MethodFilter::GET, audit_proof),
        ),
        route(
            Method::GET,
            "/api/v1/audit/entries",
            on(MethodFilter::GET, audit_entries),
        ),
        route(
            Method::GET,
            "/api/v1/audit/checkpoints",
            on(MethodFilter::GET, audit_checkpoints),
        ),
    ]
}

/// The axum path of an OpenAPI path: a repository name contains `/`, so `{name}` is a wildcard.
fn axum_path(path: &str) -> String {
    path.replace("{name}", "{*name}")
}

async fn json_405(resp: Response) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// The admin API router, with a JSON 404 for unknown paths under `/api/`.
pub(crate) fn router() -> Router<AppState> {
    let mut r = Router::new();
    for ApiRoute {
        path,
        handler,
        method: _,
    } in routes()
    {
        r = r.route(&axum_path(path), handler);
    }
    // axum answers a wrong method with an empty 405; keep the API's one error shape (and `Allow`).
    r.layer(axum::middleware::map_response(json_405)).route(
        "/api/{*rest}",
        axum::routing::any(|| async { ApiError::NotFound("no such API route".into()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap(), "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                assert!(
                    ["get", "post", "put", "patch", "delete", "head"].contains(&method.as_str()),
                    "{path}: unexpected key {method}"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = routes()
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(routed.len(), routes().len(), "duplicate route");
        assert_eq!(documented, routed);
        // Every schema reference resolves.
        let text = OPENAPI;
        for (i, _) in text.match_indices("#/components/schemas/") {
            let rest = &text[i + "#/components/schemas/".len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
