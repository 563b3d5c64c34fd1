//! A bounds-checked reader over untrusted bytes.
//!
//! All parsers in this crate read through [`Cursor`]: every read either returns the requested
//! bytes or an [`Error::Truncated`] naming the structure and the offset, and no parser indexes or
//! slices the input directly.

use crate::Error;

/// A forward-only reader over a byte slice that tracks its absolute offset.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`, whose first byte is at offset 0.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self::with_base(data, 0)
    }

    /// A cursor over `data`, whose first byte is reported at offset `base` (for sub-structures).
    #[must_use]
    pub fn with_base(data: &'a [u8], base: u64) -> Self {
        Self { data, pos: 0, base }
    }

    /// Absolute offset of the next byte to be read.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Number of bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next byte, without consuming it.
    #[must_use]
    pub fn peek_u8(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Consumes exactly `n` bytes, or fails (without consuming anything) if fewer remain.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.data.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(Error::Truncated {
                offset: self.offset().saturating_add(self.remaining() as u64),
                what,
            }),
        }
    }

    /// Like [`Cursor::take`] with a 64-bit length, as read from the input: lengths that do not fit
    /// in memory are reported as truncation (the input cannot contain them).
    pub fn take_u64(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], Error> {
        match usize::try_from(n) {
            Ok(n) => self.take(n, what),
            Err(_) => Err(Error::Truncated {
                offset: self.offset().saturating_add(self.remaining() as u64),
                what,
            }),
        }
    }

    /// A sub-cursor over the next `n` bytes, reporting absolute offsets.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Cursor<'a>, Error> {
        let base = self.offset();
        let bytes = self.take(n, what)?;
        Ok(Cursor::with_base(bytes, base))
    }

    /// Consumes and returns all remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        rest
    }

    /// Reads one byte.
    pub fn read_u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(u8::from_le_bytes(self.array::<1>(what)?))
    }

    /// Reads a little-endian `u16`.
    pub fn read_u16_le(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u32`.
    pub fn read_u32_le(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `i32`.
    pub fn read_i32_le(&mut self, what: &'static str) -> Result<i32, Error> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u64`.
    pub fn read_u64_le(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a big-endian IEEE 754 double.
    pub fn read_f64_be(&mut self, what: &'static str) -> Result<f64, Error> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// Reads up to and including the next `\n` and returns the line without it. Fails with
    /// [`Error::Truncated`] if there is no newline, and with [`Error::LimitExceeded`] if the line
    /// (without its newline) would be longer than `max_len` bytes.
    pub fn read_line(&mut self, max_len: u64, what: &'static str) -> Result<&'a [u8], Error> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\n') {
            Some(len) if len as u64 > max_len => Err(Error::LimitExceeded {
                offset: self.offset(),
                limit: "max_string_len",
                max: max_len,
            }),
            Some(len) => {
                let line = self.take(len, what)?;
                self.take(1, what)?;
                Ok(line)
            }
            None if rest.len() as u64 > max_len => Err(Error::LimitExceeded {
                offset: self.offset(),
                limit: "max_string_len",
                max: max_len,
            }),
            None => Err(Error::Truncated {
                offset: self.offset().saturating_add(rest.len() as u64),
                what,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_fails_instead_of_slicing_out_of_range() {
        let mut c = Cursor::new(b"abc");
        assert_eq!(c.take(2, "x").unwrap(), b"ab");
        let err = c.take(2, "tail").unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                offset: 3,
                what: "tail"
            }
        );
        // Nothing consumed by the failed read.
        assert_eq!(c.offset(), 2);
        assert_eq!(c.take(1, "x").unwrap(), b"c");
        assert!(c.is_empty());
        assert!(c.take(usize::MAX, "huge").is_err());
        assert!(c.take_u64(u64::MAX, "huge").is_err());
    }

    #[test]
    fn integers_and_offsets() {
        let mut c = Cursor::with_base(&[1, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 100);
        assert_eq!(c.read_u16_le("a").unwrap(), 1);
        assert_eq!(c.read_u32_le("b").unwrap(), 2);
        assert_eq!(c.offset(), 106);
        assert_eq!(c.read_i32_le("c").unwrap(), -1);
        assert!(c.read_u8("d").is_err());
    }

    #[test]
    fn sub_cursor_reports_absolute_offsets() {
        let mut c = Cursor::new(b"xxhello");
        c.take(2, "p").unwrap();
        let mut s = c.sub(3, "s").unwrap();
        assert_eq!(s.offset(), 2);
        assert_eq!(s.rest(), b"hel");
        assert_eq!(s.read_u8("z").unwrap_err().offset(), 5);
        assert_eq!(c.rest(), b"lo");
    }

    #[test]
    fn lines() {
        let mut c = Cursor::new(b"os\nsystem\nrest");
        assert_eq!(c.read_line(10, "l").unwrap(), b"os");
        assert_eq!(c.read_line(10, "l").unwrap(), b"system");
        assert!(c.read_line(10, "l").unwrap_err().is_truncation());
        let mut c = Cursor::new(b"abcdef\n");
        assert!(c.read_line(3, "l").unwrap_err().is_limit());
    }

    #[test]
    fn floats() {
        let mut c = Cursor::new(&[0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(c.read_f64_be("f").unwrap(), 1.0);
    }
}
