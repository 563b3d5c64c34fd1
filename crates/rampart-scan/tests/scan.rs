//! Integration tests for the pickle rules: hand-assembled pickles and the shared sample set.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rampart_formats::pickle::{Status, analyze};
use rampart_scan::pickle::{Limits, scan};
use rampart_scan::{Report, Verdict};

/// A tiny pickle assembler.
#[derive(Default, Clone)]
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        Self::default()
    }
    fn op(mut self, op: u8) -> Self {
        self.0.push(op);
        self
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
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
    fn sbu(self, s: &str) -> Self {
        let n = u8::try_from(s.len()).unwrap();
        self.op(0x8c).raw(&[n]).raw(s.as_bytes())
    }
    fn bu(self, s: &str) -> Self {
        let n = u32::try_from(s.len()).unwrap();
        self.op(b'X').raw(&n.to_le_bytes()).raw(s.as_bytes())
    }
    fn k(self, v: u8) -> Self {
        self.op(b'K').raw(&[v])
    }
    fn stack_global(self, m: &str, n: &str) -> Self {
        self.sbu(m).op(MEMOIZE).sbu(n).op(MEMOIZE).op(STACK_GLOBAL)
    }
    /// `callable(arg)` with a single string argument.
    fn call1(self, arg: &str) -> Self {
        self.bu(arg).op(TUPLE1).op(REDUCE)
    }
    fn then(mut self, other: &P) -> Self {
        self.0.extend_from_slice(&other.0);
        self
    }
    fn stop(self) -> Self {
        self.op(b'.')
    }
}

const MARK: u8 = b'(';
const REDUCE: u8 = b'R';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const EMPTY_TUPLE: u8 = b')';
const EMPTY_DICT: u8 = b'}';
const EMPTY_LIST: u8 = b']';
const STACK_GLOBAL: u8 = 0x93;
const MEMOIZE: u8 = 0x94;
const BUILD: u8 = b'b';
const SETITEMS: u8 = b'u';
const NEWOBJ: u8 = 0x81;

fn verdict(p: &P) -> Verdict {
    scan(&p.0, &Limits::default()).verdict
}

fn report(p: &P) -> Report {
    scan(&p.0, &Limits::default())
}

fn has_rule(r: &Report, rule: &str) -> bool {
    r.findings.iter().any(|f| f.rule == rule)
}

fn evidence(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .filter_map(|f| f.evidence.clone())
        .collect()
}

// ---------------------------------------------------------------- safe

#[test]
fn plain_data_in_every_protocol_is_safe() {
    let p0 = P::new()
        .op(b'(')
        .op(b'd')
        .op(b'S')
        .line("'a'")
        .op(b'I')
        .line("1")
        .op(b's')
        .stop();
    let p1 = P::new()
        .op(EMPTY_DICT)
        .op(MARK)
        .op(b'U')
        .raw(&[1])
        .raw(b"a")
        .k(1)
        .op(SETITEMS)
        .stop();
    let p2 = P::new()
        .proto(2)
        .op(EMPTY_LIST)
        .op(MARK)
        .k(1)
        .k(2)
        .op(b'e')
        .stop();
    let p3 = P::new()
        .proto(3)
        .op(b'C')
        .raw(&[2])
        .raw(b"\x00\x01")
        .op(TUPLE1)
        .stop();
    let p4 = P::new()
        .proto(4)
        .op(0x95)
        .raw(&7u64.to_le_bytes())
        .op(0x8f)
        .op(MARK)
        .k(1)
        .op(0x90)
        .op(b'0')
        .op(b'N')
        .stop();
    let p5 = P::new()
        .proto(5)
        .op(0x96)
        .raw(&2u64.to_le_bytes())
        .raw(b"ab")
        .stop();
    for (i, p) in [p0, p1, p2, p3, p4, p5].iter().enumerate() {
        let r = report(p);
        assert_eq!(r.verdict, Verdict::Safe, "protocol {i}: {:#?}", r.findings);
        assert!(r.findings.is_empty(), "protocol {i}");
    }
}

#[test]
fn plain_data_constructors_are_safe() {
    // OrderedDict(), set([1]), _codecs.encode('abc', 'latin1'), datetime / __builtin__ aliases.
    let p = P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .op(b'0')
        .global("__builtin__", "set")
        .op(EMPTY_LIST)
        .op(TUPLE1)
        .op(REDUCE)
        .op(b'0')
        .global("_codecs", "encode")
        .bu("abc")
        .bu("latin1")
        .op(TUPLE2)
        .op(REDUCE)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Safe, "{:#?}", r.findings);
}

// ---------------------------------------------------------------- review

/// A `torch.save(state_dict)` data.pkl, as written by torch ≥ 1.6 (protocol 2).
fn torch_state_dict() -> P {
    P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .op(b'q')
        .raw(&[0])
        .op(MARK)
        .bu("weight")
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
        .k(2)
        .k(2)
        .op(TUPLE2)
        .k(2)
        .k(1)
        .op(TUPLE2)
        .op(0x89)
        .global("collections", "OrderedDict")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .op(b't')
        .op(REDUCE)
        .op(SETITEMS)
        .stop()
}

#[test]
fn torch_state_dict_needs_review_not_malicious() {
    let r = report(&torch_state_dict());
    assert_eq!(r.verdict, Verdict::Review, "{:#?}", r.findings);
    assert!(has_rule(&r, "pickle/allowed-reconstructor"));
    assert!(has_rule(&r, "pickle/persistent-id"));
    assert!(!r.findings.iter().any(|f| f.rule.contains("denied")));
}

#[test]
fn numpy_and_sklearn_reconstructors_need_review() {
    let p = P::new()
        .proto(2)
        .global("sklearn.linear_model._base", "LinearRegression")
        .op(EMPTY_TUPLE)
        .op(NEWOBJ)
        .op(EMPTY_DICT)
        .op(MARK)
        .bu("coef_")
        .global("numpy.core.multiarray", "_reconstruct")
        .global("numpy", "ndarray")
        .k(0)
        .op(TUPLE1)
        .global("_codecs", "encode")
        .bu("b")
        .bu("latin1")
        .op(TUPLE2)
        .op(REDUCE)
        .op(TUPLE3)
        .op(REDUCE)
        .op(MARK)
        .k(1)
        .k(2)
        .op(TUPLE1)
        .global("numpy", "dtype")
        .bu("f8")
        .op(0x89)
        .op(0x88)
        .op(TUPLE3)
        .op(REDUCE)
        .op(b't')
        .op(BUILD)
        .op(SETITEMS)
        .op(BUILD)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Review, "{:#?}", r.findings);
    let ev = evidence(&r);
    assert!(ev.contains(&"sklearn.linear_model._base.LinearRegression".to_owned()));
    assert!(ev.contains(&"numpy.core.multiarray._reconstruct".to_owned()));
    // numpy 2 spelling too.
    let p2 = P::new()
        .proto(4)
        .stack_global("numpy._core.multiarray", "_reconstruct")
        .op(b'0')
        .k(1)
        .stop();
    assert_eq!(verdict(&p2), Verdict::Review);
}

#[test]
fn unknown_globals_and_calls_are_at_least_review() {
    let p = P::new()
        .proto(2)
        .global("mypkg.models", "Net")
        .op(EMPTY_TUPLE)
        .op(NEWOBJ)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Review);
    assert!(has_rule(&r, "pickle/unknown-global"));
    let p = P::new()
        .proto(2)
        .global("mypkg.util", "make")
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Review);
    assert!(has_rule(&r, "pickle/unknown-call"));
    // A global imported but never called still needs review.
    let p = P::new().proto(2).global("mypkg", "CONST").stop();
    assert_eq!(verdict(&p), Verdict::Review);
    // A dotted walk beyond the allow-list.
    let p = P::new()
        .proto(4)
        .stack_global("collections", "OrderedDict.fromkeys")
        .op(b'0')
        .k(1)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Review);
    assert!(has_rule(&r, "pickle/dotted-walk"));
    // Codecs with an unusual encoding.
    let p = P::new()
        .proto(2)
        .global("_codecs", "encode")
        .bu("x")
        .bu("rot13")
        .op(TUPLE2)
        .op(REDUCE)
        .stop();
    assert_eq!(verdict(&p), Verdict::Review);
}

#[test]
fn persid_buffers_and_trailing_data_need_review() {
    let pid = P::new().op(b'P').line("0").stop();
    assert_eq!(verdict(&pid), Verdict::Review);
    let buf = P::new().proto(5).op(0x97).stop();
    assert_eq!(verdict(&buf), Verdict::Review);
    let trailing = P::new().proto(2).k(1).stop().raw(b"\xff\xff");
    let r = report(&trailing);
    assert_eq!(r.verdict, Verdict::Review);
    assert!(has_rule(&r, "pickle/trailing-data"));
}

// ---------------------------------------------------------------- malicious

/// Deny-listed callables from scanner.md §1 and §3, each called through REDUCE.
const DENIED: &[(&str, &str)] = &[
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("os", "popen"),
    ("subprocess", "run"),
    ("subprocess", "Popen"),
    ("commands", "getoutput"),
    ("sys", "exit"),
    ("socket", "create_connection"),
    ("ssl", "get_server_certificate"),
    ("shutil", "rmtree"),
    ("runpy", "_run_code"),
    ("pty", "spawn"),
    ("pdb", "run"),
    ("bdb", "Bdb"),
    ("asyncio", "create_subprocess_shell"),
    ("ctypes", "CDLL"),
    ("webbrowser", "open"),
    ("importlib", "import_module"),
    ("pickle", "loads"),
    ("_pickle", "loads"),
    ("marshal", "loads"),
    ("types", "FunctionType"),
    ("types", "CodeType"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "compile"),
    ("builtins", "getattr"),
    ("builtins", "setattr"),
    ("builtins", "open"),
    ("builtins", "__import__"),
    ("builtins", "breakpoint"),
    ("__builtin__", "apply"),
    ("builtins", "input"),
    ("builtins", "vars"),
    ("operator", "attrgetter"),
    ("operator", "itemgetter"),
    ("operator", "methodcaller"),
    ("_operator", "methodcaller"),
    ("functools", "partial"),
    ("bz2", "BZ2File"),
    ("numpy", "load"),
    ("numpy.f2py", "compile"),
    ("numpy.testing._private.utils", "runstring"),
    ("pip", "main"),
    ("pip._internal", "main"),
    ("ensurepip", "_run_pip"),
    ("timeit", "timeit"),
    ("cProfile", "run"),
    ("profile", "run"),
    ("pydoc", "pipepager"),
    ("uuid", "_get_command_stdout"),
    ("imaplib", "IMAP4_stream"),
    ("pkgutil", "resolve_name"),
    ("torch", "load"),
    ("torch.serialization", "load"),
    ("torch._inductor.codecache", "compile_file"),
    ("torch.utils.collect_env", "run"),
    ("_osx_support", "_read_output"),
    ("_pyrepl.pager", "pipe_pager"),
    ("multiprocessing.util", "spawnv_passfds"),
    ("pandas", "read_csv"),
    ("pandas", "read_pickle"),
    ("code", "InteractiveInterpreter"),
    ("codeop", "compile_command"),
    ("urllib.request", "urlopen"),
    ("http.client", "HTTPSConnection"),
    ("requests.api", "get"),
    ("aiohttp.client", "ClientSession"),
    ("venv", "create"),
    ("logging", "FileHandler"),
    ("_io", "FileIO"),
    ("joblib", "load"),
    ("dill._dill", "_create_function"),
];

#[test]
fn deny_listed_callables_are_malicious() {
    for (m, n) in DENIED {
        let p = P::new().proto(2).global(m, n).call1("x").stop();
        let r = report(&p);
        assert_eq!(r.verdict, Verdict::Malicious, "{m}.{n}: {:#?}", r.findings);
        assert!(has_rule(&r, "pickle/denied-global"), "{m}.{n}");
        assert!(has_rule(&r, "pickle/denied-call"), "{m}.{n}");
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "pickle/denied-call")
            .unwrap();
        assert_eq!(f.evidence.as_deref(), Some(format!("{m}.{n}").as_str()));
        assert_eq!(f.severity, rampart_scan::Severity::Critical);
        // Protocol 4 STACK_GLOBAL spelling, imported but not even called.
        let p = P::new().proto(4).stack_global(m, n).stop();
        assert_eq!(verdict(&p), Verdict::Malicious, "{m}.{n} via STACK_GLOBAL");
    }
}

#[test]
fn protocol_0_inst_exec_is_malicious() {
    let p = P::new()
        .op(MARK)
        .op(b'V')
        .line("print(1)")
        .op(b'i')
        .line("builtins")
        .line("exec")
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "pickle/denied-call" && f.message.contains("INST"))
    );
}

#[test]
fn dotted_name_aliases_are_judged_as_their_target() {
    for (m, n, target) in [
        ("posixpath", "os.system", "os.system"),
        ("argparse", "_os.system", "os.system"),
        ("random", "_os.popen", "os.popen"),
        ("ntpath", "os.system", "os.system"),
        ("logging", "sys.modules", "sys.modules"),
        ("tempfile", "_os.system", "os.system"),
    ] {
        for p in [
            P::new().proto(4).stack_global(m, n).call1("id").stop(),
            P::new().global(m, n).call1("id").stop(),
        ] {
            let r = report(&p);
            assert_eq!(r.verdict, Verdict::Malicious, "{m}.{n}");
            assert!(
                r.findings.iter().any(|f| f.message.contains(target)),
                "{m}.{n} should mention {target}: {:#?}",
                r.findings
            );
        }
    }
}

#[test]
fn dunder_and_private_walks_are_malicious() {
    for (m, n) in [
        ("builtins", "object.__subclasses__"),
        ("collections", "OrderedDict.__reduce__"),
        ("numpy", "dtype.__class__"),
        ("json", "dumps.__globals__"),
        ("mypkg", "__builtins__"),
        ("mypkg", "Thing._helper.run"),
        ("pathlib", "Path.write_text"),
        ("pathlib", "PosixPath.unlink"),
    ] {
        let p = P::new().proto(4).stack_global(m, n).stop();
        let r = report(&p);
        assert_eq!(r.verdict, Verdict::Malicious, "{m}.{n}: {:#?}", r.findings);
    }
}

#[test]
fn getattr_import_module_chain_is_malicious_and_resolved() {
    let p = P::new()
        .proto(3)
        .global("builtins", "getattr")
        .global("importlib", "import_module")
        .call1("subprocess")
        .bu("call")
        .op(TUPLE2)
        .op(REDUCE)
        .op(EMPTY_LIST)
        .op(TUPLE1)
        .op(REDUCE)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(
        evidence(&r).contains(&"subprocess.call".to_owned()),
        "{:#?}",
        r.findings
    );
}

#[test]
fn dict_get_vars_import_module_gadget_is_malicious() {
    // builtins.dict.get(builtins.vars(importlib.import_module('os')), 'system')('id')
    let p = P::new()
        .proto(4)
        .stack_global("builtins", "dict.get")
        .stack_global("builtins", "vars")
        .stack_global("importlib", "import_module")
        .call1("os")
        .op(TUPLE1)
        .op(REDUCE)
        .bu("system")
        .op(TUPLE2)
        .op(REDUCE)
        .call1("id")
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/unresolved-call"), "{:#?}", r.findings);
}

#[test]
fn functools_partial_torch_load_is_malicious() {
    let p = P::new()
        .proto(2)
        .global("functools", "partial")
        .global("torch", "load")
        .bu("/tmp/other.pt")
        .op(TUPLE2)
        .op(REDUCE)
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    let ev = evidence(&r);
    assert!(ev.contains(&"functools.partial".to_owned()) && ev.contains(&"torch.load".to_owned()));
}

#[test]
fn marshal_function_type_is_malicious() {
    // types.FunctionType(marshal.loads(b'...'), {})()
    let p = P::new()
        .proto(3)
        .global("types", "FunctionType")
        .global("marshal", "loads")
        .op(b'C')
        .raw(&[3])
        .raw(b"\xe3\x00\x00")
        .op(TUPLE1)
        .op(REDUCE)
        .op(EMPTY_DICT)
        .op(TUPLE2)
        .op(REDUCE)
        .op(EMPTY_TUPLE)
        .op(REDUCE)
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(evidence(&r).contains(&"marshal.loads".to_owned()));
    assert!(has_rule(&r, "pickle/unresolved-call"));
}

#[test]
fn build_on_a_global_is_malicious() {
    // modelscan #85: numpy.prod is allow-listed-looking, but BUILD sets attributes on it.
    let p = P::new()
        .proto(2)
        .global("numpy", "prod")
        .op(b'N')
        .op(EMPTY_DICT)
        .bu("m")
        .global("collections", "OrderedDict")
        .op(b's')
        .op(TUPLE2)
        .op(BUILD)
        .op(b'0')
        .global("numpy", "prod.m")
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/build-on-global"));
    // Even on a trivially safe class.
    let p = P::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .op(EMPTY_DICT)
        .op(BUILD)
        .stop();
    assert_eq!(verdict(&p), Verdict::Malicious);
}

#[test]
fn stack_global_with_non_string_operands_is_malicious() {
    let p = P::new().proto(4).k(1).k(2).op(STACK_GLOBAL).stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/stack-global-non-string"));
}

#[test]
fn memo_desync_stack_global_is_malicious() {
    let p = P::new()
        .proto(4)
        .sbu("os")
        .op(b'q')
        .raw(&[0])
        .op(b'q')
        .raw(&[1])
        .op(b'0')
        .sbu("system")
        .op(b'q')
        .raw(&[7])
        .op(MEMOIZE)
        .op(b'0')
        .op(b'h')
        .raw(&[1])
        .op(b'h')
        .raw(&[3])
        .op(STACK_GLOBAL)
        .call1("id")
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(evidence(&r).contains(&"os.system".to_owned()));
}

#[test]
fn ext_call_and_mutating_globals_are_malicious() {
    // EXT hides the global behind a registry code: an evasion even when not called.
    for ext in [&[0x82u8, 7][..], &[0x83, 1, 2], &[0x84, 1, 0, 0, 0]] {
        let r = report(&P::new().proto(2).raw(ext).stop());
        assert_eq!(r.verdict, Verdict::Malicious);
        assert!(has_rule(&r, "pickle/ext-registry"));
    }
    let p = P::new().proto(2).op(0x82).raw(&[7]).call1("id").stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/unresolved-call"));
    // Setting an item on a module-level object.
    let p = P::new()
        .proto(2)
        .global("mypkg", "REGISTRY")
        .bu("k")
        .bu("v")
        .op(b's')
        .stop();
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/mutation-of-global"));
}

#[test]
fn payload_in_a_later_pickle_is_found() {
    // Legacy torch layout: magic number, protocol, sys info, then the payload.
    let magic = P::new()
        .proto(2)
        .op(0x8a)
        .raw(&[
            10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
        ])
        .stop();
    let proto = P::new()
        .proto(2)
        .op(b'M')
        .raw(&1001u16.to_le_bytes())
        .stop();
    let payload = P::new()
        .proto(2)
        .op(EMPTY_DICT)
        .bu("run")
        .global("posix", "system")
        .call1("id")
        .op(b's')
        .stop();
    let p = magic.then(&proto).then(&payload);
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "pickle/denied-call")
        .unwrap();
    assert!(f.offset.unwrap() > 20);
}

// ---------------------------------------------------------------- broken streams

#[test]
fn broken_or_truncated_streams_are_errors_unless_malicious() {
    let truncated = P::new().proto(2).op(EMPTY_DICT).bu("a");
    let r = report(&truncated);
    assert_eq!(r.verdict, Verdict::Error);
    assert!(has_rule(&r, "pickle/truncated"));
    let broken = P::new().proto(2).k(1).raw(&[0xfe]);
    let r = report(&broken);
    assert_eq!(r.verdict, Verdict::Error);
    assert!(has_rule(&r, "pickle/broken"));
    assert_eq!(
        r.findings
            .iter()
            .find(|f| f.rule == "pickle/broken")
            .unwrap()
            .offset,
        Some(4)
    );
    // A review-level finding before the break: still an error, never review or safe.
    let p = P::new().proto(2).global("mypkg", "Thing").raw(&[0xfe]);
    assert_eq!(verdict(&p), Verdict::Error);
    assert_eq!(scan(b"", &Limits::default()).verdict, Verdict::Error);
}

#[test]
fn payload_before_a_break_is_malicious() {
    // nullifAI: the payload runs, then the stream is corrupted.
    let p = P::new()
        .proto(2)
        .global("posix", "system")
        .call1("id")
        .raw(&[0xfe, 0x00]);
    let r = report(&p);
    assert_eq!(r.verdict, Verdict::Malicious);
    assert!(has_rule(&r, "pickle/broken"));
    let p = P::new().proto(2).global("posix", "system").call1("id");
    assert_eq!(verdict(&p), Verdict::Malicious);
}

#[test]
fn limits_give_error_never_safe() {
    let limits = Limits {
        max_opcodes: 2,
        ..Limits::default()
    };
    let r = scan(&P::new().k(1).k(2).k(3).stop().0, &limits);
    assert_eq!(r.verdict, Verdict::Error);
    assert!(has_rule(&r, "pickle/limit-exceeded"));
}

#[test]
fn findings_are_deduplicated_and_member_is_settable() {
    let mut p = P::new().proto(2);
    for _ in 0..5 {
        p = p.global("os", "system").op(b'0');
    }
    let r = report(&p.k(1).stop()).in_member("archive/data.pkl");
    let denied: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "pickle/denied-global")
        .collect();
    assert_eq!(denied.len(), 1);
    assert!(denied[0].message.contains("5 occurrences"));
    assert_eq!(denied[0].offset, Some(2));
    assert_eq!(denied[0].member.as_deref(), Some("archive/data.pkl"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["verdict"], "malicious");
    assert_eq!(json["findings"][0]["severity"], "critical");
}

// ---------------------------------------------------------------- shared samples

#[test]
fn shared_raw_pickle_samples_get_their_labelled_verdicts() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scan-samples"
    );
    let labels = std::fs::read_to_string(format!("{root}/labels.jsonl")).unwrap();
    let mut checked = 0;
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = entry["path"].as_str().unwrap();
        // Raw pickle streams only; containers are scanned by the container walker.
        if !(path.starts_with("pickle/") || path.starts_with("review/")) {
            continue;
        }
        let expected = match (
            entry["label"].as_str().unwrap(),
            entry["category"].as_str().unwrap(),
        ) {
            ("malicious", _) => Verdict::Malicious,
            ("benign", "benign_review") => Verdict::Review,
            ("benign", _) => Verdict::Safe,
            other => panic!("unknown label {other:?}"),
        };
        // Read bytes only: never unpickle.
        let bytes = std::fs::read(format!("{root}/{path}")).unwrap();
        let r = scan(&bytes, &Limits::default());
        assert_eq!(r.verdict, expected, "{path}: {:#?}", r.findings);
        checked += 1;
    }
    assert_eq!(checked, 9, "expected the 9 raw pickle samples");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scan_never_panics_and_never_calls_a_broken_stream_safe(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let limits = Limits { max_opcodes: 300, max_stack_depth: 32, max_records: 16, ..Limits::default() };
        let r = scan(&data, &limits);
        let a = analyze(&data, &limits);
        if matches!(a.status, Status::Truncated(_) | Status::Broken(_) | Status::LimitExceeded(_)) {
            prop_assert!(r.verdict >= Verdict::Error);
        }
        if r.verdict == Verdict::Safe {
            prop_assert!(a.status == Status::Clean);
        }
    }

    #[test]
    fn prefixing_a_payload_with_plain_pickles_never_hides_it(n in 0usize..4, junk in proptest::collection::vec(any::<u8>(), 0..16)) {
        let mut p = P::new();
        for _ in 0..n {
            p = p.then(&P::new().proto(2).k(1).stop());
        }
        let p = p.then(&P::new().proto(2).global("os", "system").call1("id")).raw(&junk);
        prop_assert_eq!(verdict(&p), Verdict::Malicious);
    }
}

#[test]
fn generated_cpython_pickles_get_their_expected_verdicts() {
    // testdata/pickle/cases.jsonl: real `pickle.dumps` output for protocols 0-5, written by
    // testdata/pickle/make_pickles.py (never loaded).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/pickle/cases.jsonl"
    );
    let cases = std::fs::read_to_string(path).unwrap();
    let mut wrong = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let hex = case["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let expected = match case["expected"].as_str().unwrap() {
            "safe" => Verdict::Safe,
            "review" => Verdict::Review,
            "malicious" => Verdict::Malicious,
            other => panic!("unknown expectation {other}"),
        };
        *counts.entry(expected).or_insert(0) += 1;
        let r = scan(&bytes, &Limits::default());
        if r.verdict != expected {
            wrong.push(format!(
                "{} p{}: expected {expected}, got {} {:?}",
                case["name"], case["protocol"], r.verdict, r.findings
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(counts.values().all(|&n| n >= 20), "{counts:?}");
}

#[test]
fn weights_only_option_makes_a_state_dict_safe_but_not_sklearn() {
    use rampart_scan::pickle::{Options, scan_with};
    let opts = Options {
        weights_only_safe: true,
    };
    let r = scan_with(&torch_state_dict().0, &Limits::default(), &opts);
    assert_eq!(r.verdict, Verdict::Safe, "{:#?}", r.findings);
    assert!(has_rule(&r, "pickle/weights-only-reconstructor"));
    // A payload is still malicious, and non-weights reconstructors still need review.
    let evil =
        torch_state_dict().then(&P::new().proto(2).global("os", "system").call1("id").stop());
    assert_eq!(
        scan_with(&evil.0, &Limits::default(), &opts).verdict,
        Verdict::Malicious
    );
    let sk = P::new()
        .proto(2)
        .global("sklearn.svm", "SVC")
        .op(EMPTY_TUPLE)
        .op(NEWOBJ)
        .stop();
    assert_eq!(
        scan_with(&sk.0, &Limits::default(), &opts).verdict,
        Verdict::Review
    );
    let wrapped = P::new()
        .proto(2)
        .global("torch._tensor", "_rebuild_from_type_v2")
        .stop();
    assert_eq!(
        scan_with(&wrapped.0, &Limits::default(), &opts).verdict,
        Verdict::Review
    );
}

#[path = "scan/engine.rs"]
mod engine;

/// Replays every committed fuzz input (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
/// through the function its fuzz target calls, so inputs that once crashed stay fixed under plain
/// `cargo test`.
mod fuzz_corpus {
    fn replay(target: &str, check: fn(&[u8])) {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seen = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                check(&std::fs::read(entry.unwrap().path()).unwrap());
                seen += 1;
            }
        }
        assert!(seen > 0, "no committed inputs for fuzz target {target}");
    }

    /// A fuzz target's corpus directory and its entry point.
    type Target = (&'static str, fn(&[u8]));

    #[test]
    fn every_target() {
        let targets: [Target; 11] = [
            ("scan_pickle", rampart_scan::pickle::fuzz),
            ("scan_engine", rampart_scan::engine::fuzz),
            ("zip_walk", rampart_formats::zip::fuzz),
            ("tar", rampart_formats::tar::fuzz),
            ("compress", rampart_formats::compress::fuzz),
            ("npy", rampart_formats::npy::fuzz),
            ("safetensors", rampart_scan::safetensors::fuzz),
            ("gguf", rampart_scan::gguf::fuzz),
            ("onnx", rampart_scan::onnx::fuzz),
            ("keras_config", rampart_scan::keras::fuzz),
            ("savedmodel", rampart_scan::savedmodel::fuzz),
        ];
        for (target, check) in targets {
            replay(target, check);
        }
    }
}

/// A "billion laughs" pickle: `levels` nested lists, each holding `fanout` memo references to
/// the previous level.
fn memo_bomb(levels: u8, fanout: usize) -> Vec<u8> {
    let mut b = vec![0x80, 0x02, b']', b'q', 0, b'0'];
    for i in 1..=levels {
        b.extend_from_slice(&[b']', b'q', i, b'(']);
        for _ in 0..fanout {
            b.extend_from_slice(&[b'h', i - 1]);
        }
        b.extend_from_slice(b"e0");
    }
    b.extend_from_slice(&[b'h', levels, b'.']);
    b
}

#[test]
fn memo_amplification_bomb_is_malicious() {
    let bomb = memo_bomb(60, 4);
    assert!(bomb.len() < 1024);
    let a = analyze(&bomb, &Limits::default());
    assert_eq!(a.status, Status::Clean);
    assert_eq!(a.stats.max_expanded, u64::MAX, "4^60 saturates");
    let r = scan(&bomb, &Limits::default());
    assert_eq!(r.verdict, Verdict::Malicious, "{:?}", r.findings);
    assert!(has_rule(&r, "pickle/memo-amplification"));
    // Tuples and DUP amplify too: 40 levels of (x, x, x) through DUP and a PUT/GET.
    let mut t = vec![0x80, 0x02, b'N'];
    for _ in 0..40 {
        t.extend_from_slice(&[b'q', 0, b'2', b'h', 0, 0x87]);
    }
    t.push(b'.');
    let r = scan(&t, &Limits::default());
    assert!(
        has_rule(&r, "pickle/memo-amplification"),
        "{:?}",
        r.findings
    );
    // Mutation after the PUT counts (the pickler memoises the empty list first): a small bomb
    // stays under the threshold, a lowered threshold catches it.
    let small = memo_bomb(8, 4);
    assert_eq!(scan(&small, &Limits::default()).verdict, Verdict::Safe);
    let a = analyze(&small, &Limits::default());
    assert!(
        a.stats.max_expanded > 4u64.pow(8),
        "{}",
        a.stats.max_expanded
    );
    let strict = Limits {
        max_expanded_size: 1000,
        ..Limits::default()
    };
    assert!(has_rule(
        &scan(&small, &strict),
        "pickle/memo-amplification"
    ));
    // A self-appending list saturates instead of overflowing.
    let mut s = vec![0x80, 0x02, b']', b'q', 0];
    for _ in 0..80 {
        s.extend_from_slice(&[b'h', 0, b'a']);
    }
    s.push(b'.');
    assert_eq!(analyze(&s, &Limits::default()).stats.max_expanded, u64::MAX);
}

#[test]
fn benign_pickles_with_shared_references_stay_far_below_the_amplification_threshold() {
    let margin = Limits::default().max_expanded_size / 1000;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/pickle/cases.jsonl"
    );
    let cases = std::fs::read_to_string(path).unwrap();
    let mut checked = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        if case["expected"] == "malicious" {
            continue;
        }
        let hex = case["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let a = analyze(&bytes, &Limits::default());
        assert!(
            a.stats.max_expanded < margin,
            "{} p{}: {}",
            case["name"],
            case["protocol"],
            a.stats.max_expanded
        );
        checked += 1;
    }
    assert!(checked >= 40, "{checked}");
    // The torch state dict built here, and the shared benign samples (raw pickles, and every
    // sample through the engine: no amplification finding anywhere).
    let a = analyze(&torch_state_dict().0, &Limits::default());
    assert!(a.stats.max_expanded > 1 && a.stats.max_expanded < margin);
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scan-samples"
    );
    let labels = std::fs::read_to_string(format!("{dir}/labels.jsonl")).unwrap();
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let bytes = std::fs::read(format!("{dir}/{}", case["path"].as_str().unwrap())).unwrap();
        let a = analyze(&bytes, &Limits::default());
        assert!(a.stats.max_expanded < margin, "{}", case["path"]);
        let s = rampart_scan::Scanner::default().scan_bytes(&bytes);
        assert!(
            !has_rule(&s.report, "pickle/memo-amplification"),
            "{}",
            case["path"]
        );
    }
}
