//! `rampart token`: create, list and revoke API tokens, either directly in a data directory or
//! through a running server's admin API (`--server URL`, or `RAMPART_SERVER`).
//!
//! With `--server`, the admin token comes from `--token-file FILE` or the `RAMPART_TOKEN`
//! environment variable, never from a flag; see [`crate::client`] for the transport rules (https
//! with `--ca-cert`, plain http to loopback only).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::http::{Method, StatusCode};
use clap::{Args, Subcommand};
use rampart_core::{NamespacePattern, Role};
use rampart_server::DataDir;
use rampart_store::MetadataStore as _;
use serde_json::{Value, json};

use crate::client::{self, Server};
use crate::output;
use crate::serve::runtime;

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

/// A token lifetime: `30d`, `12h`, `90m`, `3600s`; never zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s, false)
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
            rampart_store::rfc3339(t.created_at),
            t.expires_at
                .map_or_else(|| "never".to_owned(), rampart_store::rfc3339),
            t.status
        ));
    }
    out
}

fn created_message(id: &str, role: &str, namespace: &str, expires_at: Option<i64>) -> String {
    format!(
        "created token {id} ({role} on {namespace}{}); the secret below is shown only once:",
        expires_at.map_or(String::new(), |e| format!(
            ", expires {}",
            rampart_store::rfc3339(e)
        ))
    )
}

pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    match &args.server {
        Some(url) => {
            let server = Server::parse(url, args.ca_cert.as_deref())?;
            let secret = client::read_token(args.token_file.as_deref(), "an admin token")?;
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
}
