//! Request protection: per-principal and per-IP rate limits, the body limit for non-blob routes, and
//! the idle (no-progress) timeout of a connection.
//!
//! **Rate limits** are keyed GCRA (governor). A request that authenticates is charged to its token id
//! (so many users behind one NAT do not share a budget); a request without credentials, or with
//! credentials that fail, is charged to its client IP (so guessing tokens is limited too). A refused
//! request gets `429` with `Retry-After` (whole seconds, rounded up) and the OCI error body with code
//! `TOOMANYREQUESTS`. A rate of 0 turns that limit off.
//!
//! **Timeouts** never bound a whole request, because a legitimate multi-gigabyte upload or download
//! may take any time. Instead: the request head must arrive within `header_read` (hyper's
//! `header_read_timeout`, which stops slowloris clients trickling header bytes), and a connection on
//! which no byte moves in either direction for `idle` is closed ([`IdleTimeout`]) — a stalled body,
//! a client that stopped reading, or an idle keep-alive connection.

use std::future::Future as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::{AppState, Error, auth, error};

/// One rate limit: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second allowed on average; 0 turns the limit off.
    pub per_second: u32,
    /// Requests allowed at once above the average (at least 1 when the limit is on).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    fn quota(self) -> Option<Quota> {
        let rate = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Some(Quota::per_second(rate).allow_burst(burst))
    }
}

/// The rate limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per authenticated token.
    pub per_principal: Rate,
    /// Per client IP, for requests without valid credentials.
    pub per_ip: Rate,
}

impl Default for RateLimits {
    /// Generous enough that skopeo and oras pushing hundreds of small blobs (a few requests each) as
    /// fast as they can never notice; low enough to stop a single client flooding the server or
    /// guessing tokens.
    fn default() -> Self {
        Self {
            per_principal: Rate {
                per_second: 500,
                burst: 5000,
            },
            per_ip: Rate {
                per_second: 50,
                burst: 500,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Principal(String),
    Ip(IpAddr),
}

/// The per-IP key of a client: its IPv4 address, or its IPv6 /64. A single IPv6 host usually holds
/// a whole /64 (SLAAC, privacy addresses) and could otherwise rotate through it to escape the limit.
fn ip_key(ip: IpAddr) -> Key {
    Key::Ip(match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
        v4 => v4,
    })
}

type Keyed = RateLimiter<
    Key,
    governor::state::keyed::DefaultKeyedStateStore<Key>,
    DefaultClock,
    governor::middleware::NoOpMiddleware<<DefaultClock as governor::clock::Clock>::Instant>,
>;

/// The limiters of one server.
pub(crate) struct Limiters {
    principal: Option<Keyed>,
    ip: Option<Keyed>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("principal", &self.principal.is_some())
            .field("ip", &self.ip.is_some())
            .finish_non_exhaustive()
    }
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Self {
        let clock = DefaultClock::default();
        Self {
            principal: limits
                .per_principal
                .quota()
                .map(|q| RateLimiter::hashmap_with_clock(q, clock.clone())),
            ip: limits
                .per_ip
                .quota()
                .map(|q| RateLimiter::hashmap_with_clock(q, clock.clone())),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.principal.is_some() || self.ip.is_some()
    }

    /// `Err(wait)` when the key is over its limit.
    fn check(&self, key: &Key) -> Result<(), Duration> {
        let limiter = match key {
            Key::Principal(_) => &self.principal,
            Key::Ip(_) => &self.ip,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        // Forget keys idle long enough to be back at full burst, now and then, so the map stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(error::body(
            "TOOMANYREQUESTS",
            "too many requests",
            serde_json::json!({ "retryAfterSeconds": secs.max(1) }),
        )),
    )
        .into_response();
    let headers = resp.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// Whether a request carries blob bytes (bounded by the blob size limit, not the body limit).
fn is_blob_upload(method: &Method, path: &str) -> bool {
    (method == Method::POST || method == Method::PATCH || method == Method::PUT)
        && path.starts_with("/v2/")
        && path.contains("/blobs/uploads")
}

/// Whether a request is a manifest PUT (bounded by the manifest size limit).
fn is_manifest_put(method: &Method, path: &str) -> bool {
    method == Method::PUT && path.starts_with("/v2/") && path.contains("/manifests/")
}

/// The middleware: rate limits first, then the body limit on routes that carry no blob.
pub(crate) async fn protect(
    State(st): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let exempt = path == "/healthz" || path == "/readyz";
    let limiters = st.limiters();
    if !exempt && limiters.enabled() {
        let key = match auth::identify(&st, req.headers(), req.extensions()).await {
            Ok(Some(p)) => Key::Principal(p.token_id),
            _ => ip_key(
                req.extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
            ),
        };
        if let Err(wait) = limiters.check(&key) {
            tracing::warn!(
                key = match &key {
                    Key::Principal(id) => format!("token {id}"),
                    Key::Ip(ip) => format!("ip {ip}"),
                },
                "rate limit exceeded"
            );
            return too_many(wait);
        }
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let max = st.limits().max_body;
    if is_blob_upload(&method, &path) || is_manifest_put(&method, &path) {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Error::TooLarge(max as u64).into_response();
    }
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, max)));
    next.run(req).await
}

/// A connection that fails with `TimedOut` once no byte has moved in either direction for a while.
#[derive(Debug)]
pub struct IdleTimeout<I> {
    inner: I,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<I> IdleTimeout<I> {
    /// Wraps `inner`; `timeout` of zero means never (as does anything beyond a century, which
    /// would overflow `Instant` arithmetic on every byte).
    pub fn new(inner: I, timeout: Duration) -> Self {
        const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);
        let timeout = if timeout.is_zero() {
            NEVER
        } else {
            timeout.min(NEVER)
        };
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn progress(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for IdleTimeout<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.expired(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_is_off_and_burst_is_enforced() {
        let off = Limiters::new(RateLimits {
            per_principal: Rate::OFF,
            per_ip: Rate::OFF,
        });
        assert!(!off.enabled());
        let l = Limiters::new(RateLimits {
            per_principal: Rate::OFF,
            per_ip: Rate {
                per_second: 1,
                burst: 3,
            },
        });
        let k = Key::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for _ in 0..3 {
            assert!(l.check(&k).is_ok());
        }
        let wait = l.check(&k).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Other keys and the (disabled) principal limit are unaffected.
        assert!(
            l.check(&Key::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
                .is_ok()
        );
        assert!(l.check(&Key::Principal("t".into())).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_limited_per_64() {
        let l = Limiters::new(RateLimits {
            per_principal: Rate::OFF,
            per_ip: Rate {
                per_second: 1,
                burst: 2,
            },
        });
        let ip = |s: &str| ip_key(s.parse().unwrap());
        // Two addresses of one /64 share a bucket.
        assert!(l.check(&ip("2001:db8:1:2::1")).is_ok());
        assert!(l.check(&ip("2001:db8:1:2:ffff::9")).is_ok());
        assert!(l.check(&ip("2001:db8:1:2:abcd::1")).is_err());
        // The next /64 does not.
        assert!(l.check(&ip("2001:db8:1:3::1")).is_ok());
        // IPv4, also IPv4-mapped, is keyed by the whole address.
        assert!(l.check(&ip("192.0.2.1")).is_ok());
        assert!(l.check(&ip("::ffff:192.0.2.1")).is_ok());
        assert!(l.check(&ip("192.0.2.1")).is_err());
        assert!(l.check(&ip("192.0.2.2")).is_ok());
    }

    #[tokio::test]
    async fn an_enormous_idle_timeout_does_not_panic_on_traffic() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // `timeouts.idle` accepts any duration that fits in u64 seconds.
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = IdleTimeout::new(a, Duration::from_secs(u64::MAX));
        a.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 1];
        b.read_exact(&mut buf).await.unwrap();
        b.write_all(b"y").await.unwrap();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"y");
    }

    #[test]
    fn routes_exempt_from_the_body_limit() {
        assert!(is_blob_upload(&Method::PATCH, "/v2/a/b/blobs/uploads/xyz"));
        assert!(is_blob_upload(&Method::POST, "/v2/a/blobs/uploads/"));
        assert!(!is_blob_upload(&Method::POST, "/api/v1/tokens"));
        assert!(is_manifest_put(&Method::PUT, "/v2/a/manifests/v1"));
        assert!(!is_manifest_put(&Method::GET, "/v2/a/manifests/v1"));
    }
}
