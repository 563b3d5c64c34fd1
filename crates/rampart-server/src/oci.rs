//! The OCI Distribution v1.1 endpoints under `/v2/`.
//!
//! Repository names contain `/`, so routes are parsed here from the raw (still percent-encoded) path:
//! nothing is decoded before the name is checked against the grammar, so `%2e%2e` or `%2f` can never
//! become `..` or `/` inside a name.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use rampart_core::{Action, Digest, RepoName, Tag};
use rampart_store::{ByteStream, ManifestRecord, UploadId};
use serde_json::{Value, json};

use crate::auth::{self, Principal};
use crate::{AppState, Error};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DEFAULT_PAGE: u32 = 1000;

/// A parsed `/v2/<name>/...` route.
#[derive(Debug)]
pub(crate) enum Route {
    Blob(RepoName, String),
    UploadStart(RepoName),
    Upload(RepoName, String),
    Manifest(RepoName, String),
    Tags(RepoName),
    Referrers(RepoName, String),
}

fn name(raw: &str) -> Result<RepoName, Error> {
    raw.parse()
        .map_err(|e: rampart_core::Error| Error::NameInvalid(e.to_string()))
}

/// Splits `rest` (the path after `/v2/`) into a route. Unknown shapes are `None`.
pub(crate) fn parse_route(rest: &str) -> Option<Result<Route, Error>> {
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Some(name(n).map(Route::Tags));
    }
    if let Some(n) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(name(n).map(Route::UploadStart));
    }
    for (marker, kind) in [
        ("/blobs/uploads/", 0u8),
        ("/manifests/", 1),
        ("/blobs/", 2),
        ("/referrers/", 3),
    ] {
        if let Some((n, last)) = rest.rsplit_once(marker) {
            if last.is_empty() || last.contains('/') {
                continue;
            }
            let repo = match name(n) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let last = last.to_owned();
            return Some(Ok(match kind {
                0 => Route::Upload(repo, last),
                1 => Route::Manifest(repo, last),
                2 => Route::Blob(repo, last),
                _ => Route::Referrers(repo, last),
            }));
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(if c == b'+' { b' ' } else { c });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every query parameter, decoded, in order.
pub(crate) fn query(req: &Request) -> Vec<(String, String)> {
    query_pairs(req.uri().query())
}

/// The parameters of a raw query string, decoded, in order (what every handler sees).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The Docker token-flow scope a request needs, for the `Bearer` challenge of a 401 (`None` for
/// the ping and for paths that are not registry routes).
pub(crate) fn scope_for(method: &Method, path: &str, q: &[(String, String)]) -> Option<String> {
    if path == "/v2/_catalog" {
        return Some("registry:catalog:*".to_owned());
    }
    let rest = path.strip_prefix("/v2/")?;
    let route = parse_route(rest)?.ok()?;
    let repo = match &route {
        Route::Blob(r, _)
        | Route::UploadStart(r)
        | Route::Upload(r, _)
        | Route::Manifest(r, _)
        | Route::Tags(r)
        | Route::Referrers(r, _) => r,
    };
    let actions = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE if !matches!(route, Route::Upload(..)) => "delete",
        _ => "pull,push",
    };
    let mut scope = format!("repository:{repo}:{actions}");
    if let (Route::UploadStart(_), Some(from)) = (&route, param(q, "from"))
        && let Ok(from) = from.parse::<RepoName>()
    {
        scope.push_str(&format!(" repository:{from}:pull"));
    }
    Some(scope)
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn digest(s: &str) -> Result<Digest, Error> {
    s.parse()
        .map_err(|e: rampart_core::Error| Error::DigestInvalid(e.to_string()))
}

fn header_value(s: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(s).map_err(|e| Error::Internal(format!("header value: {e}")))
}

fn oci_headers(resp: &mut Response) {
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
}

/// The principal of a request without credentials: only reads (`GET`/`HEAD`) of a repository matching
/// a configured anonymous-pull pattern; anything else stays `401` so clients send credentials.
fn anonymous(st: &AppState, req: &Request) -> Option<Principal> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let rest = req.uri().path().strip_prefix("/v2/")?;
    let repo = match parse_route(rest)?.ok()? {
        Route::Blob(r, _) | Route::Manifest(r, _) | Route::Tags(r) | Route::Referrers(r, _) => r,
        Route::UploadStart(_) | Route::Upload(..) => return None,
    };
    st.anonymous_for(&repo)
}

fn require(p: &Principal, action: Action, repo: &RepoName) -> Result<(), Error> {
    if p.can(action, repo) {
        Ok(())
    } else {
        Err(Error::Denied)
    }
}

/// `GET /v2/`: the version check. 200 with credentials, 401 with a challenge without.
pub(crate) async fn ping(caller: auth::Caller) -> Response {
    match caller.0 {
        Ok(Some(_)) => {
            let mut resp = axum::Json(json!({})).into_response();
            oci_headers(&mut resp);
            resp
        }
        Ok(None) => Error::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v2/_catalog`: repositories the caller may pull, paginated.
pub(crate) async fn catalog(State(st): State<AppState>, req: Request) -> Response {
    let q = query(&req);
    let headers = req.headers().clone();
    let extensions = req.extensions().clone();
    let result = async {
        let principal = auth::identify(&st, &headers, &extensions)
            .await?
            .ok_or(Error::Unauthorized)?;
        let n = page_size(&q)?;
        let last = param(&q, "last").unwrap_or("");
        let repos: Vec<RepoName> = st
            .meta()
            .repositories()
            .await?
            .into_iter()
            .filter(|r| principal.can_list(r) && r.as_str() > last)
            .collect();
        let more = repos.len() > n as usize;
        let page: Vec<&str> = repos
            .iter()
            .take(n as usize)
            .map(RepoName::as_str)
            .collect();
        let mut resp = axum::Json(json!({ "repositories": page })).into_response();
        if more && let Some(last) = page.last() {
            let link = format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\"");
            resp.headers_mut()
                .insert(header::LINK, header_value(&link)?);
        }
        oci_headers(&mut resp);
        Ok::<_, Error>(resp)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn page_size(q: &[(String, String)]) -> Result<u32, Error> {
    match param(q, "n") {
        None | Some("") => Ok(DEFAULT_PAGE),
        Some(n) => n
            .parse::<u32>()
            .map(|n| n.min(DEFAULT_PAGE))
            .map_err(|_| Error::PaginationNumberInvalid),
    }
}

/// Every other `/v2/...` request.
pub(crate) async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    let result = dispatch_inner(&st, req).await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    oci_headers(&mut resp);
    resp
}

async fn dispatch_inner(st: &AppState, req: Request) -> Result<Response, Error> {
    // Authenticate first: anonymous callers learn nothing, not even whether a name is valid.
    let principal = match auth::identify(st, req.headers(), req.extensions()).await? {
        Some(p) => p,
        None => anonymous(st, &req).ok_or(Error::Unauthorized)?,
    };
    // The token's public id, never the secret: every log line of the request says who it was.
    tracing::Span::current().record("principal", principal.token_id.as_str());
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    let Some(route) = parse_route(rest) else {
        return Ok(not_found());
    };
    let route = route?;
    let method = req.method().clone();
    match (route, method) {
        (Route::Blob(repo, d), m) if m == Method::GET || m == Method::HEAD => {
            require(&principal, Action::Pull, &repo)?;
            get_blob(st, &repo, &digest(&d)?, m == Method::HEAD, req.headers()).await
        }
        (Route::Blob(repo, d), Method::DELETE) => {
            require(&principal, Action::Delete, &repo)?;
            // Unlinks the blob from this repository only; the file goes when `rampart gc` finds it
            // unreferenced everywhere.
            let d = digest(&d)?;
            if st.meta().unlink_blob(&repo, &d).await? {
                tracing::info!(%repo, digest = %d, "blob unlinked");
                Ok(StatusCode::ACCEPTED.into_response())
            } else {
                Err(Error::BlobUnknown(d))
            }
        }
        (Route::UploadStart(repo), Method::POST) => {
            require(&principal, Action::Push, &repo)?;
            start_upload(st, &principal, repo, req).await
        }
        (Route::Upload(repo, id), m) => {
            require(&principal, Action::Push, &repo)?;
            let id = upload_of(st, &repo, &id).await?;
            match m {
                Method::PATCH => patch_upload(st, &repo, &id, req).await,
                Method::PUT => put_upload(st, &repo, &id, req).await,
                Method::GET => upload_status(st, &repo, &id).await,
                Method::DELETE => {
                    st.blobs().cancel(&id).await?;
                    st.meta().delete_upload(id.as_str()).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(Error::Unsupported),
            }
        }
        (Route::Manifest(repo, r), m) if m == Method::GET || m == Method::HEAD => {
            require(&principal, Action::Pull, &repo)?;
            get_manifest(st, &repo, &r, m == Method::HEAD).await
        }
        (Route::Manifest(repo, r), Method::PUT) => {
            require(&principal, Action::Push, &repo)?;
            put_manifest(st, &repo, &r, req).await
        }
        (Route::Manifest(repo, r), Method::DELETE) => {
            require(&principal, Action::Delete, &repo)?;
            delete_manifest(st, &repo, &r).await
        }
        (Route::Tags(repo), Method::GET) => {
            require(&principal, Action::Pull, &repo)?;
            tags(st, &repo, &query(&req)).await
        }
        (Route::Referrers(repo, d), Method::GET) => {
            require(&principal, Action::Pull, &repo)?;
            referrers(st, &repo, &digest(&d)?, &query(&req)).await
        }
        _ => Err(Error::Unsupported),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(crate::error::body(
            "NAME_UNKNOWN",
            "no such endpoint",
            Value::Null,
        )),
    )
        .into_response()
}

// ------------------------------------------------------------------------------------------ blobs

/// Parses `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` against `size` into (start, len).
fn byte_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (start, end)
    };
    if start > end || start >= size {
        return None;
    }
    Some((start, end - start + 1))
}

async fn get_blob(
    st: &AppState,
    repo: &RepoName,
    d: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    if st.meta().linked_blob(repo, d).await?.is_none() {
        return Err(Error::BlobUnknown(*d));
    }
    let Some(size) = st.blobs().stat(d).await? else {
        return Err(Error::BlobUnknown(*d));
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => Some(byte_range(v, size).ok_or(Error::RangeInvalid {
            size,
            upload: false,
        })?),
    };
    let (start, len) = range.unwrap_or((0, size));
    let mut builder = Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", d.to_string())
        .header(header::ACCEPT_RANGES, "bytes");
    if range.is_some() {
        builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        let Some(read) = st.blobs().open(d, start, Some(len)).await? else {
            return Err(Error::BlobUnknown(*d));
        };
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            read.reader,
            256 * 1024,
        ))
    };
    builder
        .body(body)
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

fn body_stream(req: Request) -> ByteStream {
    req.into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .boxed()
}

fn upload_response(
    status: StatusCode,
    repo: &RepoName,
    id: &UploadId,
    size: u64,
) -> Result<Response, Error> {
    Response::builder()
        .status(status)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}"))
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header("docker-upload-uuid", id.as_str())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

fn blob_created(repo: &RepoName, d: &Digest) -> Result<Response, Error> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{d}"))
        .header("docker-content-digest", d.to_string())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

/// The upload `raw` if it exists and was started in `repo`.
async fn upload_of(st: &AppState, repo: &RepoName, raw: &str) -> Result<UploadId, Error> {
    let id: UploadId = raw.parse().map_err(|_| Error::BlobUploadUnknown)?;
    match st.meta().upload(id.as_str()).await? {
        Some(rec) if rec.repository == *repo => Ok(id),
        _ => Err(Error::BlobUploadUnknown),
    }
}

async fn new_upload(st: &AppState, repo: &RepoName) -> Result<UploadId, Error> {
    let id = st.blobs().create_upload().await?;
    st.meta().create_upload(id.as_str(), repo).await?;
    Ok(id)
}

async fn start_upload(
    st: &AppState,
    principal: &Principal,
    repo: RepoName,
    req: Request,
) -> Result<Response, Error> {
    let q = query(&req);
    if let (Some(mount), Some(from)) = (param(&q, "mount"), param(&q, "from")) {
        // Cross-repository mount: only from a repository the caller may pull, and only a blob that is
        // really there. Anything else falls back to an ordinary upload session (not an error).
        if let (Ok(d), Ok(from)) = (mount.parse::<Digest>(), from.parse::<RepoName>())
            && principal.can(Action::Pull, &from)
            && let Some(size) = st.meta().linked_blob(&from, &d).await?
            && st.blobs().stat(&d).await?.is_some()
        {
            link_verified(st, &repo, &d, size).await?;
            tracing::info!(%repo, %from, digest = %d, "blob mounted");
            return blob_created(&repo, &d);
        }
    }
    if let Some(d) = param(&q, "digest") {
        // Monolithic upload in one request.
        let d = digest(d)?;
        let id = new_upload(st, &repo).await?;
        let size = match finish_upload(st, &repo, &id, &d, Some(body_stream(req)), None).await {
            Ok(size) => size,
            Err(e) => {
                // A one-shot upload has no session for the client to resume: drop what arrived.
                let _ = st.blobs().cancel(&id).await;
                let _ = st.meta().delete_upload(id.as_str()).await;
                return Err(e);
            }
        };
        tracing::debug!(%repo, digest = %d, size, "blob uploaded (monolithic)");
        return blob_created(&repo, &d);
    }
    let id = new_upload(st, &repo).await?;
    upload_response(StatusCode::ACCEPTED, &repo, &id, 0)
}

/// Parses `Content-Range: <start>-<end>` (tolerating a `bytes ` / `bytes=` prefix) into `(start, end)`.
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, Error> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| Error::BlobUploadInvalid("Content-Range is not text".into()))?;
    let s = s
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| Error::BlobUploadInvalid("Content-Range must be <start>-<end>".into()))?;
    let start: u64 = a
        .parse()
        .map_err(|_| Error::BlobUploadInvalid("Content-Range start".into()))?;
    let end: u64 = b
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| Error::BlobUploadInvalid("Content-Range end".into()))?;
    if end < start {
        return Err(Error::BlobUploadInvalid(
            "Content-Range end before start".into(),
        ));
    }
    Ok(Some((start, end)))
}

async fn patch_upload(
    st: &AppState,
    repo: &RepoName,
    id: &UploadId,
    req: Request,
) -> Result<Response, Error> {
    let range = content_range(req.headers())?;
    let size = st
        .blobs()
        .append(id, range.map(|(s, _)| s), body_stream(req))
        .await?;
    check_chunk_end(range, size)?;
    upload_response(StatusCode::ACCEPTED, repo, id, size)
}

/// A chunk must have exactly the length its `Content-Range` declared; otherwise the client is told
/// where the upload really ends (416 with `Range`) so it can resume from there.
fn check_chunk_end(range: Option<(u64, u64)>, size: u64) -> Result<(), Error> {
    match range {
        Some((_, end)) if end.checked_add(1) != Some(size) => {
            Err(Error::RangeInvalid { size, upload: true })
        }
        _ => Ok(()),
    }
}

async fn upload_status(st: &AppState, repo: &RepoName, id: &UploadId) -> Result<Response, Error> {
    let size = st.blobs().upload_size(id).await?;
    upload_response(StatusCode::NO_CONTENT, repo, id, size)
}

/// Appends an optional final chunk, verifies, publishes and links the blob; forgets the session
/// whatever the outcome of the verification.
async fn finish_upload(
    st: &AppState,
    repo: &RepoName,
    id: &UploadId,
    d: &Digest,
    last: Option<ByteStream>,
    range: Option<(u64, u64)>,
) -> Result<u64, Error> {
    if let Some(body) = last {
        let size = st.blobs().append(id, range.map(|(s, _)| s), body).await?;
        check_chunk_end(range, size)?;
    }
    let result = st.blobs().finish(id, d).await;
    if !matches!(result, Err(rampart_store::Error::Io(_))) {
        st.meta().delete_upload(id.as_str()).await?;
    }
    let size = result?;
    link_verified(st, repo, d, size).await?;
    Ok(size)
}

/// Links a published blob, then checks its file is still there: a concurrent `rampart gc` may have
/// deleted an old unreferenced copy of the same content just before the link committed (see
/// `rampart_store::gc`). Then the link is undone and the request fails, to be retried.
async fn link_verified(st: &AppState, repo: &RepoName, d: &Digest, size: u64) -> Result<(), Error> {
    st.meta().link_blob(repo, d, size).await?;
    if st.blobs().stat(d).await?.is_none() {
        st.meta().unlink_blob(repo, d).await?;
        return Err(Error::Internal(format!(
            "blob {d} was garbage-collected while being linked; retry the upload"
        )));
    }
    Ok(())
}

async fn put_upload(
    st: &AppState,
    repo: &RepoName,
    id: &UploadId,
    req: Request,
) -> Result<Response, Error> {
    let q = query(&req);
    let d =
        digest(param(&q, "digest").ok_or_else(|| {
            Error::DigestInvalid("the digest query parameter is required".into())
        })?)?;
    let range = content_range(req.headers())?;
    let body = body_stream(req);
    finish_upload(st, repo, id, &d, Some(body), range).await?;
    blob_created(repo, &d)
}

// -------------------------------------------------------------------------------------- manifests

async fn resolve(st: &AppState, repo: &RepoName, r: &str) -> Result<Digest, Error> {
    if r.contains(':') {
        return digest(r);
    }
    let tag: Tag = r
        .parse()
        .map_err(|e: rampart_core::Error| Error::TagInvalid(e.to_string()))?;
    st.meta()
        .resolve_tag(repo, &tag)
        .await?
        .ok_or(Error::ManifestUnknown)
}

async fn get_manifest(
    st: &AppState,
    repo: &RepoName,
    r: &str,
    head: bool,
) -> Result<Response, Error> {
    let d = resolve(st, repo, r).await?;
    let record = st
        .meta()
        .manifest(repo, &d)
        .await?
        .ok_or(Error::ManifestUnknown)?;
    let bytes = st
        .blobs()
        .read_all(&d, st.limits().max_manifest as u64)
        .await?
        .ok_or_else(|| Error::Internal(format!("manifest {d} has no stored bytes")))?;
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, &record.media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("docker-content-digest", d.to_string());
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    builder
        .body(body)
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

fn descriptor_digest(v: &Value) -> Result<Digest, Error> {
    let d = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::ManifestInvalid("descriptor without digest".into()))?;
    d.parse()
        .map_err(|e: rampart_core::Error| Error::ManifestInvalid(e.to_string()))
}

async fn put_manifest(
    st: &AppState,
    repo: &RepoName,
    r: &str,
    req: Request,
) -> Result<Response, Error> {
    let limit = st.limits().max_manifest;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_owned());
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| Error::TooLarge(limit as u64))?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::ManifestInvalid(format!("not JSON: {e}")))?;
    if !doc.is_object() {
        return Err(Error::ManifestInvalid("not a JSON object".into()));
    }
    let declared = doc.get("mediaType").and_then(Value::as_str);
    let media_type = match (declared, content_type.as_deref()) {
        (Some(m), _) => m.to_owned(),
        (None, Some(c)) if !c.is_empty() => c.to_owned(),
        _ => return Err(Error::ManifestInvalid("no media type".into())),
    };
    let (is_index, config_type) = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => (
            false,
            doc.get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        OCI_INDEX | DOCKER_LIST => (true, None),
        other => {
            return Err(Error::ManifestInvalid(format!(
                "unsupported manifest media type {other:?}"
            )));
        }
    };
    let d = Digest::of(&bytes);
    let tag = if r.contains(':') {
        if digest(r)? != d {
            return Err(Error::DigestInvalid(r.to_owned()));
        }
        None
    } else {
        Some(
            r.parse::<Tag>()
                .map_err(|e: rampart_core::Error| Error::TagInvalid(e.to_string()))?,
        )
    };
    // Every referenced blob (image manifest) or manifest (index) must already be in this repository.
    let mut missing = Vec::new();
    let mut blobs = Vec::new();
    if is_index {
        for m in doc
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let md = descriptor_digest(m)?;
            if st.meta().manifest(repo, &md).await?.is_none() {
                missing.push(md);
            }
        }
    } else {
        let config = doc
            .get("config")
            .ok_or_else(|| Error::ManifestInvalid("no config descriptor".into()))?;
        let layers = doc.get("layers").and_then(Value::as_array);
        for desc in std::iter::once(config).chain(layers.into_iter().flatten()) {
            let bd = descriptor_digest(desc)?;
            if st.meta().linked_blob(repo, &bd).await?.is_none() {
                missing.push(bd);
            }
            blobs.push(bd);
        }
    }
    if !missing.is_empty() {
        return Err(Error::ManifestBlobUnknown(missing));
    }
    let subject = doc.get("subject").map(descriptor_digest).transpose()?;
    let artifact_type = doc
        .get("artifactType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(config_type);
    let size = bytes.len() as u64;
    st.blobs().put(&d, bytes.clone()).await?;
    let record = ManifestRecord {
        digest: d,
        media_type,
        size,
        artifact_type,
        subject,
    };
    // Checked again atomically with the insert: a blob unlinked and garbage-collected meanwhile makes
    // this a MANIFEST_BLOB_UNKNOWN, never a manifest pointing at nothing.
    let missing = st
        .meta()
        .put_manifest_checked(repo, &record, tag.as_ref(), &blobs)
        .await?;
    if !missing.is_empty() {
        return Err(Error::ManifestBlobUnknown(missing));
    }
    if st.blobs().stat(&d).await?.is_none() {
        // gc removed an old unreferenced copy of these bytes before the record committed.
        st.blobs().put(&d, bytes).await?;
    }
    tracing::info!(%repo, digest = %d, tag = tag.as_ref().map(Tag::as_str), "manifest stored");
    let mut builder = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/manifests/{d}"))
        .header("docker-content-digest", d.to_string())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(s) = subject {
        builder = builder.header("oci-subject", s.to_string());
    }
    builder
        .body(Body::empty())
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

async fn delete_manifest(st: &AppState, repo: &RepoName, r: &str) -> Result<Response, Error> {
    let existed = if r.contains(':') {
        st.meta().delete_manifest(repo, &digest(r)?).await?
    } else {
        let tag: Tag = r
            .parse()
            .map_err(|e: rampart_core::Error| Error::TagInvalid(e.to_string()))?;
        st.meta().delete_tag(repo, &tag).await?
    };
    if existed {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(Error::ManifestUnknown)
    }
}

// ----------------------------------------------------------------------------- tags and referrers

async fn tags(st: &AppState, repo: &RepoName, q: &[(String, String)]) -> Result<Response, Error> {
    if !st.meta().repository_exists(repo).await? {
        return Err(Error::NameUnknown);
    }
    let n = page_size(q)?;
    let last = param(q, "last");
    let mut tags = st.meta().tags(repo, last, n.saturating_add(1)).await?;
    let more = tags.len() > n as usize;
    tags.truncate(n as usize);
    let names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
    let mut resp = axum::Json(json!({ "name": repo, "tags": names })).into_response();
    if more && let Some(last) = names.last() {
        let link = format!("</v2/{repo}/tags/list?n={n}&last={last}>; rel=\"next\"");
        resp.headers_mut()
            .insert(header::LINK, header_value(&link)?);
    }
    Ok(resp)
}

async fn referrers(
    st: &AppState,
    repo: &RepoName,
    subject: &Digest,
    q: &[(String, String)],
) -> Result<Response, Error> {
    let filter = param(q, "artifactType").filter(|s| !s.is_empty());
    let mut entries: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for m in st.meta().referrers(repo, subject).await? {
        let annotations = match st
            .blobs()
            .read_all(&m.digest, st.limits().max_manifest as u64)
            .await?
        {
            Some(bytes) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("annotations").cloned()),
            None => None,
        };
        seen.insert(m.digest);
        let mut e = json!({ "mediaType": m.media_type, "digest": m.digest, "size": m.size });
        if let Some(obj) = e.as_object_mut() {
            if let Some(a) = &m.artifact_type {
                obj.insert("artifactType".into(), json!(a));
            }
            if let Some(a) = annotations {
                obj.insert("annotations".into(), a);
            }
        }
        entries.push(e);
    }
    // Referrers that clients recorded in the `sha256-<hex>` fallback index before this API existed.
    if let Ok(tag) = format!("sha256-{}", subject.hex()).parse::<Tag>()
        && let Some(idx) = st.meta().resolve_tag(repo, &tag).await?
        && let Some(bytes) = st
            .blobs()
            .read_all(&idx, st.limits().max_manifest as u64)
            .await?
        && let Ok(doc) = serde_json::from_slice::<Value>(&bytes)
    {
        for m in doc
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Ok(d) = descriptor_digest(m)
                && seen.insert(d)
            {
                entries.push(m.clone());
            }
        }
    }
    if let Some(f) = filter {
        entries.retain(|e| e.get("artifactType").and_then(Value::as_str) == Some(f));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
    let mut builder = Response::builder().header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        builder = builder.header("oci-filters-applied", "artifactType");
    }
    builder
        .body(Body::from(bytes))
        .map_err(|e| Error::Internal(format!("response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(byte_range("bytes=-5", 100), Some((95, 5)));
        assert_eq!(byte_range("bytes=50-500", 100), Some((50, 50)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=5-1", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=0-1,3-4", 100), None);
    }

    #[test]
    fn routes() {
        assert!(matches!(
            parse_route("a/b/blobs/uploads/"),
            Some(Ok(Route::UploadStart(_)))
        ));
        assert!(matches!(
            parse_route("a/b/blobs/uploads/xyz"),
            Some(Ok(Route::Upload(..)))
        ));
        assert!(matches!(
            parse_route("a/manifests/v1"),
            Some(Ok(Route::Manifest(..)))
        ));
        assert!(matches!(
            parse_route("a/tags/list"),
            Some(Ok(Route::Tags(_)))
        ));
        assert!(matches!(
            parse_route("../x/manifests/v1"),
            Some(Err(Error::NameInvalid(_)))
        ));
        assert!(matches!(
            parse_route("%2e%2e/manifests/v1"),
            Some(Err(Error::NameInvalid(_)))
        ));
        assert!(parse_route("nothing-here").is_none());
        assert_eq!(percent_decode("sha256%3Aab+c"), "sha256:ab c");
    }
}
