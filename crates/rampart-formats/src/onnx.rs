//! ONNX `ModelProto`, read with the schema-less [`crate::protobuf`] reader.
//!
//! The walk covers the main graph, graphs nested in node attributes (`If`/`Loop`/`Scan` bodies,
//! to `max_depth` levels), training-info graphs and model-local functions. It collects what the
//! rules need — operator domains, opset imports, every tensor's declared dims, data type,
//! `external_data` entries and `data_location` — and skips everything else (unknown fields
//! included). Tensor payloads (`raw_data`) are skipped, never copied.
//!
//! A model up to `max_in_memory` bytes is read whole and walked in memory. A larger one is
//! streamed: the `ModelProto` and main `GraphProto` are walked field by field through the
//! [`Source`], initializers larger than 1 MiB are walked the same way (so their `raw_data` is
//! skipped without being read), and only the other messages (nodes, functions, small tensors,
//! each at most `max_in_memory` bytes) are read into memory.

use serde::Deserialize;

use crate::Error;
use crate::protobuf::{Field, Fields, packed_varints};
use crate::source::Source;

/// Bounds for one ONNX model. Deserialisable from a limits file (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest model file decoded (checked before reading; protobuf itself caps at 2 GiB).
    /// Default 2 GiB.
    pub max_file_len: u64,
    /// Deepest graph nesting (subgraphs in attributes). Default 32.
    pub max_depth: u32,
    /// Most nodes, tensors and functions together. Default 1 000 000.
    pub max_items: u64,
    /// Most dimensions on one tensor. Default 64.
    pub max_dims: usize,
    /// Largest model walked in memory, and largest single message read into memory when a
    /// bigger model is streamed. Default 64 MiB.
    pub max_in_memory: u64,
    /// Largest declared tensor size (dims × element size) or external-data `length`/`offset`,
    /// in bytes. Default 64 GiB.
    pub max_tensor_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_len: 2 << 30,
            max_depth: 32,
            max_in_memory: 64 << 20,
            max_items: 1_000_000,
            max_dims: 64,
            max_tensor_bytes: 64 << 30,
        }
    }
}

/// A node (operator use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `op_type`.
    pub op_type: String,
    /// `domain` (empty means the default ONNX domain).
    pub domain: String,
    /// Offset of the node message.
    pub offset: u64,
    /// Graph nesting depth (0 = main graph; functions count as 1).
    pub depth: u32,
}

/// A tensor (initializer, attribute tensor, sparse values or indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// Declared dims (negative values kept as their two's-complement `u64`).
    pub dims: Vec<u64>,
    /// `data_type`.
    pub data_type: u64,
    /// `data_location` (1 = EXTERNAL).
    pub data_location: u64,
    /// `external_data` key/value pairs, in order.
    pub external_data: Vec<(String, String)>,
    /// Length of `raw_data`, if present.
    pub raw_len: Option<u64>,
    /// Offset of the tensor message.
    pub offset: u64,
}

/// A model-local function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Name.
    pub name: String,
    /// Domain.
    pub domain: String,
    /// Offset of the function message.
    pub offset: u64,
}

/// What the walk collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// `ir_version`.
    pub ir_version: Option<u64>,
    /// `(domain, version)` opset imports of the model and of its functions.
    pub opset_imports: Vec<(String, u64, u64)>,
    /// Every node found.
    pub nodes: Vec<Node>,
    /// Every tensor found.
    pub tensors: Vec<Tensor>,
    /// Model-local functions.
    pub functions: Vec<Function>,
}

/// Element size in bytes for an ONNX `data_type` (sub-byte types round up to 1; unknown → 1).
#[must_use]
pub fn elem_size(data_type: u64) -> u64 {
    match data_type {
        7 | 11 | 13 | 14 => 8,
        1 | 6 | 12 => 4,
        4 | 5 | 10 | 16 => 2,
        15 => 16,
        _ => 1,
    }
}

struct Walk<'l> {
    limits: &'l Limits,
    items: u64,
    out: Model,
}

impl Walk<'_> {
    fn count(&mut self, at: u64) -> Result<(), Error> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(Error::LimitExceeded {
                offset: at,
                limit: "max_items",
                max: self.limits.max_items,
            });
        }
        Ok(())
    }

    fn each(
        data: &[u8],
        base: u64,
        mut f: impl FnMut(Field<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(field) = it.next_field()? {
            f(field)?;
        }
        Ok(())
    }

    /// A `StringStringEntryProto` (`external_data` key/value), shared by both decoding paths.
    fn string_entry(data: &[u8], base: u64) -> Result<(String, String), Error> {
        let mut key = String::new();
        let mut value = String::new();
        Self::each(data, base, |e| {
            match e.number {
                1 => key = e.text().unwrap_or_default(),
                2 => value = e.text().unwrap_or_default(),
                _ => {}
            }
            Ok(())
        })?;
        Ok((key, value))
    }

    fn opset(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        let mut domain = String::new();
        let mut version = 0;
        Self::each(data, base, |f| {
            match f.number {
                1 => domain = f.text().unwrap_or_default(),
                2 => version = f.varint().unwrap_or_default(),
                _ => {}
            }
            Ok(())
        })?;
        self.out.opset_imports.push((domain, version, base));
        Ok(())
    }

    fn graph(&mut self, data: &[u8], base: u64, depth: u32) -> Result<(), Error> {
        if depth > self.limits.max_depth {
            return Err(Error::LimitExceeded {
                offset: base,
                limit: "max_depth",
                max: u64::from(self.limits.max_depth),
            });
        }
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let Some((b, at)) = f.bytes() else { continue };
            match f.number {
                1 => self.node(b, at, depth)?,
                5 => self.tensor(b, at)?,
                15 => self.sparse(b, at)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn sparse(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            if let (1 | 2, Some((b, at))) = (f.number, f.bytes()) {
                self.tensor(b, at)?;
            }
        }
        Ok(())
    }

    fn node(&mut self, data: &[u8], base: u64, depth: u32) -> Result<(), Error> {
        self.count(base)?;
        let mut node = Node {
            op_type: String::new(),
            domain: String::new(),
            offset: base,
            depth,
        };
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            match (f.number, f.bytes()) {
                (4, _) => node.op_type = f.text().unwrap_or_default(),
                (7, _) => node.domain = f.text().unwrap_or_default(),
                (5, Some((b, at))) => self.attribute(b, at, depth)?,
                _ => {}
            }
        }
        self.out.nodes.push(node);
        Ok(())
    }

    fn attribute(&mut self, data: &[u8], base: u64, depth: u32) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let Some((b, at)) = f.bytes() else { continue };
            match f.number {
                5 | 10 => self.tensor(b, at)?,
                6 | 11 => self.graph(b, at, depth + 1)?,
                22 | 23 => self.sparse(b, at)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn tensor(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        self.count(base)?;
        let mut t = Tensor {
            name: String::new(),
            dims: Vec::new(),
            data_type: 0,
            data_location: 0,
            external_data: Vec::new(),
            raw_len: None,
            offset: base,
        };
        let max_dims = self.limits.max_dims;
        Self::each(data, base, |f| {
            match (f.number, f.wire) {
                (1, crate::protobuf::Wire::Varint(v)) => {
                    if t.dims.len() >= max_dims {
                        return Err(Error::LimitExceeded {
                            offset: f.offset,
                            limit: "max_dims",
                            max: max_dims as u64,
                        });
                    }
                    t.dims.push(v);
                }
                (1, crate::protobuf::Wire::Bytes(b, at)) => {
                    packed_varints(b, at, max_dims, &mut t.dims)?;
                }
                (2, _) => t.data_type = f.varint().unwrap_or_default(),
                (8, _) => t.name = f.text().unwrap_or_default(),
                (9, crate::protobuf::Wire::Bytes(b, _)) => t.raw_len = Some(b.len() as u64),
                (14, _) => t.data_location = f.varint().unwrap_or_default(),
                (13, crate::protobuf::Wire::Bytes(b, at)) => {
                    t.external_data.push(Self::string_entry(b, at)?);
                }
                _ => {}
            }
            Ok(())
        })?;
        self.out.tensors.push(t);
        Ok(())
    }

    fn function(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        self.count(base)?;
        let mut func = Function {
            name: String::new(),
            domain: String::new(),
            offset: base,
        };
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            match (f.number, f.bytes()) {
                (1, _) => func.name = f.text().unwrap_or_default(),
                (10, _) => func.domain = f.text().unwrap_or_default(),
                (7, Some((b, at))) => self.node(b, at, 1)?,
                (9, Some((b, at))) => self.opset(b, at)?,
                _ => {}
            }
        }
        self.out.functions.push(func);
        Ok(())
    }

    fn model(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut it = Fields::new(data, 0);
        while let Some(f) = it.next_field()? {
            match (f.number, f.bytes()) {
                (1, _) => self.out.ir_version = f.varint(),
                (7, Some((b, at))) => self.graph(b, at, 0)?,
                (8, Some((b, at))) => self.opset(b, at)?,
                (25, Some((b, at))) => self.function(b, at)?,
                (20, Some((b, at))) => {
                    let mut ti = Fields::new(b, at);
                    while let Some(g) = ti.next_field()? {
                        if let (1 | 2, Some((gb, gat))) = (g.number, g.bytes()) {
                            self.graph(gb, gat, 1)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Decodes an in-memory `ModelProto`.
pub fn parse_bytes(data: &[u8], limits: &Limits) -> Result<Model, Error> {
    if data.len() as u64 > limits.max_file_len {
        return Err(Error::LimitExceeded {
            offset: 0,
            limit: "max_file_len",
            max: limits.max_file_len,
        });
    }
    let mut w = Walk {
        limits,
        items: 0,
        out: Model::default(),
    };
    w.model(data)?;
    Ok(w.out)
}

/// A cached positioned reader over a [`Source`] for streaming walks.
struct SrcReader<'s> {
    src: &'s dyn Source,
    buf: Vec<u8>,
    buf_start: u64,
}

/// A field read through [`SrcReader`]: number, tag offset, and either a varint or the
/// `(offset, length)` of a length-delimited payload (`None` for fixed-size values).
struct SrcField {
    number: u64,
    varint: Option<u64>,
    payload: Option<(u64, u64)>,
}

impl SrcReader<'_> {
    fn byte(&mut self, at: u64) -> Result<u8, Error> {
        let cached = at
            .checked_sub(self.buf_start)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.buf.get(i).copied());
        if let Some(b) = cached {
            return Ok(b);
        }
        let len = self.src.len().saturating_sub(at).min(64 * 1024);
        self.buf = self
            .src
            .read_vec(at, len, 64 * 1024)
            .map_err(|_| Error::Truncated {
                offset: at,
                what: "ONNX model",
            })?;
        self.buf_start = at;
        self.buf.first().copied().ok_or(Error::Truncated {
            offset: at,
            what: "ONNX model",
        })
    }

    fn varint(&mut self, pos: &mut u64, end: u64) -> Result<u64, Error> {
        let at = *pos;
        let mut v = 0u64;
        for i in 0..10u32 {
            if *pos >= end {
                return Err(Error::Truncated {
                    offset: *pos,
                    what: "protobuf varint",
                });
            }
            let b = self.byte(*pos)?;
            *pos += 1;
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

    fn next(&mut self, pos: &mut u64, end: u64) -> Result<Option<SrcField>, Error> {
        if *pos >= end {
            return Ok(None);
        }
        let offset = *pos;
        let tag = self.varint(pos, end)?;
        let number = tag >> 3;
        let skip = |pos: &mut u64, n: u64| match pos.checked_add(n) {
            Some(p) if p <= end => {
                *pos = p;
                Ok(())
            }
            _ => Err(Error::Truncated {
                offset,
                what: "protobuf field",
            }),
        };
        if number == 0 {
            return Err(Error::Malformed {
                offset,
                what: "protobuf tag",
                reason: "field number 0",
            });
        }
        let mut field = SrcField {
            number,
            varint: None,
            payload: None,
        };
        match tag & 7 {
            0 => field.varint = Some(self.varint(pos, end)?),
            1 => skip(pos, 8)?,
            2 => {
                let len = self.varint(pos, end)?;
                let at = *pos;
                skip(pos, len)?;
                field.payload = Some((at, len));
            }
            5 => skip(pos, 4)?,
            _ => {
                return Err(Error::Malformed {
                    offset,
                    what: "protobuf tag",
                    reason: "unsupported wire type (groups or 6/7)",
                });
            }
        }
        Ok(Some(field))
    }

    fn read(&self, at: u64, len: u64, max: u64) -> Result<Vec<u8>, Error> {
        if len > max {
            return Err(Error::LimitExceeded {
                offset: at,
                limit: "max_in_memory",
                max,
            });
        }
        self.src
            .read_vec(at, len, max)
            .map_err(|_| Error::Truncated {
                offset: at,
                what: "ONNX message",
            })
    }
}

impl Walk<'_> {
    fn stream_model(&mut self, r: &mut SrcReader<'_>, end: u64) -> Result<(), Error> {
        let max = self.limits.max_in_memory;
        let mut pos = 0;
        while let Some(f) = r.next(&mut pos, end)? {
            match (f.number, f.payload) {
                (1, _) => self.out.ir_version = f.varint,
                (7, Some((at, len))) => self.stream_graph(r, at, len)?,
                (n @ (8 | 20 | 25), Some((at, len))) => {
                    let b = r.read(at, len, max)?;
                    match n {
                        8 => self.opset(&b, at)?,
                        25 => self.function(&b, at)?,
                        _ => {
                            let mut ti = Fields::new(&b, at);
                            while let Some(g) = ti.next_field()? {
                                if let (1 | 2, Some((gb, gat))) = (g.number, g.bytes()) {
                                    self.graph(gb, gat, 1)?;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stream_graph(&mut self, r: &mut SrcReader<'_>, start: u64, len: u64) -> Result<(), Error> {
        let max = self.limits.max_in_memory;
        let mut pos = start;
        let end = start.saturating_add(len);
        while let Some(f) = r.next(&mut pos, end)? {
            let Some((at, len)) = f.payload else { continue };
            match f.number {
                1 => self.node(&r.read(at, len, max)?, at, 0)?,
                5 if len > 1 << 20 => self.stream_tensor(r, at, len)?,
                5 => self.tensor(&r.read(at, len, max)?, at)?,
                15 => self.sparse(&r.read(at, len, max)?, at)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn stream_tensor(&mut self, r: &mut SrcReader<'_>, start: u64, len: u64) -> Result<(), Error> {
        self.count(start)?;
        let max = self.limits.max_in_memory;
        let max_dims = self.limits.max_dims;
        let mut t = Tensor {
            name: String::new(),
            dims: Vec::new(),
            data_type: 0,
            data_location: 0,
            external_data: Vec::new(),
            raw_len: None,
            offset: start,
        };
        let mut pos = start;
        let end = start.saturating_add(len);
        while let Some(f) = r.next(&mut pos, end)? {
            match (f.number, f.varint, f.payload) {
                (1, Some(v), _) => {
                    if t.dims.len() >= max_dims {
                        return Err(Error::LimitExceeded {
                            offset: pos,
                            limit: "max_dims",
                            max: max_dims as u64,
                        });
                    }
                    t.dims.push(v);
                }
                (1, _, Some((at, len))) => {
                    packed_varints(&r.read(at, len, max)?, at, max_dims, &mut t.dims)?;
                }
                (2, Some(v), _) => t.data_type = v,
                (14, Some(v), _) => t.data_location = v,
                (8, _, Some((at, len))) => {
                    t.name = String::from_utf8_lossy(&r.read(at, len, max)?).into_owned();
                }
                (9, _, Some((_, len))) => t.raw_len = Some(len),
                (13, _, Some((at, len))) => {
                    let b = r.read(at, len, max)?;
                    t.external_data.push(Self::string_entry(&b, at)?);
                }
                _ => {}
            }
        }
        self.out.tensors.push(t);
        Ok(())
    }
}

/// Decodes `src` (after checking its size against `max_file_len`): in memory up to
/// `max_in_memory` bytes, streamed past large tensor payloads beyond (see the module docs).
pub fn parse(src: &dyn Source, limits: &Limits) -> Result<Model, Error> {
    if src.len() > limits.max_file_len {
        return Err(Error::LimitExceeded {
            offset: 0,
            limit: "max_file_len",
            max: limits.max_file_len,
        });
    }
    if src.len() <= limits.max_in_memory {
        let data = src
            .read_vec(0, src.len(), limits.max_in_memory)
            .map_err(|_| Error::Truncated {
                offset: 0,
                what: "ONNX model",
            })?;
        return parse_bytes(&data, limits);
    }
    let mut w = Walk {
        limits,
        items: 0,
        out: Model::default(),
    };
    let mut r = SrcReader {
        src,
        buf: Vec::new(),
        buf_start: 0,
    };
    w.stream_model(&mut r, src.len())?;
    Ok(w.out)
}
