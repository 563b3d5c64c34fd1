//! A minimal client of a running server's admin API (`/api/v1/…`), shared by `rampart token
//! --server` and `rampart audit … --server`.
//!
//! The token comes from `--token-file FILE` or the `RAMPART_TOKEN` environment variable, never from
//! a flag (flags land in shell history and `ps`). The client is HTTP/1.1 over hyper (already in the
//! tree through axum) and rustls (aws-lc-rs, as the server uses), one connection per request.
//! `https://` needs `--ca-cert FILE` (the CA, or the self-signed certificate, the server's
//! certificate chains to: there is no system trust store in the binary); plain `http://` is refused
//! except to a loopback address, so a token never crosses a network in clear text.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use base64ct::Encoding as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// Longest response body read from the server, unless a call allows more.
pub(crate) const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Time allowed for one request to the server.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest error text quoted from a non-JSON error answer.
const MAX_QUOTED: usize = 200;

/// The token for `--server`: from `token_file`, else `RAMPART_TOKEN`. `needed` says which token
/// the command needs (`an admin token`), for the error when there is none.
pub(crate) fn read_token(token_file: Option<&Path>, needed: &str) -> anyhow::Result<String> {
    let secret = match token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?,
        None => std::env::var("RAMPART_TOKEN").map_err(|_| {
            anyhow::anyhow!("--server needs {needed}: pass --token-file FILE or set RAMPART_TOKEN")
        })?,
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() || secret.chars().any(|c| c.is_control() || c == ' ') {
        bail!("the token is empty or malformed");
    }
    Ok(secret)
}

/// `s` percent-encoded for a query string: everything but RFC 3986 unreserved characters.
pub(crate) fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
pub(crate) struct Server {
    /// `host:port` to connect to and send as `Host`.
    authority: String,
    /// Path prefix before `/api/v1` (empty, or `/something` behind a proxy).
    prefix: String,
    /// `Some` for https.
    tls: Option<Tls>,
}

/// A complete answer of the server: its status and body, whatever the content type.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Reply {
    /// The body as JSON (`null` when empty).
    pub(crate) fn json(&self) -> anyhow::Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the server answered {} with a non-JSON body", self.status))
    }

    /// The body as received.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// A response header's value, when it is present and visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body as UTF-8 text (`text/plain` answers such as the audit checkpoint).
    pub(crate) fn text(&self) -> anyhow::Result<&str> {
        std::str::from_utf8(&self.body)
            .with_context(|| format!("the server answered {} with a non-UTF-8 body", self.status))
    }

    /// The message of an error answer: the `{"error":{"message"}}` of the admin API, or the start
    /// of a plain-text body (a proxy's error page, say).
    fn error_message(&self) -> String {
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body)
            && let Some(m) = v["error"]["message"].as_str()
        {
            return m.to_owned();
        }
        match self.text() {
            Ok(t) if !t.trim().is_empty() => {
                let t = t.trim();
                let cut = t.char_indices().nth(MAX_QUOTED).map_or(t.len(), |(i, _)| i);
                t[..cut]
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect()
            }
            _ => "no detail".to_owned(),
        }
    }

    /// An error answer as a message.
    pub(crate) fn refused(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "the server refused ({}): {}",
            self.status,
            self.error_message()
        )
    }

    /// An error answer as a message that, for 401 and 403, says which token the call needs
    /// (`an auditor or admin token on **`).
    pub(crate) fn refused_needing(&self, needed: &str) -> anyhow::Error {
        match self.status {
            StatusCode::UNAUTHORIZED => anyhow::anyhow!(
                "the server did not accept the token ({}: {}); this needs {needed} that is \
                 neither expired nor revoked",
                self.status,
                self.error_message()
            ),
            StatusCode::FORBIDDEN => anyhow::anyhow!(
                "the server refused the token ({}): this needs {needed}",
                self.status
            ),
            _ => self.refused(),
        }
    }
}

/// Whether `host` (a name or an address, IPv6 without brackets) is this machine's loopback.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Server {
    /// Parses `http(s)://HOST[:PORT][/PREFIX]`; `ca_cert` is required for https.
    pub(crate) fn parse(url: &str, ca_cert: Option<&Path>) -> anyhow::Result<Self> {
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
        let (host, bracketed) = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) => (inner, true),
            None => (host, false),
        };
        if host.is_empty() || port == Some("") {
            bail!("{url}: expected http(s)://HOST:PORT");
        }
        if host.contains(':') != bracketed || host.contains(['[', ']']) {
            bail!(
                "{url}: an IPv6 address goes in brackets, and only one does: http(s)://[ADDR]:PORT"
            );
        }
        let loopback = is_loopback_host(host);
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
                    "{url}: refusing to send a token over plain HTTP to a non-loopback host \
                     (use https:// with --ca-cert)"
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

    /// `host:port` of the server, for messages.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// One request with an optional JSON body: status and JSON body.
    pub(crate) async fn call(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let reply = self.send(secret, method, path, body, MAX_RESPONSE).await?;
        Ok((reply.status, reply.json()?))
    }

    /// A `GET` whose answer may be JSON or text; reads at most `max` bytes of body.
    pub(crate) async fn get(&self, secret: &str, path: &str, max: usize) -> anyhow::Result<Reply> {
        let send = self.send_inner(secret, Method::GET, path, None, Sink::Memory(max));
        self.within(TIMEOUT, send).await
    }

    /// A `GET` whose successful answer is written to `out` as it arrives (at most `max` bytes), so
    /// that a large answer is never held in memory; the returned [`Reply`] then has an empty body.
    /// An error answer is read into the reply as by [`Server::get`]. The whole exchange may take
    /// longer than one request's timeout, as long as data keeps arriving.
    pub(crate) async fn get_to(
        &self,
        secret: &str,
        path: &str,
        out: &mut (dyn std::io::Write + Send),
        max: u64,
    ) -> anyhow::Result<Reply> {
        self.send_inner(secret, Method::GET, path, None, Sink::Writer(out, max))
            .await
    }

    async fn send(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        max: usize,
    ) -> anyhow::Result<Reply> {
        let send = self.send_inner(secret, method, path, body, Sink::Memory(max));
        self.within(TIMEOUT, send).await
    }

    async fn within<T>(
        &self,
        limit: Duration,
        f: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::time::timeout(limit, f)
            .await
            .with_context(|| format!("no answer from {} within {limit:?}", self.authority))?
    }

    async fn send_inner(
        &self,
        secret: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        sink: Sink<'_>,
    ) -> anyhow::Result<Reply> {
        let req = self.request(secret, method, path, body)?;
        let connect = async {
            tokio::net::TcpStream::connect(&self.authority)
                .await
                .with_context(|| format!("connecting to {}", self.authority))
        };
        let stream = self.within(TIMEOUT, connect).await?;
        match &self.tls {
            None => exchange(self, hyper_util::rt::TokioIo::new(stream), req, sink).await,
            Some(tls) => {
                let handshake = async {
                    tls.connector
                        .connect(tls.name.clone(), stream)
                        .await
                        .with_context(|| format!("TLS handshake with {}", self.authority))
                };
                let stream = self.within(TIMEOUT, handshake).await?;
                exchange(self, hyper_util::rt::TokioIo::new(stream), req, sink).await
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
            .header(header::ACCEPT, "application/json, text/plain;q=0.9");
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

/// Where the body of an answer goes.
enum Sink<'a> {
    /// Into the [`Reply`], at most this many bytes.
    Memory(usize),
    /// A successful answer's body to this writer, at most this many bytes; an error answer's into
    /// the reply.
    Writer(&'a mut (dyn std::io::Write + Send), u64),
}

/// Longest error answer read when a successful one would have gone to a writer.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sends one request over a fresh connection; returns the status and the body (see [`Sink`]).
async fn exchange<IO>(
    server: &Server,
    io: IO,
    req: Request<Body>,
    sink: Sink<'_>,
) -> anyhow::Result<Reply>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let sent = async {
        sender
            .send_request(req)
            .await
            .context("sending the request")
    };
    let resp = server.within(TIMEOUT, sent).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let max = match sink {
        Sink::Memory(max) => max,
        Sink::Writer(..) if !status.is_success() => MAX_ERROR_BODY,
        Sink::Writer(out, max) => {
            let mut body = resp.into_body();
            let mut written = 0u64;
            loop {
                let next = async {
                    std::future::poll_fn(|cx| {
                        hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
                    })
                    .await
                    .transpose()
                    .context("reading the response")
                };
                let Some(frame) = server.within(TIMEOUT, next).await? else {
                    break;
                };
                let Ok(data) = frame.into_data() else {
                    continue; // trailers
                };
                written += data.len() as u64;
                if written > max {
                    bail!("the response is longer than {max} bytes");
                }
                out.write_all(&data).context("writing the response")?;
            }
            conn.abort();
            return Ok(Reply {
                status,
                headers,
                body: Bytes::new(),
            });
        }
    };
    let body = axum::body::to_bytes(Body::new(resp.into_body()), max)
        .await
        .with_context(|| format!("reading the response (at most {max} bytes)"))?;
    conn.abort();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "http://::1:9",
            "http://::1",
            "http://[::1",
            "http://[localhost]:9",
            "http://[[::1]]:9",
        ] {
            assert!(Server::parse(bad, None).is_err(), "{bad}");
        }
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

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("acme/llama-3_v1.0~x"), "acme%2Fllama-3_v1.0~x");
        assert_eq!(query_value("a b+c&d=é"), "a%20b%2Bc%26d%3D%C3%A9");
        assert_eq!(
            query_value("2026-11-28T06:20:00Z"),
            "2026-11-28T06%3A20%3A00Z"
        );
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: axum::http::HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn replies_as_json_text_and_errors() {
        let r = reply(200, "{\"a\":1}");
        assert_eq!(r.json().unwrap()["a"], 1);
        assert_eq!(reply(204, "").json().unwrap(), Value::Null);
        let t = reply(200, "rampart+1234+abcd\n");
        assert_eq!(t.text().unwrap(), "rampart+1234+abcd\n");
        assert!(t.json().is_err());
        let json_err = reply(
            403,
            "{\"error\":{\"code\":\"forbidden\",\"message\":\"nope\"}}",
        );
        assert_eq!(
            json_err.refused().to_string(),
            "the server refused (403 Forbidden): nope"
        );
        let needing = json_err
            .refused_needing("an auditor or admin token on **")
            .to_string();
        assert!(
            needing.contains("403") && needing.contains("an auditor or admin token on **"),
            "{needing}"
        );
        let unauth = reply(401, "{\"error\":{\"message\":\"authentication required\"}}")
            .refused_needing("an auditor or admin token on **")
            .to_string();
        assert!(
            unauth.contains("401") && unauth.contains("auditor"),
            "{unauth}"
        );
        // A proxy's plain-text error page is quoted (shortened, one line).
        let proxy = reply(502, &format!("Bad gateway\n{}", "x".repeat(500)));
        let m = proxy.refused_needing("an admin token").to_string();
        assert!(
            m.starts_with("the server refused (502 Bad Gateway): Bad gateway x"),
            "{m}"
        );
        assert!(m.len() < 300, "{m}");
        assert!(reply(500, "").refused().to_string().ends_with("no detail"));
    }

    #[test]
    fn tokens_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "rampart_abc\n").unwrap();
        assert_eq!(read_token(Some(&f), "x").unwrap(), "rampart_abc");
        std::fs::write(&f, "two words\n").unwrap();
        assert!(read_token(Some(&f), "x").is_err());
        std::fs::write(&f, "\n").unwrap();
        assert!(read_token(Some(&f), "x").is_err());
    }
}
