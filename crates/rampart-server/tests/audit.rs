//! The registry records every request in the audit log before answering, and fails closed.
//!
//! Driven through `app(state)` with `oneshot` over a real audit log in a temporary directory, with
//! the log's file storage wrapped to inject failures, EIO and stalls.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_macros,
    unreachable_pub
)]

mod common;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use common::{basic, bytes, named_token, open_stores};
use rampart_audit::{AuditConfig, AuditLog, FileStorage, Record, Stage, Storage};
use rampart_core::{Digest, Role};
use rampart_server::{AppState, Limits, TokenKey, app};
use rampart_store::{BlobStore, FsBlobStore, MetadataStore, SqliteMetadata};
use serde_json::json;

/// The user name in this file's Basic credentials.
const USER: &str = "u";

struct Stores {
    _dir: tempfile::TempDir,
    audit_dir: std::path::PathBuf,
    blobs: Arc<FsBlobStore>,
    meta: Arc<SqliteMetadata>,
    key: TokenKey,
}

async fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let (blobs, meta) = open_stores(&root, 1 << 24).await;
    Stores {
        audit_dir: root.join("audit"),
        _dir: dir,
        blobs: Arc::new(blobs),
        meta: Arc::new(meta),
        key: TokenKey::from_bytes([5; 32]),
    }
}

fn state(s: &Stores, log: &AuditLog) -> AppState {
    let blobs: Arc<dyn BlobStore> = s.blobs.clone();
    let meta: Arc<dyn MetadataStore> = s.meta.clone();
    let st = AppState::new(blobs, meta, s.key.clone(), Limits::default());
    assert!(st.set_audit(log.clone()));
    st
}

fn config(timeout: Duration) -> AuditConfig {
    AuditConfig {
        timeout,
        checkpoint_interval: Duration::from_millis(50),
        ..AuditConfig::default()
    }
}

/// [`common::send_as`] with this file's user and no other header.
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> Response<Body> {
    common::send_as(app, method, uri, USER, auth, &[], body).await
}

fn audit_id(resp: &Response<Body>) -> Option<String> {
    resp.headers()
        .get("rampart-audit-id")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn records(dir: &std::path::Path) -> Vec<Record> {
    let mut out = Vec::new();
    rampart_audit::tools::query(dir, &rampart_audit::tools::Filter::default(), |r| {
        out.push(r.clone());
    })
    .unwrap();
    out
}

async fn push_blob(app: &Router, token: &str, repo: &str, content: &[u8]) -> Response<Body> {
    common::post_blob(
        app,
        &[("authorization", &basic(USER, token))],
        repo,
        content,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_recorded_with_who_what_and_outcome() {
    let s = stores().await;
    let log = AuditLog::open(&s.audit_dir, config(Duration::from_secs(2))).unwrap();
    let st = state(&s, &log);
    let app = app(st.clone());
    let admin = named_token(&st, "admin", Role::Admin, "**").await;
    let reader = named_token(&st, "reader", Role::Reader, "acme/**").await;

    let content = b"weights".to_vec();
    let digest = Digest::of(&content);
    let pushed = push_blob(&app, &admin.secret, "acme/model", &content).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let pulled = send(
        &app,
        Method::GET,
        &format!("/v2/acme/model/blobs/{digest}"),
        Some(&reader.secret),
        vec![],
    )
    .await;
    assert_eq!(pulled.status(), StatusCode::OK);
    let denied = push_blob(&app, &reader.secret, "acme/model", b"nope").await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let forged = push_blob(&app, "rampart_not-a-token", "acme/model", b"x").await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let forged_id = audit_id(&forged).unwrap();
    let anonymous = send(&app, Method::GET, "/v2/", None, vec![]).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let health = send(&app, Method::GET, "/healthz", None, vec![]).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(audit_id(&health).is_none(), "health checks are not audited");

    let ids: Vec<String> = [&pushed, &pulled, &denied, &anonymous]
        .iter()
        .map(|r| audit_id(r).expect("every audited response names its record"))
        .collect();
    // An auditor answers "who pulled which model when" through the admin API, and gets a proof
    // that the record is in the signed log.
    let auditor = named_token(&st, "auditor", Role::Auditor, "**").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = send(
        &app,
        Method::GET,
        "/api/v1/audit/records?action=blob.pull&repository=acme/model",
        Some(&auditor.secret),
        vec![],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page: serde_json::Value = serde_json::from_slice(&bytes(resp).await).unwrap();
    let found = page["records"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{page}");
    assert_eq!(found[0]["principal"]["id"], json!(reader.record.id));
    let seq = found[0]["seq"].as_u64().unwrap();
    let resp = send(
        &app,
        Method::GET,
        &format!("/api/v1/audit/proof/{seq}"),
        Some(&auditor.secret),
        vec![],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let proof: serde_json::Value = serde_json::from_slice(&bytes(resp).await).unwrap();
    let entry = proof["entry"].as_str().unwrap();
    let cp = rampart_audit::tools::check_proof(
        proof["proof"].as_str().unwrap().as_bytes(),
        entry.as_bytes(),
        &[log.verifier_key().clone()],
    )
    .unwrap();
    assert!(cp.size > seq);
    // A tampered entry does not verify.
    let forged = entry.replace(&reader.record.id, "someone-else");
    assert!(
        rampart_audit::tools::check_proof(
            proof["proof"].as_str().unwrap().as_bytes(),
            forged.as_bytes(),
            &[log.verifier_key().clone()],
        )
        .is_err()
    );
    // An auditor reads the log and nothing else.
    let resp = send(
        &app,
        Method::GET,
        &format!("/v2/acme/model/blobs/{digest}"),
        Some(&auditor.secret),
        vec![],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    log.shutdown().await;
    let recs = records(&s.audit_dir);
    let by_id = |id: &str| -> Vec<&Record> { recs.iter().filter(|r| r.audit_id == id).collect() };

    // The push: a `received` record before the change, then the `completed` one.
    let push = by_id(&ids[0]);
    assert_eq!(push.len(), 2, "{push:?}");
    assert_eq!(push[0].stage, Stage::Received);
    assert_eq!(push[1].stage, Stage::Completed);
    assert!(push[0].seq < push[1].seq);
    assert_eq!(push[1].status, Some(201));
    assert_eq!(push[1].action, "blob.push");
    assert_eq!(push[1].repository.as_deref(), Some("acme/model"));
    assert_eq!(push[1].decision.as_deref(), Some("allow"));
    let p = push[1].principal.as_ref().unwrap();
    assert_eq!(p.id, admin.record.id);
    assert_eq!(p.kind, "token");
    assert_eq!(
        p.token_hash.as_deref(),
        Some(
            log.audit_key()
                .hash_secret(admin.secret.as_bytes())
                .as_str()
        )
    );

    // The pull: one completed record naming the digest, who, and how many bytes.
    let pull = by_id(&ids[1]);
    assert_eq!(pull.len(), 1);
    assert_eq!(pull[0].action, "blob.pull");
    assert_eq!(pull[0].digest.as_deref(), Some(digest.to_string().as_str()));
    assert_eq!(pull[0].principal.as_ref().unwrap().id, reader.record.id);
    assert_eq!(pull[0].bytes, Some(content.len() as u64));

    // Refusals are recorded with the rule that refused.
    let deny = by_id(&ids[2]);
    let last = deny.last().unwrap();
    assert_eq!(last.status, Some(403));
    assert_eq!(last.decision.as_deref(), Some("deny"));
    assert!(
        last.rule
            .as_deref()
            .unwrap()
            .contains("role reader on acme/**")
    );
    // A refused credential cannot change anything: one record, not two, and no secret.
    let forged = by_id(&forged_id);
    assert_eq!(forged.len(), 1, "{forged:?}");
    assert_eq!(forged[0].principal.as_ref().unwrap().kind, "invalid");
    assert_eq!(forged[0].decision.as_deref(), Some("deny"));
    let anon = by_id(&ids[3]);
    assert_eq!(anon[0].status, Some(401));
    assert_eq!(anon[0].principal.as_ref().unwrap().kind, "anonymous");

    // No secret anywhere in the log's files.
    for entry in walk(&s.audit_dir) {
        let text = std::fs::read(&entry).unwrap();
        for secret in [&admin.secret, &reader.secret] {
            assert!(
                !text.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} contains a token",
                entry.display()
            );
        }
    }
    let report = rampart_audit::verify(&s.audit_dir, None, None).unwrap();
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.records, recs.len() as u64);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// What the injected storage does once its countdown reaches zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `append_segment` fails with EIO.
    AppendEio,
    /// `sync_segment` fails (the fsyncgate case).
    SyncFails,
    /// `sync_segment` blocks for a while, then succeeds.
    Stall(Duration),
}

#[derive(Debug)]
struct Faulty {
    inner: FileStorage,
    countdown: Arc<AtomicU32>,
    fault: Fault,
    /// The first sync is the one `AuditLog::open` makes of the recovered segment: the countdown
    /// starts once the log is open.
    opened: bool,
}

impl Faulty {
    fn due(&self) -> bool {
        // Fires once when the countdown passes zero.
        self.countdown.fetch_sub(1, Ordering::SeqCst) == 1
    }
}

impl Storage for Faulty {
    fn append_segment(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.fault == Fault::AppendEio && self.due() {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.append_segment(bytes)
    }
    fn sync_segment(&mut self) -> io::Result<()> {
        if !self.opened {
            self.opened = true;
            return self.inner.sync_segment();
        }
        match self.fault {
            Fault::SyncFails if self.due() => {
                return Err(io::Error::other("injected fsync failure"));
            }
            Fault::Stall(d) if self.due() => std::thread::sleep(d),
            _ => {}
        }
        self.inner.sync_segment()
    }
    fn rotate(&mut self, n: u32) -> io::Result<()> {
        self.inner.rotate(n)
    }
    fn append_hashes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.append_hashes(bytes)
    }
    fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()> {
        self.inner.write_checkpoint(note)
    }
}

/// A small deterministic PRNG (xorshift), so a failure can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug)]
struct Outcome {
    method: &'static str,
    status: StatusCode,
    audit_id: Option<String>,
    elapsed: Duration,
    stalled: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_stalling_log_fails_requests_closed() {
    let s = stores().await;
    let timeout = Duration::from_millis(300);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    eprintln!("seed {seed}");

    // Set up a model with a healthy log.
    let log = AuditLog::open(&s.audit_dir, config(timeout)).unwrap();
    let st = state(&s, &log);
    let token = named_token(&st, "pub", Role::Publisher, "acme/**")
        .await
        .secret;
    let model: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let model_digest = Digest::of(&model);
    assert_eq!(
        push_blob(&app(st.clone()), &token, "acme/m", &model)
            .await
            .status(),
        StatusCode::CREATED
    );
    log.shutdown().await;
    drop(st);

    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut served_without_record = 0;
    while outcomes.len() < 1000 {
        // A new "process": the log reopened (recovering) with a fault scheduled at random.
        let fault = match rng.below(3) {
            0 => Fault::AppendEio,
            1 => Fault::SyncFails,
            _ => Fault::Stall(timeout * 2),
        };
        let countdown = Arc::new(AtomicU32::new(1 + rng.below(40) as u32));
        let c = countdown.clone();
        let log = AuditLog::open_with_storage(&s.audit_dir, config(timeout), move |fs| {
            Box::new(Faulty {
                inner: fs,
                countdown: c,
                fault,
                opened: false,
            })
        })
        .unwrap();
        let st = state(&s, &log);
        let app = app(st.clone());
        for _ in 0..60 {
            if outcomes.len() >= 1000 {
                break;
            }
            let start = Instant::now();
            let stalled_before =
                matches!(fault, Fault::Stall(_)) && countdown.load(Ordering::SeqCst) <= 1;
            let (method, resp) = match rng.below(4) {
                0 => {
                    let r = send(
                        &app,
                        Method::GET,
                        &format!("/v2/acme/m/blobs/{model_digest}"),
                        Some(&token),
                        vec![],
                    )
                    .await;
                    ("pull", r)
                }
                1 => {
                    let n = rng.next();
                    let r = push_blob(&app, &token, "acme/m", format!("blob {n}").as_bytes()).await;
                    ("push", r)
                }
                2 => {
                    // An upload-session step, whose `received` record is deferred: opening a
                    // session, or sending a chunk to a session opened just before.
                    let open = send(
                        &app,
                        Method::POST,
                        "/v2/acme/m/blobs/uploads/",
                        Some(&token),
                        vec![],
                    )
                    .await;
                    if open.status() == StatusCode::ACCEPTED && rng.below(2) == 0 {
                        let location = open.headers()["location"].to_str().unwrap().to_owned();
                        let r = send(
                            &app,
                            Method::PATCH,
                            &location,
                            Some(&token),
                            format!("chunk {}", rng.next()).into_bytes(),
                        )
                        .await;
                        ("session", r)
                    } else {
                        ("session", open)
                    }
                }
                _ => {
                    let r = send(
                        &app,
                        Method::HEAD,
                        &format!("/v2/acme/m/blobs/{model_digest}"),
                        Some(&token),
                        vec![],
                    )
                    .await;
                    ("head", r)
                }
            };
            let status = resp.status();
            let id = audit_id(&resp);
            let body = bytes(resp).await;
            let elapsed = start.elapsed();
            if status.is_success() {
                assert!(
                    id.is_some(),
                    "a {method} answered {status} without a record"
                );
                if method == "pull" {
                    assert_eq!(body, model);
                }
            } else {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method}");
                // Not one byte of the model in a refused response.
                assert!(
                    !body.windows(64).any(|w| model.windows(64).any(|m| m == w)),
                    "model bytes served after a failed record"
                );
                if method == "pull" && body.len() >= model.len() {
                    served_without_record += 1;
                }
            }
            outcomes.push(Outcome {
                method,
                status,
                audit_id: id,
                elapsed,
                stalled: stalled_before,
            });
            if !log.is_healthy() && rng.below(4) == 0 {
                break;
            }
        }
        log.shutdown().await;
    }
    assert_eq!(served_without_record, 0);

    // Every acknowledged request has its durable completed record (and a received one before it
    // for a push); the reopened log verifies.
    let recs = records(&s.audit_dir);
    let mut stages: HashMap<&str, Vec<&Record>> = HashMap::new();
    for r in &recs {
        stages.entry(r.audit_id.as_str()).or_default().push(r);
    }
    let (mut ok, mut refused) = (0, 0);
    for o in &outcomes {
        if o.status.is_success() {
            ok += 1;
            let id = o.audit_id.as_deref().unwrap();
            let rs = stages
                .get(id)
                .unwrap_or_else(|| panic!("no record for {o:?}"));
            let done = rs
                .iter()
                .find(|r| r.stage == Stage::Completed)
                .unwrap_or_else(|| panic!("no completed record for {o:?}"));
            assert_eq!(done.status, Some(o.status.as_u16()));
            if o.method == "push" || o.method == "session" {
                assert!(
                    rs.iter()
                        .any(|r| r.stage == Stage::Received && r.seq < done.seq),
                    "push without a prior received record: {o:?}"
                );
            }
        } else {
            refused += 1;
            // Refused within the timeout, plus scheduling slack; a stall never hangs a request.
            assert!(
                o.elapsed < timeout * 2 + Duration::from_millis(700),
                "a refusal took {:?}: {o:?}",
                o.elapsed
            );
        }
    }
    assert!(
        ok > 100 && refused > 50,
        "ok {ok}, refused {refused} (seed {seed})"
    );
    let session = |ok: bool| {
        outcomes
            .iter()
            .filter(|o| o.method == "session" && o.status.is_success() == ok)
            .count()
    };
    assert!(
        session(true) > 20 && session(false) > 5,
        "session steps: {} ok, {} refused (seed {seed})",
        session(true),
        session(false)
    );
    let stalls = outcomes.iter().filter(|o| o.stalled).count();
    eprintln!("ok {ok}, refused {refused}, requests after a stall began {stalls}");
    let report = rampart_audit::verify(&s.audit_dir, None, None).unwrap();
    assert!(report.failure.is_none(), "{:?}", report.failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_log_cannot_write() {
    let s = stores().await;
    let countdown = Arc::new(AtomicU32::new(1));
    let c = countdown.clone();
    let log = AuditLog::open_with_storage(
        &s.audit_dir,
        config(Duration::from_millis(300)),
        move |fs| {
            Box::new(Faulty {
                inner: fs,
                countdown: c,
                fault: Fault::SyncFails,
                opened: false,
            })
        },
    )
    .unwrap();
    let st = state(&s, &log);
    let app = app(st.clone());
    assert_eq!(
        send(&app, Method::GET, "/readyz", None, vec![])
            .await
            .status(),
        StatusCode::OK
    );
    let resp = send(&app, Method::GET, "/v2/", None, vec![]).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&bytes(resp).await).unwrap();
    assert_eq!(body["errors"][0]["code"], json!("UNAVAILABLE"));
    assert_eq!(
        send(&app, Method::GET, "/readyz", None, vec![])
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(log.counters().failures > 0);
    // The failure is counted where monitoring can see it.
    let auditor = named_token(&st, "auditor", Role::Auditor, "**").await;
    // Metrics are exempt from auditing (like health checks), so monitoring still sees the failure.
    let m = send(&app, Method::GET, "/metrics", Some(&auditor.secret), vec![]).await;
    assert_eq!(m.status(), StatusCode::OK);
    let text = String::from_utf8(bytes(m).await).unwrap();
    assert!(text.contains("rampart_audit_healthy 0\n"), "{text}");
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rampart_audit_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 1);
    let mut wrong = auditor.secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let m = send(&app, Method::GET, "/metrics", Some(&wrong), vec![]).await;
    assert_eq!(m.status(), StatusCode::UNAUTHORIZED);
    log.shutdown().await;
}
