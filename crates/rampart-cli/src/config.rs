//! The registry's configuration: one TOML file parsed into [`RawConfig`] (every key optional, unknown
//! keys rejected), then overridden by `RAMPART_*` environment variables and flags (clap merges those
//! two, flags first), then validated into the typed [`Config`]. Precedence: flags > env > file >
//! defaults. `rampart config print` renders a [`Config`] back to TOML; the output parses to the same
//! [`Config`]. No key holds a secret value (the TLS key is a path; tokens live in the data directory),
//! so nothing needs redacting today; `print` still runs every value through [`Config::to_raw`], the one
//! place to redact should a secret-valued key be added.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use rampart_core::{Cidr, NamespacePattern, TrustedProxies};
use rampart_server::Limits;
use rampart_server::limit::{Rate, RateLimits};
use rampart_server::listen::ServeOptions;
use serde::{Deserialize, Serialize};

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One JSON object per line (the default).
    Json,
    /// Human-readable lines.
    Text,
}

/// The file as written: every key optional, unknown keys are errors.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_plaintext: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_proxies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    #[serde(default, skip_serializing_if = "RawTls::is_empty")]
    tls: RawTls,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    rate_limits: RawRateLimits,
    #[serde(default)]
    anonymous: RawAnonymous,
    #[serde(default)]
    gc: RawGc,
    #[serde(default)]
    token: RawToken,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<PathBuf>,
}

impl RawTls {
    fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none()
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_manifest_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_blob_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_header_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_headers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_ttl: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    header_read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    per_principal_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_principal_burst: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_ip_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_ip_burst: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnonymous {
    #[serde(skip_serializing_if = "Option::is_none")]
    pull: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGc {
    #[serde(skip_serializing_if = "Option::is_none")]
    grace: Option<String>,
}

/// Flags (and their `RAMPART_*` environment variables) that override the file.
#[derive(Debug, Default, Clone, Args)]
pub(crate) struct ConfigArgs {
    /// TOML configuration file (see docs/rampart.example.toml). Unknown keys are errors.
    #[arg(long, env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: SQLite metadata, blobs, token key, first admin token [default: ./rampart-data].
    #[arg(long, env = "RAMPART_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5050]. A non-loopback address needs TLS, or
    /// --allow-plaintext.
    #[arg(long, env = "RAMPART_LISTEN")]
    listen: Option<SocketAddr>,
    /// Allow listening on a non-loopback address without TLS (tokens then cross the network in clear
    /// text; a warning is logged on every start). `--allow-plaintext=false` (or
    /// `RAMPART_ALLOW_PLAINTEXT=false`/`0`) overrides `allow_plaintext = true` in the file.
    #[arg(
        long,
        env = "RAMPART_ALLOW_PLAINTEXT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_plaintext: Option<bool>,
    /// TLS certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "RAMPART_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1); needs --tls-cert.
    #[arg(long, env = "RAMPART_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Log format of the server [default: json].
    #[arg(long, env = "RAMPART_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// A reverse proxy (address or network, e.g. 10.0.0.0/8) whose X-Forwarded-For names the client
    /// for rate limits and the audit log; repeat, or comma-separate in the variable. Replaces
    /// `trusted_proxies` from the file [default: none].
    #[arg(
        long = "trusted-proxy",
        env = "RAMPART_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
}

impl ConfigArgs {
    /// Only a data directory (and a config file) given, for `gc` and `fsck`.
    pub(crate) fn data_only(config: Option<PathBuf>, data: Option<PathBuf>) -> Self {
        Self {
            config,
            data,
            ..Self::default()
        }
    }

    /// Reads the file (if any), applies `RAMPART_<SECTION>__<KEY>` environment variables, then the
    /// flags (and their own variables), and validates.
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        let raw = match &self.config {
            Some(path) => RawConfig::read(path)?,
            None => RawConfig::default(),
        };
        let raw = raw.with_env(std::env::vars())?;
        self.apply(raw).validate()
    }

    fn apply(&self, mut raw: RawConfig) -> RawConfig {
        if let Some(d) = &self.data {
            raw.data = Some(d.clone());
        }
        if let Some(l) = self.listen {
            raw.listen = Some(l.to_string());
        }
        if let Some(allow) = self.allow_plaintext {
            raw.allow_plaintext = Some(allow);
        }
        if let Some(c) = &self.tls_cert {
            raw.tls.cert = Some(c.clone());
        }
        if let Some(k) = &self.tls_key {
            raw.tls.key = Some(k.clone());
        }
        if let Some(f) = self.log_format {
            raw.log_format = Some(f);
        }
        if !self.trusted_proxies.is_empty() {
            raw.trusted_proxies = Some(self.trusted_proxies.clone());
        }
        raw
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) data: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) allow_plaintext: bool,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) log_format: LogFormat,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    pub(crate) max_manifest_bytes: u64,
    pub(crate) max_blob_bytes: u64,
    pub(crate) max_body_bytes: u64,
    pub(crate) max_header_bytes: u64,
    pub(crate) max_headers: u64,
    pub(crate) upload_ttl: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) rate: RateLimits,
    pub(crate) anonymous_pull: Vec<NamespacePattern>,
    pub(crate) gc_grace: Duration,
    pub(crate) public_url: Option<String>,
    pub(crate) token_ttl: Duration,
    pub(crate) audit_origin: String,
    pub(crate) audit_timeout: Duration,
}

/// Largest `limits.max_headers` accepted: hyper allocates a table of that many entries for every
/// request head it parses, so a huge value would make each request allocate gigabytes.
const MAX_HEADERS_CAP: u64 = 10_000;

/// Parses `30s`, `5m`, `12h`, `30d`; `0` (or `0s`) only when `zero_ok`.
pub(crate) fn parse_duration(s: &str, zero_ok: bool) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30d, 12h, 90m, 3600s"))?;
    let secs = match unit {
        "s" => 1,
        "" if n == 0 => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    if n == 0 && !zero_ok {
        return Err(format!("{s:?}: must be positive"));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// The shortest exact rendering of whole seconds: `1h`, `90s`, `0s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

impl RawConfig {
    /// Reads and parses a file; errors name the file, the key and the line.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// Overrides keys inside sections from variables named `RAMPART_<SECTION>__<KEY>` (double
    /// underscore), e.g. `RAMPART_RATE_LIMITS__PER_IP_BURST=100` or `RAMPART_TIMEOUTS__IDLE=10m`. A
    /// value is read as TOML (`100`, `true`, `["a/**"]`) and otherwise as a string. Top-level keys have
    /// their own variables (`RAMPART_DATA`, ...) through the flags. Unknown keys are errors.
    pub(crate) fn with_env(
        self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut overlay = Vec::new();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("RAMPART_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            overlay.push((
                name.clone(),
                section.to_ascii_lowercase(),
                key.to_ascii_lowercase(),
                value,
            ));
        }
        if overlay.is_empty() {
            return Ok(self);
        }
        let mut table = toml::Table::try_from(&self).context("re-reading the configuration")?;
        for (name, section, key, value) in overlay {
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section_table) = entry.as_table_mut() else {
                bail!("{name}: `{section}` is not a section of the configuration");
            };
            section_table.insert(key, parsed);
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                anyhow::anyhow!(
                    "RAMPART_* environment variables: {}",
                    e.to_string().trim_end()
                )
            })
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    pub(crate) fn validate(self) -> anyhow::Result<Config> {
        let d = Limits::default();
        let serve = ServeOptions::default();
        let rate = RateLimits::default();
        let dur = |key: &str, v: &Option<String>, default: Duration, zero_ok: bool| {
            v.as_deref().map_or(Ok(default), |s| {
                parse_duration(s, zero_ok).map_err(|e| anyhow::anyhow!("{key}: {e}"))
            })
        };
        let listen = match &self.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 5050)),
            Some(s) => s
                .parse()
                .map_err(|e| anyhow::anyhow!("listen: {s:?} is not an address:port ({e})"))?,
        };
        let tls = match (self.tls.cert, self.tls.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => bail!("tls.cert is set but tls.key is not (both or neither)"),
            (None, Some(_)) => bail!("tls.key is set but tls.cert is not (both or neither)"),
        };
        let limits = self.limits;
        let max_header_bytes = limits
            .max_header_bytes
            .unwrap_or(serve.max_header_bytes as u64);
        if max_header_bytes < 8192 {
            bail!("limits.max_header_bytes: at least 8192");
        }
        let max_manifest_bytes = limits.max_manifest_bytes.unwrap_or(d.max_manifest as u64);
        if max_manifest_bytes < 4 * 1024 * 1024 {
            bail!("limits.max_manifest_bytes: the OCI spec asks for at least 4 MiB (4194304)");
        }
        let positive = |key: &str, v: Option<u64>, default: u64| {
            let v = v.unwrap_or(default);
            if v == 0 {
                bail!("{key}: must be positive");
            }
            Ok(v)
        };
        // hyper allocates a header table of this many entries for every request it parses.
        let max_headers = positive(
            "limits.max_headers",
            limits.max_headers,
            serve.max_headers as u64,
        )?;
        if max_headers > MAX_HEADERS_CAP {
            bail!("limits.max_headers: at most {MAX_HEADERS_CAP}");
        }
        let anonymous_pull = self
            .anonymous
            .pull
            .unwrap_or_default()
            .iter()
            .map(|p| {
                p.parse::<NamespacePattern>()
                    .map_err(|e| anyhow::anyhow!("anonymous.pull: {p:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let trusted_proxies = TrustedProxies::new(
            self.trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    p.parse::<Cidr>()
                        .map_err(|e| anyhow::anyhow!("trusted_proxies: {p:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let r = self.rate_limits;
        let public_url = match self.token.public_url {
            None => None,
            Some(u) => {
                let rest = u
                    .strip_prefix("https://")
                    .or_else(|| u.strip_prefix("http://"))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "token.public_url: {u:?} must start with https:// or http://"
                        )
                    })?;
                let host = rest.trim_end_matches('/');
                if !rampart_server::token::is_plain_host(host) {
                    bail!("token.public_url: {u:?} must be scheme://host[:port] with no path");
                }
                Some(u.trim_end_matches('/').to_owned())
            }
        };
        let token_ttl = dur(
            "token.ttl",
            &self.token.ttl,
            rampart_server::token::DEFAULT_TTL,
            false,
        )?;
        if token_ttl > Duration::from_secs(3600) {
            bail!("token.ttl: at most 1h");
        }
        let audit_default = rampart_audit::AuditConfig::default();
        let audit_origin = self.audit.origin.unwrap_or(audit_default.origin);
        if audit_origin.is_empty()
            || audit_origin.len() > 255
            || audit_origin
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '+')
        {
            bail!("audit.origin: {audit_origin:?} must be a non-empty name without spaces or '+'");
        }
        let audit_timeout = dur(
            "audit.timeout",
            &self.audit.timeout,
            audit_default.timeout,
            false,
        )?;
        Ok(Config {
            public_url,
            token_ttl,
            audit_origin,
            audit_timeout,
            data: self.data.unwrap_or_else(|| PathBuf::from("./rampart-data")),
            listen,
            allow_plaintext: self.allow_plaintext.unwrap_or(false),
            trusted_proxies,
            log_format: self.log_format.unwrap_or(LogFormat::Json),
            tls,
            max_manifest_bytes,
            max_blob_bytes: positive("limits.max_blob_bytes", limits.max_blob_bytes, d.max_blob)?,
            max_body_bytes: positive(
                "limits.max_body_bytes",
                limits.max_body_bytes,
                d.max_body as u64,
            )?,
            max_header_bytes,
            max_headers,
            upload_ttl: dur("limits.upload_ttl", &limits.upload_ttl, d.upload_ttl, false)?,
            header_read_timeout: dur(
                "timeouts.header_read",
                &self.timeouts.header_read,
                serve.header_read_timeout,
                false,
            )?,
            idle_timeout: dur(
                "timeouts.idle",
                &self.timeouts.idle,
                serve.idle_timeout,
                true,
            )?,
            shutdown_grace: dur(
                "timeouts.shutdown_grace",
                &self.timeouts.shutdown_grace,
                serve.shutdown_grace,
                true,
            )?,
            rate: RateLimits {
                per_principal: Rate {
                    per_second: r
                        .per_principal_per_second
                        .unwrap_or(rate.per_principal.per_second),
                    burst: r.per_principal_burst.unwrap_or(rate.per_principal.burst),
                },
                per_ip: Rate {
                    per_second: r.per_ip_per_second.unwrap_or(rate.per_ip.per_second),
                    burst: r.per_ip_burst.unwrap_or(rate.per_ip.burst),
                },
            },
            anonymous_pull,
            gc_grace: dur("gc.grace", &self.gc.grace, Duration::from_secs(3600), true)?,
        })
    }
}

impl Config {
    /// The configuration as a complete TOML document (every key, secrets redacted).
    pub(crate) fn to_raw(&self) -> RawConfig {
        RawConfig {
            data: Some(self.data.clone()),
            listen: Some(self.listen.to_string()),
            allow_plaintext: Some(self.allow_plaintext),
            trusted_proxies: Some(
                self.trusted_proxies
                    .networks()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            log_format: Some(self.log_format),
            tls: RawTls {
                cert: self.tls.as_ref().map(|t| t.0.clone()),
                key: self.tls.as_ref().map(|t| t.1.clone()),
            },
            limits: RawLimits {
                max_manifest_bytes: Some(self.max_manifest_bytes),
                max_blob_bytes: Some(self.max_blob_bytes),
                max_body_bytes: Some(self.max_body_bytes),
                max_header_bytes: Some(self.max_header_bytes),
                max_headers: Some(self.max_headers),
                upload_ttl: Some(format_duration(self.upload_ttl)),
            },
            timeouts: RawTimeouts {
                header_read: Some(format_duration(self.header_read_timeout)),
                idle: Some(format_duration(self.idle_timeout)),
                shutdown_grace: Some(format_duration(self.shutdown_grace)),
            },
            rate_limits: RawRateLimits {
                per_principal_per_second: Some(self.rate.per_principal.per_second),
                per_principal_burst: Some(self.rate.per_principal.burst),
                per_ip_per_second: Some(self.rate.per_ip.per_second),
                per_ip_burst: Some(self.rate.per_ip.burst),
            },
            anonymous: RawAnonymous {
                pull: Some(
                    self.anonymous_pull
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                ),
            },
            gc: RawGc {
                grace: Some(format_duration(self.gc_grace)),
            },
            token: RawToken {
                public_url: self.public_url.clone(),
                ttl: Some(format_duration(self.token_ttl)),
            },
            audit: RawAudit {
                origin: Some(self.audit_origin.clone()),
                timeout: Some(format_duration(self.audit_timeout)),
            },
        }
    }

    /// `rampart config print`.
    pub(crate) fn to_toml(&self) -> anyhow::Result<String> {
        Ok(format!(
            "# Effective Rampart configuration (flags > RAMPART_* env > file > defaults).\n{}",
            toml::to_string(&self.to_raw()).context("rendering the configuration")?
        ))
    }

    /// The server's request limits.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_manifest: usize::try_from(self.max_manifest_bytes).unwrap_or(usize::MAX),
            max_blob: self.max_blob_bytes,
            upload_ttl: self.upload_ttl,
            max_body: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            rate: self.rate,
        }
    }

    /// The audit log's settings.
    pub(crate) fn audit(&self) -> rampart_audit::AuditConfig {
        rampart_audit::AuditConfig {
            origin: self.audit_origin.clone(),
            timeout: self.audit_timeout,
            ..rampart_audit::AuditConfig::default()
        }
    }

    /// The connection settings (without TLS, which the caller loads).
    pub(crate) fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_header_bytes: usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX),
            max_headers: usize::try_from(self.max_headers).unwrap_or(usize::MAX),
            shutdown_grace: self.shutdown_grace,
            tls: None,
            trusted_proxies: std::sync::Arc::new(self.trusted_proxies.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../docs/rampart.example.toml");

    #[test]
    fn defaults_without_a_file() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 5050)));
        assert_eq!(c.data, PathBuf::from("./rampart-data"));
        assert!(!c.allow_plaintext && c.tls.is_none() && c.anonymous_pull.is_empty());
        assert_eq!(c.gc_grace, Duration::from_secs(3600));
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = RawConfig::parse("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
        let err = RawConfig::parse("[limits]\nmax_blob = 1\n").unwrap_err();
        assert!(err.to_string().contains("max_blob"), "{err}");
    }

    #[test]
    fn typed_validation_names_the_key() {
        for (text, key) in [
            ("[timeouts]\nheader_read = \"5y\"\n", "timeouts.header_read"),
            ("[tls]\ncert = \"c.pem\"\n", "tls.key"),
            ("listen = \"localhost\"\n", "listen"),
            ("[anonymous]\npull = [\"/abs\"]\n", "anonymous.pull"),
            (
                "[limits]\nmax_header_bytes = 100\n",
                "limits.max_header_bytes",
            ),
            ("[limits]\nmax_headers = 100000000\n", "limits.max_headers"),
        ] {
            let err = RawConfig::parse(text).unwrap().validate().unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let raw = RawConfig::parse("listen = \"127.0.0.1:1\"\ndata = \"/from/file\"\n").unwrap();
        let args = ConfigArgs {
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..ConfigArgs::default()
        };
        let c = args.apply(raw).validate().unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.data, PathBuf::from("/from/file"));
    }

    #[test]
    fn example_file_parses_and_print_round_trips() {
        let c = RawConfig::parse(EXAMPLE).unwrap().validate().unwrap();
        assert_eq!(c.anonymous_pull.len(), 1);
        let printed = c.to_toml().unwrap();
        let again = RawConfig::parse(&printed).unwrap().validate().unwrap();
        assert_eq!(again, c);
        let defaults = RawConfig::default().validate().unwrap();
        let again = RawConfig::parse(&defaults.to_toml().unwrap())
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(again, defaults);
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let raw = RawConfig::parse("[rate_limits]\nper_ip_burst = 7\n[timeouts]\nidle = \"1m\"\n")
            .unwrap();
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let c = raw
            .clone()
            .with_env(env(&[
                ("RAMPART_RATE_LIMITS__PER_IP_BURST", "9"),
                ("RAMPART_TIMEOUTS__IDLE", "10m"),
                ("RAMPART_ANONYMOUS__PULL", "[\"pub/**\"]"),
                ("RAMPART_LOG", "debug"),
                ("OTHER__X", "1"),
            ]))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.rate.per_ip.burst, 9);
        assert_eq!(c.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.anonymous_pull.len(), 1);
        let err = raw
            .clone()
            .with_env(env(&[("RAMPART_LIMITS__MAX_BLOB", "1")]))
            .unwrap_err();
        assert!(err.to_string().contains("max_blob"), "{err}");
        let flags = ConfigArgs {
            data: Some("/flag".into()),
            ..ConfigArgs::default()
        };
        let with_env_data = RawConfig::parse("data = \"/file\"\n").unwrap();
        assert_eq!(
            flags.apply(with_env_data).validate().unwrap().data,
            PathBuf::from("/flag")
        );
    }

    #[test]
    fn allow_plaintext_flag_and_env_override_the_file_both_ways() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        use clap::Parser as _;
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.config.allow_plaintext);
        assert_eq!(parse(&["x", "--allow-plaintext"]).unwrap(), Some(true));
        assert_eq!(
            parse(&["x", "--allow-plaintext=false"]).unwrap(),
            Some(false)
        );
        assert_eq!(parse(&["x", "--allow-plaintext=0"]).unwrap(), Some(false));
        assert!(parse(&["x", "--allow-plaintext=maybe"]).is_err());
        let file = RawConfig::parse("allow_plaintext = true\nlisten = \"0.0.0.0:5050\"\n").unwrap();
        let off = ConfigArgs {
            allow_plaintext: Some(false),
            ..ConfigArgs::default()
        };
        assert!(!off.apply(file.clone()).validate().unwrap().allow_plaintext);
        let unset = ConfigArgs::default();
        assert!(unset.apply(file).validate().unwrap().allow_plaintext);
    }

    #[test]
    fn trusted_proxies_parse_strictly_and_flags_replace_the_file() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        use clap::Parser as _;
        let file = RawConfig::parse("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n").unwrap();
        let c = ConfigArgs::default()
            .apply(file.clone())
            .validate()
            .unwrap();
        let nets: Vec<String> = c
            .trusted_proxies
            .networks()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
        // `config print` round-trips.
        let again = RawConfig::parse(&c.to_toml().unwrap()).unwrap();
        assert_eq!(
            ConfigArgs::default()
                .apply(again)
                .validate()
                .unwrap()
                .trusted_proxies,
            c.trusted_proxies
        );
        let flags = Cli::try_parse_from(["x", "--trusted-proxy", "192.168.0.0/16"])
            .unwrap()
            .config;
        let c = flags.apply(file).validate().unwrap();
        assert_eq!(c.trusted_proxies.networks().len(), 1);
        let bad = RawConfig::parse("trusted_proxies = [\"10.0.0.1/8\"]\n").unwrap();
        let e = ConfigArgs::default()
            .apply(bad)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("trusted_proxies") && e.contains("10.0.0.1/8"),
            "{e}"
        );
        assert!(
            ConfigArgs::default()
                .apply(RawConfig::default())
                .validate()
                .unwrap()
                .trusted_proxies
                .networks()
                .is_empty()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90m", false).unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_duration("0s", false).is_err());
        assert_eq!(parse_duration("0", true).unwrap(), Duration::ZERO);
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}

/// Arguments of `rampart config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigCmdArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file, env and flags applied) as TOML, secrets redacted.
    Print(ConfigArgs),
}

pub(crate) fn run(args: &ConfigCmdArgs) -> anyhow::Result<std::process::ExitCode> {
    match &args.command {
        ConfigCommand::Print(c) => {
            let config = c.load()?;
            crate::output::stdout(config.to_toml()?.as_bytes())?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
