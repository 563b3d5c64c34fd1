//! `rampart`: a secure home for ML models.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod output;
mod scan;
mod sign;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Sbom => output::stdout(SBOM.as_bytes())
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Scan(args) => scan::scan(args),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => sign::verify(args),
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
