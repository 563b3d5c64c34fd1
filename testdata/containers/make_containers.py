#!/usr/bin/env python3
"""Container fixtures for rampart-scan's engine tests (Python stdlib only, deterministic).

usage: python3 make_containers.py   (writes next to this script)

SAFETY: pickles are assembled byte by byte; nothing is unpickled. The "malicious" payload is the
harmless marker `touch /tmp/rampart_container_marker`, but never load these files.
Zip fixtures are built in the Rust tests themselves (crates/rampart-scan/tests/scan/engine.rs);
this script covers what needs an xz/lzma/bzip2 encoder or a real tar writer.
"""
import bz2
import io
import lzma
import os
import struct
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = b"touch /tmp/rampart_container_marker"


def glob(m, n):
    return b"c" + m + b"\n" + n + b"\n"


def bu(b):
    return b"X" + struct.pack("<I", len(b)) + b


# posix.system(MARKER), protocol 2
EVIL = b"\x80\x02" + glob(b"posix", b"system") + bu(MARKER) + b"\x85R."
# {'a': [1, 2]}, protocol 2: plain data
BENIGN = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02es."
# torch-like sys_info dict (protocol 2, constants only)
SYS_INFO = b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88u."
# a state dict referring to a storage via persistent id, as legacy torch writes
STATE = (b"\x80\x02" + glob(b"collections", b"OrderedDict") + b")Rq\x00X\x01\x00\x00\x00wq\x01"
         + glob(b"torch._utils", b"_rebuild_tensor_v2") + b"((X\x07\x00\x00\x00storageq\x02"
         + glob(b"torch", b"FloatStorage") + b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89"
         + glob(b"collections", b"OrderedDict") + b")RtRs.")


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def tar_bytes(members, fmt):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def zip_bytes(members, method):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=method) as zf:
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = method
            zf.writestr(zi, data)
    return bio.getvalue()


def main():
    write("evil.pkl.xz", lzma.compress(EVIL, format=lzma.FORMAT_XZ))
    write("benign.pkl.xz", lzma.compress(BENIGN, format=lzma.FORMAT_XZ))
    write("evil.joblib.lzma", lzma.compress(EVIL, format=lzma.FORMAT_ALONE))
    write("evil.pkl.bz2", bz2.compress(EVIL, 9))
    write("benign.pkl.bz2", bz2.compress(BENIGN, 9))
    # storages: pickled count, then (key, location, type) pickle + raw bytes, as legacy torch does
    storages = b"\x80\x02K\x01." + b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x86." + struct.pack("<q", 4) + b"\x00\x00\x80?" * 4
    tensors = b"\x80\x02K\x00."
    legacy = [("sys_info", SYS_INFO), ("pickle", EVIL), ("tensors", tensors), ("storages", storages)]
    write("legacy_torch_evil.tar", tar_bytes(legacy, tarfile.GNU_FORMAT))
    benign = [("sys_info", SYS_INFO), ("pickle", STATE), ("tensors", tensors), ("storages", storages)]
    write("legacy_torch_benign.tar", tar_bytes(benign, tarfile.PAX_FORMAT))
    for tag, method in (("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)):
        write(f"torch_{tag}_members_evil.zip",
              zip_bytes([("archive/data.pkl", EVIL), ("archive/version", b"3\n")], method))
        write(f"torch_{tag}_members_benign.zip",
              zip_bytes([("archive/data.pkl", STATE), ("archive/data/0", b"\x00\x00\x80?" * 4),
                         ("archive/version", b"3\n")], method))
    long_name = "d" * 120 + "/payload"
    write("pax_longname_evil.tar", tar_bytes([(long_name, EVIL)], tarfile.PAX_FORMAT))
    write("gnu_longname_evil.tar", tar_bytes([(long_name, EVIL)], tarfile.GNU_FORMAT))


if __name__ == "__main__":
    main()
