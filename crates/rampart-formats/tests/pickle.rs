//! Integration tests for the symbolic pickle VM: hand-assembled opcode streams.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use rampart_formats::pickle::{
    Analysis, AnomalyKind, Arg, CallKind, ImportKind, Limits, Status, analyze, opcode_name,
};

/// A tiny pickle assembler that remembers which opcodes it emitted.
#[derive(Default, Clone)]
struct P {
    buf: Vec<u8>,
    ops: BTreeSet<u8>,
}

impl P {
    fn new() -> Self {
        Self::default()
    }
    fn op(mut self, op: u8) -> Self {
        self.ops.insert(op);
        self.buf.push(op);
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self
    }
    fn line(self, s: &str) -> Self {
        self.raw(s.as_bytes()).raw(b"\n")
    }
    fn proto(self, v: u8) -> Self {
        self.op(0x80).raw(&[v])
    }
    fn global(self, m: &str, n: &str) -> Self {
        self.op(b'c').line(m).line(n)
    }
    fn inst(self, m: &str, n: &str) -> Self {
        self.op(b'i').line(m).line(n)
    }
    fn sbu(self, s: &str) -> Self {
        let n = u8::try_from(s.len()).unwrap();
        self.op(0x8c).raw(&[n]).raw(s.as_bytes())
    }
    fn bu(self, s: &str) -> Self {
        let n = u32::try_from(s.len()).unwrap();
        self.op(b'X').raw(&n.to_le_bytes()).raw(s.as_bytes())
    }
    fn binput(self, k: u8) -> Self {
        self.op(b'q').raw(&[k])
    }
    fn binget(self, k: u8) -> Self {
        self.op(b'h').raw(&[k])
    }
    fn k(self, v: u8) -> Self {
        self.op(b'K').raw(&[v])
    }
    fn frame(self, body: &P) -> Self {
        let mut s = self.op(0x95).raw(&(body.buf.len() as u64).to_le_bytes());
        s.buf.extend_from_slice(&body.buf);
        s.ops.extend(body.ops.iter().copied());
        s
    }
    fn then(mut self, other: &P) -> Self {
        self.buf.extend_from_slice(&other.buf);
        self.ops.extend(other.ops.iter().copied());
        self
    }
    fn stop(self) -> Self {
        self.op(b'.')
    }
    fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

const MARK: u8 = b'(';
const REDUCE: u8 = b'R';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const EMPTY_TUPLE: u8 = b')';
const STACK_GLOBAL: u8 = 0x93;
const MEMOIZE: u8 = 0x94;
const POP: u8 = b'0';
const BUILD: u8 = b'b';

fn run(p: &P) -> Analysis {
    analyze(p.bytes(), &Limits::default())
}

fn imported(a: &Analysis) -> Vec<String> {
    a.imports
        .iter()
        .map(|i| format!("{}.{}", i.module, i.name))
        .collect()
}

fn called(a: &Analysis) -> Vec<Option<String>> {
    a.calls.iter().map(|c| c.callable.clone()).collect()
}

/// One stream that uses every opcode of protocols 0–5.
fn every_opcode() -> P {
    let body = P::new()
        .op(MARK)
        // constants
        .op(b'N')
        .op(0x88)
        .op(0x89)
        .op(b'I')
        .line("42")
        .op(b'I')
        .line("01")
        .op(b'L')
        .line("123456789012345678901234567890L")
        .op(b'J')
        .raw(&(-1i32).to_le_bytes())
        .k(7)
        .op(b'M')
        .raw(&513u16.to_le_bytes())
        .op(0x8a)
        .raw(&[2, 0xff, 0x7f])
        .op(0x8b)
        .raw(&9i32.to_le_bytes())
        .raw(&[1; 9])
        .op(b'F')
        .line("1.5")
        .op(b'G')
        .raw(&2.5f64.to_be_bytes())
        // strings and bytes
        .op(b'S')
        .line("'abc'")
        .op(b'T')
        .raw(&3i32.to_le_bytes())
        .raw(b"def")
        .op(b'U')
        .raw(&[2])
        .raw(b"gh")
        .op(b'V')
        .line("caf\\u00e9")
        .bu("binunicode")
        .sbu("short")
        .op(0x8d)
        .raw(&4u64.to_le_bytes())
        .raw(b"long")
        .op(b'B')
        .raw(&2u32.to_le_bytes())
        .raw(b"\x00\x01")
        .op(b'C')
        .raw(&[1, 9])
        .op(0x8e)
        .raw(&3u64.to_le_bytes())
        .raw(b"abc")
        .op(0x96)
        .raw(&2u64.to_le_bytes())
        .raw(b"xy")
        // tuples
        .op(EMPTY_TUPLE)
        .k(1)
        .op(TUPLE1)
        .k(1)
        .k(2)
        .op(TUPLE2)
        .k(1)
        .k(2)
        .k(3)
        .op(0x87)
        // lists
        .op(b']')
        .k(1)
        .op(b'a')
        .op(MARK)
        .k(2)
        .k(3)
        .op(b'e')
        .op(MARK)
        .k(4)
        .op(b'l')
        // dicts
        .op(b'}')
        .k(1)
        .k(2)
        .op(b's')
        .op(MARK)
        .k(3)
        .k(4)
        .op(b'u')
        .op(MARK)
        .k(5)
        .k(6)
        .op(b'd')
        // sets
        .op(0x8f)
        .op(MARK)
        .k(1)
        .op(0x90)
        .op(MARK)
        .k(2)
        .op(0x91)
        // stack and memo
        .op(b'2')
        .op(POP)
        .op(MARK)
        .k(9)
        .op(b'1')
        .op(b'p')
        .line("0")
        .op(b'g')
        .line("0")
        .binput(1)
        .binget(1)
        .op(b'r')
        .raw(&2u32.to_le_bytes())
        .op(b'j')
        .raw(&2u32.to_le_bytes())
        .op(MEMOIZE)
        // imports and calls
        .global("collections", "OrderedDict")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .sbu("builtins")
        .sbu("set")
        .op(STACK_GLOBAL)
        .op(b']')
        .op(TUPLE1)
        .op(REDUCE)
        .op(MARK)
        .inst("collections", "OrderedDict")
        .op(MARK)
        .global("collections", "OrderedDict")
        .op(b'o')
        .global("mymod", "Cls")
        .op(EMPTY_TUPLE)
        .op(0x81)
        .op(b'}')
        .op(BUILD)
        .global("mymod", "Cls")
        .op(EMPTY_TUPLE)
        .op(b'}')
        .op(0x92)
        .op(0x82)
        .raw(&[1])
        .op(0x83)
        .raw(&2u16.to_le_bytes())
        .op(0x84)
        .raw(&3i32.to_le_bytes())
        .op(b'P')
        .line("pid")
        .sbu("x")
        .op(b'Q')
        .op(0x97)
        .op(0x98)
        .op(b't')
        .stop();
    P::new().proto(5).frame(&body)
}

#[test]
fn every_opcode_is_emitted_and_understood() {
    let p = every_opcode();
    let all: BTreeSet<u8> = (0..=255u8).filter(|&b| opcode_name(b).is_some()).collect();
    assert_eq!(all.len(), 68, "pickletools defines 68 opcodes");
    let missing: Vec<&str> = all
        .difference(&p.ops)
        .filter_map(|&b| opcode_name(b))
        .collect();
    assert!(missing.is_empty(), "opcodes not exercised: {missing:?}");

    let a = run(&p);
    assert_eq!(a.status, Status::Clean, "{a:#?}");
    assert_eq!(a.pickles.len(), 1);
    assert_eq!(a.pickles[0].protocol, 5);
    assert!(a.pickles[0].complete);
    assert_eq!(
        imported(&a),
        [
            "collections.OrderedDict",
            "builtins.set",
            "collections.OrderedDict",
            "collections.OrderedDict",
            "mymod.Cls",
            "mymod.Cls"
        ]
    );
    let kinds: Vec<ImportKind> = a.imports.iter().map(|i| i.kind).collect();
    assert_eq!(kinds[1], ImportKind::StackGlobal);
    assert_eq!(kinds[2], ImportKind::Inst);
    let call_kinds: Vec<CallKind> = a.calls.iter().map(|c| c.kind).collect();
    assert_eq!(
        call_kinds,
        [
            CallKind::Reduce,
            CallKind::Reduce,
            CallKind::Inst,
            CallKind::Obj,
            CallKind::NewObj,
            CallKind::NewObjEx
        ]
    );
    assert_eq!(a.calls[1].callable.as_deref(), Some("builtins.set"));
    assert_eq!(a.calls[1].args, [Arg::Container("list")]);
    assert_eq!(
        a.ext_uses.iter().map(|e| e.code).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(a.persistent_ids.len(), 2);
    assert_eq!(a.persistent_ids[0].id, [Arg::Str("pid".into())]);
    assert_eq!(a.persistent_ids[1].id, [Arg::Str("x".into())]);
    assert_eq!(a.anomalies.len(), 1);
    assert_eq!(a.anomalies[0].kind, AnomalyKind::OutOfBandBuffer);
    assert!(a.stats.opcodes > 100);
}

#[test]
fn import_offsets_are_byte_offsets() {
    let p = P::new()
        .proto(2)
        .global("os", "system")
        .op(b'N')
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(a.imports[0].offset, 2);
    assert_eq!(a.imports[0].protocol, 2);
    assert_eq!(a.calls[0].offset, 2 + 11 + 2);
    assert_eq!(a.calls[0].callable.as_deref(), Some("os.system"));
    assert_eq!(a.calls[0].args, [Arg::None]);
}

#[test]
fn protocols_0_to_5() {
    // The same reduce, written the way each protocol would.
    let p0 = P::new()
        .global("os", "system")
        .op(MARK)
        .op(b'V')
        .line("id")
        .op(b't')
        .op(REDUCE)
        .stop();
    let p1 = P::new()
        .global("os", "system")
        .op(MARK)
        .op(b'U')
        .raw(&[2])
        .raw(b"id")
        .op(b't')
        .op(REDUCE)
        .stop();
    let p2 = P::new()
        .proto(2)
        .global("os", "system")
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let p3 = P::new()
        .proto(3)
        .global("os", "system")
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let body = P::new()
        .sbu("os")
        .op(MEMOIZE)
        .sbu("system")
        .op(MEMOIZE)
        .op(STACK_GLOBAL)
        .sbu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let p4 = P::new().proto(4).frame(&body);
    let p5 = P::new().proto(5).frame(&body);
    for (i, p) in [p0, p1, p2, p3, p4, p5].iter().enumerate() {
        let a = run(p);
        assert_eq!(a.status, Status::Clean, "protocol {i}");
        assert_eq!(a.pickles[0].protocol, [0, 0, 2, 3, 4, 5][i], "protocol {i}");
        assert_eq!(called(&a), [Some("os.system".to_owned())], "protocol {i}");
        assert_eq!(a.calls[0].args, [Arg::Str("id".into())], "protocol {i}");
    }
}

#[test]
fn stack_global_from_memo_resolves_real_strings() {
    // The published sample: strings memoised with BINPUT, popped, then fetched with BINGET.
    let p = P::new()
        .proto(4)
        .sbu("posix")
        .binput(5)
        .sbu("system")
        .binput(6)
        .op(POP)
        .op(POP)
        .binget(5)
        .binget(6)
        .op(STACK_GLOBAL)
        .sbu("x")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(imported(&a), ["posix.system"]);
    assert_eq!(called(&a), [Some("posix.system".to_owned())]);
}

#[test]
fn memo_desync_tricks_follow_the_stack_not_the_opcode_arguments() {
    // scanner.md §3.4: `str BINPUT 0 BINPUT 1` stores the string twice; `BINPUT 7 MEMOIZE` stores
    // under 7 and then under len(memo). Look-back scanners read these as ("0", "2").
    let p = P::new()
        .proto(4)
        .sbu("os")
        .binput(0)
        .binput(1)
        .op(POP)
        .sbu("system")
        .binput(7)
        .op(MEMOIZE) // memo has keys {0, 1, 7} → stores under 3
        .op(POP)
        .binget(1)
        .binget(3)
        .op(STACK_GLOBAL)
        .sbu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(a.status, Status::Clean, "{a:#?}");
    assert_eq!(imported(&a), ["os.system"]);
    assert_eq!(called(&a), [Some("os.system".to_owned())]);
}

#[test]
fn stack_global_with_non_string_operands_is_an_anomaly() {
    let p = P::new()
        .proto(4)
        .global("builtins", "getattr")
        .sbu("system")
        .op(STACK_GLOBAL)
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(a.anomalies.len(), 1);
    assert_eq!(a.anomalies[0].kind, AnomalyKind::StackGlobalNonString);
    assert!(
        a.anomalies[0].detail.contains("builtins.getattr"),
        "{}",
        a.anomalies[0].detail
    );
    assert_eq!(a.calls[0].callable, None);
    assert_eq!(a.calls[0].callable_kind, "opaque");
}

#[test]
fn getattr_and_import_module_chains_resolve() {
    let p = P::new()
        .proto(3)
        .global("builtins", "getattr")
        .global("importlib", "import_module")
        .bu("subprocess")
        .op(TUPLE1)
        .op(REDUCE)
        .bu("call")
        .op(TUPLE2)
        .op(REDUCE)
        .op(b']')
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(
        called(&a),
        [
            Some("importlib.import_module".to_owned()),
            Some("builtins.getattr".to_owned()),
            Some("subprocess.call".to_owned())
        ]
    );
}

#[test]
fn attrgetter_and_resolve_name_chains_resolve() {
    let p = P::new()
        .proto(2)
        .global("operator", "attrgetter")
        .bu("system")
        .op(TUPLE1)
        .op(REDUCE)
        .global("pkgutil", "resolve_name")
        .bu("os")
        .op(TUPLE1)
        .op(REDUCE)
        .op(TUPLE1)
        .op(REDUCE) // attrgetter('system')(os)
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE) // os.system('id')
        .stop();
    let a = run(&p);
    assert_eq!(
        called(&a).last().cloned().flatten().as_deref(),
        Some("os.system"),
        "{:#?}",
        a.calls
    );
}

#[test]
fn build_on_a_global_is_a_call() {
    // modelscan #85: BUILD sets an attribute on numpy.prod, then `numpy prod.m` reads it back.
    let p = P::new()
        .proto(2)
        .global("numpy", "prod")
        .op(b'N')
        .op(b'}')
        .bu("m")
        .global("os", "system")
        .op(b's')
        .op(TUPLE2)
        .op(BUILD)
        .op(POP)
        .global("numpy", "prod.m")
        .stop();
    let a = run(&p);
    assert_eq!(a.calls.len(), 1);
    assert_eq!(a.calls[0].kind, CallKind::BuildOnGlobal);
    assert_eq!(a.calls[0].callable.as_deref(), Some("numpy.prod"));
    assert_eq!(imported(&a), ["numpy.prod", "os.system", "numpy.prod.m"]);
}

#[test]
fn setitem_on_a_global_is_an_anomaly() {
    let p = P::new()
        .proto(2)
        .global("os", "environ")
        .bu("K")
        .bu("V")
        .op(b's')
        .stop();
    let a = run(&p);
    assert_eq!(a.anomalies[0].kind, AnomalyKind::MutationOfGlobal);
}

#[test]
fn ext_and_persid_are_recorded() {
    let p = P::new()
        .proto(2)
        .op(0x82)
        .raw(&[0x2a])
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .op(POP)
        .op(b'P')
        .line("storage0")
        .stop();
    let a = run(&p);
    assert_eq!(a.ext_uses.len(), 1);
    assert_eq!(a.ext_uses[0].code, 0x2a);
    assert_eq!(a.calls[0].callable, None);
    assert_eq!(a.calls[0].callable_kind, "ext");
    assert_eq!(a.persistent_ids[0].id, [Arg::Str("storage0".into())]);
    // EXT code 0 is refused, as CPython does.
    let bad = P::new().proto(2).op(0x82).raw(&[0]).stop();
    assert!(matches!(run(&bad).status, Status::Broken(_)));
}

#[test]
fn torch_style_binpersid_tuple_is_summarised() {
    let p = P::new()
        .proto(2)
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(MARK)
        .op(MARK)
        .bu("storage")
        .global("torch", "FloatStorage")
        .bu("0")
        .bu("cpu")
        .k(4)
        .op(b't')
        .op(b'Q')
        .k(0)
        .k(4)
        .op(TUPLE1)
        .k(1)
        .op(TUPLE1)
        .op(0x89)
        .op(b'}')
        .op(b't')
        .op(REDUCE)
        .stop();
    let a = run(&p);
    assert_eq!(a.status, Status::Clean);
    assert_eq!(
        a.persistent_ids[0].id[1],
        Arg::Global("torch.FloatStorage".into())
    );
    assert_eq!(a.calls[0].args[0], Arg::Persistent);
}

#[test]
fn several_pickles_in_one_stream_are_all_analysed() {
    let first = P::new().proto(2).k(1).stop();
    let second = P::new().proto(2).op(b'}').stop();
    let third = P::new()
        .proto(2)
        .global("posix", "system")
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let p = first.clone().then(&second).then(&third);
    let a = run(&p);
    assert_eq!(a.status, Status::Clean);
    assert_eq!(a.pickles.len(), 3);
    assert_eq!(
        a.pickles[2].start,
        u64::try_from(first.bytes().len() + second.bytes().len()).unwrap()
    );
    assert_eq!(imported(&a), ["posix.system"]);
    // Each pickle has its own memo: the second pickle's BINGET 0 fails, and since that inert
    // fragment imports nothing it is reported as trailing data after the first pickle.
    let p = P::new()
        .proto(2)
        .k(1)
        .binput(0)
        .stop()
        .then(&P::new().proto(2).binget(0).stop());
    let a = run(&p);
    assert_eq!(a.status, Status::TrailingData { offset: 7 });
    let p = P::new()
        .proto(2)
        .k(1)
        .binput(0)
        .stop()
        .then(&P::new().proto(2).global("os", "system").binget(0).stop());
    let a = run(&p);
    assert!(
        matches!(
            a.status,
            Status::Broken(rampart_formats::Error::MemoMissing { key: 0, offset: 20 })
        ),
        "{:?}",
        a.status
    );
}

#[test]
fn trailing_non_pickle_data_is_reported() {
    let p = P::new()
        .proto(2)
        .k(1)
        .stop()
        .raw(b"\xff\xfe raw tensor bytes");
    let a = run(&p);
    assert_eq!(a.status, Status::TrailingData { offset: 5 });
    // Trailing bytes that happen to start with opcodes but never import or call anything.
    let p = P::new().proto(2).k(1).stop().raw(b"K\x01K\x02\x00\x00");
    let a = run(&p);
    assert_eq!(a.status, Status::TrailingData { offset: 5 });
    assert!(a.is_plain_data());
    assert_eq!(a.pickles.len(), 1, "the trailing fragment is not a pickle");
}

#[test]
fn payload_before_a_break_is_kept() {
    let p = P::new()
        .proto(2)
        .global("posix", "system")
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE)
        .raw(&[0xfe]);
    let a = run(&p);
    assert_eq!(called(&a), [Some("posix.system".to_owned())]);
    assert_eq!(
        a.status,
        Status::Broken(rampart_formats::Error::UnknownOpcode {
            offset: 25,
            opcode: 0xfe
        })
    );
    // Truncated: no STOP.
    let p = P::new()
        .proto(2)
        .global("posix", "system")
        .bu("id")
        .op(TUPLE1)
        .op(REDUCE);
    let a = run(&p);
    assert_eq!(called(&a), [Some("posix.system".to_owned())]);
    match &a.status {
        Status::Truncated(e) => assert_eq!(e.offset(), 25),
        other => panic!("{other:?}"),
    }
    // A payload in a later pickle followed by garbage is not "trailing data".
    let p = P::new()
        .proto(2)
        .k(1)
        .stop()
        .then(&P::new().global("os", "system").raw(b"\xfe"));
    let a = run(&p);
    assert!(matches!(a.status, Status::Broken(_)));
    assert_eq!(imported(&a), ["os.system"]);
}

#[test]
fn empty_input_is_truncated() {
    let a = analyze(b"", &Limits::default());
    assert!(matches!(a.status, Status::Truncated(_)));
    assert!(a.pickles.iter().all(|p| !p.complete));
}

#[test]
fn malformed_operands_are_errors_with_offsets() {
    let cases: Vec<(P, u64)> = vec![
        (P::new().op(b'I').line("12x").stop(), 0),
        (P::new().op(b'S').line("'unterminated").stop(), 0),
        (
            P::new()
                .proto(2)
                .op(b'X')
                .raw(&2u32.to_le_bytes())
                .raw(b"\xff\xfe")
                .stop(),
            2,
        ),
        (
            P::new()
                .proto(2)
                .op(b'T')
                .raw(&(-1i32).to_le_bytes())
                .stop(),
            2,
        ),
        (P::new().proto(2).op(b'p').line("-1").stop(), 2),
        (P::new().proto(6).stop(), 0),
        (P::new().proto(2).op(b's').stop(), 2),
        (P::new().proto(2).op(b't').stop(), 2),
        (P::new().proto(2).op(b'o').stop(), 2),
        (P::new().proto(2).op(MARK).k(1).op(b'd').stop(), 5),
        (P::new().proto(2).op(b'.'), 2),
    ];
    for (i, (p, offset)) in cases.iter().enumerate() {
        let a = run(p);
        match &a.status {
            Status::Broken(e) => assert_eq!(e.offset(), *offset, "case {i}: {e}"),
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[test]
fn limits_stop_analysis_before_allocating() {
    let tiny = Limits {
        max_opcodes: 3,
        ..Limits::default()
    };
    let p = P::new().proto(2).k(1).k(2).k(3).stop();
    let a = analyze(p.bytes(), &tiny);
    assert!(matches!(a.status, Status::LimitExceeded(_)));
    assert_eq!(a.stats.opcodes, 3);

    let shallow = Limits {
        max_stack_depth: 2,
        ..Limits::default()
    };
    let a = analyze(P::new().k(1).k(2).k(3).stop().bytes(), &shallow);
    assert!(matches!(
        a.status,
        Status::LimitExceeded(rampart_formats::Error::LimitExceeded {
            limit: "max_stack_depth",
            ..
        })
    ));
    assert!(a.stats.max_stack <= 2);

    let small_memo = Limits {
        max_memo_entries: 1,
        ..Limits::default()
    };
    let a = analyze(
        P::new().k(1).binput(0).binput(0).binput(1).stop().bytes(),
        &small_memo,
    );
    assert!(matches!(
        a.status,
        Status::LimitExceeded(rampart_formats::Error::LimitExceeded {
            limit: "max_memo_entries",
            ..
        })
    ));

    let short = Limits {
        max_string_len: 4,
        ..Limits::default()
    };
    let a = analyze(P::new().bu("12345").stop().bytes(), &short);
    assert!(matches!(a.status, Status::LimitExceeded(_)));
    // A declared length far beyond the input never allocates: it is a truncation.
    let huge = P::new().proto(4).op(0x8d).raw(&(1u64 << 62).to_le_bytes());
    let a = run(&huge);
    assert!(
        matches!(a.status, Status::LimitExceeded(_) | Status::Truncated(_)),
        "{:?}",
        a.status
    );

    let one_record = Limits {
        max_records: 1,
        ..Limits::default()
    };
    let a = analyze(
        P::new().global("a", "b").global("c", "d").stop().bytes(),
        &one_record,
    );
    assert_eq!(a.records(), 1);
    assert!(matches!(a.status, Status::LimitExceeded(_)));

    // Memoised strings reused by many calls cannot multiply memory.
    let budget = Limits {
        max_retained_bytes: 2000,
        ..Limits::default()
    };
    let mut p = P::new()
        .proto(4)
        .global("m", "f")
        .op(MEMOIZE)
        .bu(&"x".repeat(200))
        .op(MEMOIZE)
        .op(b'0');
    for _ in 0..100 {
        p = p.binget(0).binget(1).op(TUPLE1).op(REDUCE).op(POP);
    }
    let a = analyze(p.stop().bytes(), &budget);
    assert!(matches!(
        a.status,
        Status::LimitExceeded(rampart_formats::Error::LimitExceeded {
            limit: "max_retained_bytes",
            ..
        })
    ));
    assert!(a.stats.retained_bytes <= 2000);
    assert!(a.calls.len() < 10);

    let input = Limits {
        max_input_bytes: 2,
        ..Limits::default()
    };
    assert!(matches!(
        analyze(b"K\x01.", &input).status,
        Status::LimitExceeded(_)
    ));

    let few = Limits {
        max_pickles: 2,
        ..Limits::default()
    };
    let p = P::new().k(1).stop().k(1).stop().k(1).stop();
    let a = analyze(p.bytes(), &few);
    assert_eq!(a.pickles.len(), 2);
    assert!(matches!(a.status, Status::LimitExceeded(_)));
}

#[test]
fn long_strings_are_tracked_by_length_only() {
    let limits = Limits {
        max_retained_string: 8,
        ..Limits::default()
    };
    let p = P::new()
        .proto(4)
        .sbu("a_very_long_module")
        .sbu("name")
        .op(STACK_GLOBAL)
        .stop();
    let a = analyze(p.bytes(), &limits);
    assert_eq!(a.anomalies[0].kind, AnomalyKind::OverlongName);
}

#[test]
fn deeply_nested_tuples_do_not_overflow() {
    let mut p = P::new().proto(2).k(0);
    for _ in 0..200_000 {
        p = p.op(TUPLE1);
    }
    let a = run(&p.stop());
    assert_eq!(a.status, Status::Clean);
}

#[test]
fn frame_overrun_is_an_anomaly() {
    let p = P::new()
        .proto(4)
        .op(0x95)
        .raw(&100u64.to_le_bytes())
        .k(1)
        .stop();
    let a = run(&p);
    assert_eq!(a.anomalies[0].kind, AnomalyKind::FrameOverrun);
    assert_eq!(a.status, Status::Clean);
}

#[test]
fn pop_on_an_empty_frame_pops_the_mark() {
    // CPython's POP removes the mark when nothing is above it.
    let p = P::new().k(1).op(MARK).op(POP).stop();
    assert_eq!(run(&p).status, Status::Clean);
}

#[test]
fn protocol_0_text_opcodes_decode() {
    let p = P::new()
        .op(b'c')
        .line("__builtin__")
        .line("eval")
        .op(MARK)
        .op(b'S')
        .line("'__import__(\\'os\\')'")
        .op(b't')
        .op(REDUCE)
        .op(b'p')
        .line("0")
        .stop();
    let a = run(&p);
    assert_eq!(a.status, Status::Clean);
    assert_eq!(a.calls[0].args, [Arg::Str("__import__('os')".into())]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_respect_limits(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let limits = Limits {
            max_opcodes: 200,
            max_stack_depth: 16,
            max_memo_entries: 8,
            max_string_len: 64,
            max_records: 10,
            max_pickles: 4,
            max_retained_bytes: 4096,
            ..Limits::default()
        };
        let a = analyze(&data, &limits);
        prop_assert!(a.stats.retained_bytes <= 4096);
        prop_assert!(a.stats.opcodes <= 200);
        prop_assert!(a.stats.max_stack <= 16);
        prop_assert!(a.stats.max_memo <= 8);
        prop_assert!(a.records() <= 10);
        prop_assert!(a.pickles.len() <= 4);
        if let Some(e) = a.status.error() {
            prop_assert!(e.offset() <= data.len() as u64);
        }
    }

    #[test]
    fn opcode_soup_never_panics(ops in proptest::collection::vec(
        prop_oneof![
            Just(vec![b'(']), Just(vec![b'.']), Just(vec![b'0']), Just(vec![b'1']), Just(vec![b'2']),
            Just(vec![b'N']), Just(vec![b'K', 1]), Just(vec![b't']), Just(vec![0x85]), Just(vec![b'R']),
            Just(vec![b'b']), Just(vec![0x93]), Just(vec![0x94]), Just(vec![b'q', 0]), Just(vec![b'h', 0]),
            Just(vec![b'a']), Just(vec![b'e']), Just(vec![b's']), Just(vec![b'u']), Just(vec![b'o']),
            Just(vec![0x81]), Just(vec![0x92]), Just(vec![b']']), Just(vec![b'}']), Just(vec![0x90]),
            Just(vec![0x8c, 2, b'o', b's']), Just(b"cos\nsystem\n".to_vec()), Just(vec![0x82, 1]),
            Just(vec![b'Q']), Just(vec![0x97]), Just(vec![0x98]), Just(vec![0x80, 4]),
        ],
        0..64,
    )) {
        let data: Vec<u8> = ops.concat();
        let a = analyze(&data, &Limits::default());
        prop_assert!(a.stats.opcodes <= data.len() as u64);
    }
}

#[test]
fn memo_keys_are_base_10_like_cpython() {
    // CPython reads GET/PUT keys with int(text, 10): leading zeros are fine, prefixes are not.
    let p = P::new()
        .k(1)
        .op(b'p')
        .line("010")
        .op(b'0')
        .op(b'g')
        .line("10")
        .stop();
    assert_eq!(run(&p).status, Status::Clean);
    let p = P::new().k(1).op(b'p').line("0x1").stop();
    assert!(matches!(run(&p).status, Status::Broken(_)));
}

#[path = "pickle/containers.rs"]
mod containers;
