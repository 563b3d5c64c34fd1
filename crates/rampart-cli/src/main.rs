//! `rampart`: a secure home for ML models.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod output;

/// The SBOM of this binary, produced by `build.rs` from `cargo metadata` and `Cargo.lock`.
const SBOM: &str = include_str!(concat!(env!("OUT_DIR"), "/sbom.cdx.json"));

/// Rampart: store, sign, verify, scan and serve ML models, and prove who touched which model and when.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CycloneDX 1.6 SBOM of this binary: every crate compiled into it, with version, purl,
    /// licence and the checksum recorded in Cargo.lock.
    Sbom,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sbom => output::stdout(SBOM.as_bytes()).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::from(2)
        }
    }
}
