//! A minimal protobuf wire-format reader (no schema, no code generation) shared by the ONNX and
//! TensorFlow SavedModel parsers.
//!
//! [`Fields`] iterates over the fields of one message held in memory: varints (at most 10
//! bytes), 64-bit and 32-bit fixed values, and length-delimited payloads whose length is checked
//! against the bytes left before anything is sliced. Deprecated groups (wire types 3 and 4) are
//! rejected. Callers decide which nested messages to descend into and bound the depth.

use crate::Error;
use crate::cursor::Cursor;

/// The payload of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: the payload and the absolute offset of its first byte.
    Bytes(&'a [u8], u64),
    /// Wire type 5.
    Fixed32(u32),
}

/// One decoded field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field number.
    pub number: u64,
    /// Absolute offset of the tag.
    pub offset: u64,
    /// The value.
    pub wire: Wire<'a>,
}

impl<'a> Field<'a> {
    /// The length-delimited payload and its offset, if this field has wire type 2.
    #[must_use]
    pub fn bytes(&self) -> Option<(&'a [u8], u64)> {
        match self.wire {
            Wire::Bytes(b, at) => Some((b, at)),
            _ => None,
        }
    }

    /// The payload as (lossy) UTF-8 text, if this field has wire type 2.
    #[must_use]
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
    }

    /// The varint value, if this field has wire type 0.
    #[must_use]
    pub fn varint(&self) -> Option<u64> {
        match self.wire {
            Wire::Varint(v) => Some(v),
            _ => None,
        }
    }
}

/// Iterator over the fields of one message.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    cur: Cursor<'a>,
}

impl<'a> Fields<'a> {
    /// Fields of the message `data`, whose first byte is at absolute offset `base`.
    #[must_use]
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Self {
            cur: Cursor::with_base(data, base),
        }
    }

    /// Reads one varint.
    pub fn varint(cur: &mut Cursor<'_>) -> Result<u64, Error> {
        let at = cur.offset();
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = cur.read_u8("varint")?;
            if i == 9 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Malformed {
            offset: at,
            what: "protobuf varint",
            reason: "longer than 10 bytes or over 64 bits",
        })
    }

    /// The next field, `Ok(None)` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, Error> {
        if self.cur.is_empty() {
            return Ok(None);
        }
        let offset = self.cur.offset();
        let tag = Self::varint(&mut self.cur)?;
        let number = tag >> 3;
        if number == 0 {
            return Err(Error::Malformed {
                offset,
                what: "protobuf tag",
                reason: "field number 0",
            });
        }
        let wire = match tag & 7 {
            0 => Wire::Varint(Self::varint(&mut self.cur)?),
            1 => Wire::Fixed64(self.cur.read_u64_le("protobuf fixed64")?),
            2 => {
                let len = Self::varint(&mut self.cur)?;
                let at = self.cur.offset();
                Wire::Bytes(
                    self.cur.take_u64(len, "protobuf length-delimited field")?,
                    at,
                )
            }
            5 => Wire::Fixed32(self.cur.read_u32_le("protobuf fixed32")?),
            _ => {
                return Err(Error::Malformed {
                    offset,
                    what: "protobuf tag",
                    reason: "unsupported wire type (groups or 6/7)",
                });
            }
        };
        Ok(Some(Field {
            number,
            offset,
            wire,
        }))
    }
}

/// Reads every field of `data` into a vector (bounded by the message size).
pub fn fields(data: &[u8], base: u64) -> Result<Vec<Field<'_>>, Error> {
    let mut it = Fields::new(data, base);
    let mut out = Vec::new();
    while let Some(f) = it.next_field()? {
        out.push(f);
    }
    Ok(out)
}

/// Decodes a packed or single repeated varint field payload into `out` (bounded by `max`).
pub fn packed_varints(data: &[u8], base: u64, max: usize, out: &mut Vec<u64>) -> Result<(), Error> {
    let mut cur = Cursor::with_base(data, base);
    while !cur.is_empty() {
        if out.len() >= max {
            return Err(Error::LimitExceeded {
                offset: cur.offset(),
                limit: "max_dims",
                max: max as u64,
            });
        }
        out.push(Fields::varint(&mut cur)?);
    }
    Ok(())
}
