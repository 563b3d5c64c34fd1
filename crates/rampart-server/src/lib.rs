//! Rampart's HTTP server: the OCI Distribution v1.1 registry under `/v2/`, token authentication, and
//! health endpoints. [`app`] builds the whole `axum::Router` from an [`AppState`], so tests drive it
//! with `oneshot` and no socket; [`DataDir::open`] wires the default embedded backends.
//!
//! Every request under `/v2/` needs a valid token (HTTP Basic, token as password); names and digests
//! are parsed before they reach storage; errors use the OCI JSON format; panics become a generic 500.

#![forbid(unsafe_code)]

mod api;
pub mod audit;
pub mod auth;
mod error;
pub mod limit;
pub mod listen;
mod oci;
pub mod tls;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rampart_core::{NamespacePattern, Role};
use rampart_store::{BlobStore, FsBlobStore, MetadataStore, SqliteMetadata};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use api::OPENAPI;
pub use auth::{NewToken, Principal, TokenKey, create_token};
pub use error::Error;
pub use token::TokenService;

/// Size limits applied to requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest manifest accepted, in bytes (the spec asks for at least 4 MB).
    pub max_manifest: usize,
    /// Largest blob accepted, in bytes.
    pub max_blob: u64,
    /// Upload sessions untouched for this long are discarded.
    pub upload_ttl: Duration,
    /// Largest request body on routes that carry no blob or manifest (token, admin API, ...).
    pub max_body: usize,
    /// Per-principal and per-IP rate limits.
    pub rate: limit::RateLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest: 4 * 1024 * 1024,
            max_blob: 64 * 1024 * 1024 * 1024,
            upload_ttl: Duration::from_secs(24 * 3600),
            max_body: 1024 * 1024,
            rate: limit::RateLimits::default(),
        }
    }
}

struct Inner {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    key: TokenKey,
    limits: Limits,
    token_service: std::sync::OnceLock<TokenService>,
    limiters: limit::Limiters,
    anonymous_pull: std::sync::OnceLock<Vec<NamespacePattern>>,
    audit: std::sync::OnceLock<rampart_audit::AuditLog>,
    /// Line counts of sealed audit segments, for `GET /api/v1/audit/entries`.
    audit_entries: rampart_audit::tools::EntryIndex,
}

/// Everything a request handler needs: storage backends behind traits, the token key and limits.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("blobs", &self.0.blobs)
            .field("meta", &self.0.meta)
            .field("limits", &self.0.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over any storage backends.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        key: TokenKey,
        limits: Limits,
    ) -> Self {
        Self(Arc::new(Inner {
            blobs,
            meta,
            key,
            limits,
            token_service: std::sync::OnceLock::new(),
            limiters: limit::Limiters::new(limits.rate),
            anonymous_pull: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
            audit_entries: rampart_audit::tools::EntryIndex::new(),
        }))
    }

    /// Lets requests without credentials pull from repositories matching any of `patterns` (reader
    /// rights there, nothing else). Off by default. Only the first call counts; returns whether this
    /// call took effect.
    pub fn set_anonymous_pull(&self, patterns: Vec<NamespacePattern>) -> bool {
        self.0.anonymous_pull.set(patterns).is_ok()
    }

    /// The principal an anonymous request gets for `repo`: a reader on the first configured
    /// anonymous-pull pattern matching it, if any.
    pub(crate) fn anonymous_for(&self, repo: &rampart_core::RepoName) -> Option<Principal> {
        let pattern = self
            .0
            .anonymous_pull
            .get()?
            .iter()
            .find(|p| p.matches(repo))?;
        Some(Principal::of(rampart_store::TokenRecord {
            id: "anonymous".into(),
            name: "anonymous".into(),
            role: Role::Reader,
            namespace: pattern.clone(),
            keyed_hash: [0; 32],
            created_at: 0,
            expires_at: None,
            revoked_at: None,
        }))
    }

    /// Records every request in `log` from now on, failing closed (see [`audit`]). [`DataDir::open`]
    /// always does this; a state built with [`AppState::new`] alone records nothing. Only the first
    /// call counts; returns whether this call took effect.
    pub fn set_audit(&self, log: rampart_audit::AuditLog) -> bool {
        self.0.audit.set(log).is_ok()
    }

    /// The audit log, if requests are recorded.
    pub fn audit(&self) -> Option<&rampart_audit::AuditLog> {
        self.0.audit.get()
    }

    /// Line counts of sealed audit segments (see [`rampart_audit::tools::read_entries`]).
    pub(crate) fn audit_entries(&self) -> &rampart_audit::tools::EntryIndex {
        &self.0.audit_entries
    }

    pub(crate) fn limiters(&self) -> &limit::Limiters {
        &self.0.limiters
    }

    /// Configures the Docker token flow (realm, lifetime); call it before serving. Only the first
    /// call counts; until then the defaults apply ([`TokenService::default`]). Returns whether this
    /// call took effect.
    pub fn set_token_service(&self, service: TokenService) -> bool {
        self.0.token_service.set(service).is_ok()
    }

    /// The token-flow settings.
    pub fn token_service(&self) -> &TokenService {
        self.0
            .token_service
            .get()
            .unwrap_or(&token::DEFAULT_SERVICE)
    }

    /// The blob store.
    pub fn blobs(&self) -> &dyn BlobStore {
        self.0.blobs.as_ref()
    }

    /// The metadata store.
    pub fn meta(&self) -> &dyn MetadataStore {
        self.0.meta.as_ref()
    }

    /// The token key.
    pub fn key(&self) -> &TokenKey {
        &self.0.key
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// Discards upload sessions untouched for longer than the configured time to live (files and
    /// their records); returns how many went.
    pub async fn expire_uploads(&self) -> Result<usize, Error> {
        let ttl = self.0.limits.upload_ttl;
        let cutoff = std::time::SystemTime::now()
            .checked_sub(ttl)
            .unwrap_or(std::time::UNIX_EPOCH);
        let expired = self.blobs().expire_uploads(cutoff).await?;
        for id in &expired {
            self.meta().delete_upload(id.as_str()).await?;
        }
        // Records whose file vanished otherwise (a crash between the two stores): long past any use.
        let secs = i64::try_from(ttl.as_secs().saturating_mul(7)).unwrap_or(i64::MAX);
        self.meta()
            .expire_uploads(rampart_store::now_unix().saturating_sub(secs))
            .await?;
        Ok(expired.len())
    }
}

/// The default embedded layout of a data directory.
///
/// ```text
/// DATA/meta.db          SQLite metadata (WAL)
/// DATA/blobs/sha256/ab/<hex>
/// DATA/uploads/<id>     uploads in progress
/// DATA/token-key        HMAC key for token hashes (0600)
/// DATA/admin-token      the first admin token (0600), written once
/// ```
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// A data directory opened with its backends.
#[derive(Debug)]
pub struct Opened {
    /// The state to serve.
    pub state: AppState,
    /// The SQLite backend, to close on shutdown.
    pub sqlite: SqliteMetadata,
    /// The admin token created on this first start, if this was the first start.
    pub first_admin_token: Option<NewToken>,
    /// The audit log every request is recorded in (shut it down last, for a final checkpoint).
    pub audit: rampart_audit::AuditLog,
}

impl DataDir {
    /// A data directory at `root` (not yet opened).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// Where the first admin token is written.
    pub fn admin_token_path(&self) -> PathBuf {
        self.root.join("admin-token")
    }

    /// Opens (creating, mode 0700) the directory and its backends. On the very first start (no token
    /// exists yet) creates an admin token for every namespace, writes it to `DATA/admin-token` (0600)
    /// and returns it, so the caller can show it once.
    pub async fn open(&self, limits: Limits) -> Result<Opened, Error> {
        self.open_with_audit(limits, rampart_audit::AuditConfig::default())
            .await
    }

    /// [`DataDir::open`] with explicit audit-log settings. The log lives in `DATA/audit` (see
    /// `rampart_audit::layout`); opening it recovers from a crash and refuses a log whose signed
    /// records are missing.
    pub async fn open_with_audit(
        &self,
        limits: Limits,
        audit: rampart_audit::AuditConfig,
    ) -> Result<Opened, Error> {
        use std::os::unix::fs::DirBuilderExt as _;
        let io = |what: &str, e: std::io::Error| Error::Internal(format!("{what}: {e}"));
        if !self.root.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|e| io("creating the data directory", e))?;
        } else {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&self.root)
                .map_err(|e| io("reading the data directory", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    data = %self.root.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory is accessible to group or others; chmod 700 it"
                );
            }
        }
        let key = TokenKey::load_or_create(&self.root.join("token-key"))?;
        let sqlite = SqliteMetadata::open(&self.root.join("meta.db")).await?;
        let blobs = FsBlobStore::open(&self.root, limits.max_blob).await?;
        let meta: Arc<dyn MetadataStore> = Arc::new(sqlite.clone());
        let mut first_admin_token = None;
        if meta.tokens().await?.is_empty() {
            let everything: NamespacePattern = "**"
                .parse()
                .map_err(|e: rampart_core::Error| Error::Internal(e.to_string()))?;
            let token =
                create_token(meta.as_ref(), &key, "admin", Role::Admin, everything, None).await?;
            let path = self.admin_token_path();
            auth::write_private(&path, format!("{}\n", token.secret).as_bytes())
                .map_err(|e| io("writing admin-token", e))?;
            first_admin_token = Some(token);
        }
        let audit_dir = rampart_audit::audit_dir(&self.root);
        let log =
            tokio::task::spawn_blocking(move || rampart_audit::AuditLog::open(audit_dir, audit))
                .await
                .map_err(|e| Error::Internal(format!("opening the audit log: {e}")))?
                .map_err(|e| Error::Internal(format!("opening the audit log: {e}")))?;
        let state = AppState::new(Arc::new(blobs), meta, key, limits);
        state.set_audit(log.clone());
        Ok(Opened {
            state,
            sqlite,
            first_admin_token,
            audit: log,
        })
    }

    /// Opens only the metadata and key (for `rampart token` commands), without creating anything but
    /// the directory itself.
    pub async fn open_tokens(&self) -> Result<(SqliteMetadata, TokenKey), Error> {
        if !self.root.join("meta.db").exists() {
            return Err(Error::Internal(format!(
                "{} is not a Rampart data directory (start `rampart serve --data {}` once)",
                self.root.display(),
                self.root.display()
            )));
        }
        let key = TokenKey::load_or_create(&self.root.join("token-key"))?;
        let sqlite = SqliteMetadata::open(&self.root.join("meta.db")).await?;
        Ok((sqlite, key))
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<AppState>) -> Response {
    if st.audit().is_some_and(|log| !log.is_healthy()) {
        tracing::error!("readiness check failed: the audit log cannot record requests");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: audit log\n").into_response();
    }
    match st.meta().health().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text exposition of the audit log's health (for an auditor or admin on
/// `**`; a scraper authenticates like any client).
async fn metrics(State(st): State<AppState>, caller: auth::Caller) -> Response {
    match caller.0 {
        Ok(Some(p)) if p.can_read_audit() => {}
        Ok(Some(_)) => return Error::Denied.into_response(),
        Ok(None) => return Error::Unauthorized.into_response(),
        Err(e) => return e.into_response(),
    }
    let mut out = String::new();
    if let Some(log) = st.audit() {
        let c = log.counters();
        for (name, help, kind, value) in [
            (
                "rampart_audit_records_total",
                "Audit records made durable since start.",
                "counter",
                c.appended,
            ),
            (
                "rampart_audit_failures_total",
                "Audit appends that failed or timed out (each failed its request with 503).",
                "counter",
                c.failures,
            ),
            (
                "rampart_audit_checkpoints_total",
                "Audit checkpoints signed since start.",
                "counter",
                c.checkpoints,
            ),
            (
                "rampart_audit_batches_total",
                "Audit group commits (one write and fsync each) since start.",
                "counter",
                c.batches,
            ),
            (
                "rampart_audit_log_size",
                "Records in the audit log (its Merkle tree size).",
                "gauge",
                log.size(),
            ),
            (
                "rampart_audit_healthy",
                "1 when the audit log can record requests, 0 when requests are refused.",
                "gauge",
                u64::from(log.is_healthy()),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(error::body(
            "UNKNOWN",
            "internal server error",
            serde_json::Value::Null,
        )),
    )
        .into_response()
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: never headers (credentials) or the query string.
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                principal = tracing::field::Empty,
            )
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    let routes = Router::new()
        .route("/v2", get(oci::ping))
        .route("/v2/", get(oci::ping))
        .route("/v2/_catalog", get(oci::catalog))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/token", get(token::issue))
        .merge(api::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    with_layers(routes, state)
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}

/// The middleware stack around `routes`, innermost first. A panic in a handler (or in the rate
/// limiter or challenge middleware) is turned into a 500 *inside* the audit middleware, so that
/// 500 is recorded like any other response before it leaves; the outer [`CatchPanicLayer`] only
/// covers the audit and identity middleware themselves.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            token::challenge,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::protect,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::identify_layer,
        ))
        .with_state(state)
        .layer(CatchPanicLayer::custom(panic_response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMetadata::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let blobs = FsBlobStore::open(dir.path(), 1 << 20).await.unwrap();
        let st = AppState::new(
            Arc::new(blobs),
            Arc::new(meta),
            TokenKey::from_bytes([1; 32]),
            Limits::default(),
        );
        (dir, st)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_is_answered_500_and_audited() {
        let (dir, st) = state().await;
        let audit_dir = dir.path().join("audit");
        let log = rampart_audit::AuditLog::open(&audit_dir, rampart_audit::AuditConfig::default())
            .unwrap();
        assert!(st.set_audit(log.clone()));
        let routes = Router::new().route(
            "/boom",
            get(|| async {
                if std::hint::black_box(true) {
                    std::panic::panic_any("handler failure");
                }
                "unreachable"
            }),
        );
        let resp = with_layers(routes, st)
            .oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = resp
            .headers()
            .get(audit::AUDIT_ID_HEADER)
            .expect("the 500 of a panic carries its audit id")
            .to_str()
            .unwrap()
            .to_owned();
        let mut found = Vec::new();
        rampart_audit::tools::query(&audit_dir, &rampart_audit::tools::Filter::default(), |r| {
            if r.audit_id == id {
                found.push((r.status, r.decision.clone()));
            }
        })
        .unwrap();
        assert_eq!(found, vec![(Some(500), Some("error".to_owned()))]);
        log.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_anonymous_pull_is_audited_with_the_pattern_that_allowed_it() {
        let (dir, st) = state().await;
        let audit_dir = dir.path().join("audit");
        let log = rampart_audit::AuditLog::open(&audit_dir, rampart_audit::AuditConfig::default())
            .unwrap();
        assert!(st.set_audit(log.clone()));
        assert!(st.set_anonymous_pull(vec!["pub/**".parse().unwrap()]));
        let app = app(st);
        let mut rules = Vec::new();
        for path in [
            "/v2/pub/m/manifests/latest",
            "/v2/private/m/manifests/latest",
        ] {
            let resp = app
                .clone()
                .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let id = resp.headers()[audit::AUDIT_ID_HEADER]
                .to_str()
                .unwrap()
                .to_owned();
            rampart_audit::tools::query(
                &audit_dir,
                &rampart_audit::tools::Filter::default(),
                |r| {
                    if r.audit_id == id {
                        rules.push((r.status, r.decision.clone(), r.rule.clone()));
                    }
                },
            )
            .unwrap();
        }
        assert_eq!(
            rules,
            vec![
                (
                    Some(404),
                    Some("allow".to_owned()),
                    Some("no credentials; anonymous pull on pub/**".to_owned())
                ),
                (
                    Some(401),
                    Some("deny".to_owned()),
                    Some("authentication: no credentials".to_owned())
                ),
            ]
        );
        log.shutdown().await;
    }
}
