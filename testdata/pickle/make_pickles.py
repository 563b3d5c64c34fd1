#!/usr/bin/env python3
"""Writes cases.jsonl: real CPython pickles (protocols 0-5) with the verdict Rampart must give.

Python standard library only. Malicious cases are produced with pickle.dumps of objects whose
__reduce__ names a dangerous callable: dumping never runs the callable, and this script NEVER
loads anything it writes. Each line: {"name", "protocol", "expected": safe|review|malicious, "hex"}.

Usage: python3 make_pickles.py [OUT_FILE]   (default: cases.jsonl next to this script)
"""

import argparse
import builtins
import codecs
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import json
import operator
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import types
import uuid


class Reduce:
    """An object that pickles as `func(*args)` (the classic payload shape)."""

    def __init__(self, func, *args):
        self.func = func
        self.args = args

    def __reduce__(self):
        return (self.func, self.args)


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = 1


class Plain:
    def __init__(self):
        self.a = 1


SAFE = {
    "dict": {"a": 1, "b": [1, 2.5, None, True], "c": ("x", b"y")},
    "nested_list": [[1, 2], [3, [4, [5]]]],
    "set": {1, 2, 3},
    "frozenset": frozenset({"a"}),
    "bytes": b"\x00\x01binary",
    "bytearray": bytearray(b"abc"),
    "big_int": 2**100,
    "complex": complex(1, 2),
    "unicode": "caf\u00e9 \u2603",
    "ordered_dict": collections.OrderedDict([("w", 1), ("b", 2)]),
    "defaultdict": collections.defaultdict(list, {"k": [1]}),
    "deque": collections.deque([1, 2]),
    "counter": collections.Counter("hello"),
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "date": datetime.date(2024, 1, 2),
    "timedelta": datetime.timedelta(days=1),
    "decimal": decimal.Decimal("1.25"),
    "fraction": fractions.Fraction(1, 3),
    "uuid": uuid.UUID(int=1),
    "range": range(3),
    "slice": slice(1, 2, 3),
    "namespace": argparse.Namespace(lr=0.1),
    "simple_namespace": types.SimpleNamespace(a=1),
    "pure_path": pathlib.PurePosixPath("a/b"),
}

REVIEW = {
    "user_class": Plain(),
    "dataclass": Point(1, 2),
    "enum": Color.RED,
    "exception": ValueError("x"),
}

MALICIOUS = {
    "os_system": Reduce(os.system, "true"),
    "subprocess_run": Reduce(subprocess.run, ["true"]),
    "subprocess_popen": Reduce(subprocess.Popen, ["true"]),
    "eval": Reduce(builtins.eval, "1"),
    "exec": Reduce(builtins.exec, "pass"),
    "compile": Reduce(builtins.compile, "1", "f", "eval"),
    "open": Reduce(builtins.open, "/tmp/x", "w"),
    "import": Reduce(builtins.__import__, "os"),
    "getattr": Reduce(builtins.getattr, builtins, "eval"),
    "shutil_rmtree": Reduce(shutil.rmtree, "/tmp/nonexistent"),
    "codecs_open": Reduce(codecs.open, "/tmp/x", "w"),
    "partial": functools.partial(os.system, "true"),
    "attrgetter": operator.attrgetter("system"),
    "methodcaller": operator.methodcaller("system", "true"),
    "sys_exit": Reduce(sys.exit, 0),
    "pickle_loads": Reduce(pickle.loads, b"N."),
    "nested_in_dict": {"model": [1, 2, Reduce(os.system, "true")]},
    "function_type": Reduce(types.FunctionType, None, {}),
    "path_write_text": Reduce(pathlib.Path.write_text, pathlib.PurePosixPath("/tmp/x"), "x"),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "cases.jsonl")
    lines = []
    for expected, table in (("safe", SAFE), ("review", REVIEW), ("malicious", MALICIOUS)):
        for name, obj in table.items():
            for protocol in range(6):
                try:
                    data = pickle.dumps(obj, protocol=protocol)
                except (pickle.PicklingError, TypeError, AttributeError):
                    continue  # not picklable at this protocol
                lines.append(
                    json.dumps(
                        {
                            "name": name,
                            "protocol": protocol,
                            "expected": expected,
                            "hex": data.hex(),
                        },
                        sort_keys=True,
                    )
                )
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
