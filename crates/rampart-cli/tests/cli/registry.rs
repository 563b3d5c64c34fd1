//! `rampart serve` and `rampart token` as a real process, driven by raw HTTP, skopeo and oras-py.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64ct::Encoding as _;
use rampart_core::Digest;

use crate::{rampart, tool_available};

/// A running `rampart serve` on an OS-chosen loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    data: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    startup: Duration,
}

impl Server {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let data = dir.join("data");
        let n = fs::read_dir(dir).unwrap().count();
        let stdout = dir.join(format!("serve-{n}.out"));
        let stderr = dir.join(format!("serve-{n}.err"));
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(extra)
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start rampart serve");
        let mut server = Server {
            child,
            port: 0,
            data,
            stdout,
            stderr,
            startup: Duration::ZERO,
        };
        while started.elapsed() < Duration::from_secs(30) {
            let log = fs::read_to_string(&server.stderr).unwrap_or_default();
            if let Some(rest) = log
                .split("listening on http://127.0.0.1:")
                .nth(1)
                .or_else(|| log.split("listening on https://127.0.0.1:").nth(1))
            {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                server.port = port.parse().unwrap();
                server.startup = started.elapsed();
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("rampart serve exited with {status}: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rampart serve did not report its address");
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn admin_token(&self) -> String {
        fs::read_to_string(self.data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap()
    }

    /// SIGTERM, then wait: the server must shut down gracefully with status 0.
    fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request; returns (status, whole response text).
fn http(host: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    http_with(host, method, path, token, "")
}

/// [`http`] with extra header lines (each ending in `\r\n`).
fn http_with(
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| {
        format!(
            "Authorization: Basic {}\r\n",
            base64ct::Base64::encode_string(format!("user:{t}").as_bytes())
        )
    });
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let out = String::from_utf8_lossy(&raw).into_owned();
    let status = out.get(9..12).unwrap_or("0").parse().unwrap_or(0);
    (status, out)
}

/// The body of a `GET` (Rampart sends blobs with `Content-Length`, so the body is the raw bytes).
fn get_body(host: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = base64ct::Base64::encode_string(format!("user:{token}").as_bytes());
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let status = String::from_utf8_lossy(raw.get(9..12).unwrap_or(b"0"))
        .parse()
        .unwrap_or(0);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (status, raw.split_off(split + 4))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serve_first_start_auth_restart_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // The startup budget is one second; allow slack for a loaded CI machine but catch regressions.
    assert!(
        server.startup < Duration::from_secs(5),
        "startup took {:?}",
        server.startup
    );
    let token = server.admin_token();
    assert!(token.starts_with("rampart_") && token.len() == 8 + 64);
    assert_eq!(
        fs::read_to_string(&server.stdout).unwrap().trim(),
        token,
        "printed once on stdout"
    );
    for f in ["admin-token", "token-key"] {
        let mode = fs::metadata(server.data.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let host = server.host();
    let (status, resp) = http(&host, "GET", "/v2/", None);
    assert_eq!(status, 401);
    // The challenge points at this server's token endpoint (Basic is still accepted).
    assert!(
        resp.to_ascii_lowercase().contains(&format!(
            "www-authenticate: bearer realm=\"http://{host}/token\",service=\"rampart\""
        )),
        "{resp}"
    );
    assert_eq!(http(&host, "GET", "/v2/", Some(&token)).0, 200);
    assert_eq!(http(&host, "GET", "/v2/", Some("rampart_nope")).0, 401);
    assert_eq!(http(&host, "GET", "/healthz", None).0, 200);
    assert_eq!(http(&host, "GET", "/readyz", None).0, 200);
    let (status, resp) = http(&host, "GET", "/v2/%2e%2e/x/tags/list", Some(&token));
    assert_eq!(status, 400);
    assert!(resp.contains("NAME_INVALID"));
    let log = server.log();
    assert!(!log.contains(&token), "the token leaked into the log");
    assert!(log.contains("\"request_id\""), "logs carry a request id");
    assert!(log.contains("\"principal\""), "logs name the token id");
    server.terminate();

    // A restart keeps the data and prints no new token.
    let server = Server::start(dir.path());
    assert_eq!(fs::read_to_string(&server.stdout).unwrap(), "");
    assert_eq!(http(&server.host(), "GET", "/v2/", Some(&token)).0, 200);
    drop(server);

    // Non-loopback without TLS is refused.
    let out = rampart(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-plaintext"));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn token_commands_against_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let data = server.data.to_str().unwrap().to_owned();
    let out = rampart(&[
        "token",
        "create",
        "--name",
        "ci",
        "--role",
        "reader",
        "--namespace",
        "acme/**",
        "--expires",
        "30d",
        "--data",
        &data,
    ]);
    let secret = ok("token create", &out).trim().to_owned();
    assert!(secret.starts_with("rampart_"));
    let list = ok("token list", &rampart(&["token", "list", "--data", &data]));
    assert!(
        list.contains("ci") && list.contains("reader") && list.contains("acme/**"),
        "{list}"
    );
    assert!(!list.contains(&secret), "list must never show secrets");
    let host = server.host();
    assert_eq!(http(&host, "GET", "/v2/", Some(&secret)).0, 200);
    assert_eq!(
        http(&host, "GET", "/v2/other/x/tags/list", Some(&secret)).0,
        403
    );
    let id = list
        .lines()
        .find(|l| l.contains(" ci "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    ok(
        "token revoke",
        &rampart(&["token", "revoke", &id, "--data", &data]),
    );
    assert_eq!(http(&host, "GET", "/v2/", Some(&secret)).0, 401);
    let list = ok("token list", &rampart(&["token", "list", "--data", &data]));
    assert!(list.contains("revoked"));
    assert_eq!(
        rampart(&["token", "revoke", &id, "--data", &data])
            .status
            .code(),
        Some(2)
    );
    let bad = rampart(&[
        "token",
        "create",
        "--name",
        "x",
        "--role",
        "root",
        "--namespace",
        "**",
        "--data",
        &data,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = rampart(&[
        "token",
        "create",
        "--name",
        "x",
        "--role",
        "reader",
        "--namespace",
        "../x",
        "--data",
        &data,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let missing = rampart(&[
        "token",
        "list",
        "--data",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A `dir:` image layout holding a ModelPack artifact; returns the manifest bytes.
fn modelpack_dir(dir: &Path) -> Vec<u8> {
    fs::create_dir_all(dir).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        fs::write(dir.join(d.hex()), bytes).unwrap();
        d
    };
    let config = br#"{"descriptor":{"name":"tiny"},"config":{"format":"gguf"},"modelfs":{"type":"layers","diffIds":[]}}"#;
    let weights: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (c, w) = (put(config), put(&weights));
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": c, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": w, "size": weights.len(),
                    "annotations": {"org.opencontainers.image.title": "model.gguf"}}],
    }))
    .unwrap();
    fs::write(dir.join("manifest.json"), &manifest).unwrap();
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    manifest
}

fn same_files(a: &Path, b: &Path) {
    let mut names: Vec<_> = fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut other: Vec<_> = fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    other.sort();
    assert_eq!(names, other);
    for n in names {
        assert_eq!(
            fs::read(a.join(&n)).unwrap(),
            fs::read(b.join(&n)).unwrap(),
            "{n:?} differs"
        );
    }
}

#[test]
fn skopeo_copies_in_out_between_repos_lists_and_inspects() {
    if !tool_available("skopeo", "skopeo", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let token = server.admin_token();
    let creds = format!("user:{token}");
    let host = server.host();
    let src = dir.path().join("src");
    let manifest = modelpack_dir(&src);
    let want = Digest::of(&manifest).to_string();
    let dest = |repo: &str| format!("docker://{host}/{repo}");
    let push = |from: &str, to: &str| {
        run(
            "skopeo",
            &[
                "copy",
                "--dest-creds",
                &creds,
                "--dest-tls-verify=false",
                from,
                to,
            ],
        )
    };
    let copy = |from: &str, to: &str| {
        run(
            "skopeo",
            &[
                "copy",
                "--preserve-digests",
                "--src-creds",
                &creds,
                "--dest-creds",
                &creds,
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                from,
                to,
            ],
        )
    };
    let src_ref = format!("dir:{}", src.display());
    ok(
        "skopeo copy dir: -> docker://",
        &push(&src_ref, &dest("acme/model:v1")),
    );
    ok(
        "skopeo copy (second tag)",
        &push(&src_ref, &dest("acme/model:v2")),
    );
    let raw = ok(
        "skopeo inspect --raw",
        &run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--creds",
                &creds,
                "--tls-verify=false",
                &dest("acme/model:v1"),
            ],
        ),
    );
    assert_eq!(raw.as_bytes(), manifest.as_slice(), "exact manifest bytes");
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), want);
    let tags = ok(
        "skopeo list-tags",
        &run(
            "skopeo",
            &[
                "list-tags",
                "--creds",
                &creds,
                "--tls-verify=false",
                &dest("acme/model"),
            ],
        ),
    );
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));

    // Between repositories (skopeo mounts blobs it knows to be on this registry): digest preserved.
    ok(
        "skopeo copy between repos",
        &copy(&dest("acme/model:v1"), &dest("acme/copy:v1")),
    );
    assert!(
        server.log().contains("blob mounted"),
        "skopeo mounted the layer from acme/model"
    );
    let raw = ok(
        "skopeo inspect --raw (copy)",
        &run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--creds",
                &creds,
                "--tls-verify=false",
                &dest(&format!("acme/copy@{want}")),
            ],
        ),
    );
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), want);

    // Out again, to dir: (byte-identical) and to an oci: layout, and from that layout back in.
    let out = dir.path().join("out");
    ok(
        "skopeo copy docker:// -> dir:",
        &run(
            "skopeo",
            &[
                "copy",
                "--src-creds",
                &creds,
                "--src-tls-verify=false",
                &dest("acme/copy:v1"),
                &format!("dir:{}", out.display()),
            ],
        ),
    );
    same_files(&src, &out);
    let layout = format!("oci:{}:v1", dir.path().join("layout").display());
    ok(
        "skopeo copy docker:// -> oci:",
        &run(
            "skopeo",
            &[
                "copy",
                "--src-creds",
                &creds,
                "--src-tls-verify=false",
                &dest("acme/model:v1"),
                &layout,
            ],
        ),
    );
    ok(
        "skopeo copy oci: -> docker://",
        &push(&layout, &dest("acme/from-oci:v1")),
    );
    let raw = ok(
        "skopeo inspect --raw (from oci)",
        &run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--creds",
                &creds,
                "--tls-verify=false",
                &dest("acme/from-oci:v1"),
            ],
        ),
    );
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), want);

    // Wrong credentials and a reader token cannot push.
    let wrong = run(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            "user:rampart_bad",
            "--dest-tls-verify=false",
            &src_ref,
            &dest("acme/x:v1"),
        ],
    );
    assert!(!wrong.status.success());
    let reader = ok(
        "token create",
        &rampart(&[
            "token",
            "create",
            "--name",
            "r",
            "--role",
            "reader",
            "--namespace",
            "acme/**",
            "--data",
            server.data.to_str().unwrap(),
        ]),
    );
    let reader_creds = format!("user:{}", reader.trim());
    let denied = run(
        "skopeo",
        &[
            "copy",
            "--dest-creds",
            &reader_creds,
            "--dest-tls-verify=false",
            &src_ref,
            &dest("acme/x:v1"),
        ],
    );
    assert!(!denied.status.success());
    ok(
        "reader pull",
        &run(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--creds",
                &reader_creds,
                "--tls-verify=false",
                &dest("acme/model:v1"),
            ],
        ),
    );
    // skopeo answered the Bearer challenge: everything above went through the token flow.
    let log = server.log();
    assert!(log.contains("registry token issued"), "{log}");
    assert!(!log.contains(&token));
    // Every one of skopeo's requests is in the audit log, which verifies: the push of the manifest
    // by the admin token (as a JWT), the reader's pulls, the token requests.
    let data = server.data.to_str().unwrap().to_owned();
    server.terminate();
    ok(
        "audit verify",
        &crate::rampart(&["audit", "verify", "--data", &data]),
    );
    let records = ok(
        "audit log",
        &crate::rampart(&[
            "audit",
            "log",
            "--data",
            &data,
            "--repo",
            "acme/model",
            "--format",
            "json",
        ]),
    );
    let records: Vec<serde_json::Value> = records
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = |action: &str, kind: &str| {
        records.iter().any(|r| {
            r["action"] == action
                && r["stage"] == "completed"
                && r["decision"] == "allow"
                && r["principal"]["kind"] == kind
        })
    };
    assert!(done("manifest.push", "jwt"), "no manifest push by skopeo");
    assert!(done("blob.push", "jwt"), "no blob push by skopeo");
    assert!(done("manifest.pull", "jwt"), "no manifest pull by skopeo");
    assert!(
        records
            .iter()
            .all(|r| !r.to_string().contains(&token) && !r.to_string().contains(reader.trim())),
        "a secret in the audit log"
    );
}

#[test]
fn oras_pushes_and_pulls_a_modelpack_artifact() {
    if !tool_available("oras (PyPI)", "python3", &["-c", "import oras.client"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let token = server.admin_token();
    let work = dir.path().join("oras");
    fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/oras_modelpack.py");
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            &server.host(),
            &token,
            work.to_str().unwrap(),
            "acme/modelpack:v1",
            "basic",
        ],
    );
    let digest = ok("oras-py ModelPack push/pull", &out);
    // The registry serves the manifest oras pushed under the digest oras computed.
    let (status, _) = http(
        &server.host(),
        "HEAD",
        &format!("/v2/acme/modelpack/manifests/{}", digest.trim()),
        Some(&token),
    );
    assert_eq!(status, 200);
    assert!(!server.log().contains(&token));
}

/// One monolithic upload over raw HTTP; `Some((status, audit id))` if a response arrived.
fn upload(host: &str, token: &str, repo: &str, body: &[u8]) -> Option<(u16, Option<String>)> {
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let auth = base64ct::Base64::encode_string(format!("u:{token}").as_bytes());
    let head = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\
         Content-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        Digest::of(body),
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some((out.get(9..12)?.parse().ok()?, audit_id_of(&out)))
}

/// Crash safety: SIGKILL the server in the middle of 200 concurrent uploads, restart it, and check that
/// every acknowledged blob is intact and served, and that nothing partial is ever visible.
#[test]
fn sigkill_during_concurrent_uploads_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let token = server.admin_token();
    let host = server.host();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let blobs: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            (0..100_000u32)
                .map(|j| (i.wrapping_mul(7919) ^ j.wrapping_mul(31) ^ seed) as u8)
                .collect()
        })
        .collect();
    let blobs = std::sync::Arc::new(blobs);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let (blobs, acked, host, token) =
                (blobs.clone(), acked.clone(), host.clone(), token.clone());
            std::thread::spawn(move || {
                for i in (t..200).step_by(20) {
                    if let Some((201, id)) = upload(&host, &token, "crash/test", &blobs[i]) {
                        acked.lock().unwrap().push((i, id));
                    }
                }
            })
        })
        .collect();
    // Kill at a pseudo-random point while uploads are in flight.
    std::thread::sleep(Duration::from_millis(50 + u64::from(seed % 400)));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    // The audit log survives the kill: it verifies (a torn, unacknowledged tail is not damage), and
    // every acknowledged upload has its completed record.
    let data = server.data.to_str().unwrap().to_owned();
    let verify = crate::rampart(&["audit", "verify", "--data", &data]);
    assert!(
        verify.status.success(),
        "audit verify after SIGKILL: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let mut completed = std::collections::HashMap::new();
    rampart_audit::tools::query(
        &server.data.join("audit"),
        &rampart_audit::tools::Filter::default(),
        |r| {
            if r.stage == rampart_audit::Stage::Completed {
                completed.insert(r.audit_id.clone(), r.status);
            }
        },
    )
    .unwrap();
    for (i, id) in &acked {
        let id = id
            .as_deref()
            .unwrap_or_else(|| panic!("upload {i}: no audit id"));
        assert_eq!(
            completed.get(id),
            Some(&Some(201)),
            "acknowledged upload {i} has no completed record"
        );
    }
    let acked: Vec<usize> = acked.iter().map(|(i, _)| *i).collect();

    // Consistency check of the store on disk: every published blob hashes to its name.
    let root = server.data.join("blobs/sha256");
    for prefix in fs::read_dir(&root).unwrap() {
        for file in fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert_eq!(
                Digest::of(&fs::read(&path).unwrap()).hex(),
                name,
                "corrupt blob {name}"
            );
        }
    }
    // The same check, and more (every link has its blob, no stray files), by `rampart fsck`.
    let fsck = crate::rampart(&["fsck", "--data", server.data.to_str().unwrap()]);
    assert!(
        fsck.status.success(),
        "fsck after SIGKILL: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    drop(server);
    let server = Server::start(dir.path());
    let host = server.host();
    for (i, content) in blobs.iter().enumerate() {
        let d = Digest::of(content);
        let (status, body) = get_body(&host, &format!("/v2/crash/test/blobs/{d}"), &token);
        if acked.contains(&i) {
            assert_eq!(status, 200, "acknowledged blob {i} lost");
        }
        if status == 200 {
            assert!(body == *content, "blob {i} served with different bytes");
        } else {
            assert_eq!(status, 404, "blob {i}: {status}");
        }
    }
    // After the restart (recovery) and a clean stop (final checkpoint), the log still verifies.
    server.terminate();
    let verify = crate::rampart(&["audit", "verify", "--data", &data]);
    assert!(
        verify.status.success(),
        "audit verify after restart: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// oras-py's token backend: Bearer challenge, `GET /token` with Basic, then JWTs for the push (it
/// reuses its first token, so the grant must already include push), the pull and a referrer.
#[test]
fn oras_token_flow_pushes_pulls_and_attaches_a_referrer() {
    if !tool_available("oras (PyPI)", "python3", &["-c", "import oras.client"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let token = server.admin_token();
    // A publisher on acme/** (not the admin): the JWT must grant push, never delete.
    let publisher = ok(
        "token create",
        &rampart(&[
            "token",
            "create",
            "--name",
            "oras",
            "--role",
            "publisher",
            "--namespace",
            "acme/**",
            "--data",
            server.data.to_str().unwrap(),
        ]),
    );
    let work = dir.path().join("oras");
    fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/oras_modelpack.py");
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            &server.host(),
            publisher.trim(),
            work.to_str().unwrap(),
            "acme/tokenflow:v1",
            "token",
        ],
    );
    let digest = ok("oras-py token-flow ModelPack push/pull/referrer", &out);
    let (status, _) = http(
        &server.host(),
        "HEAD",
        &format!("/v2/acme/tokenflow/manifests/{}", digest.trim()),
        Some(&token),
    );
    assert_eq!(status, 200);
    let log = server.log();
    assert!(log.contains("registry token issued"), "{log}");
    assert!(!log.contains(publisher.trim()) && !log.contains(&token));
}

fn rampart_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(args)
        .env_remove("RAMPART_TOKEN")
        .env_remove("RAMPART_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `rampart token create|list|revoke --server URL` through the admin API, with the admin token from
/// a file or `RAMPART_TOKEN`, never from a flag.
#[test]
fn token_commands_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let url = format!("http://{}", server.host());
    let token_file = server.data.join("admin-token");
    let token_file = token_file.to_str().unwrap();
    let out = rampart_with_env(
        &[
            "token",
            "create",
            "--server",
            &url,
            "--token-file",
            token_file,
            "--name",
            "remote",
            "--role",
            "reader",
            "--namespace",
            "acme/**",
            "--expires",
            "1d",
        ],
        &[],
    );
    let secret = ok("token create --server", &out).trim().to_owned();
    assert!(secret.starts_with("rampart_"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reader on acme/**, expires"), "{stderr}");
    let host = server.host();
    assert_eq!(http(&host, "GET", "/v2/", Some(&secret)).0, 200);
    // List with the token from the environment (and the server from RAMPART_SERVER).
    let admin = server.admin_token();
    let list = ok(
        "token list (env)",
        &rampart_with_env(
            &["token", "list"],
            &[("RAMPART_SERVER", &url), ("RAMPART_TOKEN", &admin)],
        ),
    );
    assert!(
        list.contains("remote") && list.contains("acme/**"),
        "{list}"
    );
    assert!(!list.contains(&secret) && !list.contains(&admin));
    let id = list
        .lines()
        .find(|l| l.contains(" remote "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    ok(
        "token revoke --server",
        &rampart_with_env(
            &[
                "token",
                "revoke",
                &id,
                "--server",
                &url,
                "--token-file",
                token_file,
            ],
            &[],
        ),
    );
    assert_eq!(http(&host, "GET", "/v2/", Some(&secret)).0, 401);
    let list = ok(
        "token list --server",
        &rampart_with_env(
            &[
                "token",
                "list",
                "--server",
                &url,
                "--token-file",
                token_file,
            ],
            &[],
        ),
    );
    assert!(
        list.lines()
            .any(|l| l.contains(" remote ") && l.ends_with("revoked")),
        "{list}"
    );
    let again = rampart_with_env(
        &[
            "token",
            "revoke",
            &id,
            "--server",
            &url,
            "--token-file",
            token_file,
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(2));
    // A non-admin token is refused by the server (403), no admin token at all by the CLI.
    let reader_file = dir.path().join("reader-token");
    fs::write(&reader_file, format!("{secret}\n")).unwrap();
    let refused = rampart_with_env(
        &[
            "token",
            "list",
            "--server",
            &url,
            "--token-file",
            reader_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    let missing = rampart_with_env(&["token", "list", "--server", &url], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("RAMPART_TOKEN"));
    // Plain HTTP to a non-loopback host is refused before anything is sent.
    let remote = rampart_with_env(
        &["token", "list", "--server", "http://registry.example:5050"],
        &[("RAMPART_TOKEN", &admin)],
    );
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("non-loopback"));
    assert!(!server.log().contains(&admin));
}

/// `rampart token --server https://…` trusts exactly `--ca-cert` and refuses a server it cannot
/// verify.
#[test]
fn token_commands_over_tls() {
    if !tool_available("openssl", "openssl", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let make_cert = |name: &str| {
        let (cert, key) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}.key")),
        );
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                // A self-signed end-entity certificate (webpki refuses a CA as the server's).
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(made, "openssl could not make a certificate");
        (cert, key)
    };
    let (cert, key) = make_cert("server");
    let (other_cert, _) = make_cert("other");
    let server = Server::start_with(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://{}", server.host());
    let token_file = server.data.join("admin-token");
    let token_file = token_file.to_str().unwrap();
    let list = |ca: &Path| {
        rampart_with_env(
            &[
                "token",
                "list",
                "--server",
                &url,
                "--token-file",
                token_file,
                "--ca-cert",
                ca.to_str().unwrap(),
            ],
            &[],
        )
    };
    let out = ok("token list over TLS", &list(&cert));
    assert!(out.contains("admin") && out.contains("**"), "{out}");
    // A certificate the server does not have: the handshake fails before the token is sent.
    let refused = list(&other_cert);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("TLS handshake"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // https without --ca-cert is a usage error.
    let missing = rampart_with_env(
        &[
            "token",
            "list",
            "--server",
            &url,
            "--token-file",
            token_file,
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--ca-cert"));
}

/// The body of a raw HTTP response.
fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `rampart audit log|prove --server URL` read a running server's audit log through the admin API
/// with an auditor token (from RAMPART_TOKEN or a file), print what the data-directory mode prints,
/// and refuse clearly with a token that cannot read the log.
#[test]
fn audit_log_and_prove_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let host = server.host();
    let url = format!("http://{host}");
    let admin = server.admin_token();
    let admin_file = server.data.join("admin-token");
    let admin_file = admin_file.to_str().unwrap();
    let data = server.data.to_str().unwrap().to_owned();

    // A push and a pull of one blob, as the admin, over raw HTTP.
    let blob = b"weights of a very small model".to_vec();
    let digest = Digest::of(&blob);
    assert_eq!(upload(&host, &admin, "acme/llama", &blob).unwrap().0, 201);
    let (status, body) = get_body(&host, &format!("/v2/acme/llama/blobs/{digest}"), &admin);
    assert_eq!((status, body), (200, blob));

    // An auditor and a reader, both on **, made through the admin API.
    let create = |name: &str, role: &str| {
        let out = rampart_with_env(
            &[
                "token",
                "create",
                "--server",
                &url,
                "--token-file",
                admin_file,
                "--name",
                name,
                "--role",
                role,
                "--namespace",
                "**",
            ],
            &[],
        );
        ok("token create --server", &out).trim().to_owned()
    };
    let auditor = create("auditor", "auditor");
    let reader = create("reader", "reader");

    // Text: the pull, by whom, of what; and exactly what the data-directory mode prints.
    let audit_log = |extra: &[&str], token: &str| {
        let mut args = vec!["audit", "log", "--server", &url, "--action", "blob.pull"];
        args.extend_from_slice(extra);
        rampart_with_env(&args, &[("RAMPART_TOKEN", token)])
    };
    let text = ok("audit log --server", &audit_log(&[], &auditor));
    let pulls: Vec<&str> = text.lines().collect();
    assert_eq!(pulls.len(), 1, "{text}");
    assert!(
        pulls[0].contains("blob.pull")
            && pulls[0].contains(&format!("acme/llama:- {digest}"))
            && pulls[0].contains(" 200 allow"),
        "{text}"
    );
    let local = ok(
        "audit log --data",
        &rampart_with_env(
            &["audit", "log", "--data", &data, "--action", "blob.pull"],
            &[],
        ),
    );
    assert_eq!(text, local);

    // JSON: the canonical stored lines, the same through the API as from the data directory, and
    // the same whatever the page size (every record, in order, once).
    let remote_json = ok(
        "audit log --server --format json",
        &audit_log(&["--format", "json"], &auditor),
    );
    let line = remote_json.trim_end().to_owned();
    let record = rampart_audit::Record::parse_line(line.as_bytes()).unwrap();
    assert_eq!(record.digest.as_deref(), Some(digest.to_string().as_str()));
    let all_local = ok(
        "audit log --data --format json",
        &rampart_with_env(&["audit", "log", "--data", &data, "--format", "json"], &[]),
    );
    let all_remote = ok(
        "audit log --server (pages of 2)",
        &rampart_with_env(
            &[
                "audit",
                "log",
                "--server",
                &url,
                "--format",
                "json",
                "--page-size",
                "2",
            ],
            &[("RAMPART_TOKEN", &auditor)],
        ),
    );
    // The remote listing is itself audited, so it may end with records the local one had not seen.
    assert!(all_local.lines().count() >= 5, "{all_local}");
    assert!(
        all_remote.starts_with(&all_local),
        "{all_remote}\n---\n{all_local}"
    );
    // An admin token reads the log too (the server as RAMPART_SERVER, the token from a file).
    let as_admin = rampart_with_env(
        &[
            "audit",
            "log",
            "--action",
            "blob.pull",
            "--token-file",
            admin_file,
        ],
        &[("RAMPART_SERVER", &url)],
    );
    assert_eq!(ok("audit log (admin)", &as_admin), text);

    // Refusals: a reader token (403), an unknown token (401), no token at all.
    let refused = audit_log(&[], &reader);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("403") && err.contains("an auditor or admin token on **"),
        "{err}"
    );
    assert!(refused.stdout.is_empty());
    let unknown = audit_log(&[], &format!("rampart_{}", "0".repeat(64)));
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("401") && err.contains("an auditor or admin token on **"),
        "{err}"
    );
    let missing = rampart_with_env(&["audit", "log", "--server", &url], &[]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("RAMPART_TOKEN") && err.contains("auditor"),
        "{err}"
    );

    // A proof of the pull record, with the auditor token from a file. Checkpoints are signed at
    // least every second while records arrive; until one covers the record, prove says so.
    let auditor_file = dir.path().join("auditor-token");
    fs::write(&auditor_file, format!("{auditor}\n")).unwrap();
    let index = record.seq.to_string();
    let record_file = dir.path().join("pull.json");
    let proof_file = dir.path().join("pull.tlog-proof");
    let deadline = Instant::now() + Duration::from_secs(20);
    let proof = loop {
        let out = rampart_with_env(
            &[
                "audit",
                "prove",
                &index,
                "--server",
                &url,
                "--token-file",
                auditor_file.to_str().unwrap(),
                "--record",
                record_file.to_str().unwrap(),
            ],
            &[],
        );
        if out.status.success() {
            break out.stdout;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("not covered") && Instant::now() < deadline,
            "audit prove --server: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        proof.starts_with(format!("c2sp.org/tlog-proof@v1\nindex {index}\n").as_bytes()),
        "{}",
        String::from_utf8_lossy(&proof)
    );
    fs::write(&proof_file, &proof).unwrap();
    assert_eq!(
        fs::read_to_string(&record_file).unwrap(),
        format!("{line}\n")
    );
    // The verifier key served to the auditor is the one in the data directory.
    let (status, resp) = http(&host, "GET", "/api/v1/audit/verifier-key", Some(&auditor));
    assert_eq!(status, 200, "{resp}");
    let vkey = body_of(&resp).trim().to_owned();
    assert_eq!(
        vkey,
        fs::read_to_string(server.data.join("audit/verifier-key"))
            .unwrap()
            .trim()
    );
    // Checked offline, with neither the data directory nor the server.
    let checked = rampart_with_env(
        &[
            "audit",
            "check-proof",
            proof_file.to_str().unwrap(),
            "--key",
            &vkey,
            "--record",
            record_file.to_str().unwrap(),
            "--data",
            dir.path().join("nowhere").to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "check-proof: {err}");
    assert!(err.contains(&format!("proof OK: record {index}")), "{err}");
    // A reader cannot get a proof either.
    let refused = rampart_with_env(
        &["audit", "prove", &index, "--server", &url],
        &[("RAMPART_TOKEN", &reader)],
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("an auditor or admin token on **"), "{err}");

    let log = server.log();
    assert!(!log.contains(&auditor) && !log.contains(&reader) && !log.contains(&admin));
}

/// `rampart audit verify|export --server`: an auditor with no access to the data directory checks
/// the whole log against a pinned key, and exports it as the data-directory mode does.
#[test]
fn audit_verify_and_export_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let host = server.host();
    let url = format!("http://{host}");
    let admin = server.admin_token();
    let admin_file = server.data.join("admin-token");
    let data = server.data.to_str().unwrap().to_owned();

    // Some traffic: a push and a pull, and an auditor token made through the admin API.
    let blob = b"weights of another very small model".to_vec();
    let digest = Digest::of(&blob);
    assert_eq!(upload(&host, &admin, "acme/tiny", &blob).unwrap().0, 201);
    let (status, _) = get_body(&host, &format!("/v2/acme/tiny/blobs/{digest}"), &admin);
    assert_eq!(status, 200);
    let auditor = ok(
        "token create --server",
        &rampart_with_env(
            &[
                "token",
                "create",
                "--server",
                &url,
                "--token-file",
                admin_file.to_str().unwrap(),
                "--name",
                "auditor",
                "--role",
                "auditor",
                "--namespace",
                "**",
            ],
            &[],
        ),
    )
    .trim()
    .to_owned();
    let auditor_file = dir.path().join("auditor-token");
    fs::write(&auditor_file, format!("{auditor}\n")).unwrap();
    let auditor_file = auditor_file.to_str().unwrap();
    // A checkpoint over this traffic (signed within a second), so the history grows past one.
    std::thread::sleep(Duration::from_millis(1500));
    // The key, pinned from the data directory (out of band, as an operator would hand it over).
    let vkey = fs::read_to_string(server.data.join("audit/verifier-key"))
        .unwrap()
        .trim()
        .to_owned();
    // The auditor's view: no data directory.
    let nowhere = dir.path().join("nowhere");
    let nowhere = nowhere.to_str().unwrap();
    let remote = |args: &[&str]| {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--server",
            &url,
            "--token-file",
            auditor_file,
            "--data",
            nowhere,
        ]);
        rampart_with_env(&all, &[])
    };

    // Intact: exit 0, every record checked.
    let out = remote(&["verify", "--key", &vkey]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("audit log OK: ") && err.contains("downloaded "),
        "{err}"
    );
    assert!(!err.contains("verifier-key file"), "{err}");
    // A trusted checkpoint kept from earlier must still be in the log.
    let trusted = dir.path().join("trusted-checkpoint");
    fs::copy(server.data.join("audit/checkpoints/latest"), &trusted).unwrap();
    let out = remote(&[
        "verify",
        "--key",
        &vkey,
        "--trusted-checkpoint",
        trusted.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another key (same name): the checkpoints do not verify, exit 1.
    let name = vkey.split('+').next().unwrap();
    let other = rampart_audit::NoteSigner::generate(name)
        .unwrap()
        .verifier()
        .to_string();
    let out = remote(&["verify", "--key", &other]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("audit log DAMAGED") && err.contains("bad-signature"),
        "{err}"
    );

    // No key: refused before anything is fetched, saying why.
    let out = remote(&["verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--key") && err.contains("out of band") && !err.contains("downloaded"),
        "{err}"
    );
    // A reader token is refused.
    let reader = ok(
        "token create --server",
        &rampart_with_env(
            &[
                "token",
                "create",
                "--server",
                &url,
                "--token-file",
                admin_file.to_str().unwrap(),
                "--name",
                "reader",
                "--role",
                "reader",
                "--namespace",
                "**",
            ],
            &[],
        ),
    )
    .trim()
    .to_owned();
    let out = rampart_with_env(
        &["audit", "verify", "--server", &url, "--key", &vkey],
        &[("RAMPART_TOKEN", &reader)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("403") && err.contains("an auditor or admin token on **"),
        "{err}"
    );

    // JSONL: the stored lines, as the data-directory export writes them. Every request appends
    // records, so the later (local) export may hold more: the remote one is a prefix of it.
    let remote_jsonl = dir.path().join("remote.jsonl");
    let out = remote(&["export", "--jsonl", remote_jsonl.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local_jsonl = dir.path().join("local.jsonl");
    ok(
        "audit export --data --jsonl",
        &rampart_with_env(
            &[
                "audit",
                "export",
                "--data",
                &data,
                "--jsonl",
                local_jsonl.to_str().unwrap(),
            ],
            &[],
        ),
    );
    let (r, l) = (
        fs::read(&remote_jsonl).unwrap(),
        fs::read(&local_jsonl).unwrap(),
    );
    assert!(r.iter().filter(|&&b| b == b'\n').count() >= 8);
    assert!(
        l.starts_with(&r),
        "remote export is not a prefix of the local one"
    );
    assert!(l.len() > r.len() && l.len() - r.len() < 16 * 1024);

    // Tiles: a checkpoint signed by the pinned key and the entry bundles it covers.
    let tiles = dir.path().join("tiles");
    let out = remote(&["export", "--tiles", tiles.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: rampart_audit::VerifierKey = vkey.parse().unwrap();
    let cp = rampart_audit::Checkpoint::open(
        &fs::read(tiles.join("checkpoint")).unwrap(),
        std::slice::from_ref(&key),
    )
    .unwrap();
    let bundle = tiles.join(format!("tile/entries/000.p/{}", cp.size));
    assert!(
        cp.size > 0 && cp.size < 256 && bundle.is_file(),
        "{}",
        cp.size
    );
    // The bundle holds the first records, exactly as stored.
    let b = fs::read(&bundle).unwrap();
    let first_len = usize::from(u16::from_be_bytes([b[0], b[1]]));
    assert_eq!(
        &b[2..2 + first_len],
        l.split(|&x| x == b'\n').next().unwrap()
    );

    let log = server.log();
    assert!(!log.contains(&auditor) && !log.contains(&admin));

    // Tampering the server still serves: the first checkpoint of the history removed on disk
    // while the server is down (the server checks only the last one when it opens the log; a
    // changed record would make it refuse to start, as the last checkpoint no longer matches).
    server.terminate();
    let history_path = dir.path().join("data/audit/checkpoints/history.log");
    let history = fs::read_to_string(&history_path).unwrap();
    let notes = rampart_audit::layout::split_history(&history);
    assert!(notes.len() >= 2, "{history}");
    // (Each note is followed by a blank line, which `split_history` leaves out.)
    let rest: String = notes[1..].iter().map(|n| format!("{n}\n")).collect();
    fs::write(&history_path, rest).unwrap();
    let server = Server::start(dir.path());
    let url = format!("http://{}", server.host());
    let out = rampart_with_env(
        &[
            "audit",
            "verify",
            "--server",
            &url,
            "--token-file",
            auditor_file,
            "--key",
            &vkey,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing-checkpoint"), "{err}");
    // The same verdict as from the data directory.
    let local = rampart_with_env(&["audit", "verify", "--data", &data, "--key", &vkey], &[]);
    let local_err = String::from_utf8_lossy(&local.stderr);
    assert_eq!(local.status.code(), Some(1), "{local_err}");
    let verdict = |e: &str| {
        e.lines()
            .find(|l| l.contains("DAMAGED"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(verdict(&err), verdict(&local_err));
}

/// A `GET` with extra header lines; returns (status, audit id).
fn request_with(host: &str, path: &str, token: Option<&str>, extra: &str) -> (u16, Option<String>) {
    let (status, out) = http_with(host, "GET", path, token, extra);
    (status, audit_id_of(&out))
}

/// The `Rampart-Audit-Id` header of a raw response.
fn audit_id_of(response: &str) -> Option<String> {
    response
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("rampart-audit-id")
                .then(|| v.trim().to_owned())
        })
}

fn audit_record(data: &Path, id: &str) -> rampart_audit::Record {
    let mut found = None;
    rampart_audit::tools::query(
        &data.join("audit"),
        &rampart_audit::tools::Filter::default(),
        |r| {
            if r.audit_id == id && r.stage == rampart_audit::Stage::Completed {
                found = Some(r.clone());
            }
        },
    )
    .unwrap();
    found.unwrap_or_else(|| panic!("no completed record {id}"))
}

/// Behind a trusted proxy the client named by `X-Forwarded-For` is what the audit log records (with
/// the proxy) and what the per-IP rate limit counts; from anyone else the header is ignored.
#[test]
fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    fs::write(
        &config,
        "[rate_limits]\nper_ip_per_second = 1\nper_ip_burst = 2\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let trusting = dir.path().join("trusting");
    fs::create_dir(&trusting).unwrap();
    let server = Server::start_with(
        &trusting,
        &["--config", cfg, "--trusted-proxy", "127.0.0.1"],
    );
    let host = server.host();
    let token = server.admin_token();
    let xff = |client: &str| format!("X-Forwarded-For: 192.0.2.66, {client}\r\n");
    let (status, id) = request_with(&host, "/v2/", Some(&token), &xff("203.0.113.7"));
    assert_eq!(status, 200);
    let id = id.unwrap();
    // Unauthenticated requests are limited per client: 203.0.113.8 runs out, 203.0.113.9 does not.
    let statuses: Vec<u16> = (0..4)
        .map(|_| request_with(&host, "/v2/", None, &xff("203.0.113.8")).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        request_with(&host, "/v2/", None, &xff("203.0.113.9")).0,
        401
    );
    let data = server.data.clone();
    server.terminate();
    let r = audit_record(&data, &id);
    assert_eq!(r.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(r.proxy_ip.as_deref(), Some("127.0.0.1"));
    let text = rampart(&["audit", "log", "--data", data.to_str().unwrap()]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.contains("registry.ping") && l.contains(" 203.0.113.7 via 127.0.0.1 ")),
        "{text}"
    );

    // Without --trusted-proxy the same header changes nothing.
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let server = Server::start_with(&plain, &["--config", cfg]);
    let host = server.host();
    let token = server.admin_token();
    let (status, id) = request_with(&host, "/v2/", Some(&token), &xff("203.0.113.7"));
    assert_eq!(status, 200);
    let statuses: Vec<u16> = (0..4)
        .map(|i| request_with(&host, "/v2/", None, &xff(&format!("203.0.113.{}", 10 + i))).0)
        .collect();
    assert!(
        statuses.contains(&429),
        "spoofed X-Forwarded-For escaped the per-IP limit: {statuses:?}"
    );
    let data = server.data.clone();
    server.terminate();
    let r = audit_record(&data, &id.unwrap());
    assert_eq!(r.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.proxy_ip, None);
}

/// A second server on the same data directory is refused at start (its audit log is locked), not
/// left to interleave records with the first.
#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path());
    let mut second = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&first.data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the second server is running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains("already open"), "{err}");
    // The first is unaffected and stops cleanly.
    let (status, _) = http(&first.host(), "GET", "/v2/", Some(&first.admin_token()));
    assert_eq!(status, 200);
    first.terminate();
}
