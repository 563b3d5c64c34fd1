//! The Docker token flow (`/token`, Bearer JWTs, challenges) and the admin API (`/api/v1/`) through
//! `app(state)` with `oneshot`.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use axum::Router;
use axum::http::{Method, StatusCode};
use base64ct::Encoding as _;
use common::{
    basic, bytes as body_bytes, hdr, json_body, model_manifest, named_token, revoked_token, send,
    temp_state, token,
};
use rampart_core::{Digest, Role};
use rampart_server::{AppState, Limits, TokenService, app};
use serde_json::{Value, json};

/// The user name in this file's Basic credentials.
const USER: &str = "anyone";

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    state: AppState,
    admin: String,
}

async fn fixture() -> Fixture {
    let (dir, state) = temp_state(1 << 20, 9, Limits::default()).await;
    let root = dir.path().to_owned();
    // Every request is audited, as `DataDir::open` arranges in production.
    let log = rampart_audit::AuditLog::open(
        root.join("audit"),
        rampart_audit::AuditConfig {
            checkpoint_interval: std::time::Duration::from_millis(20),
            ..rampart_audit::AuditConfig::default()
        },
    )
    .unwrap();
    assert!(state.set_audit(log));
    let admin = token(&state, Role::Admin, "**", None).await;
    Fixture {
        _dir: dir,
        app: app(state.clone()),
        state,
        admin,
    }
}

/// `GET /token` with Basic credentials; returns the JWT.
async fn jwt(f: &Fixture, secret: &str, query: &str) -> String {
    let r = send(
        &f.app,
        Method::GET,
        &format!("/token?service=rampart&{query}"),
        &[("authorization", &basic(USER, secret))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_body(r).await;
    assert_eq!(v["token"], v["access_token"]);
    v["token"].as_str().unwrap().to_owned()
}

/// The `access` claim of a JWT (read without verifying; the server verifies).
fn access(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let v: Value =
        serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
    v["access"].clone()
}

async fn push_blob(f: &Fixture, auth: &str, repo: &str, content: &[u8]) -> StatusCode {
    common::post_blob(&f.app, &[("authorization", auth)], repo, content)
        .await
        .status()
}

async fn push_model(f: &Fixture, repo: &str, tag: &str) -> Digest {
    let auth = basic(USER, &f.admin);
    assert_eq!(push_blob(f, &auth, repo, b"{}").await, StatusCode::CREATED);
    let m = model_manifest(&Digest::of(b"{}"), 2, &[]);
    let r = common::put_manifest(&f.app, &auth, repo, tag, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    Digest::of(&m)
}

#[tokio::test]
async fn token_endpoint_grants_every_held_action_and_nothing_more() {
    let f = fixture().await;
    let publisher = token(&f.state, Role::Publisher, "acme/**", None).await;
    // Asked for pull only: granted pull and push (oras-py reuses its first token), never delete.
    let r = send(
        &f.app,
        Method::GET,
        "/token?service=rampart&account=me&scope=repository:acme/m:pull&scope=repository%3Aother%2Fx%3Apull%2Cpush+registry:catalog:*",
        &[("authorization", &basic(USER, &publisher))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "cache-control"), "no-store");
    let v = json_body(r).await;
    assert_eq!(v["expires_in"], 300);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        access(v["token"].as_str().unwrap()),
        json!([
            {"type": "repository", "name": "acme/m", "actions": ["pull", "push"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );
    // An auditor holds nothing in the registry; an admin on ** may also get the admin API.
    let auditor = token(&f.state, Role::Auditor, "**", None).await;
    let t = jwt(
        &f,
        &auditor,
        "scope=repository:acme/m:pull&scope=registry:catalog:*&scope=registry:admin:*",
    )
    .await;
    assert_eq!(access(&t), json!([]));
    let t = jwt(
        &f,
        &f.admin,
        "scope=repository:acme/m:delete&scope=registry:admin:*",
    )
    .await;
    assert_eq!(
        access(&t),
        json!([
            {"type": "repository", "name": "acme/m", "actions": ["pull", "push", "delete"]},
            {"type": "registry", "name": "admin", "actions": ["*"]},
        ])
    );
    // Malformed and hostile scopes are ignored.
    let t = jwt(
        &f,
        &f.admin,
        "scope=repository:../etc:pull&scope=repository:ACME:pull&scope=bogus&scope=registry:root:*",
    )
    .await;
    assert_eq!(access(&t), json!([]));
}

#[tokio::test]
async fn token_endpoint_refuses_bad_credentials() {
    let f = fixture().await;
    let now = rampart_store::now_unix();
    let expired = token(&f.state, Role::Admin, "**", Some(now - 1)).await;
    for auth in [
        Some(basic(USER, "rampart_wrong")),
        Some(basic(USER, &expired)),
        Some("Bearer x.y.z".to_owned()),
    ] {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let r = send(
            &f.app,
            Method::GET,
            "/token?service=rampart&scope=repository:acme/m:pull",
            &headers,
            vec![],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(hdr(&r, "www-authenticate").starts_with("Basic "));
    }
    // A JWT cannot buy another JWT.
    let t = jwt(&f, &f.admin, "scope=repository:acme/m:pull").await;
    let r = send(
        &f.app,
        Method::GET,
        "/token?service=rampart",
        &[("authorization", &format!("Bearer {t}"))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Another service's token is not ours to issue.
    let r = send(
        &f.app,
        Method::GET,
        "/token?service=elsewhere",
        &[("authorization", &basic(USER, &f.admin))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bearer_grants_only_its_claims_and_dies_with_its_token() {
    let f = fixture().await;
    let d = push_model(&f, "acme/m", "v1").await;
    push_model(&f, "acme/other", "v1").await;
    let created = named_token(&f.state, "pub", Role::Publisher, "acme/**").await;
    let t = jwt(&f, &created.secret, "scope=repository:acme/m:pull").await;
    let bearer = format!("Bearer {t}");
    let get = |path: String| {
        let app = f.app.clone();
        let bearer = bearer.clone();
        async move {
            send(
                &app,
                Method::GET,
                &path,
                &[("authorization", &bearer)],
                vec![],
            )
            .await
            .status()
        }
    };
    assert_eq!(get("/v2/".into()).await, StatusCode::OK);
    assert_eq!(get("/v2/acme/m/manifests/v1".into()).await, StatusCode::OK);
    assert_eq!(
        get(format!("/v2/acme/m/manifests/{d}")).await,
        StatusCode::OK
    );
    assert_eq!(
        push_blob(&f, &bearer, "acme/m", b"new weights").await,
        StatusCode::CREATED
    );
    // The token holds acme/other, but the JWT does not list it.
    assert_eq!(
        get("/v2/acme/other/manifests/v1".into()).await,
        StatusCode::FORBIDDEN
    );
    // Delete was never granted (a publisher does not hold it).
    let r = send(
        &f.app,
        Method::DELETE,
        &format!("/v2/acme/m/manifests/{d}"),
        &[("authorization", &bearer)],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Without a catalog grant, the catalog shows only what the JWT grants.
    let r = send(
        &f.app,
        Method::GET,
        "/v2/_catalog",
        &[("authorization", &bearer)],
        vec![],
    )
    .await;
    assert_eq!(json_body(r).await, json!({"repositories": ["acme/m"]}));
    // A tampered JWT (claims swapped in from another token) is refused.
    let wide = jwt(&f, &f.admin, "scope=repository:acme/m:pull").await;
    let parts: Vec<&str> = t.split('.').collect();
    let wide_parts: Vec<&str> = wide.split('.').collect();
    let forged = format!("Bearer {}.{}.{}", parts[0], wide_parts[1], parts[2]);
    let r = send(
        &f.app,
        Method::GET,
        "/v2/",
        &[("authorization", &forged)],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A JWT signed under another key is refused.
    let other = fixture().await;
    let foreign = jwt(&other, &other.admin, "scope=repository:acme/m:pull").await;
    let r = send(
        &f.app,
        Method::GET,
        "/v2/acme/m/manifests/v1",
        &[("authorization", &format!("Bearer {foreign}"))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Revoking the token kills its JWTs at once.
    assert!(
        f.state
            .meta()
            .revoke_token(&created.record.id)
            .await
            .unwrap()
    );
    assert_eq!(
        get("/v2/acme/m/manifests/v1".into()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get("/v2/".into()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn catalog_grant_lists_what_the_token_may_pull() {
    let f = fixture().await;
    push_model(&f, "acme/a", "v1").await;
    push_model(&f, "acme/b", "v1").await;
    push_model(&f, "zeta/c", "v1").await;
    let reader = token(&f.state, Role::Reader, "acme/**", None).await;
    let t = jwt(&f, &reader, "scope=registry:catalog:*").await;
    let r = send(
        &f.app,
        Method::GET,
        "/v2/_catalog",
        &[("authorization", &format!("Bearer {t}"))],
        vec![],
    )
    .await;
    assert_eq!(
        json_body(r).await,
        json!({"repositories": ["acme/a", "acme/b"]})
    );
    // An auditor (valid, no registry right) sees an empty catalog.
    let auditor = token(&f.state, Role::Auditor, "**", None).await;
    let r = send(
        &f.app,
        Method::GET,
        "/v2/_catalog",
        &[("authorization", &basic(USER, &auditor))],
        vec![],
    )
    .await;
    assert_eq!(json_body(r).await, json!({"repositories": []}));
}

#[tokio::test]
async fn challenges_point_at_the_token_endpoint_with_the_needed_scope() {
    let f = fixture().await;
    let cases = [
        (Method::GET, "/v2/", None),
        (
            Method::GET,
            "/v2/_catalog",
            Some("registry:catalog:*".to_owned()),
        ),
        (
            Method::HEAD,
            "/v2/acme/m/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            Some("repository:acme/m:pull".to_owned()),
        ),
        (
            Method::PUT,
            "/v2/acme/m/manifests/v1",
            Some("repository:acme/m:pull,push".to_owned()),
        ),
        (
            Method::DELETE,
            "/v2/acme/m/manifests/v1",
            Some("repository:acme/m:delete".to_owned()),
        ),
        (
            Method::POST,
            "/v2/acme/m/blobs/uploads/?mount=sha256:00&from=acme/src",
            Some("repository:acme/m:pull,push repository:acme/src:pull".to_owned()),
        ),
    ];
    for (method, path, scope) in cases {
        let r = send(
            &f.app,
            method.clone(),
            path,
            &[("host", "127.0.0.1:5050")],
            vec![],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let mut want =
            "Bearer realm=\"http://127.0.0.1:5050/token\",service=\"rampart\"".to_owned();
        if let Some(s) = scope {
            want.push_str(&format!(",scope=\"{s}\""));
        }
        assert_eq!(hdr(&r, "www-authenticate"), want, "{method} {path}");
        assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 1);
    }
    // A Host that is not a plain host[:port] is never reflected: Basic challenge instead.
    for host in ["evil.example/x?", "a\"b", "user@evil:1"] {
        let r = send(&f.app, Method::GET, "/v2/", &[("host", host)], vec![]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(hdr(&r, "www-authenticate").starts_with("Basic "), "{host}");
    }
    // A configured public URL wins over Host.
    assert!(f.state.set_token_service(TokenService {
        public_url: Some("https://registry.example".into()),
        ..TokenService::default()
    }));
    let r = send(
        &f.app,
        Method::GET,
        "/v2/",
        &[("host", "127.0.0.1:1")],
        vec![],
    )
    .await;
    assert_eq!(
        hdr(&r, "www-authenticate"),
        "Bearer realm=\"https://registry.example/token\",service=\"rampart\""
    );
    // Valid credentials without the right: 403 (oras-py asks for a new token only after a 403).
    let reader = token(&f.state, Role::Reader, "acme/**", None).await;
    let r = send(
        &f.app,
        Method::POST,
        "/v2/acme/m/blobs/uploads/",
        &[
            ("authorization", &basic(USER, &reader)),
            ("host", "127.0.0.1:1"),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Every admin API route × every kind of caller: only a global admin gets in.
#[tokio::test]
async fn admin_api_authorisation_matrix() {
    let f = fixture().await;
    push_model(&f, "acme/m", "v1").await;
    let now = rampart_store::now_unix();
    let reader = token(&f.state, Role::Reader, "**", None).await;
    let publisher = token(&f.state, Role::Publisher, "**", None).await;
    let ns_admin = token(&f.state, Role::Admin, "acme/**", None).await;
    let auditor = token(&f.state, Role::Auditor, "**", None).await;
    let expired = token(&f.state, Role::Admin, "**", Some(now - 1)).await;
    let revoked = revoked_token(&f.state, "r", Role::Admin, "**").await;
    let admin_jwt = jwt(&f, &f.admin, "scope=registry:admin:*").await;
    let admin_jwt_no_scope = jwt(&f, &f.admin, "scope=repository:acme/m:pull").await;

    let routes: Vec<(Method, &str, Vec<u8>)> = vec![
        (Method::GET, "/api/v1/tokens", vec![]),
        (
            Method::POST,
            "/api/v1/tokens",
            br#"{"name":"n","role":"reader","namespace":"acme/**"}"#.to_vec(),
        ),
        (Method::DELETE, "/api/v1/tokens/doesnotexist", vec![]),
        (Method::GET, "/api/v1/repositories", vec![]),
        (Method::GET, "/api/v1/repositories/acme/m", vec![]),
    ];
    // The audit routes: an auditor or admin token on `**` (and no JWT without `registry:audit:read`).
    let audit_routes: Vec<(Method, &str, Vec<u8>)> = vec![
        (Method::GET, "/api/v1/audit/checkpoint", vec![]),
        (Method::GET, "/api/v1/audit/verifier-key", vec![]),
        (Method::GET, "/api/v1/audit/records?limit=5", vec![]),
        (Method::GET, "/api/v1/audit/proof/0", vec![]),
        (Method::GET, "/api/v1/audit/entries?start=0&limit=5", vec![]),
        (Method::GET, "/api/v1/audit/checkpoints", vec![]),
    ];
    // A checkpoint covering the first records exists before the audit routes are tried.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let callers: Vec<(&str, Option<String>, Option<bool>)> = vec![
        ("anonymous", None, None),
        ("reader", Some(basic(USER, &reader)), Some(false)),
        ("publisher", Some(basic(USER, &publisher)), Some(false)),
        ("namespace-admin", Some(basic(USER, &ns_admin)), Some(false)),
        ("auditor", Some(basic(USER, &auditor)), Some(false)),
        ("expired", Some(basic(USER, &expired)), None),
        ("revoked", Some(basic(USER, &revoked.secret)), None),
        ("garbage", Some("Bearer nope".into()), None),
        (
            "admin-jwt-without-admin-scope",
            Some(format!("Bearer {admin_jwt_no_scope}")),
            Some(false),
        ),
        ("admin", Some(basic(USER, &f.admin)), Some(true)),
        ("admin-jwt", Some(format!("Bearer {admin_jwt}")), Some(true)),
    ];
    // Check that the matrix covers every non-public documented route.
    let doc: Value = serde_json::from_str(rampart_server::OPENAPI).unwrap();
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len() + audit_routes.len() + 1,
        "openapi.json is public"
    );
    let all = routes
        .iter()
        .map(|r| (r, false))
        .chain(audit_routes.iter().map(|r| (r, true)));
    for ((method, path, body), is_audit) in all {
        for (who, auth, allowed) in &callers {
            let allowed = if is_audit {
                match *who {
                    "auditor" | "admin" => &Some(true),
                    "admin-jwt" => &Some(false),
                    _ => allowed,
                }
            } else {
                allowed
            };
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a.as_str()));
            }
            let r = send(&f.app, method.clone(), path, &headers, body.clone()).await;
            let status = r.status();
            match allowed {
                Some(true) if is_audit => {
                    assert_eq!(status, StatusCode::OK, "{who} {method} {path}")
                }
                Some(true) => assert!(
                    status.is_success() || status == StatusCode::NOT_FOUND,
                    "{who} {method} {path}: {status}"
                ),
                Some(false) | None => {
                    let want = if allowed.is_none() {
                        StatusCode::UNAUTHORIZED
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_eq!(status, want, "{who} {method} {path}");
                    let code = json_body(r).await["error"]["code"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let want_code = if allowed.is_none() {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    assert_eq!(code, want_code, "{who} {method} {path}");
                }
            }
        }
    }
    // The document itself is public.
    let r = send(&f.app, Method::GET, "/api/v1/openapi.json", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // A wrong method gets the API's JSON error shape, with `Allow`.
    let r = send(
        &f.app,
        Method::PUT,
        "/api/v1/tokens",
        &[("authorization", basic(USER, &f.admin).as_str())],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().get("allow").is_some());
    assert_eq!(
        json_body(r).await["error"]["code"],
        serde_json::json!("method_not_allowed")
    );
}

/// The audit log's record lines, read from the directory.
fn stored_lines(f: &Fixture) -> Vec<Vec<u8>> {
    let layout = rampart_audit::layout::Layout::new(f._dir.path().join("audit"));
    let mut out = Vec::new();
    rampart_audit::layout::for_each_line(&layout, |l, terminated| {
        if terminated {
            out.push(l.to_vec());
        }
        true
    })
    .unwrap();
    out
}

#[tokio::test]
async fn audit_entries_and_checkpoints_are_served_exactly_as_stored() {
    let f = fixture().await;
    push_model(&f, "acme/m", "v1").await;
    let auditor = token(&f.state, Role::Auditor, "**", None).await;
    let auth = basic(USER, &auditor);
    let h = [("authorization", auth.as_str())];
    // A checkpoint exists.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    // The whole log: every stored line, byte for byte, in order.
    let r = send(&f.app, Method::GET, "/api/v1/audit/entries", &h, vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "content-type"), "application/x-ndjson");
    assert_eq!(hdr(&r, "cache-control"), "no-store");
    let size: usize = hdr(&r, "rampart-audit-size").parse().unwrap();
    let body = body_bytes(r).await;
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    assert!(lines.iter().all(|l| l.ends_with(b"\n")));
    let stored = stored_lines(&f);
    // Records appended after the page was read (this request's own) are not in it.
    assert!(
        lines.len() >= size && size >= 4,
        "{} lines, size {size}",
        lines.len()
    );
    assert!(stored.len() >= lines.len());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(&l[..l.len() - 1], stored[i].as_slice(), "record {i}");
    }

    // A page in the middle, and past the end.
    let r = send(
        &f.app,
        Method::GET,
        "/api/v1/audit/entries?start=1&limit=3",
        &h,
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body_bytes(r).await;
    let want: Vec<u8> = stored[1..4]
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    assert_eq!(page, want);
    let r = send(
        &f.app,
        Method::GET,
        "/api/v1/audit/entries?start=1000000",
        &h,
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(body_bytes(r).await.is_empty());
    for bad in ["limit=0", "limit=10001", "start=-1", "start=x", "after=3"] {
        let r = send(
            &f.app,
            Method::GET,
            &format!("/api/v1/audit/entries?{bad}"),
            &h,
            vec![],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_body(r).await["error"]["code"], "bad_request");
    }

    // The checkpoint history, exactly as stored (a prefix: the log may sign another meanwhile),
    // ending with the note the checkpoint endpoint serves or one before it.
    let r = send(&f.app, Method::GET, "/api/v1/audit/checkpoints", &h, vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(hdr(&r, "content-type").starts_with("text/plain"));
    let history = body_bytes(r).await;
    assert!(!history.is_empty());
    let on_disk = std::fs::read(f._dir.path().join("audit/checkpoints/history.log")).unwrap();
    assert!(on_disk.starts_with(&history));
    let notes = rampart_audit::layout::split_history(std::str::from_utf8(&history).unwrap());
    let key: rampart_audit::VerifierKey = {
        let r = send(
            &f.app,
            Method::GET,
            "/api/v1/audit/verifier-key",
            &h,
            vec![],
        )
        .await;
        String::from_utf8(body_bytes(r).await)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    for n in &notes {
        rampart_audit::Checkpoint::open(n.as_bytes(), std::slice::from_ref(&key)).unwrap();
    }
}

#[tokio::test]
async fn admin_api_manages_tokens_and_lists_repositories() {
    let f = fixture().await;
    let d = push_model(&f, "acme/m", "v1").await;
    push_model(&f, "acme/m", "v2").await;
    push_model(&f, "zeta", "latest").await;
    let auth = basic(USER, &f.admin);
    let call = |method: Method, path: &'static str, body: &'static str| {
        let app = f.app.clone();
        let auth = auth.clone();
        async move {
            send(
                &app,
                method,
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.as_bytes().to_vec(),
            )
            .await
        }
    };
    // Create: the secret is returned once and works against the registry.
    let r = call(
        Method::POST,
        "/api/v1/tokens",
        r#"{"name":"ci","role":"publisher","namespace":"acme/**","expires_in":3600}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "cache-control"), "no-store");
    let v = json_body(r).await;
    let secret = v["secret"].as_str().unwrap().to_owned();
    let id = v["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["token"]["role"], "publisher");
    assert_eq!(v["token"]["status"], "active");
    assert!(v["token"]["expires_at"].as_i64().unwrap() > rampart_store::now_unix());
    let r = send(
        &f.app,
        Method::GET,
        "/v2/acme/m/tags/list",
        &[("authorization", &basic(USER, &secret))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // List: no secrets, no hashes.
    let r = call(Method::GET, "/api/v1/tokens", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let listed = json_body(r).await;
    let text = listed.to_string();
    assert!(!text.contains(&secret) && !text.contains("hash"));
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .any(|t| t["id"] == id.as_str() && t["name"] == "ci")
    );
    // Revoke: 204, then the secret stops working; a second revoke is 404.
    let path: &'static str = Box::leak(format!("/api/v1/tokens/{id}").into_boxed_str());
    let r = call(Method::DELETE, path, "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        &f.app,
        Method::GET,
        "/v2/acme/m/tags/list",
        &[("authorization", &basic(USER, &secret))],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = call(Method::DELETE, path, "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(r).await["error"]["code"], "not_found");
    // Bad bodies: 400 in the API's error shape.
    for body in [
        "",
        "{",
        r#"{"name":"x","role":"root","namespace":"**"}"#,
        r#"{"name":"x","role":"reader","namespace":"../x"}"#,
        r#"{"name":"","role":"reader","namespace":"**"}"#,
        r#"{"name":"x","role":"reader","namespace":"**","expires_in":0}"#,
        r#"{"name":"x","role":"reader","namespace":"**","admin":true}"#,
    ] {
        let r = call(Method::POST, "/api/v1/tokens", body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_body(r).await["error"]["code"], "bad_request");
    }
    // Repositories with tag counts, then one repository's tags and manifests.
    let r = call(Method::GET, "/api/v1/repositories", "").await;
    assert_eq!(
        json_body(r).await,
        json!({"repositories": [
            {"name": "acme/m", "tag_count": 2},
            {"name": "zeta", "tag_count": 1},
        ]})
    );
    let r = call(Method::GET, "/api/v1/repositories/acme/m", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_body(r).await;
    assert_eq!(v["name"], "acme/m");
    assert_eq!(v["tags"][0]["tag"], "v1");
    assert_eq!(v["tags"][0]["digest"], d.to_string());
    assert_eq!(
        v["tags"][0]["artifact_type"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    let r = call(Method::GET, "/api/v1/repositories/acme/none", "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = call(Method::GET, "/api/v1/repositories/..%2Fetc", "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = call(Method::GET, "/api/v1/nope", "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(r).await["error"]["code"], "not_found");
}

/// The committed `docs/openapi.json` is the document the server serves.
#[tokio::test]
async fn committed_openapi_matches_the_served_document() {
    let f = fixture().await;
    let r = send(&f.app, Method::GET, "/api/v1/openapi.json", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "content-type"), "application/json");
    let served = json_body(r).await;
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .unwrap();
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        served, committed,
        "docs/openapi.json is stale: copy crates/rampart-server/src/openapi.json"
    );
}

/// Without credentials `/token` issues an anonymous JWT: pull only where anonymous pull is
/// configured, and worth exactly as much as no credentials.
#[tokio::test]
async fn anonymous_token_is_worth_no_more_than_no_credentials() {
    let f = fixture().await;
    push_model(&f, "public/m", "v1").await;
    push_model(&f, "acme/m", "v1").await;
    assert!(
        f.state
            .set_anonymous_pull(vec!["public/**".parse().unwrap()])
    );
    let r = send(
        &f.app,
        Method::GET,
        "/token?service=rampart&scope=repository:public/m:pull,push&scope=repository:acme/m:pull&scope=registry:catalog:*",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t = json_body(r).await["token"].as_str().unwrap().to_owned();
    assert_eq!(
        access(&t),
        json!([{"type": "repository", "name": "public/m", "actions": ["pull"]}])
    );
    let bearer = format!("Bearer {t}");
    let status = |method: Method, path: &'static str| {
        let app = f.app.clone();
        let bearer = bearer.clone();
        async move {
            send(&app, method, path, &[("authorization", &bearer)], vec![])
                .await
                .status()
        }
    };
    assert_eq!(
        status(Method::GET, "/v2/public/m/manifests/v1").await,
        StatusCode::OK
    );
    assert_eq!(
        status(Method::GET, "/v2/acme/m/manifests/v1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(Method::POST, "/v2/public/m/blobs/uploads/").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(Method::GET, "/api/v1/tokens").await,
        StatusCode::UNAUTHORIZED
    );
}
