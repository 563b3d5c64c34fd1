//! `rampart serve` and `rampart token`: run the registry, and manage API tokens in a data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use rampart_core::{NamespacePattern, Role};
use rampart_server::{DataDir, Limits};
use rampart_store::MetadataStore as _;

use crate::output;

/// Arguments of `rampart serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Data directory: SQLite metadata, blobs, token key, first admin token.
    #[arg(long, env = "RAMPART_DATA", default_value = "./rampart-data")]
    data: PathBuf,
    /// Address to listen on. A non-loopback address needs TLS, or --allow-plaintext.
    #[arg(long, env = "RAMPART_LISTEN", default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// Allow listening on a non-loopback address without TLS (tokens then cross the network in clear
    /// text; a warning is logged on every start).
    #[arg(long)]
    allow_plaintext: bool,
}

/// Arguments of `rampart token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// Data directory of the registry.
    #[arg(
        long,
        env = "RAMPART_DATA",
        default_value = "./rampart-data",
        global = true
    )]
    data: PathBuf,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; the secret is printed once on stdout and never stored.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// reader (pull), publisher (pull, push, tag) or admin (everything).
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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

pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        if !args.allow_plaintext {
            bail!(
                "refusing to listen on {} without TLS: tokens would cross the network in clear text. \
                 Listen on a loopback address, or pass --allow-plaintext (e.g. behind a TLS proxy)",
                args.listen
            );
        }
        output::info(&format!(
            "warning: listening on {} WITHOUT TLS (--allow-plaintext): tokens cross the network in clear text",
            args.listen
        ));
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    runtime()?.block_on(async {
        let data = DataDir::new(&args.data);
        let opened = data
            .open(Limits::default())
            .await
            .with_context(|| format!("opening data directory {}", args.data.display()))?;
        if let Some(token) = &opened.first_admin_token {
            output::info(&format!(
                "first start: created admin token {} (also written to {}, mode 0600); it is shown only once:",
                token.record.id,
                data.admin_token_path().display()
            ));
            output::stdout(format!("{}\n", token.secret).as_bytes())?;
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "serving without TLS on a non-loopback address (--allow-plaintext)");
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
        tracing::info!(%addr, data = %args.data.display(), "rampart registry listening");
        output::info(&format!("rampart: listening on http://{addr}"));
        axum::serve(listener, rampart_server::app(opened.state.clone()))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        maintenance.abort();
        opened.sqlite.close().await;
        Ok(ExitCode::SUCCESS)
    })
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

pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
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
                output::info(&format!(
                    "created token {} ({} on {}{}); the secret below is shown only once:",
                    t.record.id,
                    t.record.role,
                    t.record.namespace,
                    expires_at.map_or(String::new(), |e| format!(", expires {}", rfc3339(e)))
                ));
                output::stdout(format!("{}\n", t.secret).as_bytes())?;
                ExitCode::SUCCESS
            }
            TokenCommand::List => {
                let now = rampart_store::now_unix();
                let mut out = format!(
                    "{:<16}  {:<16}  {:<9}  {:<24}  {:<20}  {:<20}  {}\n",
                    "ID", "NAME", "ROLE", "NAMESPACE", "CREATED", "EXPIRES", "STATUS"
                );
                for t in meta.tokens().await? {
                    let status = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    out.push_str(&format!(
                        "{:<16}  {:<16}  {:<9}  {:<24}  {:<20}  {:<20}  {}\n",
                        t.id,
                        t.name,
                        t.role,
                        t.namespace,
                        rfc3339(t.created_at),
                        t.expires_at.map_or_else(|| "never".to_owned(), rfc3339),
                        status
                    ));
                }
                output::stdout(out.as_bytes())?;
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
    })
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
}
