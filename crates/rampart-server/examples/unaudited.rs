//! **Benchmark baseline only, never a way to run Rampart.** The registry exactly as `rampart serve`
//! builds it, minus the audit log, so `bench/registry.sh` can measure what auditing costs
//! (`AUDIT_BASELINE=1`). Usage: `unaudited DATA ADDR`; writes `DATA/admin-token` and
//! `DATA/bound-addr`, serves until killed.

#![allow(clippy::disallowed_macros)]

use std::sync::Arc;

use rampart_core::Role;
use rampart_server::listen::{ServeOptions, serve};
use rampart_server::{AppState, Limits, TokenKey, app, create_token};
use rampart_store::{FsBlobStore, SqliteMetadata};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(data), Some(addr)) = (args.next(), args.next()) else {
        return Err("usage: unaudited DATA ADDR".into());
    };
    let root = std::path::PathBuf::from(data);
    std::fs::create_dir_all(&root)?;
    let limits = Limits::default();
    let key = TokenKey::load_or_create(&root.join("token-key"))?;
    let meta = SqliteMetadata::open(&root.join("meta.db")).await?;
    let blobs = FsBlobStore::open(&root, limits.max_blob).await?;
    let state = AppState::new(Arc::new(blobs), Arc::new(meta), key, limits);
    let token = create_token(
        state.meta(),
        state.key(),
        "admin",
        Role::Admin,
        "**".parse()?,
        None,
    )
    .await?;
    std::fs::write(root.join("admin-token"), format!("{}\n", token.secret))?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    std::fs::write(root.join("bound-addr"), listener.local_addr()?.to_string())?;
    eprintln!(
        "unaudited baseline (benchmarks only) on {}",
        listener.local_addr()?
    );
    serve(
        listener,
        app(state),
        ServeOptions::default(),
        std::future::pending(),
    )
    .await?;
    Ok(())
}
