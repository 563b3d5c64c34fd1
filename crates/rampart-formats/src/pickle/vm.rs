//! The symbolic machine behind [`super::analyze`].

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use super::text::{self, Int};
use super::{
    Analysis, Anomaly, AnomalyKind, Arg, Call, CallKind, ExtUse, Import, ImportKind, Limits,
    PersistentId, PickleSpan, Stats, Status,
};
use crate::Error;
use crate::cursor::Cursor;

/// Most arguments summarised per call site.
const MAX_ARGS: usize = 16;
/// Longest string kept verbatim in an [`Arg::Str`] summary.
const MAX_ARG_STR: usize = 256;

/// A symbolic value. Only tuples nest (bounded by `max_value_depth`), so dropping a value never
/// recurses deeply, and clones are cheap (`Rc`).
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt,
    Float(f64),
    Str(Rc<str>),
    LongStr(u64),
    Bytes(u64),
    ByteArray(u64),
    Tuple(Rc<TupleVal>),
    Container(&'static str),
    /// A global: its dotted `module.name`.
    Global(Rc<str>),
    /// The result of a call, with the dotted name it resolves to when known (`getattr` chains,
    /// `import_module`).
    CallResult(Option<Rc<str>>),
    /// `operator.attrgetter(name)`: calling it reads `name` from its argument.
    AttrGetter(Rc<str>),
    Ext(u32),
    Persistent,
    Buffer,
    Opaque,
}

/// The expanded size of a value (nodes in its tree when every memo reference is copied out),
/// saturating. Mutable containers and objects share one cell between the stack and the memo, so
/// items appended after a `PUT` count for every later `GET` of it.
#[derive(Debug, Clone)]
enum Weight {
    /// An immutable value (scalars, tuples, globals).
    Leaf(u64),
    /// A mutable container or object, shared by reference.
    Node(Rc<Cell<u64>>),
}

impl Weight {
    fn of(v: &Value) -> Self {
        match v {
            Value::Container(_) | Value::CallResult(_) | Value::Opaque | Value::Persistent => {
                Self::Node(Rc::new(Cell::new(1)))
            }
            _ => Self::Leaf(1),
        }
    }

    fn get(&self) -> u64 {
        match self {
            Self::Leaf(n) => *n,
            Self::Node(c) => c.get(),
        }
    }

    /// Sets the size of a freshly built value.
    fn set(&mut self, n: u64) {
        match self {
            Self::Leaf(x) => *x = n,
            Self::Node(c) => c.set(n),
        }
    }

    /// Adds `n` (items appended or state set), returning the new size.
    fn grow(&mut self, n: u64) -> u64 {
        let total = self.get().saturating_add(n);
        self.set(total);
        total
    }
}

#[derive(Debug)]
struct TupleVal {
    items: Vec<Value>,
    depth: usize,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) | Self::BigInt => "int",
            Self::Float(_) => "float",
            Self::Str(_) | Self::LongStr(_) => "str",
            Self::Bytes(_) => "bytes",
            Self::ByteArray(_) => "bytearray",
            Self::Tuple(_) => "tuple",
            Self::Container(kind) => kind,
            Self::Global(_) => "global",
            Self::CallResult(_) => "call result",
            Self::AttrGetter(_) => "attrgetter",
            Self::Ext(_) => "ext",
            Self::Persistent => "persistent id",
            Self::Buffer => "buffer",
            Self::Opaque => "opaque",
        }
    }

    /// The dotted name this value denotes, if it is a global or a resolved call result.
    fn name(&self) -> Option<&Rc<str>> {
        match self {
            Self::Global(n) | Self::CallResult(Some(n)) => Some(n),
            _ => None,
        }
    }

    /// The name of a pre-existing object this value denotes: a global, or a name resolved through
    /// `getattr`/`import_module`-like primitives (modules and their attributes, not new instances).
    fn existing_object(&self) -> Option<&Rc<str>> {
        self.name()
    }

    fn depth(&self) -> usize {
        match self {
            Self::Tuple(t) => t.depth,
            _ => 0,
        }
    }

    fn summary(&self) -> Arg {
        match self {
            Self::None => Arg::None,
            Self::Bool(b) => Arg::Bool(*b),
            Self::Int(i) => Arg::Int(*i),
            Self::BigInt => Arg::BigInt,
            Self::Float(f) => Arg::Float(*f),
            Self::Str(s) if s.len() <= MAX_ARG_STR => Arg::Str(s.to_string()),
            Self::Str(s) => Arg::LongStr(s.len() as u64),
            Self::LongStr(n) => Arg::LongStr(*n),
            Self::Bytes(n) => Arg::Bytes(*n),
            Self::ByteArray(n) => Arg::ByteArray(*n),
            Self::Tuple(t) => Arg::Tuple(t.items.len()),
            Self::Container(kind) => Arg::Container(kind),
            Self::Global(n) => Arg::Global(n.to_string()),
            Self::CallResult(n) => Arg::CallResult(n.as_ref().map(|n| n.to_string())),
            Self::AttrGetter(_) => Arg::CallResult(None),
            Self::Ext(code) => Arg::Ext(*code),
            Self::Persistent => Arg::Persistent,
            Self::Buffer => Arg::Buffer,
            Self::Opaque => Arg::Opaque,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Str(s) => format!("str {:?}", truncate(s, 64)),
            Self::Global(n) => format!("global {n}"),
            Self::CallResult(Some(n)) => format!("call result {n}"),
            Self::Int(i) => format!("int {i}"),
            other => other.kind().to_string(),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Per-pickle machine state.
struct Machine<'l> {
    limits: &'l Limits,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    protocol: u8,
    opcodes_here: u64,
    /// Expanded sizes, parallel to `stack`.
    weights: Vec<Weight>,
    /// Expanded sizes, parallel to `memo`.
    memo_weights: HashMap<u64, Weight>,
    /// Sum of the expanded sizes popped by the current opcode.
    popped: u64,
    /// True once this pickle reported a memo amplification.
    amplified: bool,
}

pub(super) fn run(data: &[u8], limits: &Limits) -> Analysis {
    let mut a = Analysis {
        imports: Vec::new(),
        calls: Vec::new(),
        ext_uses: Vec::new(),
        persistent_ids: Vec::new(),
        anomalies: Vec::new(),
        pickles: Vec::new(),
        status: Status::Clean,
        stats: Stats::default(),
    };
    if data.len() as u64 > limits.max_input_bytes {
        a.status = Status::LimitExceeded(Error::LimitExceeded {
            offset: 0,
            limit: "max_input_bytes",
            max: limits.max_input_bytes,
        });
        return a;
    }
    let mut cur = Cursor::new(data);
    loop {
        let start = cur.offset();
        if a.pickles.len() >= limits.max_pickles {
            a.status = Status::LimitExceeded(Error::LimitExceeded {
                offset: start,
                limit: "max_pickles",
                max: limits.max_pickles as u64,
            });
            break;
        }
        let before = a.records();
        let mut m = Machine {
            limits,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            protocol: 0,
            opcodes_here: 0,
            weights: Vec::new(),
            memo_weights: HashMap::new(),
            popped: 0,
            amplified: false,
        };
        let result = m.run_one(&mut cur, &mut a);
        let complete = result.is_ok();
        let had_complete = a.pickles.iter().any(|p| p.complete);
        a.pickles.push(PickleSpan {
            start,
            end: cur.offset(),
            protocol: m.protocol,
            complete,
        });
        match result {
            Ok(()) => match cur.peek_u8() {
                None => break,
                Some(op) if opcode_name(op).is_none() => {
                    a.status = Status::TrailingData {
                        offset: cur.offset(),
                    };
                    break;
                }
                Some(_) => {}
            },
            Err(e) => {
                a.status = if e.is_limit() {
                    Status::LimitExceeded(e)
                } else if had_complete && a.records() == before {
                    // Bytes after a complete pickle that never import, call or reference anything:
                    // not a pickle, just trailing data.
                    a.pickles.pop();
                    Status::TrailingData { offset: start }
                } else if e.is_truncation() {
                    Status::Truncated(e)
                } else {
                    Status::Broken(e)
                };
                break;
            }
        }
    }
    a
}

impl Machine<'_> {
    fn push(&mut self, v: Value, off: u64, a: &mut Analysis) -> Result<(), Error> {
        let depth = self.stack.len() + self.marks.len();
        if depth >= self.limits.max_stack_depth {
            return Err(Error::LimitExceeded {
                offset: off,
                limit: "max_stack_depth",
                max: self.limits.max_stack_depth as u64,
            });
        }
        self.weights.push(Weight::of(&v));
        self.stack.push(v);
        a.stats.max_stack = a.stats.max_stack.max(depth + 1);
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, off: u64, opcode: &'static str) -> Result<Value, Error> {
        if self.stack.len() <= self.floor() {
            return Err(Error::StackUnderflow {
                offset: off,
                opcode,
            });
        }
        if let Some(w) = self.weights.pop() {
            self.popped = self.popped.saturating_add(w.get());
        }
        self.stack.pop().ok_or(Error::StackUnderflow {
            offset: off,
            opcode,
        })
    }

    fn top(&self, off: u64, opcode: &'static str) -> Result<&Value, Error> {
        self.stack.last().ok_or(Error::StackUnderflow {
            offset: off,
            opcode,
        })
    }

    fn pop_mark(&mut self, off: u64, opcode: &'static str) -> Result<Vec<Value>, Error> {
        let mark = self.marks.pop().ok_or(Error::MissingMark {
            offset: off,
            opcode,
        })?;
        if mark > self.stack.len() {
            return Err(Error::StackUnderflow {
                offset: off,
                opcode,
            });
        }
        for w in self.weights.split_off(mark.min(self.weights.len())) {
            self.popped = self.popped.saturating_add(w.get());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, key: u64, v: Value, off: u64, a: &mut Analysis) -> Result<(), Error> {
        if !self.memo.contains_key(&key) && self.memo.len() >= self.limits.max_memo_entries {
            return Err(Error::LimitExceeded {
                offset: off,
                limit: "max_memo_entries",
                max: self.limits.max_memo_entries as u64,
            });
        }
        self.memo.insert(key, v);
        if let Some(w) = self.weights.last() {
            self.memo_weights.insert(key, w.clone());
        }
        a.stats.max_memo = a.stats.max_memo.max(self.memo.len());
        Ok(())
    }

    fn memo_get(&mut self, key: u64, off: u64, a: &mut Analysis) -> Result<(), Error> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or(Error::MemoMissing { offset: off, key })?;
        self.push(v, off, a)?;
        // The same object as the memoised one: share its size.
        if let (Some(w), Some(top)) = (self.memo_weights.get(&key), self.weights.last_mut()) {
            *top = w.clone();
        }
        Ok(())
    }

    /// Updates the expanded size after opcode `op` (O(1)) and reports a memo amplification once
    /// per pickle when it passes [`Limits::max_expanded_size`].
    fn weigh(&mut self, op: u8, off: u64, a: &mut Analysis) -> Result<(), Error> {
        let popped = std::mem::take(&mut self.popped);
        let size = match op {
            // Built from popped values: tuples, lists, dicts, sets, call results, persistent ids.
            b't' | 0x85..=0x87 | b'l' | b'd' | 0x91 | b'i' | b'o' | b'R' | 0x81 | 0x92 | b'Q' => {
                let Some(top) = self.weights.last_mut() else {
                    return Ok(());
                };
                let n = popped.saturating_add(1);
                top.set(n);
                n
            }
            // Popped values added to the value below: APPEND(S), ADDITEMS, SETITEM(S), BUILD.
            b'a' | b'e' | 0x90 | b's' | b'u' | b'b' => match self.weights.last_mut() {
                Some(top) => top.grow(popped),
                None => return Ok(()),
            },
            // DUP: the same object twice.
            b'2' => {
                let below = self
                    .weights
                    .len()
                    .checked_sub(2)
                    .and_then(|i| self.weights.get(i))
                    .cloned();
                if let (Some(below), Some(top)) = (below, self.weights.last_mut()) {
                    *top = below;
                }
                return Ok(());
            }
            b'0' => {
                if self.weights.len() > self.stack.len() {
                    self.weights.truncate(self.stack.len());
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        a.stats.max_expanded = a.stats.max_expanded.max(size);
        if !self.amplified && size > self.limits.max_expanded_size {
            self.amplified = true;
            let detail = format!(
                "a value built here expands to at least {size} nodes through shared memo references (limit {})",
                self.limits.max_expanded_size
            );
            self.anomaly(a, off, AnomalyKind::MemoAmplification, detail)?;
        }
        Ok(())
    }

    fn tuple(&self, items: Vec<Value>) -> Value {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        if depth > self.limits.max_value_depth {
            Value::Opaque
        } else {
            Value::Tuple(Rc::new(TupleVal { items, depth }))
        }
    }

    fn check_len(&self, len: u64, off: u64) -> Result<(), Error> {
        if len > self.limits.max_string_len {
            return Err(Error::LimitExceeded {
                offset: off,
                limit: "max_string_len",
                max: self.limits.max_string_len,
            });
        }
        Ok(())
    }

    fn text_str(&self, s: &str) -> Value {
        if s.len() <= self.limits.max_retained_string {
            Value::Str(Rc::from(s))
        } else {
            Value::LongStr(s.len() as u64)
        }
    }

    fn utf8_str(&self, bytes: &[u8], off: u64) -> Result<Value, Error> {
        let s = std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            offset: off,
            what: "unicode string",
            reason: "invalid UTF-8",
        })?;
        Ok(self.text_str(s))
    }

    fn latin1_str(&self, bytes: &[u8]) -> Value {
        if bytes.len() <= self.limits.max_retained_string {
            Value::Str(Rc::from(text::latin1(bytes)))
        } else {
            Value::LongStr(bytes.len() as u64)
        }
    }

    fn line(&self, cur: &mut Cursor<'_>, what: &'static str) -> Result<Vec<u8>, Error> {
        Ok(cur.read_line(self.limits.max_string_len, what)?.to_vec())
    }

    fn name_line<'a>(
        &self,
        cur: &mut Cursor<'a>,
        off: u64,
        what: &'static str,
    ) -> Result<&'a str, Error> {
        let line = cur.read_line(self.limits.max_string_len, what)?;
        let s = std::str::from_utf8(line).map_err(|_| Error::Malformed {
            offset: off,
            what,
            reason: "invalid UTF-8",
        })?;
        Ok(s)
    }

    fn check_records(&self, a: &Analysis, off: u64) -> Result<(), Error> {
        if a.records() >= self.limits.max_records {
            return Err(Error::LimitExceeded {
                offset: off,
                limit: "max_records",
                max: self.limits.max_records as u64,
            });
        }
        Ok(())
    }

    fn anomaly(
        &self,
        a: &mut Analysis,
        off: u64,
        kind: AnomalyKind,
        detail: String,
    ) -> Result<(), Error> {
        self.check_records(a, off)?;
        self.charge(a, off, std::mem::size_of::<Anomaly>() + detail.len())?;
        a.anomalies.push(Anomaly {
            offset: off,
            kind,
            detail,
        });
        Ok(())
    }

    /// Accounts for `bytes` more bytes retained in the analysis, failing before the allocation if
    /// that would exceed [`Limits::max_retained_bytes`].
    fn charge(&self, a: &mut Analysis, off: u64, bytes: usize) -> Result<(), Error> {
        let total = a.stats.retained_bytes.saturating_add(bytes as u64);
        if total > self.limits.max_retained_bytes {
            return Err(Error::LimitExceeded {
                offset: off,
                limit: "max_retained_bytes",
                max: self.limits.max_retained_bytes,
            });
        }
        a.stats.retained_bytes = total;
        Ok(())
    }

    fn import(
        &mut self,
        a: &mut Analysis,
        off: u64,
        module: &str,
        name: &str,
        kind: ImportKind,
    ) -> Result<Value, Error> {
        self.check_records(a, off)?;
        let cost = std::mem::size_of::<Import>() + 2 * (module.len() + name.len() + 1);
        self.charge(a, off, cost)?;
        let full: Rc<str> = Rc::from(format!("{module}.{name}"));
        a.imports.push(Import {
            module: module.to_owned(),
            name: name.to_owned(),
            offset: off,
            kind,
            protocol: self.protocol,
        });
        Ok(Value::Global(full))
    }

    /// Records a call and returns the symbolic result.
    fn call(
        &mut self,
        a: &mut Analysis,
        off: u64,
        kind: CallKind,
        callable: &Value,
        args: &[Value],
    ) -> Result<Value, Error> {
        self.check_records(a, off)?;
        let name = callable.name().cloned();
        let cost = std::mem::size_of::<Call>()
            + name.as_ref().map_or(0, |n| n.len())
            + args
                .iter()
                .take(MAX_ARGS)
                .map(Value::summary_cost)
                .sum::<usize>();
        self.charge(a, off, cost)?;
        a.calls.push(Call {
            offset: off,
            kind,
            callable: name.as_ref().map(|n| n.to_string()),
            callable_kind: callable.kind(),
            args: args.iter().take(MAX_ARGS).map(Value::summary).collect(),
        });
        Ok(resolve_result(callable, name.as_deref(), args))
    }

    fn mutate(
        &self,
        a: &mut Analysis,
        off: u64,
        opcode: &str,
        target: &Value,
    ) -> Result<(), Error> {
        if let Some(n) = target.existing_object() {
            let detail = format!("{opcode} on global {n}");
            self.anomaly(a, off, AnomalyKind::MutationOfGlobal, detail)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn run_one(&mut self, cur: &mut Cursor<'_>, a: &mut Analysis) -> Result<(), Error> {
        loop {
            let off = cur.offset();
            let op = cur.read_u8("opcode")?;
            if a.stats.opcodes >= self.limits.max_opcodes {
                return Err(Error::LimitExceeded {
                    offset: off,
                    limit: "max_opcodes",
                    max: self.limits.max_opcodes,
                });
            }
            a.stats.opcodes += 1;
            self.opcodes_here += 1;
            self.popped = 0;
            let name = opcode_name(op).ok_or(Error::UnknownOpcode {
                offset: off,
                opcode: op,
            })?;
            match op {
                // ---- constants ----
                b'N' => self.push(Value::None, off, a)?,
                0x88 => self.push(Value::Bool(true), off, a)?,
                0x89 => self.push(Value::Bool(false), off, a)?,
                b'I' => {
                    let line = self.line(cur, "INT operand")?;
                    let v = match line.as_slice() {
                        b"00" => Value::Bool(false),
                        b"01" => Value::Bool(true),
                        l => int_value(text::parse_int(l, true), off, "INT operand")?,
                    };
                    self.push(v, off, a)?;
                }
                b'L' => {
                    let line = self.line(cur, "LONG operand")?;
                    let l = line.strip_suffix(b"L").unwrap_or(&line);
                    let v = int_value(text::parse_int(l, true), off, "LONG operand")?;
                    self.push(v, off, a)?;
                }
                b'J' => {
                    let v = cur.read_i32_le("BININT operand")?;
                    self.push(Value::Int(i64::from(v)), off, a)?;
                }
                b'K' => {
                    let v = cur.read_u8("BININT1 operand")?;
                    self.push(Value::Int(i64::from(v)), off, a)?;
                }
                b'M' => {
                    let v = cur.read_u16_le("BININT2 operand")?;
                    self.push(Value::Int(i64::from(v)), off, a)?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        u64::from(cur.read_u8("LONG1 length")?)
                    } else {
                        signed_len(cur, off, "LONG4 length")?
                    };
                    self.check_len(n, off)?;
                    let bytes = cur.take_u64(n, "long integer bytes")?;
                    self.push(long_value(bytes), off, a)?;
                }
                b'F' => {
                    let line = self.line(cur, "FLOAT operand")?;
                    let f = text::parse_float(&line).ok_or(Error::Malformed {
                        offset: off,
                        what: "FLOAT operand",
                        reason: "not a float",
                    })?;
                    self.push(Value::Float(f), off, a)?;
                }
                b'G' => {
                    let f = cur.read_f64_be("BINFLOAT operand")?;
                    self.push(Value::Float(f), off, a)?;
                }
                // ---- strings and bytes ----
                b'S' => {
                    let line = self.line(cur, "STRING operand")?;
                    let bytes = text::decode_quoted(&line).ok_or(Error::Malformed {
                        offset: off,
                        what: "STRING operand",
                        reason: "not a quoted string",
                    })?;
                    let v = self.latin1_str(&bytes);
                    self.push(v, off, a)?;
                }
                b'T' | b'U' => {
                    let n = if op == b'U' {
                        u64::from(cur.read_u8("SHORT_BINSTRING length")?)
                    } else {
                        signed_len(cur, off, "BINSTRING length")?
                    };
                    self.check_len(n, off)?;
                    let bytes = cur.take_u64(n, "string bytes")?;
                    let v = self.latin1_str(bytes);
                    self.push(v, off, a)?;
                }
                b'V' => {
                    let line = self.line(cur, "UNICODE operand")?;
                    let s = text::decode_raw_unicode_escape(&line).ok_or(Error::Malformed {
                        offset: off,
                        what: "UNICODE operand",
                        reason: "bad raw-unicode-escape",
                    })?;
                    let v = self.text_str(&s);
                    self.push(v, off, a)?;
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        0x8c => u64::from(cur.read_u8("SHORT_BINUNICODE length")?),
                        b'X' => u64::from(cur.read_u32_le("BINUNICODE length")?),
                        _ => cur.read_u64_le("BINUNICODE8 length")?,
                    };
                    self.check_len(n, off)?;
                    let bytes = cur.take_u64(n, "unicode bytes")?;
                    let v = self.utf8_str(bytes, off)?;
                    self.push(v, off, a)?;
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => u64::from(cur.read_u8("SHORT_BINBYTES length")?),
                        b'B' => u64::from(cur.read_u32_le("BINBYTES length")?),
                        _ => cur.read_u64_le("BINBYTES8/BYTEARRAY8 length")?,
                    };
                    self.check_len(n, off)?;
                    cur.take_u64(n, "bytes")?;
                    let v = if op == 0x96 {
                        Value::ByteArray(n)
                    } else {
                        Value::Bytes(n)
                    };
                    self.push(v, off, a)?;
                }
                0x97 => {
                    self.anomaly(a, off, AnomalyKind::OutOfBandBuffer, "NEXT_BUFFER".into())?;
                    self.push(Value::Buffer, off, a)?;
                }
                0x98 => {
                    self.top(off, name)?;
                }
                // ---- containers ----
                b')' => {
                    let v = self.tuple(Vec::new());
                    self.push(v, off, a)?;
                }
                b']' => self.push(Value::Container("list"), off, a)?,
                b'}' => self.push(Value::Container("dict"), off, a)?,
                0x8f => self.push(Value::Container("set"), off, a)?,
                b't' => {
                    let items = self.pop_mark(off, name)?;
                    let v = self.tuple(items);
                    self.push(v, off, a)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(off, name)?);
                    }
                    items.reverse();
                    let v = self.tuple(items);
                    self.push(v, off, a)?;
                }
                b'l' => {
                    self.pop_mark(off, name)?;
                    self.push(Value::Container("list"), off, a)?;
                }
                b'd' => {
                    let items = self.pop_mark(off, name)?;
                    odd_check(items.len(), off, "DICT")?;
                    self.push(Value::Container("dict"), off, a)?;
                }
                0x91 => {
                    self.pop_mark(off, name)?;
                    self.push(Value::Container("frozenset"), off, a)?;
                }
                b'a' => {
                    self.pop(off, name)?;
                    let t = self.top(off, name)?.clone();
                    self.mutate(a, off, name, &t)?;
                }
                b'e' | 0x90 => {
                    self.pop_mark(off, name)?;
                    let t = self.top(off, name)?.clone();
                    self.mutate(a, off, name, &t)?;
                }
                b's' => {
                    self.pop(off, name)?;
                    self.pop(off, name)?;
                    let t = self.top(off, name)?.clone();
                    self.mutate(a, off, name, &t)?;
                }
                b'u' => {
                    let items = self.pop_mark(off, name)?;
                    odd_check(items.len(), off, "SETITEMS")?;
                    let t = self.top(off, name)?.clone();
                    self.mutate(a, off, name, &t)?;
                }
                // ---- stack manipulation ----
                b'0' => {
                    if self.stack.len() > self.floor() {
                        self.stack.pop();
                    } else if self.marks.pop().is_none() {
                        return Err(Error::StackUnderflow {
                            offset: off,
                            opcode: name,
                        });
                    }
                }
                b'2' => {
                    let v = self.top(off, name)?.clone();
                    self.push(v, off, a)?;
                }
                b'(' => {
                    let depth = self.stack.len() + self.marks.len();
                    if depth >= self.limits.max_stack_depth {
                        return Err(Error::LimitExceeded {
                            offset: off,
                            limit: "max_stack_depth",
                            max: self.limits.max_stack_depth as u64,
                        });
                    }
                    self.marks.push(self.stack.len());
                    a.stats.max_stack = a.stats.max_stack.max(depth + 1);
                }
                b'1' => {
                    self.pop_mark(off, name)?;
                }
                // ---- memo ----
                b'g' => {
                    let line = self.line(cur, "GET operand")?;
                    let key = memo_key(&line, off)?;
                    self.memo_get(key, off, a)?;
                }
                b'h' => {
                    let key = u64::from(cur.read_u8("BINGET operand")?);
                    self.memo_get(key, off, a)?;
                }
                b'j' => {
                    let key = u64::from(cur.read_u32_le("LONG_BINGET operand")?);
                    self.memo_get(key, off, a)?;
                }
                b'p' | b'q' | b'r' | 0x94 => {
                    let key = match op {
                        b'p' => {
                            let line = self.line(cur, "PUT operand")?;
                            memo_key(&line, off)?
                        }
                        b'q' => u64::from(cur.read_u8("BINPUT operand")?),
                        b'r' => u64::from(cur.read_u32_le("LONG_BINPUT operand")?),
                        _ => self.memo.len() as u64,
                    };
                    let v = self.top(off, name)?.clone();
                    self.memo_put(key, v, off, a)?;
                }
                // ---- imports and calls ----
                b'c' => {
                    let module = self.name_line(cur, off, "GLOBAL module")?;
                    let qual = self.name_line(cur, off, "GLOBAL name")?;
                    let v = self.import(a, off, module, qual, ImportKind::Global)?;
                    self.push(v, off, a)?;
                }
                0x93 => {
                    let qual = self.pop(off, name)?;
                    let module = self.pop(off, name)?;
                    let v = match (&module, &qual) {
                        (Value::Str(m), Value::Str(q)) => {
                            self.import(a, off, m, q, ImportKind::StackGlobal)?
                        }
                        (Value::Str(_) | Value::LongStr(_), Value::Str(_) | Value::LongStr(_)) => {
                            let detail = format!(
                                "STACK_GLOBAL operand too long to analyse ({}, {})",
                                module.summary_len(),
                                qual.summary_len()
                            );
                            self.anomaly(a, off, AnomalyKind::OverlongName, detail)?;
                            Value::Opaque
                        }
                        _ => {
                            let detail = format!(
                                "STACK_GLOBAL module={} name={}",
                                module.describe(),
                                qual.describe()
                            );
                            self.anomaly(a, off, AnomalyKind::StackGlobalNonString, detail)?;
                            Value::Opaque
                        }
                    };
                    self.push(v, off, a)?;
                }
                b'i' => {
                    let module = self.name_line(cur, off, "INST module")?;
                    let qual = self.name_line(cur, off, "INST name")?;
                    let class = self.import(a, off, module, qual, ImportKind::Inst)?;
                    let args = self.pop_mark(off, name)?;
                    let v = self.call(a, off, CallKind::Inst, &class, &args)?;
                    self.push(v, off, a)?;
                }
                b'o' => {
                    let mut items = self.pop_mark(off, name)?.into_iter();
                    let class = items.next().ok_or(Error::StackUnderflow {
                        offset: off,
                        opcode: name,
                    })?;
                    let args: Vec<Value> = items.collect();
                    let v = self.call(a, off, CallKind::Obj, &class, &args)?;
                    self.push(v, off, a)?;
                }
                b'R' | 0x81 => {
                    let args = self.pop(off, name)?;
                    let callable = self.pop(off, name)?;
                    let kind = if op == b'R' {
                        CallKind::Reduce
                    } else {
                        CallKind::NewObj
                    };
                    let v = match &args {
                        Value::Tuple(t) => self.call(a, off, kind, &callable, &t.items)?,
                        other => self.call(a, off, kind, &callable, std::slice::from_ref(other))?,
                    };
                    self.push(v, off, a)?;
                }
                0x92 => {
                    let kwargs = self.pop(off, name)?;
                    let args = self.pop(off, name)?;
                    let class = self.pop(off, name)?;
                    let mut list: Vec<Value> = match &args {
                        Value::Tuple(t) => t.items.clone(),
                        other => vec![other.clone()],
                    };
                    list.push(kwargs);
                    let v = self.call(a, off, CallKind::NewObjEx, &class, &list)?;
                    self.push(v, off, a)?;
                }
                b'b' => {
                    let state = self.pop(off, name)?;
                    let target = self.top(off, name)?.clone();
                    if target.existing_object().is_some() {
                        self.call(
                            a,
                            off,
                            CallKind::BuildOnGlobal,
                            &target,
                            std::slice::from_ref(&state),
                        )?;
                    }
                }
                0x82..=0x84 => {
                    let code = match op {
                        0x82 => i64::from(cur.read_u8("EXT1 code")?),
                        0x83 => i64::from(cur.read_u16_le("EXT2 code")?),
                        _ => i64::from(cur.read_i32_le("EXT4 code")?),
                    };
                    let code =
                        u32::try_from(code)
                            .ok()
                            .filter(|&c| c > 0)
                            .ok_or(Error::Malformed {
                                offset: off,
                                what: "EXT code",
                                reason: "code must be positive",
                            })?;
                    self.check_records(a, off)?;
                    a.ext_uses.push(ExtUse { offset: off, code });
                    self.push(Value::Ext(code), off, a)?;
                }
                b'P' => {
                    let line = self.line(cur, "PERSID operand")?;
                    self.check_records(a, off)?;
                    let value = self.latin1_str(&line);
                    self.charge(a, off, value.summary_cost())?;
                    let id = value.summary();
                    a.persistent_ids.push(PersistentId {
                        offset: off,
                        id: vec![id],
                    });
                    self.push(Value::Persistent, off, a)?;
                }
                b'Q' => {
                    let pid = self.pop(off, name)?;
                    self.check_records(a, off)?;
                    let cost = match &pid {
                        Value::Tuple(t) => {
                            t.items.iter().take(MAX_ARGS).map(Value::summary_cost).sum()
                        }
                        other => other.summary_cost(),
                    };
                    self.charge(a, off, cost)?;
                    let id = match &pid {
                        Value::Tuple(t) => {
                            t.items.iter().take(MAX_ARGS).map(Value::summary).collect()
                        }
                        other => vec![other.summary()],
                    };
                    a.persistent_ids.push(PersistentId { offset: off, id });
                    self.push(Value::Persistent, off, a)?;
                }
                // ---- framing ----
                0x80 => {
                    let proto = cur.read_u8("PROTO version")?;
                    if proto > 5 {
                        return Err(Error::UnsupportedProtocol {
                            offset: off,
                            protocol: proto,
                        });
                    }
                    if self.opcodes_here > 1 {
                        let detail = format!("PROTO {proto} after other opcodes");
                        self.anomaly(a, off, AnomalyKind::MisplacedProto, detail)?;
                    }
                    self.protocol = self.protocol.max(proto);
                }
                0x95 => {
                    let len = cur.read_u64_le("FRAME length")?;
                    if len > cur.remaining() as u64 {
                        let detail = format!("FRAME of {len} bytes, {} remain", cur.remaining());
                        self.anomaly(a, off, AnomalyKind::FrameOverrun, detail)?;
                    }
                }
                b'.' => {
                    self.pop(off, name)?;
                    return Ok(());
                }
                _ => {
                    return Err(Error::UnknownOpcode {
                        offset: off,
                        opcode: op,
                    });
                }
            }
            self.weigh(op, off, a)?;
        }
    }
}

impl Value {
    /// Bytes that [`Value::summary`] will allocate for this value.
    fn summary_cost(&self) -> usize {
        std::mem::size_of::<Arg>()
            + match self {
                Self::Str(s) if s.len() <= MAX_ARG_STR => s.len(),
                Self::Global(n) | Self::CallResult(Some(n)) => n.len(),
                _ => 0,
            }
    }

    fn summary_len(&self) -> String {
        match self {
            Self::Str(s) => format!("{} bytes", s.len()),
            Self::LongStr(n) => format!("{n} bytes"),
            other => other.kind().to_string(),
        }
    }
}

/// What a call evaluates to: known name-producing primitives keep the name they resolve to, so
/// later calls through them are judged by the real target.
fn resolve_result(callable: &Value, name: Option<&str>, args: &[Value]) -> Value {
    let str_arg = |i: usize| match args.get(i) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    if let Value::AttrGetter(attr) = callable {
        return match args.first().and_then(Value::name) {
            Some(base) => Value::CallResult(Some(Rc::from(format!("{base}.{attr}")))),
            None => Value::CallResult(None),
        };
    }
    let Some(name) = name else {
        return Value::CallResult(None);
    };
    match name {
        "builtins.getattr" | "__builtin__.getattr" => {
            match (args.first().and_then(Value::name), str_arg(1)) {
                (Some(base), Some(attr)) => {
                    Value::CallResult(Some(Rc::from(format!("{base}.{attr}"))))
                }
                _ => Value::CallResult(None),
            }
        }
        "importlib.import_module"
        | "importlib.__import__"
        | "builtins.__import__"
        | "__builtin__.__import__" => Value::CallResult(str_arg(0)),
        "pkgutil.resolve_name" => {
            Value::CallResult(str_arg(0).map(|s| Rc::from(s.replace(':', "."))))
        }
        "operator.attrgetter" | "_operator.attrgetter" => match str_arg(0) {
            Some(attr) => Value::AttrGetter(attr),
            None => Value::CallResult(None),
        },
        _ => Value::CallResult(None),
    }
}

fn int_value(v: Option<Int>, off: u64, what: &'static str) -> Result<Value, Error> {
    match v {
        Some(Int::Small(i)) => Ok(Value::Int(i)),
        Some(Int::Big) => Ok(Value::BigInt),
        None => Err(Error::Malformed {
            offset: off,
            what,
            reason: "not an integer",
        }),
    }
}

/// A 4-byte signed length operand (LONG4, BINSTRING), refusing a negative one.
fn signed_len(cur: &mut Cursor<'_>, off: u64, what: &'static str) -> Result<u64, Error> {
    let n = cur.read_i32_le(what)?;
    u64::try_from(n).map_err(|_| Error::Malformed {
        offset: off,
        what,
        reason: "negative length",
    })
}

fn long_value(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt;
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    Value::Int(i64::from_le_bytes(buf))
}

fn memo_key(line: &[u8], off: u64) -> Result<u64, Error> {
    match text::parse_int(line, false) {
        Some(Int::Small(k)) => u64::try_from(k).map_err(|_| Error::Malformed {
            offset: off,
            what: "memo key",
            reason: "negative key",
        }),
        Some(Int::Big) => Err(Error::Malformed {
            offset: off,
            what: "memo key",
            reason: "key too large",
        }),
        None => Err(Error::Malformed {
            offset: off,
            what: "memo key",
            reason: "not an integer",
        }),
    }
}

fn odd_check(n: usize, off: u64, what: &'static str) -> Result<(), Error> {
    if n.is_multiple_of(2) {
        Ok(())
    } else {
        Err(Error::Malformed {
            offset: off,
            what,
            reason: "odd number of items",
        })
    }
}

/// The pickletools name of an opcode.
pub(super) fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_little_endian_twos_complement() {
        assert!(matches!(long_value(&[]), Value::Int(0)));
        assert!(matches!(long_value(&[0xff]), Value::Int(-1)));
        assert!(matches!(long_value(&[0xff, 0x00]), Value::Int(255)));
        assert!(matches!(long_value(&[0x00, 0x80]), Value::Int(-32768)));
        assert!(matches!(long_value(&[1; 9]), Value::BigInt));
    }

    #[test]
    fn every_opcode_byte_has_a_name_and_others_do_not() {
        let named = (0..=255u8).filter(|&b| opcode_name(b).is_some()).count();
        assert_eq!(named, 68);
        assert_eq!(opcode_name(0x93), Some("STACK_GLOBAL"));
        assert_eq!(opcode_name(0xfe), None);
        assert_eq!(opcode_name(0), None);
    }

    fn s(v: &str) -> Value {
        Value::Str(Rc::from(v))
    }

    fn g(v: &str) -> Value {
        Value::Global(Rc::from(v))
    }

    #[test]
    fn name_producing_calls_resolve() {
        let r = resolve_result(
            &g("builtins.getattr"),
            Some("builtins.getattr"),
            &[g("os"), s("system")],
        );
        assert_eq!(
            r.name().map(|n| n.to_string()).as_deref(),
            Some("os.system")
        );
        let r = resolve_result(
            &g("importlib.import_module"),
            Some("importlib.import_module"),
            &[s("os")],
        );
        assert_eq!(r.name().map(|n| n.to_string()).as_deref(), Some("os"));
        let r = resolve_result(
            &g("pkgutil.resolve_name"),
            Some("pkgutil.resolve_name"),
            &[s("os:system")],
        );
        assert_eq!(
            r.name().map(|n| n.to_string()).as_deref(),
            Some("os.system")
        );
        let getter = resolve_result(
            &g("operator.attrgetter"),
            Some("operator.attrgetter"),
            &[s("popen")],
        );
        assert!(matches!(getter, Value::AttrGetter(_)));
        let r = resolve_result(&getter, None, &[g("os")]);
        assert_eq!(r.name().map(|n| n.to_string()).as_deref(), Some("os.popen"));
        // Calls that create new objects are not named after an existing object.
        let r = resolve_result(
            &g("collections.OrderedDict"),
            Some("collections.OrderedDict"),
            &[],
        );
        assert!(r.name().is_none());
        // getattr over a non-constant attribute name stays unresolved.
        let r = resolve_result(
            &g("builtins.getattr"),
            Some("builtins.getattr"),
            &[g("os"), Value::Int(1)],
        );
        assert!(r.name().is_none());
    }

    #[test]
    fn tuples_beyond_the_depth_limit_become_opaque() {
        let limits = Limits {
            max_value_depth: 2,
            ..Limits::default()
        };
        let m = Machine {
            limits: &limits,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            protocol: 0,
            opcodes_here: 0,
            weights: Vec::new(),
            memo_weights: HashMap::new(),
            popped: 0,
            amplified: false,
        };
        let one = m.tuple(vec![Value::None]);
        let two = m.tuple(vec![one]);
        assert_eq!(two.depth(), 2);
        assert!(matches!(m.tuple(vec![two]), Value::Opaque));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("h\u{e9}llo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
