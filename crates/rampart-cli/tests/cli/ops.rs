//! Operating the registry: `rampart config print`, `gc`, `fsck`, and `serve` over TLS with real
//! clients (curl, skopeo).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_core::Digest;

use crate::{rampart, tool_available, workspace_root};

/// `rampart serve` with extra arguments on an OS-chosen loopback port, killed on drop.
struct Serve {
    child: Child,
    port: u16,
    data: PathBuf,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_env(dir, extra, &[])
    }

    fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let data = dir.join("data");
        let stderr = dir.join("serve.err");
        let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serve {
            child,
            port: 0,
            data,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let log = fs::read_to_string(&stderr).unwrap_or_default();
            if let Some(rest) = log.split("://127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                s.port = port.parse().unwrap();
                return s;
            }
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("rampart serve exited with {status}: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rampart serve did not report its address");
    }

    fn admin(&self) -> String {
        fs::read_to_string(self.data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn config_print_round_trips_and_unknown_keys_are_named() {
    let example = workspace_root().join("docs/rampart.example.toml");
    let out = rampart(&["config", "print", "--config", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("pull = [\"public/**\"]"), "{printed}");
    // The printed configuration is itself a valid config file that prints identically.
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.toml");
    fs::write(&again, &printed).unwrap();
    let out = rampart(&["config", "print", "--config", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), printed);
    // Flags beat the file.
    let out = rampart(&[
        "config",
        "print",
        "--config",
        again.to_str().unwrap(),
        "--listen",
        "127.0.0.1:6060",
    ]);
    assert!(text(&out.stdout).contains("listen = \"127.0.0.1:6060\""));
    // An unknown key is an error naming it.
    let bad = dir.path().join("bad.toml");
    fs::write(
        &bad,
        "[timeouts]\nheader_read = \"5s\"\nread_header = \"5s\"\n",
    )
    .unwrap();
    let out = rampart(&["config", "print", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("read_header") && err.contains("bad.toml"),
        "{err}"
    );
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn gc_and_fsck_on_a_live_data_directory() {
    if !tool_available("curl", "curl", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &[]);
    let admin = server.admin();
    let base = format!("http://127.0.0.1:{}", server.port);
    let creds = format!("u:{admin}");
    let blob = dir.path().join("blob");
    fs::write(&blob, b"orphan to be").unwrap();
    let d = Digest::of(b"orphan to be");
    let (ok, out) = curl(&[
        "-u",
        &creds,
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", blob.display()),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/v2/g/m/blobs/uploads/?digest={d}"),
    ]);
    assert!(ok && out.contains("201"), "{out}");
    let data = server.data.to_str().unwrap().to_owned();
    // Referenced: nothing to collect, store consistent.
    let out = rampart(&["fsck", "--data", &data]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = rampart(&["gc", "--data", &data, "--grace", "0s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("deleted"));
    // Unlinked (admin DELETE), then collected while the server keeps running.
    let (ok, out) = curl(&[
        "-u",
        &creds,
        "-X",
        "DELETE",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/v2/g/m/blobs/{d}"),
    ]);
    assert!(ok && out.contains("202"), "{out}");
    let out = rampart(&["gc", "--data", &data]);
    assert!(
        text(&out.stderr).contains("1 unreferenced but younger"),
        "{}",
        text(&out.stderr)
    );
    let out = rampart(&["gc", "--data", &data, "--grace", "0s", "--dry-run"]);
    assert!(text(&out.stdout).contains(&format!("would delete {d}")));
    let out = rampart(&["gc", "--data", &data, "--grace", "0s"]);
    assert!(
        text(&out.stdout).contains(&format!("deleted {d}")),
        "{}",
        text(&out.stdout)
    );
    let hex = d.hex();
    assert!(
        !server
            .data
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .exists()
    );
    let out = rampart(&["fsck", "--data", &data]);
    assert!(out.status.success());
    // Damage is found: exit 1, naming the blob.
    let (ok, _) = curl(&[
        "-u",
        &creds,
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", blob.display()),
        &format!("{base}/v2/g/m/blobs/uploads/?digest={d}"),
    ]);
    assert!(ok);
    fs::write(
        server.data.join("blobs/sha256").join(&hex[..2]).join(&hex),
        b"x",
    )
    .unwrap();
    let out = rampart(&["fsck", "--data", &data]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&hex));
}

#[test]
fn serve_over_tls_with_curl_and_skopeo() {
    if !tool_available("openssl", "openssl", &["version"])
        || !tool_available("curl", "curl", &["--version"])
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
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
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl could not make a certificate");
    let server = Serve::start(
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let admin = server.admin();
    let creds = format!("u:{admin}");
    let base = format!("https://127.0.0.1:{}", server.port);
    let cacert = cert.to_str().unwrap();
    let (ok, out) = curl(&[
        "--cacert",
        cacert,
        "-u",
        &creds,
        "-w",
        "%{http_code}",
        &format!("{base}/v2/"),
    ]);
    assert!(ok && out.ends_with("200"), "{out}");
    // TLS 1.2 works too; plain HTTP on the TLS port gets nothing.
    let (ok, out) = curl(&[
        "--cacert",
        cacert,
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "-u",
        &creds,
        &format!("{base}/v2/"),
    ]);
    assert!(ok, "{out}");
    let (ok, _) = curl(&[&format!("http://127.0.0.1:{}/v2/", server.port)]);
    assert!(!ok, "plain HTTP answered on the TLS port");
    // Push an artifact over https, then let skopeo read it back, trusting only our CA.
    let config = dir.path().join("config.json");
    fs::write(&config, b"{}").unwrap();
    let cd = Digest::of(b"{}");
    let (ok, out) = curl(&[
        "--cacert",
        cacert,
        "-u",
        &creds,
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", config.display()),
        "-w",
        "%{http_code}",
        &format!("{base}/v2/tls/m/blobs/uploads/?digest={cd}"),
    ]);
    assert!(ok && out.ends_with("201"), "{out}");
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{cd}\",\"size\":2}},\"layers\":[]}}"
    );
    let mpath = dir.path().join("manifest.json");
    fs::write(&mpath, &manifest).unwrap();
    let (ok, out) = curl(&[
        "--cacert",
        cacert,
        "-u",
        &creds,
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", mpath.display()),
        "-w",
        "%{http_code}",
        &format!("{base}/v2/tls/m/manifests/v1"),
    ]);
    assert!(ok && out.ends_with("201"), "{out}");
    if !tool_available("skopeo", "skopeo", &["--version"]) {
        return;
    }
    let certs = dir.path().join("certs.d");
    fs::create_dir(&certs).unwrap();
    fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &creds, "--cert-dir"])
        .arg(&certs)
        .arg(format!("docker://127.0.0.1:{}/tls/m:v1", server.port))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo over TLS: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), manifest);
    // Without our CA, skopeo refuses the certificate.
    let empty = dir.path().join("empty.d");
    fs::create_dir(&empty).unwrap();
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", &creds, "--cert-dir"])
        .arg(&empty)
        .arg(format!("docker://127.0.0.1:{}/tls/m:v1", server.port))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Anonymous pull configured in the file: skopeo without credentials reads `public/**`, not the rest.
#[test]
fn anonymous_pull_from_the_config_file_with_skopeo() {
    if !tool_available("curl", "curl", &["--version"])
        || !tool_available("skopeo", "skopeo", &["--version"])
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rampart.toml");
    fs::write(&config, "[anonymous]\npull = [\"public/**\"]\n").unwrap();
    let server = Serve::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let creds = format!("u:{}", server.admin());
    let base = format!("http://127.0.0.1:{}", server.port);
    let cfg = dir.path().join("config.json");
    fs::write(&cfg, b"{}").unwrap();
    let cd = Digest::of(b"{}");
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
         \"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{cd}\",\"size\":2}},\"layers\":[]}}"
    );
    let mpath = dir.path().join("manifest.json");
    fs::write(&mpath, &manifest).unwrap();
    for repo in ["public/m", "private/m"] {
        let (ok, out) = curl(&[
            "-u",
            &creds,
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", cfg.display()),
            "-w",
            "%{http_code}",
            &format!("{base}/v2/{repo}/blobs/uploads/?digest={cd}"),
        ]);
        assert!(ok && out.ends_with("201"), "{out}");
        let (ok, out) = curl(&[
            "-u",
            &creds,
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &format!("@{}", mpath.display()),
            "-w",
            "%{http_code}",
            &format!("{base}/v2/{repo}/manifests/v1"),
        ]);
        assert!(ok && out.ends_with("201"), "{out}");
    }
    let inspect = |repo: &str| {
        Command::new("skopeo")
            .args(["inspect", "--raw", "--no-creds", "--tls-verify=false"])
            .arg(format!("docker://127.0.0.1:{}/{repo}:v1", server.port))
            .output()
            .unwrap()
    };
    let out = inspect("public/m");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), manifest);
    let out = inspect("private/m");
    assert!(!out.status.success(), "anonymous read outside public/**");
}

/// Rate limits configured through `RAMPART_<SECTION>__<KEY>` variables, keyed by the real client
/// address: the third anonymous request in a burst of two is refused with 429 and `Retry-After`.
#[test]
fn rate_limit_from_the_environment_over_a_real_socket() {
    if !tool_available("curl", "curl", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start_env(
        dir.path(),
        &[],
        &[
            ("RAMPART_RATE_LIMITS__PER_IP_PER_SECOND", "1"),
            ("RAMPART_RATE_LIMITS__PER_IP_BURST", "2"),
        ],
    );
    let url = format!("http://127.0.0.1:{}/v2/", server.port);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (_, out) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]);
        statuses.push(out);
    }
    // The burst of two passes; past it (allowing for a token regained on a slow machine) 429s come.
    assert_eq!(statuses[..2], ["401", "401"]);
    assert!(statuses.iter().any(|s| s == "429"), "{statuses:?}");
    let (_, out) = curl(&["-i", &url]);
    let lower = out.to_ascii_lowercase();
    assert!(lower.contains("retry-after: "), "{out}");
    assert!(out.contains("TOOMANYREQUESTS"), "{out}");
    // An authenticated client has its own budget.
    let creds = format!("u:{}", server.admin());
    let (_, out) = curl(&["-u", &creds, "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(out, "200");
}
