//! The connection loop: accepts TCP connections, optionally terminates TLS, and serves HTTP/1.1 with
//! hyper's own connection builder, which is where the header limits and the header-read timeout live
//! (`axum::serve` exposes neither). See [`crate::limit`] for the timeout design.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rampart_core::TrustedProxies;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::limit::IdleTimeout;

/// Connection-level settings.
#[derive(Clone)]
pub struct ServeOptions {
    /// The whole request head (request line and headers) must arrive within this; also bounds the
    /// TLS handshake.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves for this long is closed (0: never).
    pub idle_timeout: Duration,
    /// Largest request head in bytes (hyper answers `431` above it; at least 8192).
    pub max_header_bytes: usize,
    /// Most header fields in one request (hyper answers `431` above it).
    pub max_headers: usize,
    /// After the shutdown signal, connections get this long to finish.
    pub shutdown_grace: Duration,
    /// TLS, if configured.
    pub tls: Option<TlsAcceptor>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls.is_some())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            shutdown_grace: Duration::from_secs(30),
            tls: None,
            trusted_proxies: Arc::default(),
        }
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    opts: ServeOptions,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let proxies = opts.trusted_proxies.clone();
    let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        // Behind a trusted proxy the client is named by `X-Forwarded-For`; everything downstream
        // (rate limits, the audit record) sees that client, and the audit record the proxy too.
        let client = proxies.client(
            peer.ip(),
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .map(HeaderValue::as_bytes),
        );
        let port = if client.proxy.is_some() {
            0
        } else {
            peer.port()
        };
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client.ip, port)));
        req.extensions_mut().insert(client);
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192))
        .max_headers(opts.max_headers);
    let io = TokioIo::new(IdleTimeout::new(io, opts.idle_timeout));
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish for up
/// to `opts.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (app, opts2, watcher) = (app.clone(), opts.clone(), graceful.watcher());
        match opts.tls.clone() {
            None => {
                tokio::spawn(serve_connection(tcp, peer, app, opts2, watcher));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(opts2.header_read_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(tls)) => serve_connection(tls, peer, app, opts2, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!("connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}
