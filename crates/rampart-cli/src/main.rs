//! `rampart`: a secure home for ML models.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod client;
mod config;
mod gc;
mod output;
mod sandbox;
mod scan;
mod serve;
mod sign;
mod token;

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
    /// The tamper-evident audit log: verify it, list who did what, prove and check single records,
    /// export it as C2SP tiles or JSONL, and hash a secret the way records do. `log` and `prove`
    /// also work through a running server's admin API (--server, with an auditor token).
    Audit(audit::AuditArgs),
    /// Print the CycloneDX 1.6 SBOM of this binary: every crate compiled into it, with version, purl,
    /// licence and the checksum recorded in Cargo.lock.
    Sbom,
    /// Scan model files for code-execution payloads, without executing anything: pickle (protocols
    /// 0-5), PyTorch, NumPy, joblib, Keras, TensorFlow SavedModel, ONNX, safetensors, GGUF, and the
    /// zip/tar/compressed containers around them. Exits 0 when no file is at or above --fail-on, 1
    /// when some file is, 2 on usage or I/O errors.
    Scan(scan::ScanArgs),
    /// Sign a model (directory or file) in the OpenSSF Model Signing format, as `model_signing`
    /// does: per-file SHA-256 in an in-toto statement, DSSE, Sigstore bundle v0.3.
    Sign(sign::SignArgs),
    /// Verify a model against an OpenSSF Model Signing signature. Exits 0 only when every check
    /// passes, 1 otherwise, naming what failed.
    Verify(sign::VerifyArgs),
    /// The sandbox that confines model parsers: `rampart sandbox check` reports which layers are
    /// in force on this host for this user.
    Sandbox(sandbox::SandboxArgs),
    /// Run the OCI model registry (authentication on; first start creates and prints an admin token).
    Serve(serve::ServeArgs),
    /// Show the registry configuration: `rampart config print [--config FILE]`.
    Config(config::ConfigCmdArgs),
    /// Delete blobs no repository or manifest references, older than a grace period; safe while
    /// the server runs.
    Gc(gc::GcArgs),
    /// Check the data directory: every blob matches its digest, every reference has its blob, no
    /// stray files. Exits 1 when a problem is found.
    Fsck(gc::FsckArgs),
    /// Create, list and revoke API tokens, in a data directory or through a running server's admin
    /// API (--server).
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    // A sandboxed worker (re-exec of this binary) must confine itself before anything else runs,
    // in particular before any thread exists.
    if std::env::args_os().nth(1).as_deref() == Some(rampart_sandbox::WORKER_ARG.as_ref()) {
        return sandbox::worker();
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Audit(args) => audit::run(args),
        Command::Sbom => output::stdout(SBOM.as_bytes())
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Scan(args) => scan::scan(args),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => sign::verify(args),
        Command::Serve(args) => serve::serve(args),
        Command::Config(args) => config::run(args),
        Command::Gc(args) => gc::gc(args),
        Command::Fsck(args) => gc::fsck(args),
        Command::Token(args) => token::token(args),
        Command::Sandbox(args) => sandbox::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error(&e);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
