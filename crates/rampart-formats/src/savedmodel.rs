//! TensorFlow `saved_model.pb` (`SavedModel` protobuf), read with the schema-less
//! [`crate::protobuf`] reader.
//!
//! Walked: `SavedModel.meta_graphs[] → MetaGraphDef.graph_def → GraphDef.node[]` and
//! `GraphDef.library.function[] → FunctionDef.node_def[]` (plus each function's signature name).
//! For every `NodeDef` the op, the name and the string values of its attributes (`s` and
//! `list.s`) are kept, so rules can see file paths and debug URLs. Tensor contents are skipped.
//! The Keras metadata that TF 2 Keras writes into the object graph
//! (`MetaGraphDef.object_graph_def → SavedObject.user_object.metadata`, a JSON string with the
//! layer's config) is collected too, so the Keras rules can judge it.

use serde::Deserialize;

use crate::Error;
use crate::protobuf::Fields;
use crate::source::Source;

/// Bounds for one SavedModel. Deserialisable from a limits file (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest `saved_model.pb` decoded (checked before reading; held in memory). Default 1 GiB.
    pub max_file_len: u64,
    /// Most nodes (graph plus functions). Default 2 000 000.
    pub max_nodes: u64,
    /// Most bytes of Keras object metadata kept, over all objects. Default 64 MiB.
    pub max_keras_metadata: u64,
    /// Attribute strings longer than this are truncated when kept. Default 4096.
    pub max_kept_string: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_len: 1 << 30,
            max_nodes: 2_000_000,
            max_keras_metadata: 64 << 20,
            max_kept_string: 4096,
        }
    }
}

/// One `NodeDef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Op name.
    pub op: String,
    /// Node name.
    pub name: String,
    /// `(attribute name, string value)` for every string (or list-of-string) attribute.
    pub string_attrs: Vec<(String, String)>,
    /// Name of the enclosing library function, or `None` for the main graph.
    pub function: Option<String>,
    /// Offset of the node message.
    pub offset: u64,
}

/// What the walk collected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Number of meta graphs.
    pub meta_graphs: u64,
    /// Every node, graph first then functions.
    pub nodes: Vec<Node>,
    /// Names of library functions (callable as ops).
    pub functions: Vec<String>,
    /// `(offset, identifier, metadata)` of user objects with metadata (Keras layer configs).
    pub user_objects: Vec<(u64, String, String)>,
    /// True when some metadata was dropped because of `max_keras_metadata`.
    pub metadata_truncated: bool,
}

struct Walk<'l> {
    limits: &'l Limits,
    out: Model,
    metadata_bytes: u64,
}

impl Walk<'_> {
    fn keep(&self, b: &[u8]) -> String {
        let n = b.len().min(self.limits.max_kept_string);
        String::from_utf8_lossy(b.get(..n).unwrap_or_default()).into_owned()
    }

    fn node(&mut self, data: &[u8], base: u64, function: Option<&str>) -> Result<(), Error> {
        if self.out.nodes.len() as u64 >= self.limits.max_nodes {
            return Err(Error::LimitExceeded {
                offset: base,
                limit: "max_nodes",
                max: self.limits.max_nodes,
            });
        }
        let mut node = Node {
            op: String::new(),
            name: String::new(),
            string_attrs: Vec::new(),
            function: function.map(str::to_owned),
            offset: base,
        };
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let Some((b, at)) = f.bytes() else { continue };
            match f.number {
                1 => node.name = self.keep(b),
                2 => node.op = self.keep(b),
                5 => self.attr_entry(b, at, &mut node.string_attrs)?,
                _ => {}
            }
        }
        self.out.nodes.push(node);
        Ok(())
    }

    /// A `map<string, AttrValue>` entry: key = 1, value = 2.
    fn attr_entry(
        &self,
        data: &[u8],
        base: u64,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), Error> {
        let mut key = String::new();
        let mut strings = Vec::new();
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let Some((b, at)) = f.bytes() else { continue };
            match f.number {
                1 => key = self.keep(b),
                2 => {
                    // AttrValue: s = 2, list = 1 (ListValue: s = 2).
                    let mut av = Fields::new(b, at);
                    while let Some(g) = av.next_field()? {
                        let Some((gb, gat)) = g.bytes() else { continue };
                        match g.number {
                            2 => strings.push(self.keep(gb)),
                            1 => {
                                let mut lv = Fields::new(gb, gat);
                                while let Some(h) = lv.next_field()? {
                                    if let (2, Some((hb, _))) = (h.number, h.bytes()) {
                                        strings.push(self.keep(hb));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out.extend(strings.into_iter().map(|s| (key.clone(), s)));
        Ok(())
    }

    fn graph(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let Some((b, at)) = f.bytes() else { continue };
            match f.number {
                1 => self.node(b, at, None)?,
                2 => self.library(b, at)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn library(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            if let (1, Some((b, at))) = (f.number, f.bytes()) {
                self.function(b, at)?;
            }
        }
        Ok(())
    }

    fn function(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        // Signature (OpDef, field 1; its name is field 1) first, so nodes know their function.
        let mut name = String::new();
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            if let (1, Some((b, at))) = (f.number, f.bytes()) {
                let mut sig = Fields::new(b, at);
                while let Some(g) = sig.next_field()? {
                    if let (1, Some((nb, _))) = (g.number, g.bytes()) {
                        name = self.keep(nb);
                    }
                }
            }
        }
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            if let (3, Some((b, at))) = (f.number, f.bytes()) {
                self.node(b, at, Some(&name))?;
            }
        }
        self.out.functions.push(name);
        Ok(())
    }

    /// `SavedObjectGraph.nodes (1) → SavedObject.user_object (4) → SavedUserObject
    /// { identifier = 1, metadata = 3 }`.
    fn object_graph(&mut self, data: &[u8], base: u64) -> Result<(), Error> {
        let mut it = Fields::new(data, base);
        while let Some(f) = it.next_field()? {
            let (1, Some((b, at))) = (f.number, f.bytes()) else {
                continue;
            };
            let mut obj = Fields::new(b, at);
            while let Some(g) = obj.next_field()? {
                let (4, Some((ub, uat))) = (g.number, g.bytes()) else {
                    continue;
                };
                let mut identifier = String::new();
                let mut metadata = None;
                let mut user = Fields::new(ub, uat);
                while let Some(h) = user.next_field()? {
                    match (h.number, h.bytes()) {
                        (1, Some((ib, _))) => identifier = self.keep(ib),
                        (3, Some((mb, mat))) => metadata = Some((mb, mat)),
                        _ => {}
                    }
                }
                if let Some((mb, mat)) = metadata {
                    let len = mb.len() as u64;
                    if self.metadata_bytes.saturating_add(len) > self.limits.max_keras_metadata {
                        self.out.metadata_truncated = true;
                        continue;
                    }
                    self.metadata_bytes += len;
                    let text = String::from_utf8_lossy(mb).into_owned();
                    self.out.user_objects.push((mat, identifier, text));
                }
            }
        }
        Ok(())
    }

    fn saved_model(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut it = Fields::new(data, 0);
        while let Some(f) = it.next_field()? {
            if let (2, Some((b, at))) = (f.number, f.bytes()) {
                self.out.meta_graphs += 1;
                let mut mg = Fields::new(b, at);
                while let Some(g) = mg.next_field()? {
                    match (g.number, g.bytes()) {
                        (2, Some((gb, gat))) => self.graph(gb, gat)?,
                        (7, Some((gb, gat))) => self.object_graph(gb, gat)?,
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// Decodes an in-memory `SavedModel`.
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
        out: Model::default(),
        metadata_bytes: 0,
    };
    w.saved_model(data)?;
    Ok(w.out)
}

/// Reads `src` (after checking its size against `max_file_len`) and decodes it.
pub fn parse(src: &dyn Source, limits: &Limits) -> Result<Model, Error> {
    if src.len() > limits.max_file_len {
        return Err(Error::LimitExceeded {
            offset: 0,
            limit: "max_file_len",
            max: limits.max_file_len,
        });
    }
    let data = src
        .read_vec(0, src.len(), limits.max_file_len)
        .map_err(|_| Error::Truncated {
            offset: 0,
            what: "SavedModel",
        })?;
    parse_bytes(&data, limits)
}
