//! Model hashing: the OMS "files" serialization (per-file SHA-256), as `model_signing` 1.1 does it.
//!
//! The walk refuses symlinks and special files anywhere in the tree (even under ignored
//! directories, because the reference checks the file type before the ignore list), ignores the
//! git paths at the model root only, and sorts resources by path components. Files are hashed by
//! a pool of scoped threads, each streaming one file at a time through a fixed-size buffer, so
//! memory stays bounded by `threads × BUF_SIZE` whatever the model size.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Paths ignored by default at the model root, in the order the reference happens to record them
/// (the reference uses a Python set; this order reproduces the fixtures byte for byte).
pub const DEFAULT_GIT_IGNORES: [&str; 4] = [".gitignore", ".gitattributes", ".git", ".github"];

/// Read buffer per worker thread.
const BUF_SIZE: usize = 1 << 20;

/// Name of the single resource of a model that is one file.
pub const SINGLE_FILE_NAME: &str = ".";

/// How a manifest hashes the model (the `predicate.serialization` object).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// One SHA-256 per file (`"method": "files"`). The only method Rampart produces.
    Files,
    /// One digest per `shard_size`-byte slice of each file (`"method": "shards"`); verify only.
    Shards {
        /// Shard size in bytes.
        shard_size: u64,
    },
}

/// One entry of `predicate.resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Path relative to the model root, `/`-separated (`"."` for a single-file model; shards add
    /// `:start:end`).
    pub name: String,
    /// `"sha256"` for files mode, `"sha256-sharded-<size>"` for shards.
    pub algorithm: String,
    /// Raw digest bytes (32 for SHA-256).
    pub digest: Vec<u8>,
}

/// The hashed model: what the in-toto statement's predicate records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Subject name: the base name of the model path.
    pub model_name: String,
    /// Serialization method.
    pub method: Method,
    /// Hash algorithm of the serialization (`"sha256"`).
    pub hash_type: String,
    /// Paths (relative to the root) that were excluded from hashing.
    pub ignore_paths: Vec<String>,
    /// Resources in payload order.
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// SHA-256 over the concatenated raw digests in listed order (`subject[0].digest.sha256`).
    pub fn root_digest(&self) -> [u8; 32] {
        root_digest(&self.resources)
    }
}

pub(crate) fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut h = Sha256::new();
    for r in resources {
        h.update(&r.digest);
    }
    h.finalize().into()
}

/// Options for [`hash_model`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HashOptions {
    /// Extra paths to ignore: relative to the model root, or absolute paths inside it. Paths
    /// outside the model are dropped. An ignored directory covers everything under it.
    pub ignore_paths: Vec<PathBuf>,
    /// Ignore [`DEFAULT_GIT_IGNORES`] at the model root (the reference default: true).
    pub ignore_git_paths: bool,
    /// Worker threads; `None` uses the available parallelism.
    pub threads: Option<NonZeroUsize>,
}

impl Default for HashOptions {
    fn default() -> Self {
        Self {
            ignore_paths: Vec::new(),
            ignore_git_paths: true,
            threads: None,
        }
    }
}

/// Hashes `model` (a directory, or a single file named `"."`) in files mode with SHA-256.
///
/// The manifest's `ignore_paths` lists every ignored path relative to the root: the git paths
/// (when enabled), then `opts.ignore_paths` in the given order.
pub fn hash_model(model: &Path, opts: &HashOptions) -> Result<Manifest> {
    let ignore_paths = ignore_list(model, &opts.ignore_paths, opts.ignore_git_paths, &[]);
    let files = list_files(model, &ignore_paths)?;
    let resources = hash_files(model, &files, &Method::Files, opts.threads)?;
    Ok(Manifest {
        model_name: model_name(model),
        method: Method::Files,
        hash_type: "sha256".to_owned(),
        ignore_paths,
        resources,
    })
}

/// The base name of the model path (`"model"` for `/x/model/`), used as the subject name.
pub(crate) fn model_name(model: &Path) -> String {
    let named = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty());
    match named {
        Some(n) => n,
        None => fs::canonicalize(model)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    }
}

/// Builds the ordered, de-duplicated ignore list, relative to the model root.
pub(crate) fn ignore_list(
    model: &Path,
    extra: &[PathBuf],
    git: bool,
    signed: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let push = |s: String, out: &mut Vec<String>| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    if git {
        for g in DEFAULT_GIT_IGNORES {
            push(g.to_owned(), &mut out);
        }
    }
    for p in extra {
        if let Some(rel) = relative_to_model(model, p) {
            push(rel, &mut out);
        }
    }
    for s in signed {
        push(normalize_rel(s), &mut out);
    }
    out
}

/// Turns `p` into a `/`-separated path relative to `model`, or `None` when it lies outside.
///
/// Relative paths are taken as relative to the model root. Absolute paths are compared after
/// canonicalising the model and the path's parent directory (the path itself may not exist yet,
/// e.g. a signature about to be written).
pub fn relative_to_model(model: &Path, p: &Path) -> Option<String> {
    if p.is_relative() {
        let s = normalize_rel(&p.to_string_lossy());
        return (!s.is_empty()).then_some(s);
    }
    let root = fs::canonicalize(model).ok()?;
    let abs = match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent).ok()?.join(name),
        _ => fs::canonicalize(p).ok()?,
    };
    let rel = abs.strip_prefix(&root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// Drops empty and `.` components; keeps everything else verbatim.
fn normalize_rel(s: &str) -> String {
    s.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn is_ignored(rel: &[&str], ignore: &[Vec<&str>]) -> bool {
    ignore
        .iter()
        .any(|ig| !ig.is_empty() && rel.len() >= ig.len() && rel[..ig.len()] == ig[..])
}

/// Lists the regular files of `model` that are not ignored, sorted by path components.
///
/// For a single-file model the list is `["."]`.
pub(crate) fn list_files(model: &Path, ignore_paths: &[String]) -> Result<Vec<String>> {
    let meta = fs::symlink_metadata(model).map_err(|source| Error::Io {
        path: model.to_path_buf(),
        source,
    })?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(Error::Symlink(model.to_path_buf()));
    }
    if ft.is_file() {
        return Ok(vec![SINGLE_FILE_NAME.to_owned()]);
    }
    if !ft.is_dir() {
        return Err(Error::SpecialFile(model.to_path_buf()));
    }
    let ignore: Vec<Vec<&str>> = ignore_paths
        .iter()
        .map(|p| p.split('/').filter(|c| !c.is_empty()).collect())
        .collect();
    let mut files: Vec<Vec<String>> = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(model.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            // Type checks come before the ignore check, as in the reference.
            if ft.is_symlink() {
                return Err(Error::Symlink(path));
            }
            if !ft.is_file() && !ft.is_dir() {
                return Err(Error::SpecialFile(path));
            }
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| Error::NonUtf8Path(path.clone()))?;
            let mut child = rel.clone();
            child.push(name);
            let child_refs: Vec<&str> = child.iter().map(String::as_str).collect();
            let ignored = is_ignored(&child_refs, &ignore);
            if ft.is_dir() {
                // Descend even into ignored directories so symlinks there are refused too.
                stack.push((path, child));
            } else if !ignored {
                files.push(child);
            }
        }
        // Ignored directories are walked but contribute nothing.
    }
    // Component-wise ordering, each component by code point (== UTF-8 byte order).
    files.sort();
    Ok(files.into_iter().map(|c| c.join("/")).collect())
}

/// Per worker: (index into `names`, resources of that file).
type Hashed = Vec<(usize, Vec<Resource>)>;

/// Hashes `names` (relative to `model`, or `"."` for the model file itself) in parallel.
///
/// Returns resources in the order of `names` (each file expands to several shards in shard mode).
pub(crate) fn hash_files(
    model: &Path,
    names: &[String],
    method: &Method,
    threads: Option<NonZeroUsize>,
) -> Result<Vec<Resource>> {
    let workers = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
        .min(names.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Result<Hashed>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut buf = vec![0u8; BUF_SIZE];
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = names.get(i) else { break };
                        let path = if name == SINGLE_FILE_NAME {
                            model.to_path_buf()
                        } else {
                            model.join(name)
                        };
                        match hash_one(&path, name, method, &mut buf) {
                            Ok(r) => done.push((i, r)),
                            Err(e) => {
                                // Stop the other workers early.
                                next.store(names.len(), Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            // A worker panic is a bug: propagate it rather than invent an error.
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut slots: Vec<Option<Vec<Resource>>> = vec![None; names.len()];
    for r in results {
        for (i, res) in r? {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(res);
            }
        }
    }
    Ok(slots.into_iter().flatten().flatten().collect())
}

fn hash_one(path: &Path, name: &str, method: &Method, buf: &mut [u8]) -> Result<Vec<Resource>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // Re-check the type: the tree may have changed since the walk; never follow a symlink.
    let meta = fs::symlink_metadata(path).map_err(io)?;
    if meta.file_type().is_symlink() {
        return Err(Error::Symlink(path.to_path_buf()));
    }
    if !meta.file_type().is_file() {
        return Err(Error::SpecialFile(path.to_path_buf()));
    }
    let mut f = fs::File::open(path).map_err(io)?;
    match method {
        Method::Files => {
            let mut h = Sha256::new();
            loop {
                let n = f.read(buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(vec![Resource {
                name: name.to_owned(),
                algorithm: "sha256".to_owned(),
                digest: h.finalize().to_vec(),
            }])
        }
        Method::Shards { shard_size } => {
            let size = *shard_size;
            let mut out = Vec::new();
            let mut start: u64 = 0;
            loop {
                let mut h = Sha256::new();
                let mut got: u64 = 0;
                while got < size {
                    let want = usize::try_from(size - got)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let n = f.read(&mut buf[..want]).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    got += n as u64;
                }
                if got == 0 {
                    break;
                }
                let end = start + got;
                out.push(Resource {
                    name: format!("{name}:{start}:{end}"),
                    algorithm: format!("sha256-sharded-{size}"),
                    digest: h.finalize().to_vec(),
                });
                start = end;
                if got < size {
                    break;
                }
            }
            Ok(out)
        }
    }
}

/// Whether `name` is a safe relative resource path to open under the model root.
pub(crate) fn is_safe_name(name: &str) -> bool {
    if name == SINGLE_FILE_NAME {
        return true;
    }
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Lists the model files that exist among `wanted` (for `ignore_unsigned_files`): the names
/// that are safe, not ignored and regular files. Symlinks among them are refused.
pub(crate) fn select_files(
    model: &Path,
    wanted: &BTreeSet<String>,
    ignore_paths: &[String],
) -> Result<Vec<String>> {
    let meta = fs::symlink_metadata(model).map_err(|source| Error::Io {
        path: model.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(Error::Symlink(model.to_path_buf()));
    }
    if meta.file_type().is_file() {
        return Ok(if wanted.contains(SINGLE_FILE_NAME) {
            vec![SINGLE_FILE_NAME.to_owned()]
        } else {
            Vec::new()
        });
    }
    let ignore: Vec<Vec<&str>> = ignore_paths
        .iter()
        .map(|p| p.split('/').filter(|c| !c.is_empty()).collect())
        .collect();
    let mut out = Vec::new();
    for name in wanted {
        if !is_safe_name(name) || name == SINGLE_FILE_NAME {
            continue;
        }
        let parts: Vec<&str> = name.split('/').collect();
        if is_ignored(&parts, &ignore) {
            continue;
        }
        // Refuse symlinks on every component of the path.
        let mut p = model.to_path_buf();
        let mut is_file = false;
        for (k, part) in parts.iter().enumerate() {
            p.push(part);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => return Err(Error::Symlink(p)),
                Ok(m) if k + 1 == parts.len() => {
                    if m.file_type().is_file() {
                        is_file = true;
                    } else if !m.file_type().is_dir() {
                        return Err(Error::SpecialFile(p));
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if is_file {
            out.push(name.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order_puts_subdirectory_before_dotted_sibling() {
        let mut v = [
            vec!["tokenizer.json".to_owned()],
            vec!["tokenizer".to_owned(), "vocab.txt".to_owned()],
        ];
        v.sort();
        assert_eq!(v[0][0], "tokenizer");
    }

    #[test]
    fn ignore_matches_by_component_prefix_only() {
        let ig = vec![vec![".git"]];
        assert!(is_ignored(&[".git", "HEAD"], &ig));
        assert!(!is_ignored(&[".gitx"], &ig));
        assert!(!is_ignored(&["sub", ".git"], &ig));
    }

    #[test]
    fn safe_names() {
        assert!(is_safe_name("a/b.txt"));
        assert!(is_safe_name("."));
        assert!(!is_safe_name("../x"));
        assert!(!is_safe_name("/etc/passwd"));
        assert!(!is_safe_name("a//b"));
        assert!(!is_safe_name("a/./b"));
    }
}
