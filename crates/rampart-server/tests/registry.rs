//! Protocol tests of the OCI registry through `app(state)` with `oneshot` (no socket): every endpoint,
//! every error code, the authorisation matrix and hostile names.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use common::{
    bytes, error_code, hdr, model_manifest as manifest, put_manifest, revoked_token, temp_state,
    token,
};
use rampart_core::{Digest, Role};
use rampart_server::{AppState, Limits, app};
use serde_json::{Value, json};

/// The user name in this file's Basic credentials.
const USER: &str = "anyone";

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    app: Router,
    state: AppState,
    admin: String,
}

async fn fixture() -> Fixture {
    let (dir, state) = temp_state(
        1 << 20,
        9,
        Limits {
            max_manifest: 64 * 1024,
            ..Limits::default()
        },
    )
    .await;
    let root = dir.path().to_owned();
    let admin = token(&state, Role::Admin, "**", None).await;
    Fixture {
        _dir: dir,
        root,
        app: app(state.clone()),
        state,
        admin,
    }
}

struct Req {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn req(method: Method, uri: impl Into<String>) -> Req {
    Req {
        method,
        uri: uri.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl Req {
    fn auth(mut self, token: &str) -> Self {
        self.headers
            .push(("authorization".into(), common::basic(USER, token)));
        self
    }
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
    async fn send(self, app: &Router) -> Response<Body> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        common::send(app, self.method, &self.uri, &headers, self.body).await
    }
}

/// Monolithic POST+PUT upload; returns the digest.
async fn push_blob(f: &Fixture, repo: &str, content: &[u8]) -> Digest {
    let d = Digest::of(content);
    let r = req(Method::POST, format!("/v2/{repo}/blobs/uploads/"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = hdr(&r, "location");
    let r = req(Method::PUT, format!("{loc}?digest={d}"))
        .auth(&f.admin)
        .body(content.to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", bytes(r).await);
    d
}

async fn push_model(f: &Fixture, repo: &str, tag: &str) -> (Digest, Vec<u8>) {
    let c = push_blob(f, repo, b"{\"config\":{}}").await;
    let l = push_blob(f, repo, b"weights").await;
    let m = manifest(&c, 13, &[(l, 7)]);
    let r = put_manifest(&f.app, &common::basic(USER, &f.admin), repo, tag, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    (Digest::of(&m), m)
}

#[tokio::test]
async fn version_check_requires_credentials() {
    let f = fixture().await;
    let r = req(Method::GET, "/v2/").send(&f.app).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(hdr(&r, "www-authenticate").starts_with("Basic realm="));
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    let r = req(Method::GET, "/v2/").auth(&f.admin).send(&f.app).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "docker-distribution-api-version"), "registry/2.0");
    assert!(!hdr(&r, "x-request-id").is_empty());
    let r = req(Method::GET, "/v2/")
        .auth("rampart_wrong")
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = req(Method::GET, "/v2/")
        .header("authorization", "Bearer x")
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        req(Method::GET, "/healthz").send(&f.app).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        req(Method::GET, "/readyz").send(&f.app).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn blob_get_head_range_and_unknown() {
    let f = fixture().await;
    let d = push_blob(&f, "acme/m", b"0123456789").await;
    let r = req(Method::HEAD, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "content-length"), "10");
    assert_eq!(hdr(&r, "docker-content-digest"), d.to_string());
    assert!(bytes(r).await.is_empty());
    let r = req(Method::GET, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(bytes(r).await, b"0123456789");
    let r = req(Method::GET, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .header("range", "bytes=2-4")
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(hdr(&r, "content-range"), "bytes 2-4/10");
    assert_eq!(bytes(r).await, b"234");
    let r = req(Method::GET, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .header("range", "bytes=20-")
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(error_code(r).await, "RANGE_INVALID");
    // Unknown blob, and a blob that exists but only in another repository.
    let r = req(
        Method::GET,
        format!("/v2/acme/m/blobs/{}", Digest::of(b"no")),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = req(Method::GET, format!("/v2/other/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = req(Method::GET, "/v2/acme/m/blobs/sha256:XYZ")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // An admin DELETE unlinks the blob from the repository (the file goes at the next gc).
    let r = req(Method::DELETE, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = req(Method::GET, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = req(Method::DELETE, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn monolithic_post_with_digest() {
    let f = fixture().await;
    let d = Digest::of(b"one shot");
    let r = req(
        Method::POST,
        format!(
            "/v2/acme/m/blobs/uploads/?digest={}",
            d.to_string().replace(':', "%3A")
        ),
    )
    .auth(&f.admin)
    .body(b"one shot".to_vec())
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "location"), format!("/v2/acme/m/blobs/{d}"));
    assert_eq!(hdr(&r, "docker-content-digest"), d.to_string());
}

#[tokio::test]
async fn chunked_streamed_status_and_cancel() {
    let f = fixture().await;
    let r = req(Method::POST, "/v2/acme/m/blobs/uploads/")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(hdr(&r, "range"), "0-0");
    assert!(!hdr(&r, "docker-upload-uuid").is_empty());
    let loc = hdr(&r, "location");
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .header("content-range", "0-4")
        .body(b"hello".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(hdr(&r, "range"), "0-4");
    // Out of order: 416 with the current range.
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .header("content-range", "2-4")
        .body(b"llo".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(hdr(&r, "range"), "0-4");
    // A chunk shorter than its Content-Range says: 416 with where the upload really ends.
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .header("content-range", "5-9")
        .body(Vec::new())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(hdr(&r, "range"), "0-4");
    // Streamed (skopeo style): no Content-Range.
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .body(b" world".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = req(Method::GET, &loc).auth(&f.admin).send(&f.app).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(hdr(&r, "range"), "0-10");
    // Final chunk in the PUT.
    let d = Digest::of(b"hello world!");
    let r = req(Method::PUT, format!("{loc}?digest={d}"))
        .auth(&f.admin)
        .header("content-range", "11-11")
        .body(b"!".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = req(Method::GET, format!("/v2/acme/m/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(bytes(r).await, b"hello world!");
    // The finished session is gone.
    let r = req(Method::GET, &loc).auth(&f.admin).send(&f.app).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // Cancel.
    let r = req(Method::POST, "/v2/acme/m/blobs/uploads/")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let loc = hdr(&r, "location");
    let r = req(Method::DELETE, &loc).auth(&f.admin).send(&f.app).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .body(b"x".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // A session cannot be used through another repository's path.
    let r = req(Method::POST, "/v2/acme/m/blobs/uploads/")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let loc = hdr(&r, "location").replace("/acme/m/", "/acme/other/");
    let r = req(Method::PATCH, &loc)
        .auth(&f.admin)
        .body(b"x".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = req(Method::GET, "/v2/acme/m/blobs/uploads/..%2f..%2fmeta.db")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = req(
        Method::PUT,
        format!("/v2/acme/m/blobs/uploads/{}", "0".repeat(32)),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn digest_mismatch_leaves_nothing_visible() {
    let f = fixture().await;
    let claimed = Digest::of(b"what I promised");
    let r = req(Method::POST, "/v2/acme/m/blobs/uploads/")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let loc = hdr(&r, "location");
    let r = req(Method::PUT, format!("{loc}?digest={claimed}"))
        .auth(&f.admin)
        .body(b"something else".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    for d in [claimed, Digest::of(b"something else")] {
        let r = req(Method::HEAD, format!("/v2/acme/m/blobs/{d}"))
            .auth(&f.admin)
            .send(&f.app)
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        std::fs::read_dir(f.root.join("uploads")).unwrap().count(),
        0
    );
    assert_eq!(
        walk(&f.root.join("blobs")),
        0,
        "no blob file may exist after a mismatch"
    );
    // The monolithic form too.
    let r = req(
        Method::POST,
        format!("/v2/acme/m/blobs/uploads/?digest={claimed}"),
    )
    .auth(&f.admin)
    .body(b"other".to_vec())
    .send(&f.app)
    .await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    assert_eq!(walk(&f.root.join("blobs")), 0);
    // Missing digest parameter.
    let r = req(Method::POST, "/v2/acme/m/blobs/uploads/")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let loc = hdr(&r, "location");
    let r = req(Method::PUT, &loc).auth(&f.admin).send(&f.app).await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn mount_checks_pull_right_on_source() {
    let f = fixture().await;
    let d = push_blob(&f, "team-a/src", b"shared layer").await;
    let r = req(
        Method::POST,
        format!("/v2/team-b/dst/blobs/uploads/?mount={d}&from=team-a/src"),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "docker-content-digest"), d.to_string());
    let r = req(Method::GET, format!("/v2/team-b/dst/blobs/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(bytes(r).await, b"shared layer");
    // A publisher of team-b only may not mount from team-a: falls back to an upload session.
    let pb = token(&f.state, Role::Publisher, "team-b/**", None).await;
    let r = req(
        Method::POST,
        format!("/v2/team-b/x/blobs/uploads/?mount={d}&from=team-a/src"),
    )
    .auth(&pb)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = req(Method::HEAD, format!("/v2/team-b/x/blobs/{d}"))
        .auth(&pb)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Unknown blob: fallback too.
    let r = req(
        Method::POST,
        format!(
            "/v2/team-b/dst/blobs/uploads/?mount={}&from=team-a/src",
            Digest::of(b"?")
        ),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn manifests_exact_bytes_tags_and_delete() {
    let f = fixture().await;
    let (d, m) = push_model(&f, "acme/model", "v1").await;
    for path in ["v1".to_owned(), d.to_string()] {
        let r = req(Method::GET, format!("/v2/acme/model/manifests/{path}"))
            .auth(&f.admin)
            .header("accept", "text/plain")
            .send(&f.app)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            hdr(&r, "content-type"),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(hdr(&r, "docker-content-digest"), d.to_string());
        assert_eq!(bytes(r).await, m);
    }
    let r = req(Method::HEAD, "/v2/acme/model/manifests/v1")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(hdr(&r, "content-length"), m.len().to_string());
    assert!(bytes(r).await.is_empty());
    // Unknown tag, bad tag, unknown repo.
    let r = req(Method::GET, "/v2/acme/model/manifests/nope")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = req(Method::GET, "/v2/acme/model/manifests/-bad")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "TAG_INVALID");
    // PUT by digest must match the bytes.
    let r = req(
        Method::PUT,
        format!("/v2/acme/model/manifests/{}", Digest::of(b"x")),
    )
    .auth(&f.admin)
    .body(m.clone())
    .send(&f.app)
    .await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = req(Method::PUT, format!("/v2/acme/model/manifests/{d}"))
        .auth(&f.admin)
        .body(m.clone())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Garbage, unsupported type, missing blobs (one entry per digest).
    let r = req(Method::PUT, "/v2/acme/model/manifests/bad")
        .auth(&f.admin)
        .body(b"{nope".to_vec())
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let r = req(Method::PUT, "/v2/acme/model/manifests/bad")
        .auth(&f.admin)
        .body(
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#
                .to_vec(),
        )
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let missing = manifest(&Digest::of(b"c"), 1, &[(Digest::of(b"l"), 1)]);
    let r = req(Method::PUT, "/v2/acme/model/manifests/bad")
        .auth(&f.admin)
        .body(missing)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    // Too large.
    let r = req(Method::PUT, "/v2/acme/model/manifests/big")
        .auth(&f.admin)
        .body(vec![b' '; 70 * 1024])
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Docker schema 2 and an index referencing the manifest.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len()}]
    }))
    .unwrap();
    let r = req(Method::PUT, "/v2/acme/model/manifests/all")
        .auth(&f.admin)
        .body(index)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Delete a tag, then by digest (removing the remaining tags).
    let r = req(Method::PUT, "/v2/acme/model/manifests/v2")
        .auth(&f.admin)
        .body(m.clone())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = req(Method::DELETE, "/v2/acme/model/manifests/v2")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = req(Method::DELETE, format!("/v2/acme/model/manifests/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = req(Method::GET, "/v2/acme/model/manifests/v1")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = req(Method::DELETE, format!("/v2/acme/model/manifests/{d}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn tags_sorted_paginated_and_catalog_filtered() {
    let f = fixture().await;
    let (_, m) = push_model(&f, "acme/model", "b").await;
    for t in ["a", "C", "c", "sha256-0123"] {
        let r = req(Method::PUT, format!("/v2/acme/model/manifests/{t}"))
            .auth(&f.admin)
            .body(m.clone())
            .send(&f.app)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = req(Method::GET, "/v2/acme/model/tags/list")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(
        v,
        json!({"name": "acme/model", "tags": ["C", "a", "b", "c", "sha256-0123"]})
    );
    let r = req(Method::GET, "/v2/acme/model/tags/list?n=2&last=a")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(
        hdr(&r, "link"),
        "</v2/acme/model/tags/list?n=2&last=c>; rel=\"next\""
    );
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["tags"], json!(["b", "c"]));
    let r = req(Method::GET, "/v2/acme/model/tags/list?n=0")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["tags"], json!([]));
    let r = req(Method::GET, "/v2/acme/model/tags/list?n=x")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "PAGINATION_NUMBER_INVALID");
    let r = req(Method::GET, "/v2/acme/none/tags/list")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
    push_model(&f, "secret/model", "v1").await;
    let reader = token(&f.state, Role::Reader, "acme/**", None).await;
    let r = req(Method::GET, "/v2/_catalog")
        .auth(&reader)
        .send(&f.app)
        .await;
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v, json!({"repositories": ["acme/model"]}));
    let r = req(Method::GET, "/v2/_catalog?n=1")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(
        hdr(&r, "link"),
        "</v2/_catalog?n=1&last=acme/model>; rel=\"next\""
    );
    let r = req(Method::GET, "/v2/_catalog").send(&f.app).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn referrers_api_with_filter_and_fallback_index() {
    let f = fixture().await;
    let (subject, m) = push_model(&f, "acme/model", "v1").await;
    let empty = push_blob(&f, "acme/model", b"{}").await;
    let sig = push_blob(&f, "acme/model", b"signature").await;
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 9}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": m.len()},
        "annotations": {"org.example": "yes"}
    }))
    .unwrap();
    let rd = Digest::of(&referrer);
    let r = req(Method::PUT, format!("/v2/acme/model/manifests/{rd}"))
        .auth(&f.admin)
        .body(referrer)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "oci-subject"), subject.to_string());
    // A referrer recorded the old way: pushed without `subject`, listed in a `sha256-<hex>` index.
    let sbom = push_blob(&f, "acme/model", b"sbom").await;
    let legacy = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom, "size": 4}]
    }))
    .unwrap();
    let ld = Digest::of(&legacy);
    let r = req(Method::PUT, format!("/v2/acme/model/manifests/{ld}"))
        .auth(&f.admin)
        .body(legacy.clone())
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "oci-subject"), "");
    let fallback = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ld,
                       "size": legacy.len(), "artifactType": "application/spdx+json"}]
    }))
    .unwrap();
    let r = req(
        Method::PUT,
        format!("/v2/acme/model/manifests/sha256-{}", subject.hex()),
    )
    .auth(&f.admin)
    .body(fallback)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = req(Method::GET, format!("/v2/acme/model/referrers/{subject}"))
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        hdr(&r, "content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["manifests"][0]["digest"], rd.to_string());
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(v["manifests"][0]["annotations"]["org.example"], "yes");
    assert_eq!(
        v["manifests"][1]["digest"],
        ld.to_string(),
        "fallback index entry"
    );
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    let r = req(
        Method::GET,
        format!("/v2/acme/model/referrers/{subject}?artifactType=application/spdx%2Bjson"),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(hdr(&r, "oci-filters-applied"), "artifactType");
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], ld.to_string());
    let r = req(
        Method::GET,
        format!("/v2/acme/model/referrers/{}", Digest::of(b"?")),
    )
    .auth(&f.admin)
    .send(&f.app)
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(
        v["manifests"],
        json!([]),
        "unknown subject: empty index, never 404"
    );
    let r = req(Method::GET, "/v2/acme/model/referrers/sha256:zz")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn hostile_names_rejected_before_storage() {
    let f = fixture().await;
    let long = format!("{}/x", "a".repeat(300));
    for name in [
        "..",
        "a/../b",
        "%2e%2e",
        "a/%2e%2e/b",
        "Acme/model",
        "a//b",
        "a..b",
        "-a",
        long.as_str(),
        "a/%2F/b",
    ] {
        for (m, suffix) in [
            (Method::GET, "manifests/v1".to_owned()),
            (Method::PUT, "manifests/v1".to_owned()),
            (Method::POST, "blobs/uploads/".to_owned()),
            (Method::GET, format!("blobs/{}", Digest::of(b"x"))),
            (Method::GET, "tags/list".to_owned()),
        ] {
            let r = req(m.clone(), format!("/v2/{name}/{suffix}"))
                .auth(&f.admin)
                .send(&f.app)
                .await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{m} {name} {suffix}");
            assert_eq!(error_code(r).await, "NAME_INVALID");
        }
    }
    // Absolute: a leading slash after /v2/ makes an empty first component.
    let r = req(Method::GET, "/v2//etc/passwd/manifests/v1")
        .auth(&f.admin)
        .send(&f.app)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(f.state.meta().repositories().await.unwrap(), vec![]);
    assert_eq!(walk(&f.root.join("blobs")), 0);
    assert_eq!(
        std::fs::read_dir(f.root.join("uploads")).unwrap().count(),
        0
    );
}

/// Every route × every kind of caller: no unexpected allow.
#[tokio::test]
async fn authorisation_matrix() {
    let f = fixture().await;
    let (d, m) = push_model(&f, "acme/model", "v1").await;
    let blob = push_blob(&f, "acme/model", b"weights").await;
    let now = rampart_store::now_unix();
    let reader = token(&f.state, Role::Reader, "acme/**", None).await;
    let publisher = token(&f.state, Role::Publisher, "acme/**", None).await;
    let admin = token(&f.state, Role::Admin, "acme/**", None).await;
    let expired = token(&f.state, Role::Admin, "acme/**", Some(now - 1)).await;
    let revoked_tok = revoked_token(&f.state, "r", Role::Admin, "acme/**").await;
    let other_ns = token(&f.state, Role::Admin, "other/**", None).await;
    // The auditor reads the audit log and nothing else: valid credentials, no registry right.
    let auditor = token(&f.state, Role::Auditor, "**", None).await;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Need {
        Any,
        Pull,
        Push,
        Delete,
    }
    // A fresh upload per request that needs one.
    let routes: Vec<(Method, String, Need)> = vec![
        (Method::GET, "/v2/".into(), Need::Any),
        (Method::GET, "/v2/_catalog".into(), Need::Any),
        (
            Method::GET,
            format!("/v2/acme/model/blobs/{blob}"),
            Need::Pull,
        ),
        (
            Method::HEAD,
            format!("/v2/acme/model/blobs/{blob}"),
            Need::Pull,
        ),
        (
            Method::DELETE,
            format!("/v2/acme/model/blobs/{blob}"),
            Need::Delete,
        ),
        (
            Method::POST,
            "/v2/acme/model/blobs/uploads/".into(),
            Need::Push,
        ),
        (Method::PATCH, "UPLOAD".into(), Need::Push),
        (Method::PUT, "UPLOAD".into(), Need::Push),
        (Method::GET, "UPLOAD".into(), Need::Push),
        (Method::DELETE, "UPLOAD".into(), Need::Push),
        (
            Method::GET,
            "/v2/acme/model/manifests/v1".into(),
            Need::Pull,
        ),
        (
            Method::HEAD,
            "/v2/acme/model/manifests/v1".into(),
            Need::Pull,
        ),
        (
            Method::PUT,
            "/v2/acme/model/manifests/v9".into(),
            Need::Push,
        ),
        (
            Method::DELETE,
            "/v2/acme/model/manifests/v9".into(),
            Need::Delete,
        ),
        (Method::GET, "/v2/acme/model/tags/list".into(), Need::Pull),
        (
            Method::GET,
            format!("/v2/acme/model/referrers/{d}"),
            Need::Pull,
        ),
    ];
    let callers: Vec<(&str, Option<&str>, Option<Need>)> = vec![
        ("anonymous", None, None),
        ("reader", Some(&reader), Some(Need::Pull)),
        ("publisher", Some(&publisher), Some(Need::Push)),
        ("admin", Some(&admin), Some(Need::Delete)),
        ("expired", Some(&expired), None),
        ("revoked", Some(&revoked_tok.secret), None),
        ("other-namespace", Some(&other_ns), Some(Need::Any)),
        ("auditor", Some(&auditor), Some(Need::Any)),
    ];
    let rank = |n: Need| match n {
        Need::Any => 0,
        Need::Pull => 1,
        Need::Push => 2,
        Need::Delete => 3,
    };
    for (method, path, need) in &routes {
        for (who, tok, grant) in &callers {
            let path = if path == "UPLOAD" {
                let r = req(Method::POST, "/v2/acme/model/blobs/uploads/")
                    .auth(&f.admin)
                    .send(&f.app)
                    .await;
                hdr(&r, "location")
            } else {
                path.clone()
            };
            let mut r = req(method.clone(), path.clone());
            if let Some(t) = tok {
                r = r.auth(t);
            }
            if *method == Method::PUT && path.contains("/manifests/") {
                r = r
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                    .body(m.clone());
            }
            if *method == Method::PUT && path.contains("/uploads/") {
                r = r.uri_with_digest(&Digest::of(b"x")).body(b"x".to_vec());
            }
            let resp = r.send(&f.app).await;
            let status = resp.status();
            let allowed = match grant {
                None => false,
                Some(g) => {
                    let ns_ok = *who != "other-namespace" || *need == Need::Any;
                    ns_ok && rank(*g) >= rank(*need)
                }
            };
            if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{who} {method} {path}: expected allowed, got {status}"
                );
            } else {
                let want = if grant.is_none() {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, want, "{who} {method} {path}: expected {want}");
                let body = bytes(resp).await;
                if *method == Method::HEAD {
                    assert!(body.is_empty());
                    continue;
                }
                let v: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| panic!("{who} {method} {path}: {body:?}"));
                let code = v["errors"][0]["code"].as_str().unwrap_or_default();
                assert!(
                    code == "UNAUTHORIZED" || code == "DENIED",
                    "{who} {method} {path}: {code}"
                );
            }
        }
    }
}

trait WithDigest {
    fn uri_with_digest(self, d: &Digest) -> Self;
}

impl WithDigest for Req {
    fn uri_with_digest(mut self, d: &Digest) -> Self {
        self.uri = format!("{}?digest={d}", self.uri);
        self
    }
}

#[tokio::test]
async fn upload_expiry_discards_abandoned_sessions() {
    let (_dir, state) = temp_state(
        1 << 20,
        1,
        Limits {
            upload_ttl: std::time::Duration::ZERO,
            ..Limits::default()
        },
    )
    .await;
    let admin = token(&state, Role::Admin, "**", None).await;
    let app = app(state.clone());
    let r = req(Method::POST, "/v2/a/blobs/uploads/")
        .auth(&admin)
        .send(&app)
        .await;
    let loc = hdr(&r, "location");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(state.expire_uploads().await.unwrap(), 1);
    let r = req(Method::PATCH, &loc)
        .auth(&admin)
        .body(b"x".to_vec())
        .send(&app)
        .await;
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_are_intact_and_isolated() {
    let f = Arc::new(fixture().await);
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            let content: Vec<u8> = (0..5000u32).map(|j| ((i * 31 + j) % 256) as u8).collect();
            let r = req(Method::POST, "/v2/acme/c/blobs/uploads/")
                .auth(&f.admin)
                .send(&f.app)
                .await;
            let loc = hdr(&r, "location");
            let (a, b) = content.split_at(1234);
            let r = req(Method::PATCH, &loc)
                .auth(&f.admin)
                .header("content-range", &format!("0-{}", a.len() - 1))
                .body(a.to_vec())
                .send(&f.app)
                .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let r = req(Method::PATCH, &loc)
                .auth(&f.admin)
                .body(b.to_vec())
                .send(&f.app)
                .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            // Every fourth client lies about the digest.
            let d = if i % 4 == 0 {
                Digest::of(b"lie")
            } else {
                Digest::of(&content)
            };
            let r = req(Method::PUT, format!("{loc}?digest={d}"))
                .auth(&f.admin)
                .send(&f.app)
                .await;
            let want = if i % 4 == 0 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::CREATED
            };
            assert_eq!(r.status(), want);
            (i, content)
        }));
    }
    for t in tasks {
        let (i, content) = t.await.unwrap();
        let d = Digest::of(&content);
        let r = req(Method::GET, format!("/v2/acme/c/blobs/{d}"))
            .auth(&f.admin)
            .send(&f.app)
            .await;
        if i % 4 == 0 {
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        } else {
            assert_eq!(bytes(r).await, content);
        }
    }
    assert_eq!(
        std::fs::read_dir(f.root.join("uploads")).unwrap().count(),
        0
    );
    assert_eq!(walk(&f.root.join("blobs")), 24);
}
