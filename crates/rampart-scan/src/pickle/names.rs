//! Judging dotted global names: allow-list, deny-list, aliases and attribute walks.
//!
//! The allow-list is the gate: a name not on it is never `safe`. The deny-list only explains why
//! something is malicious. Names are normalised first (Python 2 compatibility names that pickle's
//! `fix_imports` maps, such as `__builtin__` and `commands`), then checked in this order:
//! exact allow-list → sensitive dunder attributes → deny-list → module aliases reached by
//! attribute walks (`posixpath.os.system`, `argparse._os.system`) → private or sink walks →
//! other dotted walks → unknown.

/// What a dotted global name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Plain-data constructors (`builtins.set`, `collections.OrderedDict`, `datetime.datetime`, …).
    Trivial,
    /// The tensor and array reconstructors that torch's `weights_only` unpickler accepts
    /// (`torch._utils._rebuild_tensor_v2`, `torch.*Storage`, `torch.Size`, numpy `_reconstruct`,
    /// `dtype`, `ndarray`, …): `review` by default, `safe` under
    /// [`super::Options::weights_only_safe`].
    WeightsOnly,
    /// Other allow-listed reconstructors (scikit-learn estimators, joblib wrappers, numpy random
    /// state, torch tensor subclasses): needs review.
    Reconstructor,
    /// On the deny-list (directly or through an alias walk).
    Denied {
        /// The name that matched the deny-list (after alias resolution).
        target: String,
        /// Why it is dangerous.
        reason: &'static str,
    },
    /// An attribute walk through a dunder attribute (`__globals__`, `__subclasses__`, …).
    DunderWalk {
        /// The dunder part.
        part: String,
    },
    /// An attribute walk through a `_private` attribute or a module object, or ending in a
    /// dangerous method name (`Path.write_text`).
    SuspiciousWalk {
        /// Why the walk is suspicious.
        reason: String,
    },
    /// Any other dotted attribute walk beyond the allow-list.
    DottedWalk,
    /// Not on any list.
    Unknown,
}

impl Class {
    /// True for classes that make a file malicious.
    #[must_use]
    pub fn is_dangerous(&self) -> bool {
        matches!(
            self,
            Self::Denied { .. } | Self::DunderWalk { .. } | Self::SuspiciousWalk { .. }
        )
    }
}

/// Python 2 module names that `pickle`'s `fix_imports` maps to Python 3 modules.
const MODULE_COMPAT: &[(&str, &str)] = &[
    ("__builtin__", "builtins"),
    ("exceptions", "builtins"),
    ("copy_reg", "copyreg"),
    ("commands", "subprocess"),
    ("popen2", "subprocess"),
    ("cPickle", "pickle"),
    ("urllib2", "urllib.request"),
    ("httplib", "http.client"),
    ("BaseHTTPServer", "http.server"),
    ("SimpleHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("SocketServer", "socketserver"),
    ("xmlrpclib", "xmlrpc.client"),
    ("cStringIO", "io"),
    ("StringIO", "io"),
    ("thread", "_thread"),
    ("dummy_thread", "_dummy_thread"),
    ("Queue", "queue"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("ConfigParser", "configparser"),
    ("cookielib", "http.cookiejar"),
    ("urlparse", "urllib.parse"),
];

/// Python 2 `(module, name)` pairs that `fix_imports` renames.
const NAME_COMPAT: &[(&str, &str)] = &[
    ("builtins.xrange", "builtins.range"),
    ("builtins.unicode", "builtins.str"),
    ("builtins.basestring", "builtins.str"),
    ("builtins.long", "builtins.int"),
    ("builtins.raw_input", "builtins.input"),
    ("builtins.unichr", "builtins.chr"),
    ("builtins.reduce", "functools.reduce"),
    ("builtins.intern", "sys.intern"),
    ("itertools.izip", "builtins.zip"),
    ("itertools.imap", "builtins.map"),
    ("itertools.ifilter", "builtins.filter"),
    ("subprocess.getoutput", "subprocess.getoutput"),
];

/// Plain-data constructors: no finding on their own.
const TRIVIAL: &[&str] = &[
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.range",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.object",
    "collections.OrderedDict",
    "collections.deque",
    "collections.Counter",
    "collections.defaultdict",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "argparse.Namespace",
    "types.SimpleNamespace",
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    // copyreg's generic reconstructors only call `__new__` on the classes passed to them, and
    // those classes are imported (and judged) separately.
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    // Only with constant (str, 'latin1') arguments; checked at the call site.
    "_codecs.encode",
    "codecs.encode",
];

/// The torch `weights_only` allow-set for tensors and arrays (see [`Class::WeightsOnly`]).
const WEIGHTS_ONLY: &[&str] = &[
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch.serialization._get_layout",
    "torch.Size",
    "torch.device",
    "torch.storage.TypedStorage",
    "torch.storage.UntypedStorage",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.dtype",
    "numpy.ndarray",
];

/// Other reconstructors written by torch, numpy, scikit-learn and joblib: allowed, but `review`.
const RECONSTRUCTORS: &[&str] = &[
    "torch._utils._rebuild_wrapper_subclass",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "joblib.numpy_pickle.NDArrayWrapper",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
];

/// torch dtype objects (`torch.float32`, …).
const TORCH_DTYPES: &[&str] = &[
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "half",
    "float",
    "double",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "cfloat",
    "cdouble",
    "long",
    "int",
    "short",
    "qint8",
    "quint8",
    "qint32",
    "float8_e4m3fn",
    "float8_e5m2",
];

/// Deny-list: a name matches an entry when it equals it or continues it after a `.`; an entry
/// ending in `*` matches any name starting with the text before the `*`.
const DENY: &[(&str, &str)] = &[
    (
        "os",
        "operating-system access (commands, files, environment)",
    ),
    (
        "posix",
        "operating-system access (commands, files, environment)",
    ),
    (
        "nt",
        "operating-system access (commands, files, environment)",
    ),
    ("subprocess", "command execution"),
    ("_posixsubprocess", "command execution"),
    ("pty", "command execution"),
    ("popen2", "command execution"),
    ("platform", "runs external commands"),
    ("sys", "interpreter internals"),
    ("socket", "network access"),
    ("_socket", "network access"),
    ("ssl", "network access"),
    ("shutil", "file-system modification"),
    ("tempfile", "file creation"),
    ("fileinput", "file access"),
    ("tarfile", "archive extraction to disk"),
    ("zipfile", "archive extraction to disk"),
    ("shelve", "nested pickle loading"),
    ("dbm", "file access"),
    ("sqlite3", "file and database access"),
    ("linecache", "file access"),
    ("runpy", "code execution"),
    ("code", "code execution"),
    ("codeop", "code compilation"),
    ("compileall", "code compilation"),
    ("py_compile", "code compilation"),
    ("pdb", "debugger: code execution"),
    ("bdb", "debugger: code execution"),
    ("trace", "code execution"),
    ("doctest", "code execution"),
    ("timeit", "code execution"),
    ("cProfile", "code execution"),
    ("profile", "code execution"),
    ("pydoc", "runs a pager / code"),
    ("asyncio", "subprocess and network access"),
    ("ctypes", "native code execution"),
    ("_ctypes", "native code execution"),
    ("cffi", "native code execution"),
    ("webbrowser", "launches external programs"),
    ("importlib", "dynamic import"),
    ("imp", "dynamic import"),
    ("zipimport", "dynamic import"),
    ("pkgutil", "dynamic import (resolve_name)"),
    ("modulefinder", "dynamic import"),
    ("inspect", "reflection"),
    ("gc", "reflection over live objects"),
    ("pickle", "nested unpickling"),
    ("_pickle", "nested unpickling"),
    ("marshal", "code-object deserialisation"),
    ("dill", "code deserialisation"),
    ("cloudpickle", "code deserialisation"),
    ("yaml", "nested unsafe deserialisation"),
    ("pip", "package installation"),
    ("ensurepip", "package installation"),
    ("venv", "environment creation"),
    ("distutils", "build and spawn"),
    ("setuptools", "build and spawn"),
    ("test", "test helpers run code"),
    ("idlelib", "IDE internals run code"),
    ("_osx_support", "runs external commands"),
    ("_aix_support", "runs external commands"),
    ("_pyrepl", "code execution"),
    ("multiprocessing", "process spawning"),
    ("concurrent", "process and thread spawning"),
    ("threading", "thread spawning"),
    ("_thread", "thread spawning"),
    ("signal", "signal handlers"),
    ("atexit", "deferred execution"),
    ("weakref.finalize", "deferred execution"),
    ("builtins.eval", "code execution"),
    ("builtins.exec", "code execution"),
    ("builtins.execfile", "code execution"),
    ("builtins.compile", "code compilation"),
    ("builtins.getattr", "attribute access primitive"),
    ("builtins.setattr", "attribute write primitive"),
    ("builtins.delattr", "attribute delete primitive"),
    ("builtins.vars", "namespace access primitive"),
    ("builtins.globals", "namespace access primitive"),
    ("builtins.locals", "namespace access primitive"),
    ("builtins.open", "file access"),
    ("builtins.file", "file access"),
    ("builtins.__import__", "dynamic import"),
    ("builtins.reload", "dynamic import"),
    ("builtins.breakpoint", "debugger: code execution"),
    ("builtins.apply", "call primitive"),
    ("builtins.map", "call primitive"),
    ("builtins.filter", "call primitive"),
    ("builtins.iter", "call primitive"),
    ("builtins.next", "call primitive"),
    ("builtins.input", "interactive input"),
    ("builtins.help", "runs a pager"),
    ("builtins.exit", "terminates the interpreter"),
    ("builtins.quit", "terminates the interpreter"),
    (
        "operator",
        "call / attribute access primitives (attrgetter, itemgetter, methodcaller, call)",
    ),
    (
        "_operator",
        "call / attribute access primitives (attrgetter, itemgetter, methodcaller, call)",
    ),
    ("functools.partial", "call primitive"),
    ("functools.partialmethod", "call primitive"),
    ("functools.reduce", "call primitive"),
    ("types.FunctionType", "function construction from code"),
    ("types.LambdaType", "function construction from code"),
    ("types.CodeType", "code-object construction"),
    ("types.MethodType", "method binding primitive"),
    ("types.ModuleType", "module construction"),
    ("types.CellType", "closure construction"),
    ("types.new_class", "class construction"),
    ("copyreg.add_extension", "extension-registry tampering"),
    ("copyreg.remove_extension", "extension-registry tampering"),
    (
        "copyreg.clear_extension_cache",
        "extension-registry tampering",
    ),
    ("copyreg.pickle", "pickle-registry tampering"),
    ("copyreg.constructor", "pickle-registry tampering"),
    ("io.open", "file access"),
    ("io.open_code", "file access"),
    ("io.FileIO", "file access"),
    ("_io.open", "file access"),
    ("_io.open_code", "file access"),
    ("_io.FileIO", "file access"),
    ("codecs.open", "file access"),
    ("gzip.open", "file access"),
    ("gzip.GzipFile", "file access"),
    ("bz2.open", "file access (truncation)"),
    ("bz2.BZ2File", "file access (truncation)"),
    ("lzma.open", "file access"),
    ("lzma.LZMAFile", "file access"),
    ("logging.FileHandler", "file write"),
    ("logging.handlers", "file and network writes"),
    ("logging.config", "config listener executes code"),
    ("urllib.request", "network access"),
    ("urllib.urlopen", "network access"),
    ("urllib.urlretrieve", "network access"),
    ("urllib.URLopener", "network access"),
    ("http.client", "network access"),
    ("http.server", "network server"),
    ("requests", "network access"),
    ("aiohttp", "network access"),
    ("httpx", "network access"),
    ("urllib3", "network access"),
    ("ftplib", "network access"),
    ("smtplib", "network access"),
    ("smtpd", "network server"),
    ("telnetlib", "network access"),
    ("poplib", "network access"),
    ("imaplib", "network access (IMAP4_stream runs a command)"),
    ("nntplib", "network access"),
    ("xmlrpc", "network access"),
    ("socketserver", "network server"),
    ("wsgiref", "network server"),
    ("uuid._*", "uuid internals run external commands"),
    ("uuid.getnode", "runs external commands"),
    ("numpy.load", "loads a second, unscanned pickle"),
    ("numpy.lib.npyio", "file loading (pickles)"),
    ("numpy.lib._npyio_impl", "file loading (pickles)"),
    ("numpy.lib.format", "file loading (pickles)"),
    ("numpy.f2py", "compiles and runs code"),
    ("numpy.testing", "test helpers run code"),
    ("numpy.distutils", "build and spawn"),
    ("numpy.ctypeslib", "native code loading"),
    ("numpy.save", "file write"),
    ("numpy.savez", "file write"),
    ("numpy.savez_compressed", "file write"),
    ("numpy.savetxt", "file write"),
    ("numpy.loadtxt", "file read"),
    ("numpy.genfromtxt", "file / URL read"),
    ("numpy.fromfile", "file read"),
    ("numpy.memmap", "file mapping and write"),
    ("numpy.DataSource", "file / URL read"),
    ("numpy.lib._datasource", "file / URL read"),
    ("torch.load", "nested unpickling"),
    ("torch.serialization", "nested unpickling"),
    ("torch.save", "file write"),
    ("torch.from_file", "file read"),
    ("torch._inductor", "compiles and runs code"),
    ("torch._dynamo", "compiles and runs code"),
    ("torch.compile", "compiles and runs code"),
    ("torch.jit", "loads and compiles code"),
    ("torch.hub", "downloads and runs code"),
    ("torch.package", "loads packaged code"),
    (
        "torch.utils.cpp_extension",
        "compiles and loads native code",
    ),
    ("torch.utils.collect_env", "runs external commands"),
    ("torch.distributed.rpc", "remote execution"),
    ("torch.distributed.run", "process launch"),
    ("torch.distributed.launch", "process launch"),
    ("torch.distributed.elastic", "process launch"),
    ("torch.storage._load_from_bytes", "nested unpickling"),
    ("joblib.load", "nested unpickling"),
    ("pandas.read_*", "file / URL read (read_pickle unpickles)"),
    ("pandas.io", "file / URL read"),
    ("pandas.eval", "expression evaluation"),
    ("pandas.core.computation", "expression evaluation"),
    ("pandas.to_pickle", "file write"),
    ("mlflow.projects", "runs entry points"),
];

/// Modules commonly re-exported as attributes of other modules (`argparse._os`, `posixpath.os`):
/// an attribute walk through one of these reaches the module itself.
const ALIAS_ROOTS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "builtins",
    "posix",
    "nt",
    "shutil",
    "socket",
    "importlib",
    "pickle",
    "marshal",
    "runpy",
    "ctypes",
    "io",
    "pty",
    "operator",
    "functools",
    "types",
    "codecs",
    "tempfile",
    "platform",
    "signal",
    "threading",
    "thread",
    "multiprocessing",
];

/// Attribute names that, at the end of a dotted walk, are write/exec/load sinks.
const SINK_ATTRS: &[&str] = &[
    "system",
    "popen",
    "eval",
    "exec",
    "write_text",
    "write_bytes",
    "unlink",
    "rmdir",
    "rmtree",
    "touch",
    "mkdir",
    "makedirs",
    "chmod",
    "chown",
    "symlink_to",
    "hardlink_to",
    "open",
    "load",
    "loads",
    "urlopen",
    "urlretrieve",
    "call",
    "run",
    "check_output",
    "check_call",
    "Popen",
    "getattr",
    "setattr",
    "delattr",
    "import_module",
    "fromfile",
    "tofile",
    "to_pickle",
    "read_pickle",
    "read_csv",
    "save",
    "remove",
    "kill",
    "fork",
    "spawn",
    "spawnv",
    "spawnl",
    "execv",
    "execve",
    "execl",
    "execvp",
    "startfile",
    "getoutput",
    "getstatusoutput",
];

/// Dunder attributes that are dangerous on their own, even as a single name.
const SENSITIVE_DUNDERS: &[&str] = &[
    "__globals__",
    "__builtins__",
    "__subclasses__",
    "__reduce__",
    "__reduce_ex__",
    "__class__",
    "__dict__",
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__delattr__",
    "__code__",
    "__closure__",
    "__func__",
    "__self__",
    "__bases__",
    "__base__",
    "__mro__",
    "__import__",
    "__loader__",
    "__spec__",
    "__init__",
    "__new__",
    "__call__",
    "__setstate__",
    "__getstate__",
    "__init_subclass__",
    "__subclasshook__",
    "__module__",
    "__qualname__",
    "__wrapped__",
];

/// Normalises a `(module, name)` pair, applying pickle's Python 2 mappings. Returns the module and
/// the qualified name.
#[must_use]
pub fn normalize(module: &str, name: &str) -> (String, String) {
    let module = MODULE_COMPAT
        .iter()
        .find(|(from, _)| *from == module)
        .map_or(module, |(_, to)| to);
    let full = format!("{module}.{name}");
    match NAME_COMPAT
        .iter()
        .find(|(from, _)| *from == full)
        .and_then(|(_, to)| to.rsplit_once('.'))
    {
        Some((m, n)) => (m.to_owned(), n.to_owned()),
        None => (module.to_owned(), name.to_owned()),
    }
}

fn deny_match(full: &str) -> Option<(&'static str, &'static str)> {
    DENY.iter()
        .copied()
        .find(|(entry, _)| match entry.strip_suffix('*') {
            Some(prefix) => full.starts_with(prefix),
            None => {
                full == *entry
                    || full
                        .strip_prefix(entry)
                        .is_some_and(|rest| rest.starts_with('.'))
            }
        })
}

fn is_dunder(part: &str) -> bool {
    part.len() > 4 && part.starts_with("__") && part.ends_with("__")
}

fn allow_class(full: &str, module: &str, qual: &str) -> Option<Class> {
    if TRIVIAL.contains(&full) {
        return Some(Class::Trivial);
    }
    if WEIGHTS_ONLY.contains(&full) {
        return Some(Class::WeightsOnly);
    }
    if RECONSTRUCTORS.contains(&full) {
        return Some(Class::Reconstructor);
    }
    let single = !qual.contains('.');
    if single && module == "torch" && (qual.ends_with("Storage") || TORCH_DTYPES.contains(&qual)) {
        return Some(Class::WeightsOnly);
    }
    let sklearn = module == "sklearn" || module.starts_with("sklearn.");
    let class_like = qual.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    if sklearn && single && class_like && !module.split('.').any(is_dunder) {
        return Some(Class::Reconstructor);
    }
    let scipy_sparse = module == "scipy.sparse" || module.starts_with("scipy.sparse.");
    if scipy_sparse && single && (qual.ends_with("_matrix") || qual.ends_with("_array")) {
        return Some(Class::Reconstructor);
    }
    None
}

/// Classifies the global `module.name` (as written in a pickle; normalised here).
#[must_use]
pub fn classify(module: &str, name: &str) -> Class {
    let (norm_module, qual) = normalize(module, name);
    let full = if qual.is_empty() {
        norm_module.clone()
    } else {
        format!("{norm_module}.{qual}")
    };
    if let Some(class) = allow_class(&full, &norm_module, &qual) {
        return class;
    }
    let parts: Vec<&str> = full.split('.').collect();
    let qual_parts: Vec<&str> = qual.split('.').collect();
    let walk = qual_parts.len() > 1;
    // Sensitive dunders anywhere (even `__builtins__` as a module name), and any dunder attribute
    // reached by a dotted walk.
    let dunder = parts.iter().enumerate().find_map(|(i, part)| {
        let hit = SENSITIVE_DUNDERS.contains(part) || (i > 0 && walk && is_dunder(part));
        hit.then_some(part)
    });
    if let Some(part) = dunder {
        if let Some((_, reason)) = deny_match(&full) {
            return Class::Denied {
                target: full.clone(),
                reason,
            };
        }
        return Class::DunderWalk {
            part: (*part).to_owned(),
        };
    }
    if let Some((_, reason)) = deny_match(&full) {
        return Class::Denied {
            target: full.clone(),
            reason,
        };
    }
    // Attribute walks (in the qualified name, not the import path, where `pandas.io` is a real
    // package) through a module alias: judge the walk as its target.
    let intermediate = qual_parts.len().saturating_sub(1);
    for (i, part) in qual_parts.iter().enumerate().take(intermediate) {
        let root = part.trim_start_matches('_');
        if ALIAS_ROOTS.contains(&root) {
            let rest: Vec<&str> = qual_parts.iter().skip(i + 1).copied().collect();
            let target = format!("{root}.{}", rest.join("."));
            if let Some((_, reason)) = deny_match(&target) {
                return Class::Denied { target, reason };
            }
            return Class::SuspiciousWalk {
                reason: format!("attribute walk through module alias `{part}` to {target}"),
            };
        }
    }
    if walk {
        let last = qual_parts.last().copied().unwrap_or_default();
        if let Some(private) = qual_parts
            .iter()
            .take(qual_parts.len() - 1)
            .find(|p| p.starts_with('_'))
        {
            return Class::SuspiciousWalk {
                reason: format!("attribute walk through private attribute `{private}`"),
            };
        }
        if SINK_ATTRS.contains(&last) {
            return Class::SuspiciousWalk {
                reason: format!("attribute walk to sink `{last}`"),
            };
        }
        return Class::DottedWalk;
    }
    Class::Unknown
}

/// Classifies a dotted name whose module/qualified-name split is unknown (a callable resolved
/// through `getattr` or `import_module`): the first component is taken as the module.
#[must_use]
pub fn classify_dotted(full: &str) -> Class {
    match full.split_once('.') {
        Some((m, q)) => classify(m, q),
        None => classify(full, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(m: &str, n: &str) -> bool {
        matches!(classify(m, n), Class::Denied { .. })
    }

    #[test]
    fn deny_list_matches_at_dot_boundaries() {
        assert!(denied("os", "system"));
        assert!(denied("posix", "system"));
        assert!(denied("os.path", "join"));
        assert!(!denied("osmosis", "run"));
        assert!(denied("builtins", "eval"));
        assert!(denied("__builtin__", "eval"));
        assert!(denied("commands", "getoutput"));
        assert!(denied("uuid", "_get_command_stdout"));
        assert!(denied("pandas", "read_pickle"));
        assert!(!denied("testing_lib", "x"));
        assert!(denied("test.support", "script_helper"));
        assert_eq!(classify("uuid", "UUID"), Class::Trivial);
    }

    #[test]
    fn aliases_resolve_to_their_target() {
        for (m, n) in [
            ("posixpath", "os.system"),
            ("argparse", "_os.system"),
            ("random", "_os.popen"),
            ("foo", "sys.modules"),
            ("bar", "_subprocess.Popen"),
        ] {
            match classify(m, n) {
                Class::Denied { target, .. } => {
                    assert!(!target.starts_with(m), "{m}.{n} -> {target}")
                }
                other => panic!("{m}.{n}: {other:?}"),
            }
        }
    }

    #[test]
    fn dunder_and_private_walks_are_dangerous() {
        assert!(matches!(
            classify("builtins", "object.__subclasses__"),
            Class::DunderWalk { .. }
        ));
        assert!(matches!(
            classify("numpy", "dtype.__reduce__"),
            Class::DunderWalk { .. }
        ));
        assert!(matches!(
            classify("mod", "f.__globals__"),
            Class::DunderWalk { .. }
        ));
        assert!(matches!(
            classify("__builtins__", "eval"),
            Class::DunderWalk { .. }
        ));
        assert!(matches!(
            classify("mod", "__builtins__"),
            Class::DunderWalk { .. }
        ));
        assert!(classify("mod", "A._private.x").is_dangerous());
        assert!(classify("pathlib", "Path.write_text").is_dangerous());
        assert_eq!(
            classify("collections", "OrderedDict.fromkeys"),
            Class::DottedWalk
        );
        assert_eq!(classify("numpy", "prod.m"), Class::DottedWalk);
    }

    #[test]
    fn allow_list_tiers() {
        assert_eq!(classify("collections", "OrderedDict"), Class::Trivial);
        assert_eq!(classify("__builtin__", "set"), Class::Trivial);
        for (m, n) in [
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage"),
            ("torch", "float32"),
            ("torch", "_utils._rebuild_tensor_v2"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "dtype"),
        ] {
            assert_eq!(classify(m, n), Class::WeightsOnly, "{m}.{n}");
        }
        assert_eq!(
            classify("sklearn.linear_model._base", "LinearRegression"),
            Class::Reconstructor
        );
        assert_eq!(
            classify("torch._tensor", "_rebuild_from_type_v2"),
            Class::Reconstructor
        );
        assert_eq!(classify("copy_reg", "_reconstructor"), Class::Trivial);
        assert_eq!(classify("sklearn.utils", "helper"), Class::Unknown);
        // Real packages whose path contains an alias-like name are not walks.
        assert_eq!(classify("mypkg.io.readers", "Reader"), Class::Unknown);
        assert_eq!(
            classify("scipy.signal._ltisys", "TransferFunction"),
            Class::Unknown
        );
        assert_eq!(classify("mypkg.models", "Net"), Class::Unknown);
        assert!(denied("torch.serialization", "load"));
        assert!(denied("torch", "load"));
    }
}
