//! Random-access byte sources, so parsers read only the headers and indexes they need.
//!
//! A 1 GiB safetensors or PyTorch file is judged from a few kilobytes: its header, its zip central
//! directory, its pickle. Parsers take a [`Source`] and read exactly those ranges; tensor data is never
//! read. Files are read with positioned reads (no memory mapping of untrusted files); decompressed or
//! nested members are plain byte slices.

use std::io;

/// Bytes that can be read at any offset.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`. Fails with `UnexpectedEof` when the range runs past the end.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Reads `len` bytes at `offset` into a new buffer, refusing (before allocating) any range that
    /// is not inside the source or is longer than `max`.
    fn read_vec(&self, offset: u64, len: u64, max: u64) -> io::Result<Vec<u8>> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "range overflows"))?;
        if end > self.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "range {offset}..{end} is past the end ({} bytes)",
                    self.len()
                ),
            ));
        }
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("range of {len} bytes exceeds the limit of {max}"),
            ));
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "range too large"))?;
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).ok();
        let range = start.and_then(|s| Some(s..s.checked_add(buf.len())?));
        match range.and_then(|r| self.get(r)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the buffer",
            )),
        }
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
}

/// A borrowed source is a source (so a `&[u8]` can be passed as `&dyn Source` via `&bytes`).
impl<T: Source + ?Sized> Source for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

/// A window `offset..offset + len` of another source (a stored zip or tar member), read lazily.
#[derive(Clone, Copy)]
pub struct SubSource<'a> {
    inner: &'a dyn Source,
    offset: u64,
    len: u64,
}

impl std::fmt::Debug for SubSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubSource")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> SubSource<'a> {
    /// The window `offset..offset + len` of `inner`; fails if it is not inside `inner`.
    pub fn new(inner: &'a dyn Source, offset: u64, len: u64) -> io::Result<Self> {
        match offset.checked_add(len) {
            Some(end) if end <= inner.len() => Ok(Self { inner, offset, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "window is past the end of the source",
            )),
        }
    }
}

impl Source for SubSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        match end {
            Some(end) if end <= self.len => self.inner.read_exact_at(self.offset + offset, buf),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the window",
            )),
        }
    }
}

/// A file read with positioned reads; its length is taken once, when opened.
#[derive(Debug)]
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    /// Wraps an open file.
    pub fn new(file: std::fs::File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        self.file.read_exact_at(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_refuse_out_of_range() {
        let data: &[u8] = b"hello";
        let mut b = [0u8; 2];
        data.read_exact_at(3, &mut b).unwrap();
        assert_eq!(&b, b"lo");
        assert!(data.read_exact_at(4, &mut b).is_err());
        assert!(data.read_exact_at(u64::MAX, &mut b).is_err());
        assert!(data.read_vec(0, 6, 100).is_err());
        assert!(data.read_vec(0, 5, 4).is_err());
        assert!(data.read_vec(u64::MAX, 2, 100).is_err());
        assert_eq!(data.read_vec(1, 3, 3).unwrap(), b"ell");
    }

    #[test]
    fn sub_sources_stay_inside_their_window() {
        let data: &[u8] = b"0123456789";
        let sub = SubSource::new(&data, 2, 5).unwrap();
        assert_eq!(sub.len(), 5);
        assert_eq!(sub.read_vec(0, 5, 5).unwrap(), b"23456");
        assert!(sub.read_vec(1, 5, 5).is_err());
        assert!(SubSource::new(&data, 8, 3).is_err());
        assert!(SubSource::new(&data, u64::MAX, 1).is_err());
    }
}
