//! Garbage collection and consistency checking of the embedded layout (`FsBlobStore` +
//! `SqliteMetadata`), safe to run from a separate process while the server runs.
//!
//! # The gc protocol
//!
//! A separate process shares no in-process lock with the server, so the two coordinate through the
//! SQLite write lock and two rules:
//!
//! 1. **References.** A blob file is referenced while its digest is linked to some repository
//!    (`repository_blobs`) or is the digest of some stored manifest (`manifests`). Links and manifest
//!    records are only ever created by a transaction that holds the write lock, and a manifest PUT
//!    checks, *inside* that transaction, that every blob it references is still linked
//!    ([`crate::MetadataStore::put_manifest_checked`]).
//! 2. **Mark, then delete under the write lock.** gc first lists candidate files that are unreferenced
//!    and whose mtime is older than a grace period (default 1 h): uploads being published and blobs
//!    re-published by a new upload always have a fresh mtime (`FsBlobStore` touches an existing file
//!    when the same content is uploaded again). Then, in batches, it takes the SQLite write lock
//!    (`BEGIN IMMEDIATE`), and for each candidate re-checks both conditions — still unreferenced, mtime
//!    still old — and only then unlinks the file, before committing.
//!
//! Because links and the deletion are serialised by the write lock, a concurrent manifest PUT either
//! commits first (the blob is referenced, gc keeps it) or commits after the deletion, in which case
//! its in-transaction check finds the blob unlinked and it answers `MANIFEST_BLOB_UNKNOWN`: a manifest
//! never points at a deleted blob. The one window left — an upload that re-publishes content gc is
//! deleting at that very moment, whose link commits after gc's commit — is closed on the server side:
//! after committing a link or a manifest it checks the file is still there, and if it is not it
//! removes the link again and fails the request (the client retries) or writes the manifest bytes
//! again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rampart_core::Digest;
use sqlx::Row as _;
use tokio::fs;

use crate::sqlite::SqliteMetadata;
use crate::{Error, Result};

/// How many candidates are deleted under one hold of the write lock.
const BATCH: usize = 256;

/// Options of a gc run.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Unreferenced blobs younger than this are kept (they may be about to be linked).
    pub grace: Duration,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

/// What a gc run found and did.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blob files looked at.
    pub scanned: usize,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub young: usize,
    /// Blobs deleted (or, in a dry run, that would be deleted), with their sizes.
    pub deleted: Vec<(Digest, u64)>,
}

impl GcReport {
    /// Bytes freed (or that would be freed).
    pub fn bytes(&self) -> u64 {
        self.deleted.iter().map(|(_, s)| s).sum()
    }
}

/// Every blob file under `ROOT/blobs/sha256`, with its path.
async fn blob_files(root: &Path) -> Result<Vec<(Option<Digest>, PathBuf)>> {
    let mut out = Vec::new();
    let base = root.join("blobs").join("sha256");
    let mut prefixes = match fs::read_dir(&base).await {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(prefix) = prefixes.next_entry().await? {
        if !prefix.file_type().await?.is_dir() {
            out.push((None, prefix.path()));
            continue;
        }
        let mut files = fs::read_dir(prefix.path()).await?;
        while let Some(file) = files.next_entry().await? {
            let name = file.file_name();
            let digest = name.to_str().and_then(|hex| {
                Digest::from_hex(hex)
                    .ok()
                    .filter(|d| d.hex() == hex && hex.get(..2) == prefix.file_name().to_str())
            });
            out.push((digest, file.path()));
        }
    }
    Ok(out)
}

async fn referenced(db: &SqliteMetadata) -> Result<HashSet<String>> {
    let rows =
        sqlx::query("SELECT digest FROM repository_blobs UNION SELECT digest FROM manifests")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("digest").map_err(Error::from))
        .collect()
}

fn older_than(modified: SystemTime, grace: Duration) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age >= grace)
}

/// Deletes unreferenced blobs older than `opts.grace`, following the protocol in the module docs.
pub async fn gc(root: &Path, db: &SqliteMetadata, opts: GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let refs = referenced(db).await?;
    let mut candidates = Vec::new();
    for (digest, path) in blob_files(root).await? {
        let Some(digest) = digest else { continue };
        report.scanned += 1;
        if refs.contains(&digest.to_string()) {
            continue;
        }
        let meta = match fs::metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if older_than(meta.modified()?, opts.grace) {
            candidates.push((digest, path, meta.len()));
        } else {
            report.young += 1;
        }
    }
    if opts.dry_run {
        report.deleted = candidates.into_iter().map(|(d, _, s)| (d, s)).collect();
        return Ok(report);
    }
    for batch in candidates.chunks(BATCH) {
        let mut conn = db.pool().acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = async {
            let mut gone = Vec::new();
            for (digest, path, size) in batch {
                let still = sqlx::query(
                    "SELECT 1 FROM repository_blobs WHERE digest = ?1 \
                     UNION ALL SELECT 1 FROM manifests WHERE digest = ?1 LIMIT 1",
                )
                .bind(digest.to_string())
                .fetch_optional(&mut *conn)
                .await?;
                if still.is_some() {
                    continue;
                }
                let meta = match fs::metadata(path).await {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::from(e)),
                };
                if !older_than(meta.modified()?, opts.grace) {
                    report.young += 1;
                    continue;
                }
                match fs::remove_file(path).await {
                    Ok(()) => gone.push((*digest, *size)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(gone)
        }
        .await;
        match result {
            Ok(gone) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                report.deleted.extend(gone);
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(e);
            }
        }
    }
    Ok(report)
}

/// What `fsck` found wrong; empty means consistent.
#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    /// Blob files checked.
    pub blobs: usize,
    /// Metadata references checked.
    pub references: usize,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Checks the store: every blob file hashes to its name and sits where its name says, every
/// metadata reference (repository link, manifest) has its blob file, and no stray file (a temp
/// file or anything else) sits among the blobs. Upload temp files live under `ROOT/uploads` and are
/// never visible; they are not problems.
pub async fn fsck(root: &Path, db: &SqliteMetadata) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let mut present = HashSet::new();
    for (digest, path) in blob_files(root).await? {
        let Some(digest) = digest else {
            report
                .problems
                .push(format!("stray file among blobs: {}", path.display()));
            continue;
        };
        report.blobs += 1;
        let actual = crate::blob::FsBlobStore::hash_file(&path).await?;
        if actual != digest {
            report.problems.push(format!(
                "corrupt blob {digest}: content hashes to {actual} ({})",
                path.display()
            ));
        } else {
            present.insert(digest.to_string());
        }
    }
    let rows = sqlx::query(
        "SELECT repository, digest, 'blob' AS kind FROM repository_blobs \
         UNION ALL SELECT repository, digest, 'manifest' AS kind FROM manifests",
    )
    .fetch_all(db.pool())
    .await?;
    for row in &rows {
        report.references += 1;
        let repo: String = row.try_get("repository")?;
        let digest: String = row.try_get("digest")?;
        let kind: String = row.try_get("kind")?;
        if !present.contains(&digest) {
            report
                .problems
                .push(format!("{repo}: {kind} {digest} has no valid blob file"));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlobStore as _, FsBlobStore, ManifestRecord, MetadataStore as _};
    use bytes::Bytes;
    use rampart_core::RepoName;

    fn age(root: &Path, d: &Digest, by: Duration) {
        let hex = d.hex();
        let path = root.join("blobs/sha256").join(&hex[..2]).join(&hex);
        let f = std::fs::File::options().append(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    async fn setup() -> (tempfile::TempDir, FsBlobStore, SqliteMetadata) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path(), 1 << 20).await.unwrap();
        let db = SqliteMetadata::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        (dir, blobs, db)
    }

    async fn put(blobs: &FsBlobStore, content: &'static [u8]) -> Digest {
        let d = Digest::of(content);
        blobs.put(&d, Bytes::from_static(content)).await.unwrap();
        d
    }

    #[tokio::test]
    async fn deletes_only_old_unreferenced_blobs() {
        let (dir, blobs, db) = setup().await;
        let repo: RepoName = "a/b".parse().unwrap();
        let linked = put(&blobs, b"linked").await;
        db.link_blob(&repo, &linked, 6).await.unwrap();
        let manifest = put(&blobs, b"{}").await;
        db.put_manifest(
            &repo,
            &ManifestRecord {
                digest: manifest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 2,
                artifact_type: None,
                subject: None,
            },
            None,
        )
        .await
        .unwrap();
        let orphan = put(&blobs, b"orphan").await;
        let young = put(&blobs, b"young orphan").await;
        let hour = Duration::from_secs(3600);
        for d in [linked, manifest, orphan] {
            age(dir.path(), &d, 2 * hour);
        }
        let dry = gc(
            dir.path(),
            &db,
            GcOptions {
                grace: hour,
                dry_run: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(dry.deleted, vec![(orphan, 6)]);
        assert!(
            blobs.stat(&orphan).await.unwrap().is_some(),
            "dry run deleted"
        );
        let report = gc(
            dir.path(),
            &db,
            GcOptions {
                grace: hour,
                dry_run: false,
            },
        )
        .await
        .unwrap();
        assert_eq!((report.scanned, report.young), (4, 1));
        assert_eq!(report.deleted, vec![(orphan, 6)]);
        assert!(blobs.stat(&orphan).await.unwrap().is_none());
        for d in [linked, manifest, young] {
            assert!(blobs.stat(&d).await.unwrap().is_some());
        }
        assert!(fsck(dir.path(), &db).await.unwrap().problems.is_empty());
    }

    #[tokio::test]
    async fn republishing_old_content_makes_it_young_again() {
        let (dir, blobs, db) = setup().await;
        let d = put(&blobs, b"again").await;
        age(dir.path(), &d, Duration::from_secs(7200));
        // The same bytes uploaded again (e.g. a push about to link them) refresh the mtime.
        put(&blobs, b"again").await;
        let report = gc(dir.path(), &db, GcOptions::default()).await.unwrap();
        assert!(report.deleted.is_empty());
        assert_eq!(report.young, 1);
    }

    #[tokio::test]
    async fn checked_manifest_put_refuses_an_unlinked_blob() {
        let (_dir, blobs, db) = setup().await;
        let repo: RepoName = "a/b".parse().unwrap();
        let layer = put(&blobs, b"layer").await;
        db.link_blob(&repo, &layer, 5).await.unwrap();
        assert!(db.unlink_blob(&repo, &layer).await.unwrap());
        assert!(!db.unlink_blob(&repo, &layer).await.unwrap());
        let m = ManifestRecord {
            digest: Digest::of(b"m"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1,
            artifact_type: None,
            subject: None,
        };
        let missing = db
            .put_manifest_checked(&repo, &m, None, &[layer])
            .await
            .unwrap();
        assert_eq!(missing, vec![layer]);
        assert!(db.manifest(&repo, &m.digest).await.unwrap().is_none());
        db.link_blob(&repo, &layer, 5).await.unwrap();
        let missing = db
            .put_manifest_checked(&repo, &m, None, &[layer])
            .await
            .unwrap();
        assert!(missing.is_empty());
        assert!(db.manifest(&repo, &m.digest).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn fsck_finds_corruption_missing_blobs_and_strays() {
        let (dir, blobs, db) = setup().await;
        let repo: RepoName = "a/b".parse().unwrap();
        let good = put(&blobs, b"good").await;
        db.link_blob(&repo, &good, 4).await.unwrap();
        let report = fsck(dir.path(), &db).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!((report.blobs, report.references), (1, 1));

        let bad = put(&blobs, b"bad").await;
        let hex = bad.hex();
        std::fs::write(
            dir.path().join("blobs/sha256").join(&hex[..2]).join(&hex),
            b"tampered",
        )
        .unwrap();
        let missing = Digest::of(b"never stored");
        db.link_blob(&repo, &missing, 12).await.unwrap();
        std::fs::write(dir.path().join("blobs/sha256/stray.tmp"), b"x").unwrap();
        let problems = fsck(dir.path(), &db).await.unwrap().problems;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("corrupt") && p.contains(&hex))
        );
        assert!(problems.iter().any(|p| p.contains(&missing.to_string())));
        assert!(problems.iter().any(|p| p.contains("stray.tmp")));
    }

    #[tokio::test]
    async fn database_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, _blobs, db) = setup().await;
        db.health().await.unwrap();
        for name in ["meta.db", "meta.db-wal", "meta.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
    }
}
