//! A bounded, non-executing symbolic pickle virtual machine.
//!
//! [`analyze`] walks every opcode of pickle protocols 0–5 on a symbolic stack with a memo and a
//! mark stack, the way CPython's unpickler would, but instead of importing or calling anything it
//! records *what would have been imported and called*: every global (with its byte offset), every
//! call site (`REDUCE`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, and `BUILD` on a global), `EXT`
//! registry uses, persistent ids and structural anomalies. Values are tracked for real — strings,
//! integers, tuples, references to globals and call results — so `STACK_GLOBAL` operands fetched
//! from the memo, memo desynchronisation tricks and `getattr`/`import_module` chains resolve to the
//! callables that would really run.
//!
//! Several pickles concatenated in one stream are all analysed (each with a fresh memo). Whatever
//! was found before an error is kept; the error is recorded in [`Analysis::status`].
//!
//! Every resource is bounded by [`Limits`], checked before allocating.

mod text;
mod vm;

use crate::Error;

/// Resource limits for [`analyze`]. Every limit is checked before the corresponding allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted at all, in bytes. Default 1 GiB.
    pub max_input_bytes: u64,
    /// Most opcodes executed over the whole input (all pickles together). Default 10 000 000.
    pub max_opcodes: u64,
    /// Deepest value stack plus mark stack. Default 100 000.
    pub max_stack_depth: usize,
    /// Most memo entries in one pickle. Default 1 000 000.
    pub max_memo_entries: usize,
    /// Longest string, bytes or line operand, in bytes. Default 512 MiB.
    pub max_string_len: u64,
    /// Strings up to this many bytes keep their content for analysis; longer ones are tracked by
    /// length only (they still count as strings). Default 4096.
    pub max_retained_string: usize,
    /// Deepest nesting of tracked tuples; deeper ones become opaque. Default 64.
    pub max_value_depth: usize,
    /// Most pickles analysed in one stream. Default 1024.
    pub max_pickles: usize,
    /// Most records (globals + calls + EXT uses + persistent ids + anomalies). Default 100 000.
    pub max_records: usize,
    /// Most bytes retained in records (names, argument summaries, details), so that memoised
    /// strings reused by many records cannot multiply memory. Default 64 MiB.
    pub max_retained_bytes: u64,
    /// Largest expanded size of one value — the nodes of its tree when every memo reference
    /// (`GET`, `DUP`) is copied out, as a traversal, `copy.deepcopy`, JSON export or repr would —
    /// before an [`AnomalyKind::MemoAmplification`] is reported. Default 2^32 (about 4.3 billion
    /// nodes): without sharing a value is at most one node per opcode (`max_opcodes`, 10 million),
    /// and benign sharing (torch storages shared by tensors, sklearn estimators sharing dtypes and
    /// classes) stays within a small factor of that, while 60 levels of 4 references reach 4^60.
    /// Tracked with saturating arithmetic, O(1) per opcode, no recursion; not a stop condition.
    pub max_expanded_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 1 << 30,
            max_opcodes: 10_000_000,
            max_stack_depth: 100_000,
            max_memo_entries: 1_000_000,
            max_string_len: 512 << 20,
            max_retained_string: 4096,
            max_value_depth: 64,
            max_pickles: 1024,
            max_records: 100_000,
            max_retained_bytes: 64 << 20,
            max_expanded_size: 1 << 32,
        }
    }
}

/// How a global was imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImportKind {
    /// `GLOBAL` (protocols 0–3): module and name as text lines.
    Global,
    /// `STACK_GLOBAL` (protocol 4+): module and name taken from the stack.
    StackGlobal,
    /// `INST` (protocol 0): module and name as text lines, called immediately.
    Inst,
}

/// One `find_class(module, name)` the unpickler would perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Module part, as written in the pickle.
    pub module: String,
    /// Qualified name, possibly dotted (`os.system` in `posixpath`), as written.
    pub name: String,
    /// Offset of the importing opcode.
    pub offset: u64,
    /// The opcode that imported it.
    pub kind: ImportKind,
    /// Protocol declared by the enclosing pickle's `PROTO` (0 if none).
    pub protocol: u8,
}

/// The opcode that performs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallKind {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `INST`: `cls(*args)` with the class named inline.
    Inst,
    /// `OBJ`: `cls(*args)` with the class on the stack.
    Obj,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// `BUILD` whose target is a global object itself: `__setstate__` or `setattr` on a module-level
    /// object (a known gadget).
    BuildOnGlobal,
}

/// A summary of one argument value at a call site.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Arg {
    /// `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer wider than 64 bits.
    BigInt,
    /// A float.
    Float(f64),
    /// A string whose content was retained.
    Str(String),
    /// A string too long to retain; its length in bytes.
    LongStr(u64),
    /// A bytes object; its length.
    Bytes(u64),
    /// A bytearray; its length.
    ByteArray(u64),
    /// A tuple; its length.
    Tuple(usize),
    /// A list, dict, set or frozenset (contents not tracked).
    Container(&'static str),
    /// A reference to an imported global (`module.name`).
    Global(String),
    /// The result of an earlier call, with the resolved name of what it evaluates to if known.
    CallResult(Option<String>),
    /// A value produced by an `EXT` opcode (registry code).
    Ext(u32),
    /// A persistent-id reference.
    Persistent,
    /// An out-of-band buffer.
    Buffer,
    /// A value too deeply nested to track.
    Opaque,
}

/// One call site.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Offset of the calling opcode.
    pub offset: u64,
    /// The calling opcode.
    pub kind: CallKind,
    /// The dotted name of the callable when it can be resolved (a global, or a `getattr` /
    /// `import_module` chain over constants); `None` when the callable is computed some other way.
    pub callable: Option<String>,
    /// What the callable value is, when not resolved (e.g. `"str"`, `"call result"`, `"ext"`).
    pub callable_kind: &'static str,
    /// The positional arguments (the first 16), summarised.
    pub args: Vec<Arg>,
}

/// A use of the copyreg extension registry (`EXT1`/`EXT2`/`EXT4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtUse {
    /// Offset of the opcode.
    pub offset: u64,
    /// The registry code.
    pub code: u32,
}

/// A persistent id (`PERSID`/`BINPERSID`), resolved by the loader's `persistent_load`.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistentId {
    /// Offset of the opcode.
    pub offset: u64,
    /// The id: the text of `PERSID`, or a summary of the `BINPERSID` operand (for torch, a tuple
    /// such as `('storage', torch.FloatStorage, '0', 'cpu', 4)`).
    pub id: Vec<Arg>,
}

/// Something structurally odd that is not an outright parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// `STACK_GLOBAL` whose operands are not both strings (CPython refuses; a parser evasion).
    StackGlobalNonString,
    /// A module or name operand too long to retain.
    OverlongName,
    /// `APPEND(S)`, `SETITEM(S)` or `ADDITEMS` applied to a global object itself (mutating a
    /// module-level object).
    MutationOfGlobal,
    /// A `FRAME` announces more bytes than remain in the input.
    FrameOverrun,
    /// `NEXT_BUFFER` refers to out-of-band data.
    OutOfBandBuffer,
    /// A `PROTO` opcode that is not the first opcode of its pickle.
    MisplacedProto,
    /// A value whose expanded size (shared memo references copied out) passes
    /// [`Limits::max_expanded_size`]: a "billion laughs" memo/reference amplification bomb.
    MemoAmplification,
}

/// A structural anomaly with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Offset of the opcode.
    pub offset: u64,
    /// What is odd.
    pub kind: AnomalyKind,
    /// Short human-readable detail.
    pub detail: String,
}

/// One pickle found in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickleSpan {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just after its `STOP` (or where analysis stopped).
    pub end: u64,
    /// Highest protocol declared by `PROTO` (0 if none).
    pub protocol: u8,
    /// Whether it ended with `STOP`.
    pub complete: bool,
}

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Every pickle ended with `STOP` and the input ended right after the last one.
    Clean,
    /// After at least one complete pickle, the remaining bytes (from `offset`) are not a pickle.
    TrailingData {
        /// Offset of the first trailing byte.
        offset: u64,
    },
    /// The input ended in the middle of a pickle (or was empty).
    Truncated(Error),
    /// A pickle is malformed (unknown opcode, stack underflow, missing memo key, ...).
    Broken(Error),
    /// A [`Limits`] value was reached; analysis stopped there.
    LimitExceeded(Error),
}

impl Status {
    /// The error behind a non-clean status.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Truncated(e) | Self::Broken(e) | Self::LimitExceeded(e) => Some(e),
            Self::Clean | Self::TrailingData { .. } => None,
        }
    }
}

/// Peak resource use, for checking limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Opcodes executed.
    pub opcodes: u64,
    /// Deepest stack plus mark stack seen.
    pub max_stack: usize,
    /// Largest memo seen.
    pub max_memo: usize,
    /// Bytes retained in records (see [`Limits::max_retained_bytes`]).
    pub retained_bytes: u64,
    /// Largest expanded size of a value built (see [`Limits::max_expanded_size`]).
    pub max_expanded: u64,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Every global imported, in stream order.
    pub imports: Vec<Import>,
    /// Every call site, in stream order.
    pub calls: Vec<Call>,
    /// Extension-registry uses.
    pub ext_uses: Vec<ExtUse>,
    /// Persistent ids.
    pub persistent_ids: Vec<PersistentId>,
    /// Structural anomalies.
    pub anomalies: Vec<Anomaly>,
    /// The pickles found, in order.
    pub pickles: Vec<PickleSpan>,
    /// How the stream ended.
    pub status: Status,
    /// Peak resource use.
    pub stats: Stats,
}

impl Analysis {
    /// Total number of records (what [`Limits::max_records`] bounds).
    #[must_use]
    pub fn records(&self) -> usize {
        self.imports.len()
            + self.calls.len()
            + self.ext_uses.len()
            + self.persistent_ids.len()
            + self.anomalies.len()
    }

    /// True when the stream contains nothing but constant data: no globals, calls, EXT uses,
    /// persistent ids or anomalies.
    #[must_use]
    pub fn is_plain_data(&self) -> bool {
        self.records() == 0
    }
}

/// Analyses a pickle stream (possibly several concatenated pickles) without executing it.
///
/// Never panics; stops at the first error, keeping everything found before it.
#[must_use]
pub fn analyze(data: &[u8], limits: &Limits) -> Analysis {
    vm::run(data, limits)
}

/// The pickletools name of an opcode byte, or `None` if the byte is not an opcode.
#[must_use]
pub fn opcode_name(op: u8) -> Option<&'static str> {
    vm::opcode_name(op)
}
