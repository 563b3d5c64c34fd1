//! The SQLite metadata backend (sqlx, WAL, embedded migrations).

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use rampart_core::{Digest, RepoName, Tag};
use sqlx::Row as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::meta::{ManifestRecord, MetadataStore, TokenRecord, UploadRecord, now_unix};
use crate::{Error, Result};

/// Metadata in one SQLite database file, in WAL mode with `synchronous = FULL`, so a commit that
/// returned survives a crash.
#[derive(Debug, Clone)]
pub struct SqliteMetadata {
    pool: SqlitePool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("init"),
        MigrationType::Simple,
        sqlx::SqlStr::from_static(include_str!("../migrations/0001_init.sql")),
        false,
    )])
}

fn parse<T: FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("stored {what} does not parse")))
}

fn size_to_db(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn size_from_db(size: i64) -> u64 {
    u64::try_from(size).unwrap_or(0)
}

fn manifest_from_row(row: &SqliteRow) -> Result<ManifestRecord> {
    let digest: String = row.try_get("digest")?;
    let subject: Option<String> = row.try_get("subject")?;
    Ok(ManifestRecord {
        digest: parse(&digest, "digest")?,
        media_type: row.try_get("media_type")?,
        size: size_from_db(row.try_get("size")?),
        artifact_type: row.try_get("artifact_type")?,
        subject: subject.map(|s| parse(&s, "subject")).transpose()?,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord> {
    let role: String = row.try_get("role")?;
    let namespace: String = row.try_get("namespace")?;
    let hash: Vec<u8> = row.try_get("keyed_hash")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: parse(&role, "role")?,
        namespace: parse(&namespace, "namespace pattern")?,
        keyed_hash: hash
            .try_into()
            .map_err(|_| Error::Corrupt("stored token hash is not 32 bytes".into()))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl SqliteMetadata {
    /// Opens (creating) the database at `path` and applies the embedded migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        // The database holds token hashes: owner-only. SQLite gives the -wal and -shm files the mode
        // of the database file, so creating it 0600 covers all three; older files are tightened.
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)?;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool (gc and fsck in this crate).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

const ENSURE_REPO: &str =
    "INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING";

#[async_trait]
impl MetadataStore for SqliteMetadata {
    async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ensure_repository(&self, repo: &RepoName) -> Result<()> {
        sqlx::query(ENSURE_REPO)
            .bind(repo.as_str())
            .bind(now_unix())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn repository_exists(&self, repo: &RepoName) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM repositories WHERE name = ?")
            .bind(repo.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn repositories(&self) -> Result<Vec<RepoName>> {
        let rows = sqlx::query("SELECT name FROM repositories ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>("name")?, "repository name"))
            .collect()
    }

    async fn link_blob(&self, repo: &RepoName, digest: &Digest, size: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(ENSURE_REPO)
            .bind(repo.as_str())
            .bind(now_unix())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, size, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .bind(size_to_db(size))
        .bind(now_unix())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn linked_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        let row =
            sqlx::query("SELECT size FROM repository_blobs WHERE repository = ? AND digest = ?")
                .bind(repo.as_str())
                .bind(digest.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok(size_from_db(r.try_get("size")?)))
            .transpose()
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let done = sqlx::query("DELETE FROM repository_blobs WHERE repository = ? AND digest = ?")
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_manifest(
        &self,
        repo: &RepoName,
        m: &ManifestRecord,
        tag: Option<&Tag>,
    ) -> Result<()> {
        self.put_manifest_checked(repo, m, tag, &[]).await?;
        Ok(())
    }

    async fn put_manifest_checked(
        &self,
        repo: &RepoName,
        m: &ManifestRecord,
        tag: Option<&Tag>,
        blobs: &[Digest],
    ) -> Result<Vec<Digest>> {
        let now = now_unix();
        let mut tx = self.pool.begin().await?;
        // A write first: from here on this transaction holds the write lock, so the checks below and
        // the insert are atomic with respect to `gc` (which deletes under the same lock).
        sqlx::query(ENSURE_REPO)
            .bind(repo.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let mut missing = Vec::new();
        for d in blobs {
            let row =
                sqlx::query("SELECT 1 FROM repository_blobs WHERE repository = ? AND digest = ?")
                    .bind(repo.as_str())
                    .bind(d.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if row.is_none() {
                missing.push(*d);
            }
        }
        if !missing.is_empty() {
            tx.rollback().await?;
            return Ok(missing);
        }
        sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, size, artifact_type, subject, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (repository, digest) DO UPDATE SET media_type = excluded.media_type",
        )
        .bind(repo.as_str())
        .bind(m.digest.to_string())
        .bind(&m.media_type)
        .bind(size_to_db(m.size))
        .bind(m.artifact_type.as_deref())
        .bind(m.subject.map(|s| s.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repository, tag, digest, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            )
            .bind(repo.as_str())
            .bind(tag.as_str())
            .bind(m.digest.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(missing)
    }

    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>> {
        let row = sqlx::query(
            "SELECT digest, media_type, size, artifact_type, subject FROM manifests \
             WHERE repository = ? AND digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(manifest_from_row).transpose()
    }

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>> {
        let row = sqlx::query("SELECT digest FROM tags WHERE repository = ? AND tag = ?")
            .bind(repo.as_str())
            .bind(tag.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse(&r.try_get::<String, _>("digest")?, "digest"))
            .transpose()
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tags WHERE repository = ? AND digest = ?")
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM manifests WHERE repository = ? AND digest = ?")
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tags WHERE repository = ? AND tag = ?")
            .bind(repo.as_str())
            .bind(tag.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tags(&self, repo: &RepoName, last: Option<&str>, limit: u32) -> Result<Vec<Tag>> {
        // BINARY collation: lexical byte order, as the distribution spec asks.
        let rows = sqlx::query(
            "SELECT tag FROM tags WHERE repository = ? AND tag > ? ORDER BY tag COLLATE BINARY LIMIT ?",
        )
        .bind(repo.as_str())
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(&r.try_get::<String, _>("tag")?, "tag"))
            .collect()
    }

    async fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<ManifestRecord>> {
        let rows = sqlx::query(
            "SELECT digest, media_type, size, artifact_type, subject FROM manifests \
             WHERE repository = ? AND subject = ? ORDER BY digest",
        )
        .bind(repo.as_str())
        .bind(subject.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(manifest_from_row).collect()
    }

    async fn create_upload(&self, id: &str, repo: &RepoName) -> Result<()> {
        sqlx::query("INSERT INTO uploads (id, repository, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(repo.as_str())
            .bind(now_unix())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>> {
        let row = sqlx::query("SELECT repository, created_at FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(UploadRecord {
                repository: parse(&r.try_get::<String, _>("repository")?, "repository name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn expire_uploads(&self, before: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("DELETE FROM uploads WHERE created_at < ? RETURNING id")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, name, role, namespace, keyed_hash, created_at, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(t.namespace.as_str())
        .bind(t.keyed_hash.as_slice())
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_by_hash(&self, keyed_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE keyed_hash = ?")
            .bind(keyed_hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_token(&self, id: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_unix())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tags_manifests_tokens_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteMetadata::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let repo: RepoName = "acme/model".parse().unwrap();
        assert!(!db.repository_exists(&repo).await.unwrap());
        let d = Digest::of(b"{}");
        let m = ManifestRecord {
            digest: d,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 2,
            artifact_type: None,
            subject: Some(Digest::of(b"x")),
        };
        for t in ["v2", "V1", "a", "v10"] {
            db.put_manifest(&repo, &m, Some(&t.parse().unwrap()))
                .await
                .unwrap();
        }
        let all: Vec<String> = db
            .tags(&repo, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(all, ["V1", "a", "v10", "v2"]);
        let page: Vec<String> = db
            .tags(&repo, Some("a"), 2)
            .await
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(page, ["v10", "v2"]);
        assert_eq!(
            db.referrers(&repo, &Digest::of(b"x")).await.unwrap(),
            vec![m.clone()]
        );
        assert!(db.delete_manifest(&repo, &d).await.unwrap());
        assert!(db.tags(&repo, None, 100).await.unwrap().is_empty());
        assert_eq!(db.repositories().await.unwrap(), vec![repo.clone()]);

        let t = TokenRecord {
            id: "t1".into(),
            name: "ci".into(),
            role: rampart_core::Role::Reader,
            namespace: "acme/**".parse().unwrap(),
            keyed_hash: [7; 32],
            created_at: 1,
            expires_at: None,
            revoked_at: None,
        };
        db.insert_token(&t).await.unwrap();
        assert_eq!(db.token_by_hash(&[7; 32]).await.unwrap(), Some(t));
        assert!(db.revoke_token("t1").await.unwrap());
        assert!(!db.revoke_token("t1").await.unwrap());
        assert!(
            db.token_by_hash(&[7; 32])
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
    }
}
