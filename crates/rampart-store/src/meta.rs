//! Registry metadata: the [`MetadataStore`] trait and its records.

use std::fmt;

use async_trait::async_trait;
use rampart_core::{Digest, NamespacePattern, RepoName, Role, Tag};

use crate::Result;

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
pub fn rfc3339(t: i64) -> String {
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

/// A manifest stored in a repository. The exact bytes live in the blob store under `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    /// The sha256 of the exact bytes.
    pub digest: Digest,
    /// The `Content-Type` it was pushed with (its `mediaType`).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, or else its config media type (for the referrers API).
    pub artifact_type: Option<String>,
    /// The `subject` it refers to, if any.
    pub subject: Option<Digest>,
}

/// An API token. The secret itself is never stored, only its keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public identifier (safe to log and show).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Which repositories it may do it to.
    pub namespace: NamespacePattern,
    /// HMAC-SHA256 of the secret under the server's token key.
    pub keyed_hash: [u8; 32],
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Expiry time (Unix seconds), if any.
    pub expires_at: Option<i64>,
    /// Revocation time (Unix seconds), if revoked.
    pub revoked_at: Option<i64>,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("namespace", &self.namespace)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// An upload session: which repository it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The repository the upload was started in.
    pub repository: RepoName,
    /// Start time (Unix seconds).
    pub created_at: i64,
}

/// Registry metadata. Every name and digest is a parsed value, never a raw string.
#[async_trait]
pub trait MetadataStore: Send + Sync + fmt::Debug {
    /// Checks that the database answers (for readiness probes).
    async fn health(&self) -> Result<()>;

    /// Creates the repository if it does not exist.
    async fn ensure_repository(&self, repo: &RepoName) -> Result<()>;
    /// Whether the repository exists.
    async fn repository_exists(&self, repo: &RepoName) -> Result<bool>;
    /// All repositories, sorted.
    async fn repositories(&self) -> Result<Vec<RepoName>>;

    /// Makes a stored blob visible in a repository (creating the repository).
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> Result<()>;
    /// The size of a blob if it is visible in the repository.
    async fn linked_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>>;
    /// Removes a blob's link from a repository (the file stays until gc); whether it was linked.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;

    /// Records a manifest (and optionally points `tag` at it), creating the repository.
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &ManifestRecord,
        tag: Option<&Tag>,
    ) -> Result<()>;
    /// A manifest of the repository by digest.
    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>>;
    /// Like [`MetadataStore::put_manifest`], but first checks, atomically with the write, that every
    /// blob in `blobs` is linked to `repo`. Returns the missing ones (and writes nothing) if any are.
    /// This is what keeps a concurrent `rampart gc` from leaving a manifest pointing at a deleted
    /// blob (see `gc`). The default implementation is not atomic; backends override it.
    async fn put_manifest_checked(
        &self,
        repo: &RepoName,
        manifest: &ManifestRecord,
        tag: Option<&Tag>,
        blobs: &[Digest],
    ) -> Result<Vec<Digest>> {
        let mut missing = Vec::new();
        for d in blobs {
            if self.linked_blob(repo, d).await?.is_none() {
                missing.push(*d);
            }
        }
        if missing.is_empty() {
            self.put_manifest(repo, manifest, tag).await?;
        }
        Ok(missing)
    }
    /// The digest a tag points at.
    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>>;
    /// Deletes a manifest and every tag pointing at it. Returns whether it existed.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;
    /// Deletes one tag. Returns whether it existed.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool>;
    /// Tags in lexical (byte) order after `last`, at most `limit`.
    async fn tags(&self, repo: &RepoName, last: Option<&str>, limit: u32) -> Result<Vec<Tag>>;
    /// Manifests of the repository whose `subject` is `subject`.
    async fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<ManifestRecord>>;

    /// Records an upload session.
    async fn create_upload(&self, id: &str, repo: &RepoName) -> Result<()>;
    /// An upload session.
    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>>;
    /// Forgets an upload session.
    async fn delete_upload(&self, id: &str) -> Result<()>;
    /// Forgets upload sessions started before `before` (Unix seconds); returns their ids.
    async fn expire_uploads(&self, before: i64) -> Result<Vec<String>>;

    /// Stores a new token.
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// The token with this keyed hash, if any.
    async fn token_by_hash(&self, keyed_hash: &[u8; 32]) -> Result<Option<TokenRecord>>;
    /// Every token, oldest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// The token with this public id, if any (used to re-check the token behind a registry JWT).
    /// The default scans [`MetadataStore::tokens`]; backends may index it.
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        Ok(self.tokens().await?.into_iter().find(|t| t.id == id))
    }
    /// Marks a token revoked. Returns whether a live token with this id existed.
    async fn revoke_token(&self, id: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
