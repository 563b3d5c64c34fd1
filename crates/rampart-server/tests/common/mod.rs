//! Scaffolding shared by the integration tests of `rampart-server`: stores in a temporary
//! directory, tokens, Basic credentials, `oneshot` requests and response readers.
//!
//! Each test binary declares `mod common;` and uses only part of this module, hence
//! `dead_code` is allowed here. Anything that differs between the test files (the user name in
//! Basic credentials, the signing key, the limits, an audit log) is a parameter, never a default.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response};
use base64ct::Encoding as _;
use rampart_core::{Digest, Role};
use rampart_server::{AppState, Limits, NewToken, TokenKey, create_token};
use rampart_store::{FsBlobStore, SqliteMetadata};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The media type manifests are pushed with.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Opens the metadata database `root/meta.db` and the blob store at `root` (blobs of at most
/// `max_blob` bytes), in that order.
pub async fn open_stores(root: &Path, max_blob: u64) -> (FsBlobStore, SqliteMetadata) {
    let meta = SqliteMetadata::open(&root.join("meta.db")).await.unwrap();
    let blobs = FsBlobStore::open(root, max_blob).await.unwrap();
    (blobs, meta)
}

/// An `AppState` over the given stores, signing with the key `[key_byte; 32]`, with no audit log.
pub fn new_state(
    blobs: FsBlobStore,
    meta: SqliteMetadata,
    key_byte: u8,
    limits: Limits,
) -> AppState {
    AppState::new(
        Arc::new(blobs),
        Arc::new(meta),
        TokenKey::from_bytes([key_byte; 32]),
        limits,
    )
}

/// A fresh temporary directory with the stores of [`open_stores`] and an `AppState` over them
/// ([`new_state`], no audit log). Keep the directory alive as long as the state.
pub async fn temp_state(
    max_blob: u64,
    key_byte: u8,
    limits: Limits,
) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let (blobs, meta) = open_stores(dir.path(), max_blob).await;
    (dir, new_state(blobs, meta, key_byte, limits))
}

/// Creates a token named `t`; returns its secret.
pub async fn token(state: &AppState, role: Role, ns: &str, expires: Option<i64>) -> String {
    create_token(
        state.meta(),
        state.key(),
        "t",
        role,
        ns.parse().unwrap(),
        expires,
    )
    .await
    .unwrap()
    .secret
}

/// Creates a token named `name` that never expires; returns it whole (record and secret).
pub async fn named_token(state: &AppState, name: &str, role: Role, ns: &str) -> NewToken {
    create_token(
        state.meta(),
        state.key(),
        name,
        role,
        ns.parse().unwrap(),
        None,
    )
    .await
    .unwrap()
}

/// [`named_token`], then revoked (asserting the revocation took effect).
pub async fn revoked_token(state: &AppState, name: &str, role: Role, ns: &str) -> NewToken {
    let t = named_token(state, name, role, ns).await;
    assert!(state.meta().revoke_token(&t.record.id).await.unwrap());
    t
}

/// The `Authorization` value for Basic credentials `user:token`.
pub fn basic(user: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{token}").as_bytes())
    )
}

/// Sends one request through `app` with `oneshot`, headers in the given order.
pub async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    app.clone()
        .oneshot(r.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

/// [`send`] with, when `token` is given, Basic credentials `user:token` as the first header.
pub async fn send_as(
    app: &Router,
    method: Method,
    uri: &str,
    user: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Body> {
    let auth = token.map(|t| basic(user, t));
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
    if let Some(a) = &auth {
        all.push(("authorization", a));
    }
    all.extend_from_slice(headers);
    send(app, method, uri, &all, body).await
}

/// The whole body.
pub async fn bytes(resp: Response<Body>) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

/// The body as JSON; panics (showing the body) if it is not JSON.
pub async fn json_body(resp: Response<Body>) -> Value {
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&b).unwrap_or_else(|_| panic!("not JSON: {b:?}"))
}

/// The first error code of an OCI error body; panics if the body is not JSON or has no code.
pub async fn error_code(resp: Response<Body>) -> String {
    let v: Value = serde_json::from_slice(&bytes(resp).await).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_owned()
}

/// The first error code of an OCI error body, or `""` if it has none; panics if the body is not
/// JSON.
pub async fn error_code_or_empty(resp: Response<Body>) -> String {
    let v: Value = serde_json::from_slice(&bytes(resp).await).unwrap();
    v["errors"][0]["code"].as_str().unwrap_or("").to_owned()
}

/// A header's value, or `""` if absent.
pub fn hdr(resp: &Response<Body>, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Monolithic upload in one `POST ?digest=`, with the given headers.
pub async fn post_blob(
    app: &Router,
    headers: &[(&str, &str)],
    repo: &str,
    content: &[u8],
) -> Response<Body> {
    let d = Digest::of(content);
    send(
        app,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        headers,
        content.to_vec(),
    )
    .await
}

/// `PUT` of manifest bytes `m` to `repo:tag` with `Authorization: auth` and the OCI media type.
pub async fn put_manifest(
    app: &Router,
    auth: &str,
    repo: &str,
    tag: &str,
    m: &[u8],
) -> Response<Body> {
    send(
        app,
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("authorization", auth), ("content-type", OCI_MANIFEST)],
        m.to_vec(),
    )
    .await
}

/// A model-artifact manifest (`artifactType` set) with the given config and raw weight layers.
pub fn model_manifest(config: &Digest, config_len: usize, layers: &[(Digest, usize)]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": config, "size": config_len},
        "layers": layers.iter().map(|(d, n)| json!({
            "mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": d, "size": n
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}
