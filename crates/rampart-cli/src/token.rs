//! `rampart token`: create, list and revoke API tokens, either directly in a data directory or
//! through a running server's admin API (`--server URL`, or `RAMPART_SERVER`).
//!
//! With `--server`, the admin token comes from `--token-file FILE` or the `RAMPART_TOKEN`
//! environment variable, never from a flag (flags land in shell history and `ps`). The client is a
//! minimal HTTP/1.1 client over hyper (already in the tree through axum) and rustls (aws-lc-rs, as
//! the server uses). `https://` needs `--ca-cert FILE` (the CA, or the self-signed certificate, the
//! server's certificate chains to: there is no system trust store in the binary); plain `http://`
//! is refused except to a loopback address, so an admin token never crosses a network in clear text.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64ct::Encoding as _;
use clap::{Args, Subcommand};
use rampart_core::{NamespacePattern, Role};
use rampart_server::DataDir;
use rampart_store::MetadataStore as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

use crate::output;
use crate::serve::runtime;

/// Longest response body read from the server.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Time allowed for one request to the server.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `rampart token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// Data directory of the registry (ignored with --server).
    #[arg(
        long,
        env = "RAMPART_DATA",
        default_value = "./rampart-data",
        global = true
    )]
    data: PathBuf,
    /// Manage tokens through this running server's admin API (e.g. http://127.0.0.1:5050) instead
    /// of the data directory. Plain HTTP is allowed to loopback addresses only.
    #[arg(long, env = "RAMPART_SERVER", global = true)]
    server: Option<String>,
    /// With --server: a file holding an admin token (for every namespace). Default: the
    /// RAMPART_TOKEN environment variable. There is deliberately no flag taking the token itself.
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    /// With an https:// --server: the PEM certificate(s) to trust for it (its CA, or its
    /// self-signed certificate if that is not marked as a CA).
    #[arg(long, env = "RAMPART_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; the secret is printed once on stdout and never stored.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// reader (pull), publisher (pull, push, tag), admin (everything) or auditor (audit log only).
        #[arg(long)]
        role: Role,
        /// Repositories it applies to: `acme/*`, `acme/**`, `**`.
        #[arg(long)]
        namespace: NamespacePattern,
        /// Lifetime, e.g. 30d, 12h, 90m, 3600s. Default: no expiry.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; it stops working at once.
    Revoke {
        /// The token id shown by `create` and `list`.
        id: String,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30d, 12h, 90m, 3600s"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("the lifetime must be positive".into());
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One row of `rampart token list`, whichever the source.
struct Row {
    id: String,
    name: String,
    role: String,
    namespace: String,
    created_at: i64,
    expires_at: Option<i64>,
    status: String,
}

fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<16}  {:<16}  {:<9}  {:<24}  {:<20}  {:<20}  {}\n",
        "ID", "NAME", "ROLE", "NAMESPACE", "CREATED", "EXPIRES", "STATUS"
    );
    for t in rows {
        out.push_str(&format!(
            "{:<16}  {:<16}  {:<9}  {:<24}  {:<20}  {:<20}  {}\n",
            t.id,
            t.name,
            t.role,
            t.namespace,
            rfc3339(t.created_at),
            t.expires_at.map_or_else(|| "never".to_owned(), rfc3339),
            t.status
        ));
    }
    out
}

fn created_message(id: &str, role: &str, namespace: &str, expires_at: Option<i64>) -> String {
    format!(
        "created token {id} ({role} on {namespace}{}); the secret below is shown only once:",
        expires_at.map_or(String::new(), |e| format!(", expires {}", rfc3339(e)))
    )
}

pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    match &args.server {
        Some(url) => {
            let server = Server::parse(url, args.ca_cert.as_deref())?;
            let secret = admin_token(args)?;
            runtime()?.block_on(remote(&server, &secret, &args.command))
        }
        None => runtime()?.block_on(local(args)),
    }
}

async fn local(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let (meta, key) = DataDir::new(&args.data)
        .open_tokens()
        .await
        .context("opening the data directory")?;
    let code = match &args.command {
        TokenCommand::Create {
            name,
            role,
            namespace,
            expires,
        } => {
            let expires_at = expires.map(|d| {
                rampart_store::now_unix()
                    .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            });
            let t = rampart_server::create_token(
                &meta,
                &key,
                name,
                *role,
                namespace.clone(),
                expires_at,
            )
            .await?;
            output::info(&created_message(
                &t.record.id,
                t.record.role.as_str(),
                t.record.namespace.as_str(),
                expires_at,
            ));
            output::stdout(format!("{}\n", t.secret).as_bytes())?;
            ExitCode::SUCCESS
        }
        TokenCommand::List => {
            let now = rampart_store::now_unix();
            let rows: Vec<Row> = meta
                .tokens()
                .await?
                .into_iter()
                .map(|t| Row {
                    status: if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    }
                    .to_owned(),
                    id: t.id,
                    name: t.name,
                    role: t.role.to_string(),
                    namespace: t.namespace.to_string(),
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                })
                .collect();
            output::stdout(table(&rows).as_bytes())?;
            ExitCode::SUCCESS
        }
        TokenCommand::Revoke { id } => {
            if meta.revoke_token(id).await? {
                output::info(&format!("revoked token {id}"));
                ExitCode::SUCCESS
            } else {
                bail!("no active token with id {id:?}");
            }
        }
    };
    meta.close().await;
    Ok(code)
}

/// The admin token for `--server`: from `--token-file`, else `RAMPART_TOKEN`.
fn admin_token(args: &TokenArgs) -> anyhow::Result<String> {
    let secret = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?,
        None => std::env::var("RAMPART_TOKEN").map_err(|_| {
            anyhow::anyhow!(
                "--server needs an admin token: pass --token-file FILE or set RAMPART_TOKEN"
            )
        })?,
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() || secret.chars().any(|c| c.is_control() || c == ' ') {
        bail!("the admin token is empty or malformed");
    }
    Ok(secret)
}

/// TLS to the server: the connector and the name its certificate must carry.
struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A TLS client configuration trusting exactly the certificates in `ca` (PEM).
fn tls_connector(ca: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading CA certificates from {}", ca.display()))?;
    if certs.is_empty() {
        bail!("{}: no CERTIFICATE block", ca.display());
    }
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("{}: unusable CA certificate", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Where the admin API is.
#[derive(Debug)]
struct Server {
    /// `host:port` to connect to and send as `Host`.
    authority: String,
    /// Path prefix before `/api/v1` (empty, or `/something` behind a proxy).
    prefix: String,
    /// `Some` for https.
    tls: Option<Tls>,
}

impl Server {
    fn parse(url: &str, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            bail!("{url}: expected http://HOST:PORT or https://HOST:PORT");
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            bail!("{url}: expected http(s)://HOST:PORT");
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()) => {
                (h, Some(p))
            }
            _ => (authority, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == Some("") {
            bail!("{url}: expected http(s)://HOST:PORT");
        }
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let tls = if https {
            let Some(ca) = ca_cert else {
                bail!(
                    "{url}: https needs --ca-cert FILE (or RAMPART_CA_CERT): the certificate \
                     the server's certificate chains to"
                );
            };
            let name = ServerName::try_from(host.to_owned())
                .with_context(|| format!("{url}: {host:?} is not a DNS name or IP address"))?;
            Some(Tls {
                connector: tls_connector(ca)?,
                name,
            })
        } else {
            if !loopback {
                bail!(
                    "{url}: refusing to send an admin token over plain HTTP to a non-loopback \
                     host (use https:// with --ca-cert)"
                );
            }
            None
        };
        let authority = match port {
            Some(_) => authority.to_owned(),
            None => format!("{authority}:{}", if https { 443 } else { 80 }),
        };
        Ok(Self {
            authority,
            prefix: prefix.trim_end_matches('/').to_owned(),
            tls,
        })
    }

    /// One request to the admin API: status and JSON body.
    async fn call(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        tokio::time::timeout(TIMEOUT, self.call_inner(secret, method, path, body))
            .await
            .with_context(|| format!("no answer from {} within {TIMEOUT:?}", self.authority))?
    }

    async fn call_inner(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let req = self.request(secret, method, path, body)?;
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("connecting to {}", self.authority))?;
        match &self.tls {
            None => exchange(hyper_util::rt::TokioIo::new(stream), req).await,
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(tls.name.clone(), stream)
                    .await
                    .with_context(|| format!("TLS handshake with {}", self.authority))?;
                exchange(hyper_util::rt::TokioIo::new(stream), req).await
            }
        }
    }

    fn request(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Request<Body>> {
        let auth = format!(
            "Basic {}",
            base64ct::Base64::encode_string(format!("rampart:{secret}").as_bytes())
        );
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json");
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v)?)
            }
            None => Body::empty(),
        };
        req.body(body).context("building the request")
    }
}

/// Sends one request over a fresh connection; returns the status and the JSON body.
async fn exchange<IO>(io: IO, req: Request<Body>) -> anyhow::Result<(StatusCode, Value)>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .context("sending the request")?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(Body::new(resp.into_body()), MAX_RESPONSE)
        .await
        .context("reading the response")?;
    conn.abort();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the server answered {status} with a non-JSON body"))?
    };
    Ok((status, value))
}

/// An error answer of the admin API as a message.
fn refused(status: StatusCode, body: &Value) -> anyhow::Error {
    let message = body["error"]["message"].as_str().unwrap_or("no detail");
    anyhow::anyhow!("the server refused ({status}): {message}")
}

async fn remote(server: &Server, secret: &str, command: &TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            role,
            namespace,
            expires,
        } => {
            let body = json!({
                "name": name,
                "role": role.as_str(),
                "namespace": namespace.as_str(),
                "expires_in": expires.map(|d| d.as_secs()),
            });
            let (status, v) = server
                .call(secret, Method::POST, "/api/v1/tokens", Some(body))
                .await?;
            if status != StatusCode::CREATED {
                return Err(refused(status, &v));
            }
            let (Some(id), Some(new_secret)) = (v["token"]["id"].as_str(), v["secret"].as_str())
            else {
                bail!("the server's answer lacks the token id or secret");
            };
            output::info(&created_message(
                id,
                v["token"]["role"].as_str().unwrap_or("?"),
                v["token"]["namespace"].as_str().unwrap_or("?"),
                v["token"]["expires_at"].as_i64(),
            ));
            output::stdout(format!("{new_secret}\n").as_bytes())?;
        }
        TokenCommand::List => {
            let (status, v) = server
                .call(secret, Method::GET, "/api/v1/tokens", None)
                .await?;
            if status != StatusCode::OK {
                return Err(refused(status, &v));
            }
            let text = |t: &Value, k: &str| t[k].as_str().unwrap_or("?").to_owned();
            let rows: Vec<Row> = v["tokens"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| Row {
                    id: text(t, "id"),
                    name: text(t, "name"),
                    role: text(t, "role"),
                    namespace: text(t, "namespace"),
                    created_at: t["created_at"].as_i64().unwrap_or(0),
                    expires_at: t["expires_at"].as_i64(),
                    status: text(t, "status"),
                })
                .collect();
            output::stdout(table(&rows).as_bytes())?;
        }
        TokenCommand::Revoke { id } => {
            if id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("{id:?} is not a token id");
            }
            let (status, v) = server
                .call(
                    secret,
                    Method::DELETE,
                    &format!("/api/v1/tokens/{id}"),
                    None,
                )
                .await?;
            if status == StatusCode::NOT_FOUND {
                bail!("no active token with id {id:?}");
            }
            if status != StatusCode::NO_CONTENT {
                return Err(refused(status, &v));
            }
            output::info(&format!("revoked token {id}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn server_urls() {
        let s = Server::parse("http://127.0.0.1:5050", None).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.prefix.as_str()),
            ("127.0.0.1:5050", "")
        );
        let s = Server::parse("http://localhost/reg/", None).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.prefix.as_str()),
            ("localhost:80", "/reg")
        );
        let s = Server::parse("http://[::1]:9", None).unwrap();
        assert_eq!(s.authority, "[::1]:9");
        for bad in [
            "https://127.0.0.1:5050",
            "http://registry.example.com:5050",
            "http://10.0.0.1:5050",
            "http://user@127.0.0.1:5050",
            "ftp://127.0.0.1",
            "127.0.0.1:5050",
            "http://127.0.0.1.evil.com:80",
        ] {
            assert!(Server::parse(bad, None).is_err(), "{bad}");
        }
    }
}
