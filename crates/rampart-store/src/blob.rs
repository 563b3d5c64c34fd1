//! Content-addressed blobs: the [`BlobStore`] trait and its local-filesystem backend.

use std::collections::HashMap;
use std::fmt;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use rampart_core::{Digest, Hasher};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};
use tokio::sync::Mutex;

use crate::{Error, Result};

/// A stream of body bytes handed to an upload.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The id of an upload session: 128 random bits as 32 lowercase hex characters.
///
/// Parsed before use, so an id taken from a URL can never name a path outside the upload directory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Ok(Self(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::UploadUnknown)
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

/// An open blob, positioned at the requested start.
pub struct BlobRead {
    /// The blob's total size in bytes.
    pub size: u64,
    /// The bytes from the requested start, at most the requested length.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where blob bytes live. Implementations must make a blob visible only after its digest was verified
/// over all of its bytes and it is durable, and must never expose a partial blob.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// The size of a stored blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Opens a stored blob from byte `start`, reading at most `len` bytes (`None`: to the end).
    async fn open(&self, digest: &Digest, start: u64, len: Option<u64>)
    -> Result<Option<BlobRead>>;
    /// Reads a whole (small) blob into memory, e.g. a manifest.
    async fn read_all(&self, digest: &Digest, limit: u64) -> Result<Option<Bytes>>;
    /// Stores `bytes` under `expected` after checking that they hash to it.
    async fn put(&self, expected: &Digest, bytes: Bytes) -> Result<()>;
    /// Starts an upload session.
    async fn create_upload(&self) -> Result<UploadId>;
    /// Appends a chunk. With `offset`, the chunk must start where the upload ends. Returns the new
    /// size.
    async fn append(&self, id: &UploadId, offset: Option<u64>, body: ByteStream) -> Result<u64>;
    /// The number of bytes received so far.
    async fn upload_size(&self, id: &UploadId) -> Result<u64>;
    /// Verifies the upload against `expected` and publishes it; on a mismatch the upload is
    /// discarded. Returns the blob's size.
    async fn finish(&self, id: &UploadId, expected: &Digest) -> Result<u64>;
    /// Discards an upload.
    async fn cancel(&self, id: &UploadId) -> Result<()>;
    /// Discards uploads untouched since `before`; returns their ids.
    async fn expire_uploads(&self, before: SystemTime) -> Result<Vec<UploadId>>;
}

struct Session {
    writer: BufWriter<File>,
    /// `None` after an error or a restart: the file is re-hashed at the end.
    hasher: Option<Hasher>,
    size: u64,
}

/// Sets a file's mtime to now (a missing file is not an error: the caller re-checks).
async fn touch(path: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(
        move || match std::fs::File::options().append(true).open(&path) {
            Ok(f) => f.set_modified(SystemTime::now()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        },
    )
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    Ok(())
}

/// Blobs as files: `ROOT/blobs/sha256/ab/<hex>`, uploads under `ROOT/uploads/<id>`.
pub struct FsBlobStore {
    root: PathBuf,
    max_blob: u64,
    sessions: StdMutex<HashMap<UploadId, Arc<Mutex<Session>>>>,
}

impl fmt::Debug for FsBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobStore")
            .field("root", &self.root)
            .field("max_blob", &self.max_blob)
            .finish_non_exhaustive()
    }
}

const WRITE_BUFFER: usize = 1 << 20;

impl FsBlobStore {
    /// Opens (creating) a store under `root`, refusing blobs larger than `max_blob` bytes.
    pub async fn open(root: &Path, max_blob: u64) -> Result<Self> {
        fs::create_dir_all(root.join("blobs").join("sha256")).await?;
        fs::create_dir_all(root.join("uploads")).await?;
        Ok(Self {
            root: root.to_owned(),
            max_blob,
            sessions: StdMutex::new(HashMap::new()),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        let prefix = hex.get(..2).unwrap_or("00").to_owned();
        self.root
            .join("blobs")
            .join("sha256")
            .join(prefix)
            .join(hex)
    }

    fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, Arc<Mutex<Session>>>> {
        // A poisoned map only means another request panicked mid-insert; the map itself is intact.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session for `id`, reopened from disk if this process has not seen it (after a restart).
    async fn session(&self, id: &UploadId) -> Result<Arc<Mutex<Session>>> {
        if let Some(s) = self.sessions().get(id) {
            return Ok(Arc::clone(s));
        }
        let path = self.upload_path(id);
        let file = match OpenOptions::new().append(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::UploadUnknown),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        let session = Arc::new(Mutex::new(Session {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher: None,
            size,
        }));
        Ok(Arc::clone(
            self.sessions().entry(id.clone()).or_insert(session),
        ))
    }

    /// Moves a verified, synced temp file into place and syncs the directory.
    async fn publish(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        let Some(dir) = dest.parent() else {
            return Err(Error::Io(std::io::Error::other("blob path has no parent")));
        };
        fs::create_dir_all(dir).await?;
        if fs::try_exists(&dest).await? {
            // Content-addressed: the same bytes are already there. Refresh the mtime so a concurrent
            // `rampart gc` treats it as young (see `gc`'s protocol).
            fs::remove_file(tmp).await?;
            return touch(dest).await;
        }
        fs::rename(tmp, &dest).await?;
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Ok(())
    }

    /// SHA-256 of a whole file, read in large chunks.
    pub(crate) async fn hash_file(path: &Path) -> Result<Digest> {
        let mut file = File::open(path).await?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; WRITE_BUFFER];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        Ok(hasher.finish())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn open(
        &self,
        digest: &Digest,
        start: u64,
        len: Option<u64>,
    ) -> Result<Option<BlobRead>> {
        let mut file = match File::open(self.blob_path(digest)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        let len = len.unwrap_or_else(|| size.saturating_sub(start));
        Ok(Some(BlobRead {
            size,
            reader: Box::new(file.take(len)),
        }))
    }

    async fn read_all(&self, digest: &Digest, limit: u64) -> Result<Option<Bytes>> {
        let Some(read) = self.open(digest, 0, None).await? else {
            return Ok(None);
        };
        if read.size > limit {
            return Err(Error::TooLarge { limit });
        }
        let mut out = Vec::with_capacity(usize::try_from(read.size).unwrap_or(0));
        let mut reader = read.reader;
        reader.read_to_end(&mut out).await?;
        Ok(Some(Bytes::from(out)))
    }

    async fn put(&self, expected: &Digest, bytes: Bytes) -> Result<()> {
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(Error::DigestMismatch {
                expected: *expected,
                actual,
            });
        }
        if self.stat(expected).await?.is_some() {
            return touch(self.blob_path(expected)).await;
        }
        let id = UploadId::random()?;
        let tmp = self.upload_path(&id);
        let result = async {
            let mut file = File::create(&tmp).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            drop(file);
            self.publish(&tmp, expected).await
        }
        .await;
        if result.is_err() {
            let _ = fs::remove_file(&tmp).await;
        }
        result
    }

    async fn create_upload(&self) -> Result<UploadId> {
        let id = UploadId::random()?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.upload_path(&id))
            .await?;
        let session = Session {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher: Some(Hasher::new()),
            size: 0,
        };
        self.sessions()
            .insert(id.clone(), Arc::new(Mutex::new(session)));
        Ok(id)
    }

    async fn append(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        mut body: ByteStream,
    ) -> Result<u64> {
        let session = self.session(id).await?;
        let mut s = session.lock().await;
        if let Some(offset) = offset
            && offset != s.size
        {
            return Err(Error::OutOfOrder {
                expected: s.size,
                got: offset,
            });
        }
        let result: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Error::Body)?;
                let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                if s.size.saturating_add(len) > self.max_blob {
                    return Err(Error::TooLarge {
                        limit: self.max_blob,
                    });
                }
                s.writer.write_all(&chunk).await?;
                if let Some(h) = s.hasher.as_mut() {
                    h.update(&chunk);
                }
                s.size += len;
            }
            s.writer.flush().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // What reached the file is uncertain: resynchronise from disk and re-hash at the end.
            let _ = s.writer.flush().await;
            s.hasher = None;
            if let Ok(m) = fs::metadata(self.upload_path(id)).await {
                s.size = m.len();
            }
            return Err(e);
        }
        Ok(s.size)
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64> {
        let session = self.session(id).await?;
        let s = session.lock().await;
        Ok(s.size)
    }

    async fn finish(&self, id: &UploadId, expected: &Digest) -> Result<u64> {
        let session = self.session(id).await?;
        let mut s = session.lock().await;
        let path = self.upload_path(id);
        s.writer.flush().await?;
        s.writer.get_ref().sync_all().await?;
        let actual = match s.hasher.take() {
            Some(h) => h.finish(),
            None => Self::hash_file(&path).await?,
        };
        let size = s.size;
        drop(s);
        self.sessions().remove(id);
        if actual != *expected {
            fs::remove_file(&path).await?;
            return Err(Error::DigestMismatch {
                expected: *expected,
                actual,
            });
        }
        if let Err(e) = self.publish(&path, expected).await {
            let _ = fs::remove_file(&path).await;
            return Err(e);
        }
        Ok(size)
    }

    async fn cancel(&self, id: &UploadId) -> Result<()> {
        let session = self.session(id).await?;
        let _guard = session.lock().await;
        self.sessions().remove(id);
        fs::remove_file(self.upload_path(id)).await?;
        Ok(())
    }

    async fn expire_uploads(&self, before: SystemTime) -> Result<Vec<UploadId>> {
        let mut removed = Vec::new();
        let mut dir = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Ok(id) = entry.file_name().to_string_lossy().parse::<UploadId>() else {
                continue;
            };
            let modified = entry.metadata().await?.modified()?;
            if modified < before {
                let session = self.sessions().remove(&id);
                if let Some(session) = session {
                    // Wait for a request still writing to it.
                    let _guard = session.lock().await;
                }
                if fs::remove_file(entry.path()).await.is_ok() {
                    removed.push(id);
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let v: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures_util::stream::iter(v).boxed()
    }

    #[tokio::test]
    async fn chunked_upload_verifies_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), 1 << 20).await.unwrap();
        let id = store.create_upload().await.unwrap();
        assert_eq!(
            store
                .append(&id, Some(0), body(&[b"hello "]))
                .await
                .unwrap(),
            6
        );
        assert!(matches!(
            store.append(&id, Some(3), body(&[b"x"])).await,
            Err(Error::OutOfOrder {
                expected: 6,
                got: 3
            })
        ));
        assert_eq!(
            store
                .append(&id, None, body(&[b"wor", b"ld"]))
                .await
                .unwrap(),
            11
        );
        let d = Digest::of(b"hello world");
        assert_eq!(store.finish(&id, &d).await.unwrap(), 11);
        assert_eq!(store.stat(&d).await.unwrap(), Some(11));
        let hex = d.hex();
        assert!(
            dir.path()
                .join("blobs/sha256")
                .join(&hex[..2])
                .join(&hex)
                .is_file()
        );
        assert_eq!(
            store.read_all(&d, 100).await.unwrap().unwrap(),
            Bytes::from_static(b"hello world")
        );
        assert!(matches!(
            store.upload_size(&id).await,
            Err(Error::UploadUnknown)
        ));
    }

    #[tokio::test]
    async fn mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), 1 << 20).await.unwrap();
        let id = store.create_upload().await.unwrap();
        store.append(&id, None, body(&[b"evil"])).await.unwrap();
        let claimed = Digest::of(b"good");
        assert!(matches!(
            store.finish(&id, &claimed).await,
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(store.stat(&claimed).await.unwrap(), None);
        assert_eq!(store.stat(&Digest::of(b"evil")).await.unwrap(), None);
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
        assert!(
            store
                .put(&claimed, Bytes::from_static(b"evil"))
                .await
                .is_err()
        );
        assert_eq!(store.stat(&claimed).await.unwrap(), None);
    }

    #[tokio::test]
    async fn size_limit_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), 4).await.unwrap();
        let id = store.create_upload().await.unwrap();
        assert!(matches!(
            store.append(&id, None, body(&[b"12345"])).await,
            Err(Error::TooLarge { limit: 4 })
        ));
        let far = SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(store.expire_uploads(far).await.unwrap(), vec![id.clone()]);
        assert!(matches!(
            store.upload_size(&id).await,
            Err(Error::UploadUnknown)
        ));
        assert!("../../etc/passwd".parse::<UploadId>().is_err());
    }
}
