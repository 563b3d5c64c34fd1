//! `rampart sign` and `rampart verify`: OpenSSF Model Signing, interoperable with `model_signing`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rampart_sign::{
    Bundle, ChainTime, PublicKey, SignOptions, SigningKey, Trust, TrustConfig, TrustRoots,
    VerifyOptions,
};

use crate::output;

/// Arguments of `rampart sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The model: a directory, or a single file.
    model: PathBuf,
    /// ECDSA private key (P-256, P-384 or P-521), PEM: SEC1 or unencrypted PKCS#8.
    #[arg(long, visible_alias = "private-key", alias = "private_key")]
    key: PathBuf,
    /// Sign with a certificate: the signing (leaf) certificate for --key, PEM.
    #[arg(
        long,
        alias = "signing_certificate",
        alias = "signing-certificate",
        requires = "certificate_chain"
    )]
    signing_cert: Option<PathBuf>,
    /// Sign with a certificate: intermediate certificates to embed after the leaf, PEM.
    #[arg(long, alias = "certificate_chain", requires = "signing_cert")]
    certificate_chain: Option<PathBuf>,
    /// Where to write the signature (a Sigstore bundle). Ignored when hashing if inside the model.
    #[arg(long, default_value = rampart_sign::DEFAULT_SIGNATURE_NAME)]
    signature: PathBuf,
    /// Files or directories to leave out of the signature (relative to the current directory).
    #[arg(long, alias = "ignore_paths", num_args = 1..)]
    ignore_paths: Vec<PathBuf>,
    /// Also sign `.git`, `.gitattributes`, `.github` and `.gitignore` at the model root.
    #[arg(long)]
    no_ignore_git_paths: bool,
}

/// Arguments of `rampart verify`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("trust")
        .required(true)
        .args(["key", "certificate_chain", "sigstore"])
))]
pub(crate) struct VerifyArgs {
    /// The model: a directory, or a single file.
    model: PathBuf,
    /// Key method: the signer's ECDSA public key, PEM (SubjectPublicKeyInfo).
    #[arg(long, visible_alias = "public-key", alias = "public_key")]
    key: Option<PathBuf>,
    /// Certificate method: trusted certificates, PEM; repeat for several files. Every
    /// certificate given is a trust anchor; the bundle's chain must lead to one of them and be
    /// valid now.
    #[arg(long, alias = "certificate_chain")]
    certificate_chain: Vec<PathBuf>,
    /// Keyless (Sigstore) method, offline: the bundle's Fulcio certificate must chain to a
    /// certificate authority of --trust-config at the Rekor entry's integrated time, the entry
    /// must be signed by a log listed there, and the certificate must name --identity and
    /// --issuer.
    #[arg(long, requires_all = ["identity", "issuer", "trust_config"])]
    sigstore: bool,
    /// Keyless: the signer identity the certificate must name (subject alternative name, e.g. an
    /// e-mail address or a workflow URI).
    #[arg(long, requires = "sigstore")]
    identity: Option<String>,
    /// Keyless: the OIDC issuer the certificate must name (Fulcio issuer extension).
    #[arg(
        long,
        alias = "identity_provider",
        alias = "identity-provider",
        requires = "sigstore"
    )]
    issuer: Option<String>,
    /// Keyless: the pinned Sigstore trust configuration (ClientTrustConfig or TrustedRoot JSON)
    /// holding the trusted certificate authorities and transparency-log keys. Nothing is
    /// fetched from the network.
    #[arg(long, alias = "trust_config", requires = "sigstore")]
    trust_config: Option<PathBuf>,
    /// The signature (a Sigstore bundle).
    #[arg(long, default_value = rampart_sign::DEFAULT_SIGNATURE_NAME)]
    signature: PathBuf,
    /// Files or directories to leave out of the comparison (relative to the current directory).
    #[arg(long, alias = "ignore_paths", num_args = 1..)]
    ignore_paths: Vec<PathBuf>,
    /// Accept files in the model that the signature does not cover.
    #[arg(long, alias = "ignore_unsigned_files")]
    ignore_unsigned_files: bool,
    /// Also compare `.git`, `.gitattributes`, `.github` and `.gitignore` at the model root.
    #[arg(long)]
    no_ignore_git_paths: bool,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

fn absolute_all(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths.iter().map(|p| absolute(p)).collect()
}

pub(crate) fn sign(args: &SignArgs) -> Result<ExitCode> {
    let pem = read(&args.key, "private key")?;
    let pem = std::str::from_utf8(&pem).context("the private key is not PEM text")?;
    let key = SigningKey::from_pem(pem)
        .with_context(|| format!("loading private key {}", args.key.display()))?;
    let signature = absolute(&args.signature)?;
    let opts = {
        let mut o = SignOptions::default();
        o.ignore_paths = absolute_all(&args.ignore_paths)?;
        o.ignore_git_paths = !args.no_ignore_git_paths;
        o.signature_path = Some(signature.clone());
        o
    };
    let manifest = rampart_sign::manifest_for_signing(&args.model, &opts)
        .with_context(|| format!("hashing {}", args.model.display()))?;
    let bundle = match (&args.signing_cert, &args.certificate_chain) {
        (Some(leaf), Some(chain)) => {
            let mut ders = rampart_sign::certificate_chain_from_pem(&read(leaf, "certificate")?)
                .with_context(|| format!("reading {}", leaf.display()))?;
            ders.extend(
                rampart_sign::certificate_chain_from_pem(&read(chain, "certificate chain")?)
                    .with_context(|| format!("reading {}", chain.display()))?,
            );
            rampart_sign::sign_manifest_with_certificates(&manifest, &key, ders)
        }
        _ => rampart_sign::sign_manifest(&manifest, &key),
    }
    .with_context(|| format!("signing {}", args.model.display()))?;
    let files = manifest.resources.len();
    write_atomically(&signature, bundle.to_json().as_bytes())?;
    output::info(&format!(
        "signed {} ({files} files) into {}",
        args.model.display(),
        args.signature.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` next to `path` and renames over it, so a crash never leaves half a signature.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .context("the signature path names no file")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Verifies; every failure, including unreadable inputs, exits 1 with the reason.
pub(crate) fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    match verify_inner(args) {
        Ok(summary) => {
            output::info(&summary);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            output::info(&format!("verification FAILED: {e:#}"));
            Ok(ExitCode::from(1))
        }
    }
}

fn verify_inner(args: &VerifyArgs) -> Result<String> {
    let trust = match (&args.key, args.certificate_chain.as_slice()) {
        _ if args.sigstore => {
            let (Some(identity), Some(issuer), Some(config)) =
                (&args.identity, &args.issuer, &args.trust_config)
            else {
                anyhow::bail!("--sigstore needs --identity, --issuer and --trust-config");
            };
            Trust::Sigstore {
                config: TrustConfig::read(config)
                    .with_context(|| format!("loading trust configuration {}", config.display()))?,
                identity: identity.clone(),
                issuer: issuer.clone(),
            }
        }
        (Some(key), _) => {
            let pem = read(key, "public key")?;
            let pem = std::str::from_utf8(&pem).context("the public key is not PEM text")?;
            Trust::PublicKey(
                PublicKey::from_pem(pem)
                    .with_context(|| format!("loading public key {}", key.display()))?,
            )
        }
        (None, [first, rest @ ..]) => {
            let load = |p: &PathBuf| -> Result<Vec<u8>> { read(p, "certificate chain") };
            let mut roots = TrustRoots::from_pem(&load(first)?)
                .with_context(|| format!("loading trusted roots {}", first.display()))?;
            for p in rest {
                roots
                    .add_pem(&load(p)?)
                    .with_context(|| format!("loading trusted roots {}", p.display()))?;
            }
            Trust::Certificates {
                roots,
                time: ChainTime::Now,
            }
        }
        (None, []) => anyhow::bail!("give --key, --certificate-chain or --sigstore"),
    };
    let bundle = Bundle::read(&args.signature)
        .with_context(|| format!("reading signature {}", args.signature.display()))?;
    let opts = {
        let mut o = VerifyOptions::default();
        o.ignore_paths = absolute_all(&args.ignore_paths)?;
        o.ignore_git_paths = !args.no_ignore_git_paths;
        o.ignore_unsigned_files = args.ignore_unsigned_files;
        o.signature_path = Some(absolute(&args.signature)?);
        o
    };
    let verified = rampart_sign::verify_model(&args.model, &bundle, &trust, &opts)?;
    Ok(format!(
        "verification succeeded: {} ({} files) matches {}",
        args.model.display(),
        verified.manifest().resources.len(),
        args.signature.display()
    ))
}
