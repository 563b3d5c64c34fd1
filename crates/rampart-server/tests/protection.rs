//! Protection of the registry: rate limits, body/header limits, timeouts (over a real socket),
//! anonymous pull, blob DELETE and gc racing pushes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use base64ct::Encoding as _;
use common::{basic, error_code_or_empty as code, new_state, open_stores, token};
use rampart_core::{Digest, Role};
use rampart_server::limit::{Rate, RateLimits};
use rampart_server::listen::ServeOptions;
use rampart_server::{AppState, Limits, app};
use rampart_store::SqliteMetadata;

/// The user name in this file's Basic credentials.
const USER: &str = "u";

struct Fixture {
    dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    meta: SqliteMetadata,
}

async fn fixture(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (blobs, meta) = open_stores(dir.path(), 1 << 24).await;
    let state = new_state(blobs, meta.clone(), 7, limits);
    Fixture {
        dir,
        app: app(state.clone()),
        state,
        meta,
    }
}

/// [`common::send_as`] with this file's user.
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Body> {
    common::send_as(app, method, uri, USER, token, headers, body).await
}

async fn push_blob(app: &Router, token: &str, repo: &str, content: &[u8]) -> StatusCode {
    let auth = basic(USER, token);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    common::post_blob(app, &headers, repo, content)
        .await
        .status()
}

fn manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let desc = |b: &[u8], mt: &str| serde_json::json!({"mediaType": mt, "digest": Digest::of(b).to_string(), "size": b.len()});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc(config, "application/vnd.cncf.model.config.v1+json"),
        "layers": layers.iter().map(|l| desc(l, "application/octet-stream")).collect::<Vec<_>>(),
    }))
    .unwrap()
}

async fn put_manifest(
    app: &Router,
    token: &str,
    repo: &str,
    tag: &str,
    m: &[u8],
) -> Response<Body> {
    common::put_manifest(app, &basic(USER, token), repo, tag, m).await
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_ip_and_per_token() {
    let f = fixture(Limits {
        rate: RateLimits {
            per_principal: Rate {
                per_second: 1,
                burst: 3,
            },
            per_ip: Rate {
                per_second: 1,
                burst: 2,
            },
        },
        ..Limits::default()
    })
    .await;
    let a = token(&f.state, Role::Reader, "**", None).await;
    let b = token(&f.state, Role::Reader, "**", None).await;
    // Anonymous: charged to the (here unknown, shared) client address.
    for _ in 0..2 {
        let r = send(&f.app, Method::GET, "/v2/", None, &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = send(&f.app, Method::GET, "/v2/", None, &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(code(r).await, "TOOMANYREQUESTS");
    // A wrong token is charged to the IP too (no free guessing).
    let r = send(
        &f.app,
        Method::GET,
        "/v2/",
        Some("rampart_nope"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Tokens have their own budgets, independent of the IP's and of each other.
    for _ in 0..3 {
        let r = send(&f.app, Method::GET, "/v2/", Some(&a), &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = send(&f.app, Method::GET, "/v2/", Some(&a), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = send(&f.app, Method::GET, "/v2/", Some(&b), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Health checks are never limited.
    let r = send(&f.app, Method::GET, "/healthz", None, &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limits_off_with_zero() {
    let f = fixture(Limits {
        rate: RateLimits {
            per_principal: Rate::OFF,
            per_ip: Rate::OFF,
        },
        ..Limits::default()
    })
    .await;
    for _ in 0..200 {
        let r = send(&f.app, Method::GET, "/v2/", None, &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn body_limit_applies_to_non_blob_routes_only() {
    let f = fixture(Limits {
        max_body: 1024,
        ..Limits::default()
    })
    .await;
    let admin = token(&f.state, Role::Admin, "**", None).await;
    let big = vec![b'x'; 4096];
    let r = send(
        &f.app,
        Method::POST,
        "/api/v1/tokens",
        Some(&admin),
        &[
            ("content-length", "4096"),
            ("content-type", "application/json"),
        ],
        big.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(r).await, "SIZE_INVALID");
    // A blob upload is bounded by the blob limit, not the body limit.
    assert_eq!(
        push_blob(&f.app, &admin, "a/b", &big).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn anonymous_pull_only_where_configured_and_only_reads() {
    let f = fixture(Limits::default()).await;
    let admin = token(&f.state, Role::Admin, "**", None).await;
    let cfg = b"{}";
    for repo in ["public/m", "private/m"] {
        assert_eq!(
            push_blob(&f.app, &admin, repo, cfg).await,
            StatusCode::CREATED
        );
        let r = put_manifest(&f.app, &admin, repo, "v1", &manifest(cfg, &[])).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Off by default.
    let r = send(
        &f.app,
        Method::GET,
        "/v2/public/m/manifests/v1",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        f.state
            .set_anonymous_pull(vec!["public/**".parse().unwrap()])
    );
    let r = send(
        &f.app,
        Method::GET,
        "/v2/public/m/manifests/v1",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &f.app,
        Method::GET,
        &format!("/v2/public/m/blobs/{}", Digest::of(cfg)),
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &f.app,
        Method::GET,
        "/v2/public/m/tags/list",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Not other namespaces, not writes, not deletes.
    let r = send(
        &f.app,
        Method::GET,
        "/v2/private/m/manifests/v1",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = put_manifest(&f.app, "", "public/m", "v2", &manifest(cfg, &[])).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(
        &f.app,
        Method::POST,
        "/v2/public/m/blobs/uploads/",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(
        &f.app,
        Method::DELETE,
        "/v2/public/m/manifests/v1",
        None,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn blob_delete_is_admin_only_and_unlinks() {
    let f = fixture(Limits::default()).await;
    let admin = token(&f.state, Role::Admin, "**", None).await;
    let publisher = token(&f.state, Role::Publisher, "**", None).await;
    let (cfg, layer) = (b"{}".as_slice(), b"weights".as_slice());
    push_blob(&f.app, &admin, "a/m", cfg).await;
    push_blob(&f.app, &admin, "a/m", layer).await;
    let uri = format!("/v2/a/m/blobs/{}", Digest::of(layer));
    let r = send(&f.app, Method::DELETE, &uri, Some(&publisher), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&f.app, Method::DELETE, &uri, Some(&admin), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = send(&f.app, Method::HEAD, &uri, Some(&admin), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A manifest can no longer reference it in this repository.
    let r = put_manifest(&f.app, &admin, "a/m", "v1", &manifest(cfg, &[layer])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
}

/// gc running concurrently with pushes that re-upload old unreferenced content and reference it from
/// manifests: every push that succeeded is complete afterwards (fsck is clean, every acknowledged
/// manifest's blobs are served).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_racing_pushes_never_leaves_a_dangling_reference() {
    let f = fixture(Limits::default()).await;
    let admin = token(&f.state, Role::Admin, "**", None).await;
    let mut collected = 0;
    for round in 0..20u32 {
        let cfg = format!("{{\"round\":{round}}}").into_bytes();
        let layer = format!("layer of round {round}").into_bytes();
        // Push, then unlink: old unreferenced files gc may delete.
        for b in [&cfg, &layer] {
            assert_eq!(
                push_blob(&f.app, &admin, "gc/src", b).await,
                StatusCode::CREATED
            );
            let uri = format!("/v2/gc/src/blobs/{}", Digest::of(b));
            let r = send(&f.app, Method::DELETE, &uri, Some(&admin), &[], vec![]).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let hex = Digest::of(b).hex();
            let path = f.dir.path().join("blobs/sha256").join(&hex[..2]).join(&hex);
            std::fs::File::options()
                .append(true)
                .open(path)
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(7200))
                .unwrap();
        }
        let root = f.dir.path().to_owned();
        let meta = f.meta.clone();
        let gc = tokio::spawn(async move {
            rampart_store::gc::gc(&root, &meta, rampart_store::gc::GcOptions::default())
                .await
                .unwrap()
        });
        let (app, admin2) = (f.app.clone(), admin.clone());
        let (cfg2, layer2) = (cfg.clone(), layer.clone());
        let push = tokio::spawn(async move {
            let a = push_blob(&app, &admin2, "gc/dst", &cfg2).await;
            let b = push_blob(&app, &admin2, "gc/dst", &layer2).await;
            if a != StatusCode::CREATED || b != StatusCode::CREATED {
                return false;
            }
            let r = put_manifest(
                &app,
                &admin2,
                "gc/dst",
                &format!("r{round}"),
                &manifest(&cfg2, &[&layer2]),
            )
            .await;
            r.status() == StatusCode::CREATED
        });
        collected += gc.await.unwrap().deleted.len();
        let pushed = push.await.unwrap();
        let report = rampart_store::gc::fsck(f.dir.path(), &f.meta)
            .await
            .unwrap();
        assert!(
            report.problems.is_empty(),
            "round {round}: {:?}",
            report.problems
        );
        if pushed {
            for b in [&cfg, &layer] {
                let uri = format!("/v2/gc/dst/blobs/{}", Digest::of(b));
                let r = send(&f.app, Method::GET, &uri, Some(&admin), &[], vec![]).await;
                assert_eq!(r.status(), StatusCode::OK, "round {round}");
            }
        }
    }
    // The race was real: gc did delete content that pushes were re-uploading.
    assert!(collected > 0, "gc never collected anything");
}

// ------------------------------------------------------------------------------ over a real socket

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _f: Fixture,
    admin: String,
}

impl Running {
    async fn start(opts: ServeOptions) -> Self {
        let f = fixture(Limits::default()).await;
        let admin = token(&f.state, Role::Admin, "**", None).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(rampart_server::listen::serve(
            listener,
            f.app.clone(),
            opts,
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            stop: Some(tx),
            task,
            _f: f,
            admin,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

/// Reads until EOF or error; returns what arrived and how long it took.
fn drain(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn opts() -> ServeOptions {
    ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_header_bytes: 16 * 1024,
        shutdown_grace: Duration::from_secs(2),
        ..ServeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_client_is_disconnected() {
    let server = Running::start(opts()).await;
    let addr = server.addr;
    let (closed_after, bytes_sent) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = Instant::now();
        let mut sent = 0;
        // One header byte every 100 ms, never finishing the head: progress, but too slow.
        while started.elapsed() < Duration::from_secs(10) {
            if s.write_all(b"X").is_err() {
                break;
            }
            sent += 1;
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        (started.elapsed(), sent)
    })
    .await
    .unwrap();
    assert!(
        closed_after < Duration::from_secs(5),
        "still connected after {closed_after:?} ({bytes_sent} bytes trickled)"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_header_gets_431_and_stalled_body_is_cut_but_slow_progress_is_not() {
    let server = Running::start(opts()).await;
    let (addr, admin) = (server.addr, server.admin.clone());
    tokio::task::spawn_blocking(move || {
        // 1. A 32 KiB header against a 16 KiB limit.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let big = "a".repeat(32 * 1024);
        let _ = write!(s, "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
        let (resp, _) = drain(&mut s);
        assert!(resp.starts_with("HTTP/1.1 431"), "{resp:.80}");

        // 2. A body that stops arriving: cut after the idle timeout.
        let auth = base64ct::Base64::encode_string(format!("u:{admin}").as_bytes());
        let content = vec![b'z'; 100];
        let d = Digest::of(&content);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v2/slow/m/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
             Content-Length: 100\r\n\r\n"
        )
        .unwrap();
        s.write_all(&content[..10]).unwrap();
        let (resp, took) = drain(&mut s);
        assert!(took < Duration::from_secs(5), "stalled upload kept for {took:?}");
        assert!(!resp.contains("201"), "{resp}");

        // 3. The same upload sent slowly (3 s in all, longer than both timeouts) but steadily succeeds.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v2/slow/m/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
             Content-Length: 100\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        for chunk in content.chunks(10) {
            std::thread::sleep(Duration::from_millis(300));
            s.write_all(chunk).unwrap();
        }
        let (resp, _) = drain(&mut s);
        assert!(resp.starts_with("HTTP/1.1 201"), "{resp:.200}");
    })
    .await
    .unwrap();
    server.stop().await;
}
