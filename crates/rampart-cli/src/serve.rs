//! `rampart serve`: run the registry.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use rampart_server::DataDir;
use rampart_server::listen::ServeOptions;

use crate::config::{ConfigArgs, LogFormat};
use crate::output;

/// How long a stopping server waits for each of: the audit log's final checkpoint, the metadata
/// database, and file operations of requests cut off by the shutdown.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Arguments of `rampart serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutting down");
}

/// Whether the server would serve tokens in clear text off this host (then it warns); an error when
/// that was not explicitly allowed. Loopback, or TLS, is always fine.
fn plaintext_exposed(
    listen: std::net::SocketAddr,
    tls: bool,
    allow_plaintext: bool,
) -> anyhow::Result<bool> {
    if listen.ip().is_loopback() || tls {
        return Ok(false);
    }
    if !allow_plaintext {
        bail!(
            "refusing to listen on {listen} without TLS: tokens would cross the network in clear text. \
             Pass --tls-cert and --tls-key, listen on a loopback address, or allow it with \
             --allow-plaintext, RAMPART_ALLOW_PLAINTEXT=true or `allow_plaintext = true` in the \
             config file (e.g. behind a TLS proxy)"
        );
    }
    Ok(true)
}

/// Whether `token.public_url` sends clients' credentials to the token endpoint in clear text off
/// this host (then the server warns); an error when that was not explicitly allowed, and always
/// when the server itself serves TLS (an `http://` realm there is a mistake that would downgrade
/// every client's login).
fn realm_in_clear(
    public_url: Option<&str>,
    tls: bool,
    allow_plaintext: bool,
) -> anyhow::Result<bool> {
    let Some(rest) = public_url.and_then(|u| u.strip_prefix("http://")) else {
        return Ok(false);
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split([':', '/']).next().unwrap_or(""),
    };
    let loopback = crate::client::is_loopback_host(host);
    if tls {
        bail!(
            "token.public_url {rest:?} is http:// but this server serves TLS: clients would send \
             their credentials to the token endpoint in clear text. Use https://"
        );
    }
    if loopback {
        return Ok(false);
    }
    if !allow_plaintext {
        bail!(
            "token.public_url http://{rest} sends clients' credentials to the token endpoint in \
             clear text. Use https:// (e.g. the TLS proxy in front of Rampart), or allow it with \
             --allow-plaintext"
        );
    }
    Ok(true)
}

/// Protections the configuration turns off or opens up: each is allowed (an operator may have a
/// reason) but never silent, so every start says so.
fn weakened_protections(config: &crate::config::Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.rate.per_principal.per_second == 0 {
        out.push(
            "the per-token rate limit is off (rate_limits.per_principal_per_second = 0)".to_owned(),
        );
    }
    if config.rate.per_ip.per_second == 0 {
        out.push(
            "the per-IP rate limit is off: nothing slows down credential guessing \
             (rate_limits.per_ip_per_second = 0)"
                .to_owned(),
        );
    }
    if config.idle_timeout.is_zero() {
        out.push("idle connections are never closed (timeouts.idle = 0)".to_owned());
    }
    let everyone: Vec<String> = config
        .trusted_proxies
        .networks()
        .iter()
        .filter(|n| n.prefix() == 0)
        .map(ToString::to_string)
        .collect();
    if !everyone.is_empty() {
        out.push(format!(
            "trusted_proxies includes {}: any client can choose the address it is rate-limited \
             and audited under (X-Forwarded-For)",
            everyone.join(", ")
        ));
    }
    if !config.anonymous_pull.is_empty() {
        let patterns: Vec<&str> = config.anonymous_pull.iter().map(|p| p.as_str()).collect();
        out.push(format!(
            "anyone can pull, without credentials, from {} (anonymous.pull)",
            patterns.join(", ")
        ));
    }
    out
}

pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(rampart_server::tls::acceptor(cert, key)?),
        None => None,
    };
    if plaintext_exposed(config.listen, tls.is_some(), config.allow_plaintext)? {
        output::info(&format!(
            "warning: listening on {} WITHOUT TLS (--allow-plaintext): tokens cross the network in clear text",
            config.listen
        ));
    }
    if realm_in_clear(
        config.public_url.as_deref(),
        tls.is_some(),
        config.allow_plaintext,
    )? {
        output::info(&format!(
            "warning: token.public_url {} is plain http (--allow-plaintext): clients send their \
             credentials to it in clear text",
            config.public_url.as_deref().unwrap_or_default()
        ));
    }
    let weakened = weakened_protections(&config);
    for w in &weakened {
        output::info(&format!("warning: {w}"));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
    }
    for w in &weakened {
        tracing::warn!(protection = %w, "a protection is weakened by the configuration");
    }
    let rt = runtime()?;
    let result = rt.block_on(async {
        let data = DataDir::new(&config.data);
        let opened = data
            .open_with_audit(config.limits(), config.audit())
            .await
            .with_context(|| format!("opening data directory {}", config.data.display()))?;
        opened
            .state
            .set_anonymous_pull(config.anonymous_pull.clone());
        // The Docker token flow's realm must use the scheme clients reach us with.
        opened
            .state
            .set_token_service(rampart_server::TokenService {
                tls: tls.is_some(),
                public_url: config.public_url.clone(),
                ttl: config.token_ttl,
            });
        if let Some(token) = &opened.first_admin_token {
            output::info(&format!(
                "first start: created admin token {} (also written to {}, mode 0600); it is shown only once:",
                token.record.id,
                data.admin_token_path().display()
            ));
            output::stdout(format!("{}\n", token.secret).as_bytes())?;
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && tls.is_none() {
            tracing::warn!(%addr, "serving without TLS on a non-loopback address (--allow-plaintext)");
        }
        if !config.anonymous_pull.is_empty() {
            let patterns: Vec<&str> = config.anonymous_pull.iter().map(|p| p.as_str()).collect();
            tracing::warn!(?patterns, "anonymous pull is enabled for these namespaces");
        }
        let state = opened.state.clone();
        let maintenance = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tick.tick().await;
                match state.expire_uploads().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "expired abandoned uploads"),
                    Err(e) => tracing::warn!(error = %e, "upload expiry failed"),
                }
            }
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, data = %config.data.display(), "rampart registry listening");
        output::info(&format!("rampart: listening on {scheme}://{addr}"));
        let options = ServeOptions {
            tls,
            ..config.serve_options()
        };
        rampart_server::listen::serve(
            listener,
            rampart_server::app(opened.state.clone()),
            options,
            shutdown_signal(),
        )
        .await
        .context("serving")?;
        maintenance.abort();
        // Last: the final checkpoint covers every request served. A writer stuck on a hung disk
        // does not keep the process alive: the next start recovers and signs the checkpoint.
        let stopped = opened.audit.shutdown_within(STOP_LIMIT).await;
        // The metadata store is on the same disk: bounded too.
        let closed = tokio::time::timeout(STOP_LIMIT, opened.sqlite.close())
            .await
            .is_ok();
        if !closed {
            tracing::error!("the metadata database did not close in time; exiting anyway");
        }
        if !stopped {
            tracing::error!(
                limit_s = STOP_LIMIT.as_secs(),
                "the audit log's writer did not stop in time (stuck write or fsync); \
                 its final checkpoint may be missing until the next start"
            );
            output::info(&format!(
                "rampart: the audit log did not stop within {} s; exiting anyway",
                STOP_LIMIT.as_secs()
            ));
            return Ok(ExitCode::FAILURE);
        }
        Ok(if closed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    });
    // Blocking file operations of requests cut off by the shutdown may be stuck on a hung disk:
    // do not wait for them forever either.
    rt.shutdown_timeout(STOP_LIMIT);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weakened_protections_are_named_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let load = |toml: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, toml).unwrap();
            crate::config::ConfigArgs::data_only(Some(path), None)
                .load()
                .unwrap()
        };
        assert!(weakened_protections(&load("")).is_empty());
        let w = weakened_protections(&load(
            "trusted_proxies = [\"10.0.0.0/8\", \"::ffff:0:0/96\"]\n\
             [rate_limits]\nper_principal_per_second = 0\nper_ip_per_second = 0\n\
             [timeouts]\nidle = \"0\"\n[anonymous]\npull = [\"pub/**\"]\n",
        ));
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].contains("per_principal_per_second"));
        assert!(w[1].contains("per_ip_per_second"));
        assert!(w[2].contains("timeouts.idle"));
        assert!(
            w[3].contains("0.0.0.0/0") && !w[3].contains("10.0.0.0/8"),
            "{}",
            w[3]
        );
        assert!(w[4].contains("pub/**"));
    }

    #[test]
    fn a_plain_http_realm_needs_loopback_or_an_opt_in_and_never_goes_with_tls() {
        assert!(!realm_in_clear(None, true, false).unwrap());
        assert!(!realm_in_clear(Some("https://reg.example"), false, false).unwrap());
        assert!(!realm_in_clear(Some("https://reg.example"), true, false).unwrap());
        for local in [
            "http://localhost:5050",
            "http://127.0.0.1",
            "http://[::1]:9",
        ] {
            assert!(
                !realm_in_clear(Some(local), false, false).unwrap(),
                "{local}"
            );
            // TLS on the listener and a plain realm: always refused, even to loopback.
            assert!(realm_in_clear(Some(local), true, true).is_err(), "{local}");
        }
        for remote in [
            "http://reg.example",
            "http://10.0.0.1:80",
            "http://[2001:db8::1]",
        ] {
            let e = realm_in_clear(Some(remote), false, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("clear text"), "{e}");
            assert!(
                realm_in_clear(Some(remote), false, true).unwrap(),
                "{remote}"
            );
            assert!(
                realm_in_clear(Some(remote), true, true).is_err(),
                "{remote}"
            );
        }
    }

    #[test]
    fn non_loopback_needs_tls_or_an_explicit_plaintext_opt_in() {
        let public: std::net::SocketAddr = "0.0.0.0:5050".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:5050".parse().unwrap();
        assert!(!plaintext_exposed(local, false, false).unwrap());
        assert!(!plaintext_exposed(public, true, false).unwrap());
        assert!(plaintext_exposed(public, false, false).is_err());
        assert!(plaintext_exposed(public, false, true).unwrap());
    }
}
